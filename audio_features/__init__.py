"""FMA-compatible audio feature extraction and the FMA data layer.

A plain library: no Airflow, Spark or MongoDB inside. Command line: ``python -m audio_features``.
"""
