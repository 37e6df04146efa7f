"""Turn Airflow Connections into the platform's settings object.

Tasks get their endpoints from Connections (``mongo_default``, ``kafka_default``;
``spark_default`` is read by SparkSubmitOperator itself) and pass one ``Settings`` to the
library functions they call, so the functions never know about Airflow.
"""

from __future__ import annotations

from fma_platform.settings import Settings, get_settings

MONGO_CONN_ID = "mongo_default"
KAFKA_CONN_ID = "kafka_default"
SPARK_CONN_ID = "spark_default"


def platform_settings(*, mongo_conn_id: str = MONGO_CONN_ID, kafka_conn_id: str = KAFKA_CONN_ID) -> Settings:
    """The settings with MongoDB and Kafka endpoints taken from Airflow Connections."""
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from airflow.sdk import Connection

    mongo = MongoHook(mongo_conn_id=mongo_conn_id)
    uri = mongo.uri
    options = "&".join(f"{key}={value}" for key, value in mongo.extras.items() if key not in ("srv", "ssl", "tls"))
    if options:
        uri = f"{uri}?{options}"
    kafka = Connection.get(kafka_conn_id).extra_dejson
    base = get_settings()
    return base.model_copy(update={
        "mongo_uri": uri,
        "mongo_db": mongo.connection.schema or base.mongo_db,
        "kafka_bootstrap_servers": kafka.get("bootstrap.servers", base.kafka_bootstrap),
    })


def _track_features_asset():
    from airflow.sdk import Asset

    return Asset(name="fma_track_features", uri="fma://mongodb/track_features")


# The asset the ETL DAG publishes and the training DAG is scheduled on.
TRACK_FEATURES_ASSET = _track_features_asset()
