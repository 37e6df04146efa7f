"""Step functions of the platform's DAGs: importable, Airflow-free (errors: ``pipeline.errors``)."""
