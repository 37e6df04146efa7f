"""One settings object, read once from the environment and an optional ``.env`` file.

Every variable is prefixed ``FMA_`` (``FMA_MONGO_PORT=27100``). The embedded stack and the
compose stack use the same names; only the values differ. Paths resolve from the
project root, never from the current working directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Typed configuration of every service endpoint, path and tunable of the platform."""

    model_config = SettingsConfigDict(
        env_prefix="FMA_",
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # Where the embedded stack keeps all of its state (databases, logs, pids, datasets).
    state_dir: Path = Field(default=PROJECT_ROOT / ".platform")
    # Interface the embedded services bind to and clients connect to.
    host: str = "127.0.0.1"

    # MongoDB (embedded: SecantusDB; production: MongoDB replica set).
    mongo_port: int = 27018
    mongo_uri: str = ""  # empty: mongodb://{host}:{mongo_port}
    mongo_db: str = "fma"

    # Kafka (embedded: Tansu; production: Apache Kafka in KRaft mode).
    kafka_port: int = 19092
    kafka_bootstrap_servers: str = ""  # empty: {host}:{kafka_port}
    kafka_events_topic: str = "listening-events"
    kafka_events_partitions: int = 3

    # Spark.
    spark_master: str = "local[*]"
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "2g"

    # Airflow (embedded: standalone components on SQLite; production: Postgres).
    airflow_port: int = 8080
    airflow_admin_user: str = "admin"

    # Streamlit.
    streamlit_port: int = 8501

    # Datasets: "sample" (synthetic, generated) or an FMA subset name.
    dataset: str = "sample"
    sample_tracks: int = 120
    sample_seed: int = 7
    fma_base_url: str = "https://os.unil.cloud.switch.ch/fma"

    # Extraction.
    extract_workers: int = 2
    extract_chunk_size: int = 50

    @field_validator("state_dir", mode="after")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else (PROJECT_ROOT / value)

    def as_env(self) -> dict[str, str]:
        """These settings as ``FMA_*`` variables, for the processes the platform starts."""
        return {
            f"FMA_{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value not in ("", None)
        }

    # Derived endpoints and paths ---------------------------------------------------------
    @property
    def mongo_url(self) -> str:
        return self.mongo_uri or f"mongodb://{self.host}:{self.mongo_port}"

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_servers or f"{self.host}:{self.kafka_port}"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def mongo_storage_dir(self) -> Path:
        return self.state_dir / "mongo"

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def streaming_checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints" / "streaming_recommendations"

    @property
    def sample_dir(self) -> Path:
        return self.data_dir / "sample"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
