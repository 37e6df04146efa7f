"""The embedded stack: start, watch and stop the platform's services on this machine.

``python -m infra.stack up|down|status``; ``infra.main_job`` runs the main job through
Airflow; ``infra.browser_tour`` walks the running app in Chromium. Spark jobs are launched
by their file path, never imported (import-linter: "stack-names-jobs-by-path").
"""
