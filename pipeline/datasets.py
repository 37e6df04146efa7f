"""Which FMA dataset a run works on, where its files live, and how to get them.

``sample`` is the generated, FMA-shaped synthetic dataset (the embedded default);
``small``/``medium``/``large`` are the real FMA archives, downloaded and verified when
absent; ``local`` is an FMA-layout folder already on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fma_platform.settings import Settings
from pipeline.errors import PipelineError

DATASET_KINDS = ("sample", "small", "medium", "large", "local")
FMA_SUBSETS = ("small", "medium", "large")


class DatasetError(PipelineError):
    """The dataset parameters are invalid or its files are not where they should be."""


@dataclass(frozen=True)
class Dataset:
    """A dataset in FMA's layout: ``metadata_dir/tracks.csv`` and ``audio_dir/NNN/NNNNNN.mp3``."""

    name: str
    metadata_dir: Path
    audio_dir: Path
    synthetic: bool
    subset: str | None = None  # FMA subset to select from tracks.csv (None: all rows)

    @property
    def tracks_csv(self) -> Path:
        return self.metadata_dir / "tracks.csv"

    @property
    def genres_csv(self) -> Path:
        return self.metadata_dir / "genres.csv"

    def to_params(self) -> dict:
        """JSON-friendly form (XCom, run records)."""
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    @classmethod
    def from_params(cls, params: dict) -> Dataset:
        return cls(
            name=params["name"],
            metadata_dir=Path(params["metadata_dir"]),
            audio_dir=Path(params["audio_dir"]),
            synthetic=bool(params["synthetic"]),
            subset=params.get("subset"),
        )


def resolve_dataset(
    kind: str,
    *,
    settings: Settings,
    metadata_dir: str | Path | None = None,
    audio_dir: str | Path | None = None,
) -> Dataset:
    """Where ``kind``'s files live (nothing is read or downloaded here)."""
    if kind not in DATASET_KINDS:
        raise DatasetError(f"unknown dataset {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    if kind == "sample":
        from fma_sample.sample import AUDIO_DIR, METADATA_DIR

        root = settings.sample_dir
        return Dataset("sample", root / METADATA_DIR, root / AUDIO_DIR, synthetic=True)
    if kind == "local":
        if not metadata_dir or not audio_dir:
            raise DatasetError("dataset 'local' needs both metadata_dir and audio_dir")
        return Dataset("local", Path(metadata_dir), Path(audio_dir), synthetic=False)
    root = settings.data_dir / "fma"
    return Dataset(
        kind,
        Path(metadata_dir) if metadata_dir else root / "fma_metadata",
        Path(audio_dir) if audio_dir else root / f"fma_{kind}",
        synthetic=False,
        subset=kind,
    )


def acquire_dataset(dataset: Dataset, *, settings: Settings, sample_tracks: int, sample_seed: int) -> dict:
    """Make ``dataset``'s files present (idempotent); return what was done, for the run log.

    The sample is generated (or reused when it matches the parameters); FMA archives are
    downloaded with resume, SHA-1 verified and extracted, skipping what is already there.
    """
    if dataset.name == "sample":
        from fma_sample.sample import generate_sample

        summary = generate_sample(
            settings.sample_dir, n_tracks=sample_tracks, seed=sample_seed, workers=settings.extract_workers
        )
        return {"generated": True, "summary": _plain(summary)}
    if dataset.name == "local":
        missing = [str(p) for p in (dataset.tracks_csv, dataset.genres_csv, dataset.audio_dir) if not p.exists()]
        if missing:
            raise DatasetError(f"local dataset is incomplete, missing: {', '.join(missing)}")
        return {"generated": False, "local": True}
    from audio_features.acquire import FMA_ARCHIVE_SHA1, acquire_archive

    done = {}
    for archive in ("fma_metadata.zip", f"fma_{dataset.name}.zip"):
        result = acquire_archive(
            archive,
            base_url=settings.fma_base_url,
            data_dir=settings.data_dir / "fma",
            sha1=FMA_ARCHIVE_SHA1.get(archive),
        )
        done[archive] = _plain(result)
    return {"generated": False, "archives": done}


def _plain(value) -> object:
    """Dataclasses and paths as JSON-friendly values."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
