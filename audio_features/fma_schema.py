"""FMA's published formats, and the columns our extractor adds: names every layer shares.

Sources: the FMA paper (Defferrard et al., ISMIR 2017) and its repository's ``utils.py``
and ``features.py``. The loaders read these formats and the synthetic sample
(``fma_sample``) writes them, so a real ``fma_metadata`` folder and the sample are
interchangeable. Plain constants only (no numpy, pandas or librosa), so any layer can
import them cheaply.
"""

from __future__ import annotations

from pathlib import Path

# tracks.csv: 52 columns under a two-level header (group, column), index ``track_id``.
TRACKS_COLUMNS: tuple[tuple[str, str], ...] = (
    *(("album", c) for c in (
        "comments", "date_created", "date_released", "engineer", "favorites", "id",
        "information", "listens", "producer", "tags", "title", "tracks", "type",
    )),
    *(("artist", c) for c in (
        "active_year_begin", "active_year_end", "associated_labels", "bio", "comments",
        "date_created", "favorites", "id", "latitude", "location", "longitude", "members",
        "name", "related_projects", "tags", "website", "wikipedia_page",
    )),
    ("set", "split"),
    ("set", "subset"),
    *(("track", c) for c in (
        "bit_rate", "comments", "composer", "date_created", "date_recorded", "duration",
        "favorites", "genre_top", "genres", "genres_all", "information", "interest",
        "language_code", "license", "listens", "lyricist", "number", "publisher", "tags",
        "title",
    )),
)
# Columns holding Python list literals ("[21, 811]", "['rock', 'live']").
TRACKS_LIST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("album", "tags"), ("artist", "tags"),
    ("track", "genres"), ("track", "genres_all"), ("track", "tags"),
)
SUBSETS: tuple[str, ...] = ("small", "medium", "large")
SPLITS: tuple[str, ...] = ("training", "validation", "test")

# genres.csv: genre_id,#tracks,parent,title,top_level. The 16 top-level genres.
GENRES_COLUMNS: tuple[str, ...] = ("genre_id", "#tracks", "parent", "title", "top_level")
TOP_LEVEL_GENRES: dict[int, str] = {
    2: "International",
    3: "Blues",
    4: "Jazz",
    5: "Classical",
    8: "Old-Time / Historic",
    9: "Country",
    10: "Pop",
    12: "Rock",
    13: "Easy Listening",
    14: "Soul-RnB",
    15: "Electronic",
    17: "Folk",
    20: "Spoken",
    21: "Hip-Hop",
    38: "Experimental",
    1235: "Instrumental",
}

# features.csv: 518 columns under a three-level header (feature, statistics, number),
# number zero-padded from "01"; columns sorted lexicographically, index ``track_id``.
FEATURE_SIZES: dict[str, int] = {
    "chroma_stft": 12,
    "chroma_cqt": 12,
    "chroma_cens": 12,
    "tonnetz": 6,
    "mfcc": 20,
    "rmse": 1,
    "zcr": 1,
    "spectral_centroid": 1,
    "spectral_bandwidth": 1,
    "spectral_contrast": 7,
    "spectral_rolloff": 1,
}
FEATURE_STATISTICS: tuple[str, ...] = ("mean", "std", "skew", "kurtosis", "median", "min", "max")
FEATURES_HEADER_NAMES: tuple[str, str, str] = ("feature", "statistics", "number")

# Columns the extractor adds to FMA's 518 in every features table it writes (chunk
# Parquet files, then MongoDB ``track_features``): the decoded clip's length and sample
# rate, the rate it was analysed at (lower-rate clips are resampled for the CQT) and the
# estimated tempo (NaN when not estimated, 0 when no onsets were found).
EXTRA_FEATURE_COLUMNS: tuple[str, ...] = (
    "duration_seconds", "sample_rate", "analysis_sample_rate", "tempo_bpm",
)
# Seconds the extractor spent on one track, beside the extras in its output tables.
EXTRACT_SECONDS_COLUMN = "extract_seconds"

# Extraction parameters FMA used: file's own sample rate, mono.
FMA_N_FFT = 2048
FMA_HOP_LENGTH = 512
FMA_CQT_BINS = 84  # 7 octaves x 12 bins
# FMA's code called chroma_stft and the spectral features without ``sr``, so librosa's
# default rate fixes their frequency axes whatever the file's rate (centroid, bandwidth
# and rolloff are then at most 11,025 Hz).
FMA_IMPLICIT_SR = 22050
FMA_CLIP_SECONDS = 30.0
FMA_LARGE_TRACKS = 106_574


def feature_columns() -> list[tuple[str, str, str]]:
    """The 518 FMA feature columns, in features.csv's (sorted) order."""
    columns = [
        (name, stat, f"{i + 1:02d}")
        for name, size in FEATURE_SIZES.items()
        for stat in FEATURE_STATISTICS
        for i in range(size)
    ]
    return sorted(columns)


def flat_feature_name(column: tuple[str, str, str]) -> str:
    """A flat name for one feature column, e.g. ``mfcc_mean_01`` (Parquet, MongoDB)."""
    return "_".join(column)


# The 518 feature columns as flat names, in features.csv's order: the one list every layer uses.
FLAT_FEATURE_NAMES: tuple[str, ...] = tuple(flat_feature_name(c) for c in feature_columns())


def audio_path(audio_dir: Path | str, track_id: int) -> Path:
    """Where FMA keeps a track's clip: ``AUDIO_DIR/000/000002.mp3``."""
    tid = f"{int(track_id):06d}"
    return Path(audio_dir) / tid[:3] / f"{tid}.mp3"
