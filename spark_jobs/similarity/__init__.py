"""Similar tracks: each track's k nearest neighbours by embedding, exact or by Spark LSH, tuned and measured.

Modules, in the order the job uses them: ``inputs`` (embeddings and genres),
``neighbours`` (exact kNN and LSH), ``quality`` (recall, genre precision, random
baseline), ``tuning`` (the cheapest LSH configuration meeting a recall target),
``store`` (MongoDB documents and the model store), ``job`` (one run end to end).
``synthetic`` makes clustered embeddings with known genres for benchmarks and tests.
"""
