"""Recommendation training: listening events -> implicit ALS, tuned, evaluated, registered, published.

Modules, in the order the job (``training.run``, entry ``spark_jobs/train_als.py``) uses them:

* ``events``: read listening events (MongoDB or a file) and name the event set (snapshot);
* ``interactions``: events -> implicit (user, track) strengths, the time-based holdout;
* ``tracks``: the tracks that can be recommended (genre, embedding);
* ``recommenders``: ALS, the baselines, content, hybrid and cold start over one ranking engine;
* ``registry``: ALS versions in the model store and the champion promotion rule;
* ``publish``: the champion's lists as ``recommendations`` documents;
* ``training``: tune, refit, evaluate against the baselines, register, publish: ``run()``.
* ``reference``: the ``implicit`` library's ALS, BPR and item-kNN on the same split and list
  rules: the yardstick of ``benchmarks/bench_recommenders.py`` (never published).

Ranking metrics and their bootstrap intervals are pure functions in ``spark_jobs.metrics``
(shared with similar tracks);
what events mean (early skip, ALS + content blend, reasons) is ``fma_platform.listening``,
shared with the stream.
"""
