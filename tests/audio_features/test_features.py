"""Parity of ``audio_features.features`` with FMA's definition, and its bad-input contract.

Parity bounds, per statistic, on all 518 values: ``|ours - ref| <= rtol * |ref| + atol``
with ``atol = 1e-5 * max|ref|`` over the same feature and statistic (the feature's own
scale: mfcc is in dB, centroid in Hz, chroma in [0, 1]), and

- ``rtol = 1e-4`` for mean, std, median, min, max;
- ``rtol = 1e-3`` (and ``atol`` at least 1e-3) for skew and kurtosis.

Why these: the reference reduces float32 matrices in float32 (``np.std``,
``scipy.stats.skew``) while we reduce in float64, which alone moves moments by about
sqrt(frames) x 6e-8 ~ 1e-6 relative; skew and kurtosis divide by a power of the
variance, amplifying that tenfold or more, and skew near 0 has no relative scale.
Our CQT bank is FFT'd by numpy instead of librosa's default backend, and the CQT's
per-octave spectra are float32 FFTs where librosa rounds float64 ones (observed max
abs CQT difference ~1e-6 of the peak; the main STFT stays float64 and bit-equal,
since float32 there moves the MP3 noise floor that spectral contrast's valleys
measure far outside these bounds), BLAS matmuls sum in another order than
``einsum`` (~1e-7), and centroid/bandwidth come from float64 moments instead of
float32 normalised spectra. Tuning must match exactly (asserted separately): a 0.01
bin shift would move every CQT value and would not fit these bounds.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from audio_features import features as F
from audio_features.fma_schema import EXTRA_FEATURE_COLUMNS, FEATURE_STATISTICS, feature_columns
from audio_features.reference import reference_features

SR = 22050


def synth_clip(kind: str, *, seconds: float = 6.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A mono test signal: 'tone', 'chord', 'noise', 'drums', 'music' or 'silence'."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    if kind == "tone":  # A4 slightly sharp, with harmonics
        return sum(0.3 / h * np.sin(2 * np.pi * 443.0 * h * t) for h in (1, 2, 3)).astype(np.float32)
    if kind == "chord":  # C major with vibrato
        vib = 1 + 0.002 * np.sin(2 * np.pi * 5 * t)
        return sum(0.2 * np.sin(2 * np.pi * f * vib * t) for f in (261.6, 329.6, 392.0)).astype(np.float32)
    if kind == "noise":
        return (0.1 * rng.standard_normal(t.size)).astype(np.float32)
    if kind == "drums":  # 120 BPM: kick on beats, noise snare on off-beats
        y = np.zeros_like(t)
        for start in np.arange(0, seconds, 0.5):
            n = t >= start
            decay = np.exp(-(t - start) * 30) * n
            y += 0.8 * decay * np.sin(2 * np.pi * 60 * (t - start))
            snare = (t >= start + 0.25) * np.exp(-(t - start - 0.25) * 40)
            y += 0.3 * snare * rng.standard_normal(t.size)
        return y.astype(np.float32)
    if kind == "music":
        return 0.6 * synth_clip("chord", seconds=seconds, sr=sr) + 0.5 * synth_clip(
            "drums", seconds=seconds, sr=sr, seed=seed
        ) + 0.05 * synth_clip("noise", seconds=seconds, sr=sr, seed=seed)
    if kind == "silence":
        return np.zeros(t.size, dtype=np.float32)
    raise ValueError(kind)


def write_clip(path: Path, kind: str = "music", *, seconds: float = 6.0, sr: int = SR,
               channels: int = 1, fmt: str = "MP3", seed: int = 0) -> Path:
    """Write ``synth_clip`` as a file (channels get small delays so they differ)."""
    y = synth_clip(kind, seconds=seconds, sr=sr, seed=seed)
    data = np.stack([np.roll(y, 37 * c) for c in range(channels)], axis=1) if channels > 1 else y
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, format=fmt)
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


PARITY_CLIPS = [
    ("tone", SR, 1, "WAV"),
    ("chord", SR, 2, "MP3"),
    ("noise", 44100, 1, "WAV"),
    ("drums", SR, 1, "MP3"),
    ("music", 44100, 2, "MP3"),
]


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
@pytest.mark.parametrize(("kind", "sr", "channels", "fmt"), PARITY_CLIPS)
def test_all_518_features_match_fma_reference(clip_dir, kind, sr, channels, fmt):
    path = write_clip(clip_dir / f"{kind}-{sr}.{fmt.lower()}", kind, sr=sr, channels=channels, fmt=fmt)
    ours = F.extract_features(path).values
    reference = reference_features(path)
    assert reference.index.tolist() == feature_columns()
    ref = reference.to_numpy()
    nan_in_ref = np.isnan(ref)  # scipy's skew/kurtosis of a constant row
    assert np.all(ours[nan_in_ref] == 0.0)
    stats = reference.index.get_level_values(1)
    names = reference.index.get_level_values(0)
    failures = []
    for name in set(names):
        for stat in FEATURE_STATISTICS:
            sel = np.flatnonzero((names == name) & (stats == stat) & ~nan_in_ref)
            if sel.size == 0:
                continue
            moment = stat in ("skew", "kurtosis")
            rtol = 1e-3 if moment else 1e-4
            atol = max(1e-5 * np.max(np.abs(ref[sel])), 1e-3 if moment else 1e-12)
            error = np.abs(ours[sel] - ref[sel])
            if np.any(error > rtol * np.abs(ref[sel]) + atol):
                failures.append((name, stat, float(np.max(error)), float(np.max(np.abs(ref[sel])))))
    assert not failures, failures


@pytest.mark.parametrize("kind", ["tone", "chord", "music"])
def test_tuning_estimates_equal_librosas_own(kind):
    y = synth_clip(kind, sr=44100)
    stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    assert F._estimate_tuning(stft, sr=44100) == librosa.estimate_tuning(y=y, sr=44100)
    assert F._estimate_tuning(stft**2, sr=22050) == librosa.estimate_tuning(S=stft**2, sr=22050)


def test_cqt_and_zcr_equal_librosa():
    y = synth_clip("music", sr=44100)
    ours = F._cqt_magnitude(y, sr=44100, tuning=0.13)
    theirs = np.abs(librosa.cqt(y, sr=44100, hop_length=512, n_bins=84, tuning=0.13))
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) <= 1e-5 * np.max(theirs)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)
    assert np.array_equal(F._zero_crossing_rate(y), zcr)


@pytest.mark.parametrize(("n_fft", "hop_length", "window"), [(2048, 512, "hann"), (256, 64, "ones"), (256, 256, "ones")])
def test_stft_magnitude_equals_librosa_bit_for_bit(n_fft, hop_length, window):
    y = synth_clip("music", seconds=3.0, sr=44100)[:-77]  # a length no hop divides
    theirs = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, window=window, pad_mode="constant"))
    ours = F._stft_magnitude(y, n_fft=n_fft, hop_length=hop_length,
                             window=librosa.filters.get_window(window, n_fft, fftbins=True))
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_mono_mix_and_rolloff_cumsum_equal_numpy_bit_for_bit():
    channels = np.stack([np.roll(synth_clip("music", sr=44100), 37 * c) for c in range(3)])
    for n in (1, 2, 3):
        assert np.array_equal(F._mix_to_mono(channels[:n]), librosa.to_mono(channels[:n]))
    stft = np.abs(librosa.stft(channels[0], n_fft=2048, hop_length=512))
    assert np.array_equal(F._cumulative_over_bins(stft), np.cumsum(stft, axis=0))


@pytest.mark.parametrize("kind", ["drums", "noise", "chord"])
def test_tempo_matches_librosa_beat_track(kind):
    y = synth_clip(kind, seconds=10.0, sr=SR)
    features = F.compute_features(y, sr=SR)
    expected, _ = librosa.beat.beat_track(y=y, sr=SR)
    assert features.tempo_bpm == pytest.approx(float(np.atleast_1d(expected)[0]), rel=1e-6)
    if kind == "drums":  # 120 BPM by construction
        assert features.tempo_bpm == pytest.approx(120.0, rel=0.03)
    if kind == "chord":  # sustained notes: beat_track finds no onsets and says 0
        assert features.tempo_bpm == 0.0


def test_extras_report_duration_and_native_rate(clip_dir):
    path = write_clip(clip_dir / "stereo48k.mp3", "music", seconds=4.0, sr=48000, channels=2)
    record = F.extract_features(path).as_record()
    assert record["sample_rate"] == 48000 and record["analysis_sample_rate"] == 48000
    assert record["duration_seconds"] == pytest.approx(4.0, abs=0.1)  # MP3 codec delay
    assert list(record)[518:] == list(EXTRA_FEATURE_COLUMNS)
    assert len(record) == 518 + len(EXTRA_FEATURE_COLUMNS)


@pytest.mark.parametrize(("sr", "channels", "fmt"), [(8000, 1, "MP3"), (11025, 2, "MP3"), (22050, 3, "WAV"), (96000, 1, "FLAC")])
def test_odd_rates_and_channel_counts_work(clip_dir, sr, channels, fmt):
    path = write_clip(clip_dir / f"odd-{sr}-{channels}.{fmt.lower()}", "music", seconds=3.0, sr=sr, channels=channels, fmt=fmt)
    features = F.extract_features(path)
    assert features.sample_rate == sr
    assert features.analysis_sample_rate == (F.FALLBACK_ANALYSIS_SR if sr < 8600 else sr)
    assert np.all(np.isfinite(features.values))


def test_silence_is_rejected_by_default_and_finite_when_allowed(clip_dir):
    path = write_clip(clip_dir / "silence.wav", "silence", seconds=3.0, fmt="WAV")
    with pytest.raises(F.UnusableClipError) as error:
        F.extract_features(path)
    assert error.value.reason == F.REASON_SILENT
    values = F.extract_features(path, allow_silence=True).values
    assert np.all(np.isfinite(values))
    stats = np.array([stat for _, stat, _ in feature_columns()])
    assert np.all(values[np.isin(stats, ["std", "skew", "kurtosis"])] == 0.0)


def test_constant_rows_give_zero_spread_not_nan():
    row = np.full((1, 50), 0.25, dtype=np.float32)
    stats = F._row_statistics(row)[:, 0]
    assert stats.tolist() == [0.25, 0.0, 0.0, 0.0, 0.25, 0.25, 0.25]


def _reason(path: Path, **kwargs) -> str:
    with pytest.raises(F.UnusableClipError) as error:
        F.extract_features(path, **kwargs)
    return error.value.reason


def test_bad_inputs_raise_with_a_reason(tmp_path):
    assert _reason(tmp_path / "missing.mp3") == F.REASON_MISSING_FILE
    (tmp_path / "empty.mp3").write_bytes(b"")
    assert _reason(tmp_path / "empty.mp3") == F.REASON_EMPTY_FILE
    (tmp_path / "text.mp3").write_text("this is not audio\n" * 100)
    assert _reason(tmp_path / "text.mp3") == F.REASON_NOT_AUDIO
    sf.write(tmp_path / "nothing.wav", np.zeros(0, dtype=np.float32), SR)
    assert _reason(tmp_path / "nothing.wav") == F.REASON_NO_AUDIO
    short = write_clip(tmp_path / "short.mp3", "music", seconds=0.5)
    assert _reason(short) == F.REASON_TOO_SHORT


def test_truncated_mp3_is_flagged_against_expected_duration(tmp_path):
    full = write_clip(tmp_path / "full.mp3", "music", seconds=8.0)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 4])
    assert _reason(cut, expected_seconds=8.0) == F.REASON_TRUNCATED
    # A 1.7 kB stub whose catalogue says 30 s (FMA's 133297.mp3 is like this).
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(data[:1752])
    assert _reason(stub, expected_seconds=30.0) in {F.REASON_TOO_SHORT, F.REASON_NO_AUDIO, F.REASON_CORRUPT_AUDIO}


def test_corrupt_mp3_body_gives_a_reason_or_finite_features(tmp_path):
    full = write_clip(tmp_path / "full.mp3", "music", seconds=6.0)
    data = bytearray(full.read_bytes())
    rng = np.random.default_rng(1)
    data[2000:] = rng.integers(0, 256, len(data) - 2000, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(bytes(data))
    try:
        values = F.extract_features(corrupt, expected_seconds=6.0).values
    except F.UnusableClipError as error:
        assert error.reason in {F.REASON_CORRUPT_AUDIO, F.REASON_TRUNCATED, F.REASON_TOO_SHORT}
    else:
        assert np.all(np.isfinite(values))


def test_caps_refuse_large_long_or_absurd_files_and_leave_others_bit_for_bit(tmp_path):
    clip = write_clip(tmp_path / "clip.mp3", "music", seconds=4.0)
    y, sr = F.load_audio(clip)
    capped, capped_sr = F.load_audio(clip, max_bytes=clip.stat().st_size, max_seconds=4.5)
    assert capped_sr == sr and np.array_equal(capped, y)  # under the caps: the same samples

    with pytest.raises(F.UnusableClipError) as error:
        F.load_audio(clip, max_bytes=clip.stat().st_size - 1)
    assert error.value.reason == F.REASON_FILE_TOO_LARGE and str(clip) in error.value.detail
    with pytest.raises(F.UnusableClipError) as error:
        F.extract_features(clip, max_seconds=2.0)
    assert error.value.reason == F.REASON_TOO_LONG and "limit 2 s" in error.value.detail

    many = write_clip(tmp_path / "many.wav", "tone", seconds=1.0, channels=F.MAX_CHANNELS + 1, fmt="WAV")
    assert _reason(many) == F.REASON_UNSUPPORTED_AUDIO
    fast = tmp_path / "fast.wav"
    sf.write(fast, synth_clip("tone", seconds=1.0), F.MAX_SAMPLE_RATE * 2, format="WAV")
    assert _reason(fast) == F.REASON_UNSUPPORTED_AUDIO
