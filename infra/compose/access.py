"""Least privilege for the compose stack: one account per service, each with only its grants.

docker-compose.yaml's one-shot services run this before the services that need it; every
step is idempotent and runs on each ``up``, so a password changed in ``infra/compose.env``
takes effect then::

    python -m infra.compose.access mongo    # roles and users in the platform database (as root)
    python -m infra.compose.access kafka    # topics, SCRAM credentials and ACLs (as the Kafka admin)
    python -m infra.compose.access airflow  # the Airflow simple auth manager's passwords file

The tables below are the one statement of who may do what: SECURITY.md shows them
(``access_tables_markdown``) and tests check them against the collections the code touches.
Passwords come from the environment (``<SYSTEM>_<ACCOUNT>_PASSWORD``, from compose.env) and
are never printed; a placeholder or short password stops the init step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fma_platform.contracts import Collection, kafka_topics
from fma_platform.errors import PlatformError
from fma_platform.kafka import STREAMING_GROUP_PREFIX, admin_client, ensure_topics
from fma_platform.settings import Settings, get_settings

# --- MongoDB -----------------------------------------------------------------------------------
READ = frozenset({"find"})  # find, aggregate, count
WRITE = frozenset({"insert", "update"})  # inserts and upserts
REMOVE = frozenset({"remove"})
# Indexes the process makes itself, TTL windows included (collMod changes a window in place).
OWN = frozenset({"createCollection", "createIndex", "dropIndex", "listIndexes", "collMod"})


@dataclass(frozen=True)
class MongoAccount:
    """A MongoDB user of the platform database with one role.

    ``grants`` (collection -> actions) become a custom role ``role`` in the platform
    database; an account without grants gets the built-in ``role`` (``read``).
    """

    user: str
    role: str
    password_variable: str
    used_by: str
    grants: Mapping[Collection, frozenset[str]] = field(default_factory=dict)

    def privileges(self, database: str) -> list[dict]:
        return [{"resource": {"db": database, "collection": collection.value}, "actions": sorted(actions)}
                for collection, actions in sorted(self.grants.items())]


C = Collection
MONGO_ACCOUNTS: tuple[MongoAccount, ...] = (
    MongoAccount(
        user="fma-player", role="fmaPlayer", password_variable="MONGO_PLAYER_PASSWORD",
        used_by="player (Streamlit app: listener and analyst pages, `python -m dashboards.users`)",
        grants={
            **{c: READ for c in (C.TRACKS, C.TRACK_FEATURES, C.SIMILAR_TRACKS, C.RECOMMENDATIONS,
                                 C.REALTIME_RECOMMENDATIONS, C.LISTENING_EVENTS, C.ETL_RUNS, C.QUARANTINE,
                                 C.DATA_QUALITY, C.MODEL_RUNS, C.TRENDING, C.STREAM_METRICS, C.REALTIME_VALUE)},
            C.USERS: READ | {"insert"} | OWN,
            C.LOGIN_ATTEMPTS: READ | {"insert"} | REMOVE | OWN,
            C.REJECTED_REPORTS: READ | WRITE | OWN,
        },
    ),
    MongoAccount(
        user="fma-streaming", role="fmaStreaming", password_variable="MONGO_STREAMING_PASSWORD",
        used_by="streaming (the real-time Spark job)",
        grants={
            C.TRACKS: READ, C.TRACK_FEATURES: READ,
            **{c: READ | WRITE | OWN for c in (C.LISTENING_EVENTS, C.DEAD_LETTERS, C.REALTIME_RECOMMENDATIONS,
                                               C.TRENDING, C.STREAM_METRICS)},
        },
    ),
    MongoAccount(
        user="fma-airflow", role="fmaPipeline", password_variable="MONGO_AIRFLOW_PASSWORD",
        used_by="Airflow tasks and the Spark jobs they submit (ETL, training, simulated listeners, health)",
        grants={
            # The health DAG counts every collection; training reads users' picked genres.
            **{c: READ for c in Collection},
            **{c: READ | WRITE | OWN for c in (C.TRACKS, C.TRACK_FEATURES, C.ETL_RUNS, C.DATA_QUALITY,
                                               C.SIMILAR_TRACKS, C.RECOMMENDATIONS, C.MODEL_RUNS,
                                               C.LISTENING_EVENTS, C.SIMULATED_LISTENERS, C.REALTIME_VALUE)},
            C.QUARANTINE: READ | WRITE | REMOVE | OWN,
        },
    ),
    MongoAccount(
        user="fma-simulator", role="fmaSimulator", password_variable="MONGO_SIMULATOR_PASSWORD",
        used_by="simulator (profile `simulate`: simulated listeners played through Kafka)",
        grants={C.TRACKS: READ, C.TRACK_FEATURES: READ},
    ),
    MongoAccount(
        user="fma-analyst", role="read", password_variable="MONGO_ANALYST_PASSWORD",
        used_by="people (analysts' own tools: mongosh, notebooks); no service",
    ),
)


# --- Kafka -------------------------------------------------------------------------------------
KAFKA_ADMIN_USER = "fma-admin"  # the broker's super user, made when its storage is formatted
KAFKA_SCRAM_MECHANISM = "SCRAM-SHA-512"
KAFKA_SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class KafkaAccount:
    """A SCRAM user of the broker and what it may do on the events topic and consumer groups."""

    user: str
    password_variable: str
    used_by: str
    topic_operations: tuple[str, ...]  # on the events topic
    group_operations: tuple[str, ...] = ()  # on consumer groups named STREAMING_GROUP_PREFIX*


KAFKA_ACCOUNTS: tuple[KafkaAccount, ...] = (
    KafkaAccount("fma-player", "KAFKA_PLAYER_PASSWORD", "player", ("WRITE", "DESCRIBE")),
    KafkaAccount("fma-simulator", "KAFKA_SIMULATOR_PASSWORD", "simulator", ("WRITE", "DESCRIBE")),
    KafkaAccount("fma-streaming", "KAFKA_STREAMING_PASSWORD", "streaming", ("READ", "DESCRIBE"), ("READ",)),
    KafkaAccount("fma-airflow", "KAFKA_AIRFLOW_PASSWORD", "Airflow (the health DAG)", ("DESCRIBE",)),
)


# --- passwords ---------------------------------------------------------------------------------
MIN_PASSWORD_LENGTH = 16
# They go into URIs, JSON, JAAS lines and kafka-storage's [name=..,password=..] unescaped.
PASSWORD_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
PLACEHOLDER = "change-me"


class AccessSetupError(PlatformError, RuntimeError):
    """An account cannot be set up: a missing or weak password, or a server that refused."""


def require_password(environ: Mapping[str, str], variable: str) -> str:
    """The password in ``environ[variable]``; ``AccessSetupError`` when missing or too weak."""
    value = environ.get(variable, "")
    if not value:
        raise AccessSetupError(f"{variable} is not set (infra/compose.env)")
    if PLACEHOLDER in value or len(value) < MIN_PASSWORD_LENGTH or not PASSWORD_PATTERN.fullmatch(value):
        raise AccessSetupError(
            f"{variable} must be a real password: at least {MIN_PASSWORD_LENGTH} characters of letters, "
            f"digits and . _ - (for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return value


# --- applying ----------------------------------------------------------------------------------
def apply_mongo_access(db, environ: Mapping[str, str], accounts: tuple[MongoAccount, ...] = MONGO_ACCOUNTS) -> dict:
    """Create or update every account's role and user in ``db`` (a pymongo ``Database``).

    Users live in the platform database (``authSource=<db>``). Existing roles get exactly
    the table's privileges and existing users its password and role: the table wins.
    """
    passwords = {account.user: require_password(environ, account.password_variable) for account in accounts}
    roles_done, users_done = [], []
    for account in accounts:
        if account.grants:
            spec = {"privileges": account.privileges(db.name), "roles": []}
            exists = db.command("rolesInfo", account.role)["roles"]
            db.command({"updateRole" if exists else "createRole": account.role, **spec})
            roles_done.append(account.role)
        roles = [{"role": account.role, "db": db.name}]
        exists = db.command("usersInfo", account.user)["users"]
        db.command({"updateUser" if exists else "createUser": account.user,
                    "pwd": passwords[account.user], "roles": roles})
        users_done.append(account.user)
    return {"database": db.name, "roles": roles_done, "users": users_done}


def kafka_acls(settings: Settings, accounts: tuple[KafkaAccount, ...] = KAFKA_ACCOUNTS) -> set:
    """The ACLs the table asks for: ALLOW rules on the events topic and the streaming group prefix."""
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    topic = ResourcePattern(ResourceType.TOPIC, settings.kafka_events_topic, ACLResourcePatternType.LITERAL)
    groups = ResourcePattern(ResourceType.GROUP, STREAMING_GROUP_PREFIX, ACLResourcePatternType.PREFIXED)
    acls = set()
    for account in accounts:
        for resource, operations in ((topic, account.topic_operations), (groups, account.group_operations)):
            acls |= {ACL(principal=f"User:{account.user}", host="*", operation=ACLOperation[operation],
                         permission_type=ACLPermissionType.ALLOW, resource_pattern=resource)
                     for operation in operations}
    return acls


def apply_kafka_access(settings: Settings, environ: Mapping[str, str],
                       accounts: tuple[KafkaAccount, ...] = KAFKA_ACCOUNTS) -> dict:
    """Topics, each account's SCRAM credential and exactly the table's ACLs for its principal.

    ``settings`` log in as the broker's super user (``KAFKA_ADMIN_USER``). ACLs of the
    table's principals that the table no longer asks for are deleted.
    """
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter, ResourceType
    from kafka.admin import ACLResourcePatternType, UserScramCredentialUpsertion

    passwords = {account.user: require_password(environ, account.password_variable) for account in accounts}
    created_topics = ensure_topics(settings, kafka_topics(settings))
    wanted = kafka_acls(settings, accounts)
    admin = admin_client(settings)
    try:
        failed = {user: error for user, error in admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion(user, KAFKA_SCRAM_MECHANISM, password, iterations=KAFKA_SCRAM_ITERATIONS)
            for user, password in passwords.items()]).items() if error}
        if failed:
            raise AccessSetupError(f"the broker refused SCRAM credentials: {failed}")
        stale = []
        for account in accounts:
            every = ACLFilter(principal=f"User:{account.user}", host=None, operation=ACLOperation.ANY,
                              permission_type=ACLPermissionType.ANY,
                              resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
            existing, error = admin.describe_acls(every)
            if error is not None and error.errno:
                raise AccessSetupError(f"cannot list the ACLs of {account.user}: {error}")
            stale += [acl for acl in existing if acl not in wanted]
        if stale:
            admin.delete_acls(stale)
        result = admin.create_acls(sorted(wanted, key=repr))
        if result.get("failed"):
            raise AccessSetupError(f"the broker refused ACLs: {result['failed']}")
    finally:
        admin.close()
    return {"topics_created": created_topics, "users": sorted(passwords), "acls": len(wanted),
            "stale_acls_deleted": len(stale)}


# --- Airflow -----------------------------------------------------------------------------------
def airflow_users(users_setting: str) -> dict[str, str]:
    """``{user: role}`` of ``[core] simple_auth_manager_users`` (``"alice:admin,bob:viewer"``)."""
    users = {}
    for entry in filter(None, (part.strip() for part in users_setting.split(","))):
        name, _, rest = entry.partition(":")
        if not name or not rest:
            raise AccessSetupError(f"simple_auth_manager_users entry {entry!r} is not user:role")
        users[name] = rest.split(":", 1)[0]
    return users


def write_airflow_passwords(environ: Mapping[str, str]) -> dict:
    """Write the simple auth manager's passwords file: every configured user, its role's password.

    A user with role ``R`` gets ``AIRFLOW_<R>_PASSWORD``. With every user in the file
    Airflow generates (and prints) no password; rewriting it on each ``up`` applies a
    changed password. The file is replaced atomically with mode 0600.
    """
    path = Path(environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", ""))
    if not path.name:
        raise AccessSetupError("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE is not set")
    users = airflow_users(environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ""))
    if not users:
        raise AccessSetupError("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS names no user")
    passwords = {user: require_password(environ, f"AIRFLOW_{role.upper()}_PASSWORD") for user, role in users.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".passwords-")
    with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
        json.dump(passwords, handle)
    os.replace(temporary, path)
    return {"file": str(path), "users": users}


# --- documentation -----------------------------------------------------------------------------
def access_tables_markdown(settings: Settings | None = None) -> str:
    """The MongoDB and Kafka tables as SECURITY.md shows them."""
    topic = (settings or Settings(_env_file=None)).kafka_events_topic
    short = {READ: "read", READ | WRITE | OWN: "read, write, indexes", READ | WRITE | REMOVE | OWN:
             "read, write, delete, indexes", READ | {"insert"} | OWN: "read, insert, indexes",
             READ | {"insert"} | REMOVE | OWN: "read, insert, delete, indexes"}
    lines = ["| MongoDB user | role | used by | grants (collection: actions) |", "|---|---|---|---|"]
    for account in MONGO_ACCOUNTS:
        if not account.grants:
            grants = f"built-in `{account.role}`: read every collection"
        else:
            by_access: dict[str, list[str]] = {}
            for collection, actions in sorted(account.grants.items()):
                by_access.setdefault(short.get(actions, ", ".join(sorted(actions))), []).append(collection.value)
            grants = "; ".join(f"{access}: {', '.join(names)}" for access, names in by_access.items())
        lines.append(f"| `{account.user}` | `{account.role}` | {account.used_by} | {grants} |")
    lines += ["", f"| Kafka user | on topic `{topic}` | on groups `{STREAMING_GROUP_PREFIX}*` | used by |",
              "|---|---|---|---|",
              f"| `{KAFKA_ADMIN_USER}` | super user | super user | init steps only (topics, credentials, ACLs) |"]
    for account in KAFKA_ACCOUNTS:
        lines.append(f"| `{account.user}` | {', '.join(account.topic_operations)} | "
                     f"{', '.join(account.group_operations) or '-'} | {account.used_by} |")
    return "\n".join(lines)


# --- entry point -------------------------------------------------------------------------------
# Secrets each init step checks besides its accounts' passwords (compose passes them in), so
# the stack refuses to start on a placeholder anywhere.
CHECKED_SECRETS = {
    "mongo": ("MONGO_ROOT_PASSWORD",),
    "kafka": ("KAFKA_ADMIN_PASSWORD",),
    "airflow": ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "SPARK_AUTH_SECRET"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.compose.access", description=__doc__.split("\n")[0])
    parser.add_argument("system", choices=sorted(CHECKED_SECRETS))
    args = parser.parse_args(argv)
    try:
        for variable in CHECKED_SECRETS[args.system]:
            require_password(os.environ, variable)
        if args.system == "mongo":
            from fma_platform.mongo import platform_db

            report = apply_mongo_access(platform_db(get_settings()), os.environ)
        elif args.system == "kafka":
            report = apply_kafka_access(get_settings(), os.environ)
        else:
            report = write_airflow_passwords(os.environ)
    except AccessSetupError as exc:
        print(f"{args.system} access: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({args.system: report}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
