"""platform_settings from the two forms of MongoDB connection deployments write (#13 item 3).

A compose-style connection states the whole ``mongodb://`` URI in ``host``; MongoHook alone
turns that into ``mongodb://mongodb://...`` (reproduced below). The embedded stack writes
split fields. Both must give the tasks one working URI, with TLS options kept.
"""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from pymongo.uri_parser import parse_uri

PASSWORD = "pa:ss/w@rd"  # changes under URL encoding


def _connections(monkeypatch, mongo: dict) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", json.dumps({"conn_type": "mongo", **mongo}))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka",
                                                                 "extra": {"bootstrap.servers": "kafka:9092"}}))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark",
                                                                 "host": "spark://spark-master:7077"}))


def test_mongohook_alone_breaks_a_uri_in_host(monkeypatch):
    """The bug this module guards against, as Airflow's provider has it."""
    from airflow.providers.mongo.hooks.mongo import MongoHook

    _connections(monkeypatch, {"host": "mongodb://root:pw@mongo:27017/?replicaSet=rs0", "schema": "fma"})
    assert MongoHook().uri.startswith("mongodb://mongodb://")


def test_a_uri_in_host_becomes_that_uri_with_the_connection_s_database(monkeypatch):
    from plugins.platform_hooks import platform_settings

    uri = f"mongodb://fma-airflow:{quote_plus(PASSWORD)}@mongo:27017/?replicaSet=rs0&authSource=fma"
    _connections(monkeypatch, {"host": uri, "schema": "fma"})
    settings = platform_settings()
    parsed = parse_uri(settings.mongo_uri)
    assert parsed["nodelist"] == [("mongo", 27017)]
    assert (parsed["username"], parsed["password"], parsed["database"]) == ("fma-airflow", PASSWORD, "fma")
    assert dict(parsed["options"]) == {"replicaSet": "rs0", "authSource": "fma"}
    assert settings.mongo_db == "fma" and settings.spark_master == "spark://spark-master:7077"


def test_a_uri_in_host_keeps_tls_extras_and_its_own_options_win(monkeypatch, tmp_path):
    from plugins.platform_hooks import platform_settings

    ca = tmp_path / "ca dir" / "ca.pem"
    ca.parent.mkdir()
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    _connections(monkeypatch, {
        "host": "mongodb://h1:27017,h2:27018/platform?authSource=admin",
        "login": "fma-airflow", "password": PASSWORD,
        "extra": {"tls": True, "tlsCAFile": str(ca), "authSource": "fma", "allow_insecure": False}})
    settings = platform_settings()
    parsed = parse_uri(settings.mongo_uri)
    assert parsed["nodelist"] == [("h1", 27017), ("h2", 27018)]
    assert (parsed["username"], parsed["password"]) == ("fma-airflow", PASSWORD)
    options = parsed["options"]
    assert options["tls"] is True and options["tlsCAFile"] == str(ca)
    assert options["authSource"] == "admin"  # stated in the URI itself
    assert "allow_insecure" not in options
    assert settings.mongo_db == "platform"  # the URI's database when the connection names none


def test_an_srv_uri_in_host_is_kept(monkeypatch):
    from plugins.platform_hooks import platform_settings

    _connections(monkeypatch, {"host": "mongodb+srv://u:p@cluster.example.net/fma?retryWrites=true"})
    uri = platform_settings().mongo_uri
    assert uri == "mongodb+srv://u:p@cluster.example.net/fma?retryWrites=true"


def test_the_split_form_is_unchanged(monkeypatch):
    from plugins.platform_hooks import platform_settings

    _connections(monkeypatch, {"host": "mongo", "port": 27017, "login": "fma-airflow", "password": PASSWORD,
                               "schema": "fma", "extra": {"replicaSet": "rs0", "ssl": True}})
    uri = platform_settings().mongo_uri
    assert uri == f"mongodb://fma-airflow:{quote_plus(PASSWORD)}@mongo:27017/fma?replicaSet=rs0&ssl=true"


@pytest.mark.parametrize("form", ["uri", "split"])
def test_the_password_is_masked_in_task_logs_in_both_forms(monkeypatch, form):
    from airflow.sdk._shared.secrets_masker import redact

    from plugins.platform_hooks import platform_settings

    if form == "uri":
        _connections(monkeypatch, {"host": f"mongodb://fma-airflow:{quote_plus(PASSWORD)}@mongo:27017/fma"})
    else:
        _connections(monkeypatch, {"host": "mongo", "port": 27017, "login": "fma-airflow", "password": PASSWORD})
    uri = platform_settings().mongo_uri
    shown = redact(f"connecting to {uri} with {PASSWORD}")
    assert PASSWORD not in shown and quote_plus(PASSWORD) not in shown and "mongo:27017" in shown
