"""The streaming watchdog under compose never starts a second copy (#13 item 1).

Under compose the job is an application of the standalone master. A real master and worker
(``infra.spark_cluster``) run an application named like the job while its heartbeat is
dead: the watchdog must refuse to resubmit and name that application. The restart of a
job that is really gone is exercised end to end by tests/production.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from fma_platform.contracts import Collection
from fma_platform.stream_status import QUERY_NAME, running_heartbeat
from infra.spark_cluster import SparkClusterError, active_apps, master_ui_url, standalone_cluster
from infra.streaming import APP_NAME, StreamingDeadError, keep_streaming_alive

HOLDER = """
import time
from pyspark.sql import SparkSession
SparkSession.builder.appName({name!r}).getOrCreate()
time.sleep(600)
"""


def test_master_ui_url_follows_the_master_url():
    assert master_ui_url("spark://spark-master:7077") == "http://spark-master:8080"
    assert master_ui_url("spark://10.0.0.5:7077", webui_port=8081) == "http://10.0.0.5:8081"
    with pytest.raises(SparkClusterError, match="not a standalone master URL"):
        master_ui_url("local[2]")


def test_active_apps_counts_running_and_waiting_applications_of_one_name():
    status = {"activeapps": [{"id": "a-1", "name": APP_NAME, "state": "RUNNING"},
                             {"id": "a-2", "name": APP_NAME, "state": "WAITING"},
                             {"id": "a-3", "name": "fma-train-als", "state": "RUNNING"}],
              "completedapps": [{"id": "a-0", "name": APP_NAME, "state": "FINISHED"}]}
    assert [app["id"] for app in active_apps(status, APP_NAME)] == ["a-1", "a-2"]
    assert len(active_apps(status)) == 3


@pytest.mark.slow
def test_a_hung_copy_on_the_master_is_reported_and_no_second_one_is_started(mongo_db, settings, tmp_path):
    from infra.services import VENV_BIN, spark_env

    holder = tmp_path / "holder.py"
    holder.write_text(HOLDER.format(name=APP_NAME))
    with standalone_cluster(1, 1, "1g", tmp_path / "cluster") as cluster:
        submit = subprocess.Popen(
            [str(VENV_BIN / "spark-submit"), "--master", cluster.master_url,
             "--driver-memory", "512m", "--executor-memory", "512m", "--conf", "spark.ui.enabled=false", str(holder)],
            env={**spark_env(settings), "PYSPARK_PYTHON": sys.executable}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not active_apps(cluster.status(), APP_NAME):
                assert submit.poll() is None and time.monotonic() < deadline, "the holder application never ran"
                time.sleep(1)
            held = active_apps(cluster.status(), APP_NAME)[0]["id"]
            compose = settings.model_copy(update={
                "deployment": "compose", "spark_master": cluster.master_url,
                "spark_master_webui_url": cluster.webui_url, "mongo_db": mongo_db.name,
                "state_dir": tmp_path / "state"})
            # No grace: a copy on the master with a dead heartbeat is hung.
            with pytest.raises(StreamingDeadError, match=f"still runs {APP_NAME} \\({held}\\).*not starting a second"):
                keep_streaming_alive(compose, max_staleness_s=30, start_grace_s=0)
            # Within its start-up grace (compose just came up) it is starting: the watchdog waits for
            # its first heartbeat instead of alerting.
            beat = threading.Timer(2.0, lambda: mongo_db[Collection.STREAM_METRICS].insert_one(
                running_heartbeat(query_name=QUERY_NAME, query_id="q", run_id="r", is_active=True, status=None,
                                  error=None, last_batch_id=None, end_offsets={}, lag={},
                                  started_at_epoch=time.time()).document()))
            beat.start()
            report = keep_streaming_alive(compose, max_staleness_s=30, start_grace_s=120)
            beat.join()
            assert report["starting"] == held and report["restarted"] is False
            status = cluster.status()
            assert [app["id"] for app in active_apps(status, APP_NAME)] == [held]
            assert not (compose.logs_dir / f"{APP_NAME}-resubmitted.log").exists()  # nothing was submitted
        finally:
            submit.terminate()
            submit.wait(timeout=60)
