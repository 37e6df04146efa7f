"""FMA's feature definition, written plainly: the yardstick for :mod:`audio_features.features`.

Straight from FMA's ``features.py`` (Defferrard et al., 2017), on librosa 0.11 names
(``rmse`` is ``librosa.feature.rms``). No sharing, no shortcuts: every call recomputes
what it needs, exactly as the original did (the CQT shape assertion included). The
parity tests hold the fast extractor to it, and ``benchmarks/bench_extractor.py``
times both; it is several times slower, so the pipeline never calls it.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from scipy import stats

from audio_features.fma_schema import feature_columns


def reference_features(path: Path | str) -> pd.Series:
    """FMA's 518 features of one clip, indexed by ``feature_columns()``."""
    features = pd.Series(index=pd.MultiIndex.from_tuples(feature_columns()), dtype=np.float64)

    def feature_stats(name: str, values: np.ndarray) -> None:
        for stat, reduced in (
            ("mean", np.mean(values, axis=1)),
            ("std", np.std(values, axis=1)),
            ("skew", stats.skew(values, axis=1)),
            ("kurtosis", stats.kurtosis(values, axis=1)),
            ("median", np.median(values, axis=1)),
            ("min", np.min(values, axis=1)),
            ("max", np.max(values, axis=1)),
        ):
            for i, value in enumerate(reduced):
                features[name, stat, f"{i + 1:02d}"] = value

    x, sr = librosa.load(path, sr=None, mono=True)

    f = librosa.feature.zero_crossing_rate(x, frame_length=2048, hop_length=512)
    feature_stats("zcr", f)

    cqt = np.abs(librosa.cqt(x, sr=sr, hop_length=512, bins_per_octave=12, n_bins=7 * 12, tuning=None))
    assert cqt.shape[0] == 7 * 12

    f = librosa.feature.chroma_cqt(C=cqt, n_chroma=12, n_octaves=7)
    feature_stats("chroma_cqt", f)
    f = librosa.feature.chroma_cens(C=cqt, n_chroma=12, n_octaves=7)
    feature_stats("chroma_cens", f)
    f = librosa.feature.tonnetz(chroma=f)
    feature_stats("tonnetz", f)

    stft = np.abs(librosa.stft(x, n_fft=2048, hop_length=512))

    f = librosa.feature.chroma_stft(S=stft**2, n_chroma=12)
    feature_stats("chroma_stft", f)
    f = librosa.feature.rms(S=stft)
    feature_stats("rmse", f)
    f = librosa.feature.spectral_centroid(S=stft)
    feature_stats("spectral_centroid", f)
    f = librosa.feature.spectral_bandwidth(S=stft)
    feature_stats("spectral_bandwidth", f)
    f = librosa.feature.spectral_contrast(S=stft, n_bands=6)
    feature_stats("spectral_contrast", f)
    f = librosa.feature.spectral_rolloff(S=stft)
    feature_stats("spectral_rolloff", f)

    mel = librosa.feature.melspectrogram(sr=sr, S=stft**2)
    f = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    feature_stats("mfcc", f)

    return features
