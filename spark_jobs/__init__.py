"""Spark: the spark-submit entry files and the domain packages they run.

Each ``spark_jobs/<job>.py`` only parses arguments and calls one ``run()``:
``transform_features`` -> ``features/``, ``similar_tracks`` -> ``similarity/``,
``train_als`` -> ``recommend/``, ``streaming_recommendations`` -> ``streaming/``.
``metrics`` (ranking metrics, pure) and ``session`` (the one session builder) are shared
by those packages.
"""
