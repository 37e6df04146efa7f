"""The one Spark session builder of the platform."""

from __future__ import annotations

import os

from fma_platform.settings import Settings, get_settings


def spark_session(
    app_name: str,
    *,
    settings: Settings | None = None,
    master: str | None = None,
    shuffle_partitions: int | None = None,
):
    """Build (or get) the SparkSession for ``app_name`` from the settings.

    Under ``spark-submit`` the master comes from the command line; otherwise from the
    settings. Python workers use the running interpreter (the project's venv).
    """
    from pyspark.sql import SparkSession
    from infra.services import spark_env

    settings = settings or get_settings()
    for key, value in spark_env(settings).items():
        os.environ.setdefault(key, value)
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or settings.spark_shuffle_partitions))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    # spark-submit's Python runner sets PYSPARK_GATEWAY_PORT; its --master then wins.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or settings.spark_master)
    return builder.getOrCreate()
