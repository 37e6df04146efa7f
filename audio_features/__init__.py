"""The FMA data layer and the feature extractor.

FMA's formats (:mod:`~audio_features.fma_schema`), its metadata files
(:mod:`~audio_features.metadata`), archives (:mod:`~audio_features.acquire`) and audio
folder layout (:mod:`~audio_features.layout`); FMA's 518 features per clip
(:mod:`~audio_features.features`, held to FMA's own formula in
:mod:`~audio_features.reference`) and over many tracks (:mod:`~audio_features.extract`).
A plain library: no Airflow, Spark or MongoDB inside. Command line:
``python -m audio_features extract``. The synthetic FMA-shaped sample is ``fma_sample``.
"""
