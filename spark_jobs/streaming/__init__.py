"""The real-time loop: listening events from Kafka -> fresh recommendations in MongoDB.

A Structured Streaming query reads the events topic and hands each micro-batch to a
``foreachBatch`` handler. With ``FMA_STREAM_EXECUTION=driver`` (the default) the steps below
run in the driver process; with ``executors`` the driver only coordinates and they run in
Spark tasks, listeners partitioned by ``user_id`` (``executors``). Either way:

1. decodes every record with the event contract; malformed payloads and unknown tracks
   go to ``dead_letters`` keyed by (topic, partition, offset): the stream never stops
   for bad input;
2. inserts the valid events into ``listening_events`` by ``_id = event_id`` (a replayed
   batch changes nothing);
3. for every listener of the batch: a short-term taste from their last events (including
   this batch), ranked against every track embedding and blended with the ALS champion's
   scores when the listener has factors; written to ``realtime_recommendations``;
4. adds the batch's first-stored events to the 5-minute ``trending`` windows, once per
   batch;
5. writes one ``stream_metrics`` document per batch, and the supervisor a heartbeat
   (``fma_platform.stream_status``).

Exactly-once effect: Spark checkpoints the offsets of each batch, a batch that did not
finish is replayed with the same offsets, and every write above is idempotent.

Modules, from the query down:

* ``job``: start the query, supervise it until a signal or a deadline, stop it: ``run()``
  (spark-submit entry ``spark_jobs/streaming_recommendations.py``);
* ``kafka_source``: Kafka as a Spark streaming source (native connector or Python source),
  and reading a logged batch on the driver;
* ``progress``: the heartbeat and each finished batch's lag, from Spark's progress;
* ``batch``: ``RecommendationStream``, one micro-batch from Kafka records to writes (the
  driver path, and the choice of path);
* ``executors``: one micro-batch as one Spark job, per-listener work on the executors;
* ``models``: the catalogue of tracks and the ALS champion's factors, reloaded on change,
  and broadcast to the executors when they change (``ModelBroadcast``);
* ``sink``: the MongoDB writes (events, dead letters, recommendations, trending, metrics),
  and a counting sink for benchmarks (``FMA_STREAM_SINK=count``);
* pure logic: ``records`` (records -> events and dead letters), ``taste`` (a listener's
  short-term taste), ``ranking`` (tracks for one listener, with reasons), ``trending``
  (window counts);
* ``errors``: ``StreamingError``, the base of the package's errors.

What events mean (early skips, the ALS + content blend, reason texts) is
``fma_platform.listening``, shared with the nightly recommendations.
"""
