"""Airflow-side glue: connections to settings, operators shared by the DAGs."""
