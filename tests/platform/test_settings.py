"""The settings' rules: FMA_* names belong to settings, bind and advertised hosts differ,
choices are validated, and every file that sets FMA_* variables uses real setting names."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import ValidationError

from fma_platform.settings import (
    PROJECT_ROOT,
    Settings,
    SettingsError,
    UnknownSettingError,
    redact_url,
    setting_variables,
)


def test_a_misspelt_variable_is_an_error_that_suggests_the_setting(monkeypatch):
    monkeypatch.setenv("FMA_MONGO_PROT", "27100")
    with pytest.raises(UnknownSettingError) as error:
        Settings(_env_file=None)
    assert error.value.names == {"FMA_MONGO_PROT": "the environment"}
    assert "FMA_MONGO_PROT in the environment (did you mean FMA_MONGO_PORT?)" in str(error.value)
    assert isinstance(error.value, SettingsError) and isinstance(error.value, ValueError)


def test_unknown_names_in_the_env_file_are_errors_too_whatever_their_case(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nFMA_MONGO_PORT=27100\nfma_kafka_topic=events\nOTHER_TOOL=1\n")
    with pytest.raises(UnknownSettingError) as error:
        Settings(_env_file=env_file)
    assert error.value.names == {"FMA_KAFKA_TOPIC": str(env_file)}  # OTHER_TOOL is not ours
    assert "did you mean FMA_KAFKA_EVENTS_TOPIC?" in str(error.value)


def test_a_valid_env_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("FMA_SAMPLE_SEED", raising=False)  # the environment wins over .env
    env_file = tmp_path / ".env"
    env_file.write_text("FMA_SAMPLE_SEED=11\nCOMPOSE_PROJECT_NAME=x\n")
    assert Settings(_env_file=env_file).sample_seed == 11


def test_the_settings_accept_their_own_environment(settings, monkeypatch):
    """What a launcher passes on (``as_env``) reads back as the same settings."""
    for name in setting_variables():
        monkeypatch.delenv(name, raising=False)
    chosen = settings.model_copy(update={"bind_host": "0.0.0.0", "host": "fma.example",
                                         "spark_kafka_source": "python", "mongo_uri": "mongodb://db:27017"})
    for name, value in chosen.as_env().items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == chosen


def test_bind_host_and_advertised_host_are_separate():
    settings = Settings(_env_file=None, bind_host="0.0.0.0", host="fma.example", mongo_port=27100, kafka_port=19100)
    assert settings.mongo_url == "mongodb://fma.example:27100"
    assert settings.kafka_bootstrap == "fma.example:19100"
    assert Settings(_env_file=None).bind_host == "127.0.0.1"


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", ""])
def test_a_wildcard_is_refused_as_the_address_clients_use(wildcard):
    with pytest.raises(ValidationError, match="FMA_BIND_HOST"):
        Settings(_env_file=None, host=wildcard)


def test_spark_kafka_source_is_one_of_three_choices(monkeypatch):
    assert Settings(_env_file=None).spark_kafka_source == "auto"
    monkeypatch.setenv("FMA_SPARK_KAFKA_SOURCE", "native")
    assert Settings(_env_file=None).spark_kafka_source == "native"
    monkeypatch.setenv("FMA_SPARK_KAFKA_SOURCE", "java")
    with pytest.raises(ValidationError, match="'auto', 'python' or 'native'"):
        Settings(_env_file=None)


# --- the repository's own configuration files ----------------------------------------------
def _compose_fma_names() -> set[str]:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
    blocks = [value for key, value in compose.items() if key.startswith("x-")]
    blocks += [service.get("environment") or {} for service in compose["services"].values()]
    names = set()
    for block in blocks:
        environment = block.get("environment", block) if isinstance(block, dict) else {}
        names |= {name for name in environment if isinstance(name, str) and name.startswith("FMA_")}
    return names


def test_every_fma_variable_the_repository_sets_is_a_setting():
    names = _compose_fma_names()
    names |= set(re.findall(r"\bFMA_[A-Z_]+(?==)", (PROJECT_ROOT / ".env.example").read_text()))
    assert {"FMA_MONGO_URI", "FMA_BIND_HOST", "FMA_SPARK_KAFKA_SOURCE"} <= names  # the parse found them
    assert names - set(setting_variables()) == set()


def test_compose_variables_do_not_use_the_settings_prefix():
    text = (PROJECT_ROOT / "infra" / "compose.env.example").read_text()
    assert re.findall(r"^\s*FMA_\w*", text, flags=re.MULTILINE) == []
    assert not re.findall(r"\$\{FMA_", (PROJECT_ROOT / "docker-compose.yaml").read_text())


@pytest.mark.parametrize(("url", "shown"), [
    ("mongodb://root:s3cret@mongo:27017/?authSource=admin", "mongodb://root:***@mongo:27017/?authSource=admin"),
    ("mongodb://app:p%40ss@h1:1,h2:2/fma?replicaSet=rs0", "mongodb://app:***@h1:1,h2:2/fma?replicaSet=rs0"),
    ("mongodb://127.0.0.1:27018", "mongodb://127.0.0.1:27018"),
    ("mongodb://reader@h:1/?x=a:b@c", "mongodb://reader@h:1/?x=a:b@c"),
])
def test_urls_shown_to_people_carry_no_password(url, shown):
    assert redact_url(url) == shown


def test_an_unreachable_mongodb_is_named_without_its_password(settings):
    from fma_platform.health import ServiceUnavailableError, mongo_health

    with_secret = settings.model_copy(update={"mongo_uri": "mongodb://root:s3cret-pw@127.0.0.1:1/?authSource=admin"})
    with pytest.raises(ServiceUnavailableError) as raised:
        mongo_health(with_secret)
    assert "s3cret-pw" not in str(raised.value) and "root:***@127.0.0.1:1" in str(raised.value)
