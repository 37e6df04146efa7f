"""Turn Airflow Connections into the platform's settings object.

Tasks get their endpoints from Connections (``mongo_default``, ``kafka_default``,
``spark_default``) and pass one ``Settings`` to the library functions they call, so the
functions never know about Airflow. Spark jobs get the same settings as their environment
(``plugins.operators.PlatformSparkSubmitOperator``): one source for every endpoint.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from fma_platform.settings import Settings, get_settings

MONGO_CONN_ID = "mongo_default"
KAFKA_CONN_ID = "kafka_default"
SPARK_CONN_ID = "spark_default"


def platform_settings(
    *,
    mongo_conn_id: str = MONGO_CONN_ID,
    kafka_conn_id: str = KAFKA_CONN_ID,
    spark_conn_id: str = SPARK_CONN_ID,
) -> Settings:
    """The settings with MongoDB, Kafka and Spark endpoints taken from Airflow Connections.

    The MongoDB password is registered with Airflow's secrets masker in the URL-encoded
    form it takes inside ``mongo_uri`` too (Airflow masks only the raw one), so neither
    shows up in task logs.
    """
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    mongo = MongoHook(mongo_conn_id=mongo_conn_id)
    if mongo.connection.password:
        mask_secret(quote_plus(mongo.connection.password))
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
        "spark_master": spark_master(Connection.get(spark_conn_id)),
    })


def spark_master(connection) -> str:
    """The master URL ``spark-submit`` gets from a Spark connection (SparkSubmitHook's rule).

    A connection made in the UI or as JSON keeps the whole URL in ``host`` (``local[*]``,
    ``spark://master:7077``); one made from a URI keeps the scheme in ``conn_type``.
    """
    host = connection.host or ""
    if connection.conn_type == "spark" and host and ("://" in host or not connection.port):
        master = host
    else:
        master = f"{connection.conn_type}://{host}"
    return f"{master}:{connection.port}" if connection.port else master


def _track_features_asset():
    from airflow.sdk import Asset

    return Asset(name="fma_track_features", uri="fma://mongodb/track_features")


# The asset the ETL DAG publishes and the training DAG is scheduled on.
TRACK_FEATURES_ASSET = _track_features_asset()
