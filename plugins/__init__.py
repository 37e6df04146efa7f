"""Airflow-side glue: Connections turned into settings (``platform_hooks``) and the
operator every DAG runs Spark jobs with (``operators``)."""
