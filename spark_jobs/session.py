"""The one Spark session builder of the platform.

It knows nothing about who launched the job. Tunables come from the settings; the process
environment (``JAVA_HOME``, ``SPARK_LOCAL_IP``, ``PYSPARK_PYTHON``) is the launcher's to
set: ``infra`` for the embedded stack, the image and compose in production.
"""

from __future__ import annotations

import os
import sys

from fma_platform.settings import Settings, get_settings


SECRET_OPTION_NAMES = "(?i)url|jaas|password|secret|token"


def spark_session(
    app_name: str,
    *,
    settings: Settings | None = None,
    master: str | None = None,
    shuffle_partitions: int | None = None,
):
    """Build (or get) the SparkSession for ``app_name`` from the settings.

    Under ``spark-submit`` the master comes from the command line; otherwise from the
    settings. Python workers use the running interpreter unless the launcher chose one
    (``PYSPARK_PYTHON``): without it Spark starts the system ``python3``, which lacks the
    project's packages.
    """
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or settings.spark_shuffle_partitions))
        # Takes effect when this call starts the JVM; under spark-submit the launcher sets it.
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Plans, the UI and logs hide option values whose names look secret (Spark's default
        # hides only "url": the Kafka source's sasl.jaas.config carries a password).
        .config("spark.sql.redaction.options.regex", SECRET_OPTION_NAMES)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    # spark-submit's Python runner sets PYSPARK_GATEWAY_PORT; its --master then wins.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or settings.spark_master)
    return builder.getOrCreate()
