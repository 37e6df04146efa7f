"""Turn Airflow Connections into the platform's settings object.

Tasks get their endpoints from Connections (``mongo_default``, ``kafka_default``,
``spark_default``) and pass one ``Settings`` to the library functions they call, so the
functions never know about Airflow. Spark jobs get the same settings as their environment
(``plugins.operators.PlatformSparkSubmitOperator``): one source for every endpoint.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_plus, unquote, urlencode, urlsplit, urlunsplit

from fma_platform.settings import Settings, get_settings

MONGO_CONN_ID = "mongo_default"
KAFKA_CONN_ID = "kafka_default"
SPARK_CONN_ID = "spark_default"
# The streaming job's own logins, for the watchdog that resubmits it under compose (the
# job reads the events topic and writes what Airflow's user may not).
STREAMING_MONGO_CONN_ID = "mongo_streaming"
STREAMING_KAFKA_CONN_ID = "kafka_streaming"


def platform_settings(
    *,
    mongo_conn_id: str = MONGO_CONN_ID,
    kafka_conn_id: str = KAFKA_CONN_ID,
    spark_conn_id: str = SPARK_CONN_ID,
) -> Settings:
    """The settings with MongoDB, Kafka and Spark endpoints taken from Airflow Connections.

    The MongoDB URI keeps every option of the connection's extra, TLS ones included
    (``mongo_uri_options``). The connection may give its endpoint as separate fields (host,
    port, login, password, schema: the form MongoHook understands) or as one whole
    ``mongodb://`` URI in ``host`` (``mongo_connection_uri``). The Kafka connection may carry the client security with the
    Airflow Kafka provider's names (``KAFKA_SECURITY_EXTRAS``); a setting the connection
    does not name keeps this worker's value. Passwords are registered with Airflow's
    secrets masker, MongoDB's in the URL-encoded form it takes inside ``mongo_uri`` too
    (Airflow masks only the raw one), so none shows up in task logs.
    """
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    mongo = MongoHook(mongo_conn_id=mongo_conn_id)
    uri = mongo_connection_uri(mongo.connection, mongo.extras, hook_uri=mongo.uri, allow_insecure=mongo.allow_insecure)
    password = unquote(urlsplit(uri).netloc.rpartition("@")[0].partition(":")[2])
    if password:
        mask_secret(password)
        mask_secret(quote_plus(password))
    kafka = kafka_settings(Connection.get(kafka_conn_id).extra_dejson)
    if kafka.get("kafka_sasl_password"):
        mask_secret(kafka["kafka_sasl_password"])
    base = get_settings()
    values = {
        **base.model_dump(),
        "mongo_uri": uri,
        "mongo_db": mongo.connection.schema or urlsplit(uri).path.strip("/") or base.mongo_db,
        "kafka_bootstrap_servers": base.kafka_bootstrap,
        "kafka_sasl_password": base.kafka_sasl_password.get_secret_value(),
        **kafka,
        "spark_master": spark_master(Connection.get(spark_conn_id)),
    }
    return Settings(_env_file=None, **values)  # validated again: a SASL protocol needs its login


def streaming_job_settings(settings: Settings) -> Settings:
    """The settings a resubmitted streaming job runs with.

    Under compose the job logs in as the streaming service's users, whose Connections
    (``mongo_streaming``, ``kafka_streaming``) only the Airflow services hold; elsewhere it
    is ``settings`` (the embedded stack has one login for all).
    """
    if settings.deployment != "compose":
        return settings
    return platform_settings(mongo_conn_id=STREAMING_MONGO_CONN_ID, kafka_conn_id=STREAMING_KAFKA_CONN_ID)


# Kafka client settings from a Kafka connection's extra (the Airflow Kafka provider's names,
# librdkafka's; "sasl.mechanisms" is librdkafka's older spelling).
KAFKA_SECURITY_EXTRAS = {
    "bootstrap.servers": "kafka_bootstrap_servers",
    "security.protocol": "kafka_security_protocol",
    "sasl.mechanism": "kafka_sasl_mechanism",
    "sasl.mechanisms": "kafka_sasl_mechanism",
    "sasl.username": "kafka_sasl_username",
    "sasl.password": "kafka_sasl_password",
    "ssl.ca.location": "kafka_ssl_cafile",
}


def kafka_settings(extra: dict) -> dict[str, str]:
    """Settings values named by a Kafka connection's extra (``KAFKA_SECURITY_EXTRAS``)."""
    values = {setting: str(extra[key]).strip() for key, setting in KAFKA_SECURITY_EXTRAS.items() if key in extra}
    for setting in ("kafka_security_protocol", "kafka_sasl_mechanism"):
        if setting in values:
            values[setting] = values[setting].upper()
    return values


URI_SCHEMES = ("mongodb://", "mongodb+srv://")


def mongo_connection_uri(connection, extras: dict, *, hook_uri: str, allow_insecure: bool = False) -> str:
    """The MongoDB URI of a Mongo connection, in either of the forms deployments write.

    Split fields: MongoHook's own URI (``hook_uri``) plus the extra as options. A whole URI
    in ``host`` (``mongodb://user:pw@h1:27017,h2:27017/?replicaSet=rs0``, the way the
    MongoDB docs and many deployments state it): MongoHook would put it after another
    ``mongodb://`` (``mongodb://mongodb://...``), so the URI is taken as it is, completed by
    the connection's other fields where it lacks them (login and password, ``schema`` as its
    database), and the extra's options are added to those it already has (the URI's own
    value wins: it is the more specific statement).
    """
    host = (connection.host or "").strip()
    if not host.startswith(URI_SCHEMES):
        options = mongo_uri_options(extras, allow_insecure=allow_insecure)
        return f"{hook_uri}?{options}" if options else hook_uri
    parts = urlsplit(host)
    netloc = parts.netloc
    if "@" not in netloc and connection.login:
        login = quote_plus(connection.login)
        netloc = f"{login}:{quote_plus(connection.password)}@{netloc}" if connection.password else f"{login}@{netloc}"
    path = parts.path if parts.path.strip("/") else (f"/{connection.schema}" if connection.schema else "/")
    stated = dict(parse_qsl(parts.query, keep_blank_values=True))
    added = dict(parse_qsl(mongo_uri_options(extras, allow_insecure=allow_insecure)))
    query = urlencode({**added, **stated})
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def mongo_uri_options(extras: dict, *, allow_insecure: bool = False) -> str:
    """A MongoHook's extra as a URI query string, as its own client would apply them.

    MongoHook takes ``srv`` into the scheme and ``allow_insecure`` out of the extra (it then
    sets ``tlsAllowInvalidCertificates``); every other option goes to the client, TLS ones
    (``tls``/``ssl``, ``tlsCAFile``, ...) included. Booleans are written as the URI form
    (``true``/``false``) and values are URL-encoded (a CA file path may hold spaces).
    """
    options = {key: value for key, value in extras.items() if key not in ("srv", "allow_insecure")}
    if allow_insecure:
        options["tlsAllowInvalidCertificates"] = True
    return urlencode({key: str(value).lower() if isinstance(value, bool) else value
                      for key, value in options.items()})


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
