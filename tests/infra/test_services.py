"""Each embedded service starts and answers a real round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from fma_platform.kafka import topic_partitions
from fma_platform.settings import PROJECT_ROOT
from infra import process
from infra.process import free_port
from infra.services import (
    airflow_env,
    airflow_specs,
    data_docs_spec,
    kafka_spec,
    mongo_spec,
    spark_env,
    streamlit_spec,
)


def test_mongo_insert_and_find(mongo_db):
    tracks = mongo_db["tracks"]
    tracks.insert_many([{"track_id": tid, "title": f"t{tid}", "genre_top": "Rock"} for tid in range(2, 52)])
    tracks.create_index("track_id", unique=True)

    assert tracks.count_documents({"genre_top": "Rock"}) == 50
    assert tracks.find_one({"track_id": 7}, {"_id": 0}) == {"track_id": 7, "title": "t7", "genre_top": "Rock"}
    by_genre = list(tracks.aggregate([{"$group": {"_id": "$genre_top", "n": {"$sum": 1}}}]))
    assert by_genre == [{"_id": "Rock", "n": 50}]


def test_mongo_data_survives_a_server_restart(settings, mongo_server):
    from fma_platform.mongo import mongo_client

    db = mongo_client(settings)["restart_check"]
    db.items.replace_one({"_id": 1}, {"_id": 1, "kept": True}, upsert=True)
    spec = mongo_spec(settings)
    assert process.stop(spec)
    process.start(spec)
    assert db.items.find_one({"_id": 1}) == {"_id": 1, "kept": True}


def test_platform_topic_has_configured_partitions(kafka_broker):
    assert topic_partitions(kafka_broker, kafka_broker.kafka_events_topic) == kafka_broker.kafka_events_partitions


def test_kafka_produce_and_consume_with_explicit_assignment(kafka_broker, unique_topic):
    producer = KafkaProducer(bootstrap_servers=kafka_broker.kafka_bootstrap, acks="all")
    sent = {}
    for i in range(30):
        key = f"user-{i % 5}".encode()
        metadata = producer.send(unique_topic, key=key, value=json.dumps({"i": i}).encode()).get(timeout=10)
        sent.setdefault(metadata.partition, []).append(i)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.kafka_bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(unique_topic, p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    received: dict[int, list[int]] = {}
    deadline = time.monotonic() + 20
    while sum(map(len, received.values())) < 30 and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            received.setdefault(tp.partition, []).extend(json.loads(r.value)["i"] for r in records)
    consumer.close()

    assert received == sent  # every message, each partition in produce order


def test_shared_spark_session_runs_a_job(spark):
    from spark_jobs.check_spark import residue_counts

    rows = residue_counts(spark.range(1000), modulus=7).collect()
    assert [r["residue"] for r in rows] == list(range(7))
    assert sum(r["count"] for r in rows) == 1000
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"


@pytest.mark.slow
def test_spark_submit_runs_an_entrypoint(settings):
    env = {**os.environ, **spark_env(settings)}
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", "local[1]",
         str(PROJECT_ROOT / "spark_jobs" / "check_spark.py"), "--rows", "5000", "--modulus", "5"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rows"] == 5000 and report["residues"] == 5
    assert report["master"] == "local[1]"  # spark-submit's --master wins over the settings
    assert report["kafka_bootstrap"] == settings.kafka_bootstrap and report["mongo_db"] == settings.mongo_db


def test_health_reports_a_missing_topic_and_a_down_database(kafka_broker):
    from fma_platform.health import ServiceUnavailableError, kafka_health, mongo_health
    from infra.process import free_port

    healthy = kafka_health(kafka_broker)
    assert healthy["topics"] == {kafka_broker.kafka_events_topic: kafka_broker.kafka_events_partitions}
    with pytest.raises(ServiceUnavailableError, match="no-such-topic"):
        kafka_health(kafka_broker.model_copy(update={"kafka_events_topic": "no-such-topic"}))
    down = kafka_broker.model_copy(update={"mongo_port": free_port(), "mongo_uri": ""})
    with pytest.raises(ServiceUnavailableError, match="did not answer"):
        mongo_health(down)


# --- bind address vs the address clients use ----------------------------------------------
def test_services_listen_on_bind_host_and_are_reached_at_host(settings):
    own = settings.model_copy(update={"bind_host": "0.0.0.0", "host": "fma.example"})
    mongo = mongo_spec(own)
    assert mongo.command[mongo.command.index("--host") + 1] == "0.0.0.0"
    assert mongo.bind_host == "0.0.0.0" and mongo.url == f"mongodb://fma.example:{own.mongo_port}"
    kafka = kafka_spec(own)
    assert kafka.command[kafka.command.index("--listener-url") + 1] == f"tcp://0.0.0.0:{own.kafka_port}"
    assert kafka.command[kafka.command.index("--advertised-listener-url") + 1] == f"tcp://fma.example:{own.kafka_port}"
    streamlit = streamlit_spec(own)
    assert streamlit.command[streamlit.command.index("--server.address") + 1] == "0.0.0.0"
    assert streamlit.url == f"http://fma.example:{own.streamlit_port}"
    api_server = airflow_specs(own)[0]
    assert api_server.command[api_server.command.index("--host") + 1] == "0.0.0.0"
    env = airflow_env(own)
    assert env["AIRFLOW__API__HOST"] == "0.0.0.0"
    assert env["AIRFLOW__API__BASE_URL"] == f"http://fma.example:{own.airflow_port}"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(f"http://fma.example:{own.airflow_port}/")


def test_spark_never_gets_a_wildcard_address(settings):
    assert spark_env(settings)["SPARK_LOCAL_IP"] == "127.0.0.1"
    everywhere = settings.model_copy(update={"bind_host": "0.0.0.0", "host": "fma.example"})
    assert spark_env(everywhere)["SPARK_LOCAL_IP"] == "fma.example"


def test_the_broker_advertises_host_not_its_listener(settings, tmp_path):
    """Clients are sent to ``host`` (here ``localhost``) while Tansu listens on 127.0.0.1."""
    own = settings.model_copy(update={"state_dir": tmp_path, "kafka_port": free_port(), "host": "localhost"})
    spec = kafka_spec(own)
    process.start(spec)
    try:
        admin = KafkaAdminClient(bootstrap_servers=own.kafka_bootstrap)
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
    finally:
        process.stop(spec)
    assert [(broker["host"], broker["port"]) for broker in brokers] == [("localhost", own.kafka_port)]


# --- Data Docs over HTTP ------------------------------------------------------------------
@pytest.mark.slow
def test_data_docs_of_a_gate_run_are_served_over_http(settings, tmp_path):
    import urllib.request

    import pandas as pd

    from pipeline.quality import CATALOGUE_SUITE, validate_catalogue

    own = settings.model_copy(update={"state_dir": tmp_path, "data_docs_port": free_port(), "host": "localhost"})
    catalogue = pd.DataFrame([{
        "track_id": 2, "title": "Food", "artist_name": "AWOL", "album_title": "AWOL - A Way Of Life",
        "genre_ids": [21], "top_genre_id": 21, "top_genre_title": "Hip-Hop", "duration": 168, "license": "CC BY",
        "listens": 1293, "favorites": 2, "interest": 4656, "subset": "small", "split": "training",
    }])
    report = validate_catalogue(catalogue, context_dir=own.quality_dir, run_id="manual__2026-01-05T00:00:00+00:00",
                                data_docs_base_url=own.data_docs_url)
    spec = data_docs_spec(own)
    assert spec.command[spec.command.index("--bind") + 1] == own.bind_host
    process.start(spec)
    try:
        fetched = {}
        for url in (report.data_docs_url, report.data_docs_pages[0]):
            with urllib.request.urlopen(url, timeout=10) as response:
                fetched[url] = (response.status, response.headers.get_content_type(), response.read().decode())
    finally:
        process.stop(spec)

    assert report.data_docs_url == f"http://localhost:{own.data_docs_port}/index.html"
    index_status, index_type, index_html = fetched[report.data_docs_url]
    assert (index_status, index_type) == (200, "text/html")
    assert CATALOGUE_SUITE in index_html
    page_status, page_type, page_html = fetched[report.data_docs_pages[0]]
    assert (page_status, page_type) == (200, "text/html")
    assert "manual__2026-01-05T00:00:00+00:00" in page_html  # the run's own page, its name URL-encoded in the link


def test_data_docs_listen_on_bind_host_and_are_linked_at_host(settings, tmp_path):
    own = settings.model_copy(update={"state_dir": tmp_path, "bind_host": "0.0.0.0", "host": "fma.example"})
    spec = data_docs_spec(own)
    assert spec.command[spec.command.index("--bind") + 1] == "0.0.0.0"
    assert spec.url == f"http://fma.example:{own.data_docs_port}" == own.data_docs_url
    served = spec.command[spec.command.index("--directory") + 1]
    assert served == str(tmp_path / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site")  # the site, not the project
