"""The operator every DAG uses to run a Spark job of ``spark_jobs/``.

``PlatformSparkSubmitOperator`` is ``SparkSubmitOperator`` whose job receives the
platform's settings the way tasks do: at execute time the settings are built from the
Airflow Connections (``plugins.platform_hooks.platform_settings``) and handed to
``spark-submit`` as ``FMA_*`` environment variables, so no deployment states an endpoint
both as a Connection and as an ``FMA_*`` variable of the Airflow services.

Secrets: in client mode (the platform's) the provider passes ``env_vars`` only to the
``spark-submit`` process, never on its logged command line; the MongoDB password is also
registered with Airflow's secrets masker by ``platform_settings``, which covers the
YARN/Kubernetes modes, where the provider turns ``env_vars`` into logged ``--conf`` options.
The environment is added after the template fields were rendered, so it is not stored with
the task's rendered fields either.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from fma_platform.settings import PROJECT_ROOT, Settings
from plugins.platform_hooks import SPARK_CONN_ID

SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"


def spark_job_env(settings: Settings, env_vars: dict[str, Any] | None = None) -> dict[str, str]:
    """The job's environment: the settings as ``FMA_*`` variables, then the DAG's own ``env_vars``."""
    return {**settings.as_env(), **{name: str(value) for name, value in (env_vars or {}).items()}}


class PlatformSparkSubmitOperator(SparkSubmitOperator):
    """Run ``spark_jobs/<job>.py`` with ``spark-submit``, its settings taken from the Connections.

    ``job`` names the entry file (``"transform_features"``); every other argument is
    ``SparkSubmitOperator``'s. The driver's memory defaults to ``spark_driver_memory`` of
    the settings (under spark-submit the session cannot change it any more).
    """

    def __init__(self, *, job: str, conn_id: str = SPARK_CONN_ID, name: str | None = None, **kwargs: Any) -> None:
        application = SPARK_JOBS_DIR / f"{job}.py"
        if not application.is_file():
            raise ValueError(f"no Spark job {job!r}: {application} does not exist")
        super().__init__(application=str(application), conn_id=conn_id, name=name or f"fma-{job.replace('_', '-')}", **kwargs)
        self.job = job

    def job_settings(self) -> Settings:
        """The settings the job gets: the Connections' endpoints over this worker's settings."""
        from plugins.platform_hooks import platform_settings

        return platform_settings(spark_conn_id=self._conn_id)

    def execute(self, context) -> None:
        settings = self.job_settings()
        self.env_vars = spark_job_env(settings, self.env_vars)
        self.conf = {"spark.driver.memory": settings.spark_driver_memory, **(self.conf or {})}
        return super().execute(context)
