"""The ETL's feature transform: 518 FMA features per track -> standardised, PCA-projected, unit-length embeddings.

Modules, in the order the job uses them: ``reading`` (the extractor's chunk files),
``validation`` (schema and a one-pass profile), ``transform`` (the Spark ML pipeline),
``versions`` (version names, metadata, the model store), ``job`` (one run end to end).
"""
