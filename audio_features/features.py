"""FMA's 518 audio features for one clip, computed once per shared intermediate.

The definition is FMA's ``features.py`` (Defferrard et al., 2017): decode mono at the
file's own sample rate; zcr, CQT chromas, tonnetz, STFT chroma, rms ("rmse"), spectral
shape and MFCC; each reduced over time to mean, std, skew, kurtosis, median, min, max.
:mod:`audio_features.reference` is that definition written plainly; this module
returns the same numbers (see the parity test for the bounds) several times faster:

- the audio is decoded once and the magnitude STFT is computed once and shared;
- the two tuning estimates librosa would make on its own (``cqt`` on a fresh
  ``|stft(y)|``, ``chroma_stft`` on the power spectrogram) are reproduced from the shared
  STFT, with ``piptrack`` evaluated only at the peaks inside its 150-4000 Hz band;
- the CQT, mel and chroma filter banks are built once per (sample rate, tuning) and
  reused across clips; the mel bank is applied as a sparse matrix;
- the main STFT runs the same float64 FFTs as librosa's, bit for bit, over contiguous
  blocks of frames; the CQT's per-octave spectra are float32 FFTs (librosa rounds
  float64 ones to complex64; the CQT moves by under 4e-7 of its peak); stereo is
  mixed down column-wise, with librosa's exact float32 arithmetic;
- the tempo reuses the log-mel and averages autocorrelation spectra block by block;
- centroid, bandwidth, rolloff and zcr use reductions instead of full-size temporaries;
  spectral contrast sorts contiguous per-frame rows;
- the 7 statistics are computed in one vectorised pass per feature.

FMA's code did not pass ``sr`` to ``chroma_stft``, ``spectral_centroid``,
``spectral_bandwidth``, ``spectral_contrast`` or ``spectral_rolloff``, so librosa's
default 22050 Hz applies to their frequency axes whatever the file's rate. We keep that
quirk (``FMA_IMPLICIT_SR``) so values stay comparable with the published features.csv.

Degenerate input never yields NaN or inf: a statistic over a constant row is std 0,
skew 0, kurtosis 0 (scipy would return NaN for skew and kurtosis there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import scipy.fft
import scipy.sparse
import soundfile as sf
from librosa.core.pitch import _parabolic_interpolation

from audio_features.errors import AudioFeaturesError
from audio_features.fma_schema import (
    EXTRA_FEATURE_COLUMNS,
    FEATURE_SIZES,
    FEATURE_STATISTICS,
    FMA_CQT_BINS,
    FMA_HOP_LENGTH,
    FMA_IMPLICIT_SR,
    FMA_N_FFT,
    feature_columns,
    FLAT_FEATURE_NAMES,
)
from fma_platform.errors import ReasonedError

# Clips whose rate is too low for an 84-bin CQT from C1 are analysed at this rate.
FALLBACK_ANALYSIS_SR = 22050
CQT_BINS_PER_OCTAVE = 12
N_CHROMA = 12
N_MFCC = 20
N_CONTRAST_BANDS = 6
# Peak amplitude below which a clip counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4
# Samples per block of STFT frames (float64): 256 kB, a fraction of a core's L2 cache.
STFT_BLOCK_SAMPLES = 32768


class UnusableClipError(AudioFeaturesError, ReasonedError):
    """A clip that cannot give FMA features; ``reason`` is one of the ``REASON_*`` codes."""


REASON_MISSING_FILE = "missing_file"
REASON_EMPTY_FILE = "empty_file"
REASON_NOT_AUDIO = "not_audio"
REASON_CORRUPT_AUDIO = "corrupt_audio"
REASON_NO_AUDIO = "no_audio"
REASON_TOO_SHORT = "too_short"
REASON_TRUNCATED = "truncated"
REASON_SILENT = "silent"
REASON_FILE_TOO_LARGE = "file_too_large"
REASON_TOO_LONG = "too_long"
REASON_UNSUPPORTED_AUDIO = "unsupported_audio"

# What any clip may have, whatever the caps: past these a few seconds of decoded audio
# already take hundreds of MB (a 1 kB WAV header can claim any rate and channel count).
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8


@dataclass(frozen=True)
class TrackFeatures:
    """FMA's 518 values (in ``feature_columns()`` order) plus recommender extras."""

    values: np.ndarray
    duration_seconds: float
    sample_rate: int
    analysis_sample_rate: int
    tempo_bpm: float

    def as_record(self) -> dict[str, float]:
        """Flat ``{name: value}``: the 518 flat feature names, then ``EXTRA_FEATURE_COLUMNS``."""
        record = dict(zip(FLAT_FEATURE_NAMES, self.values.tolist()))
        record.update((name, getattr(self, name)) for name in EXTRA_FEATURE_COLUMNS)
        return record




def extract_features(
    path: Path | str,
    *,
    min_seconds: float = 1.0,
    expected_seconds: float | None = None,
    min_expected_fraction: float = 0.5,
    allow_silence: bool = False,
    tempo: bool = True,
    max_bytes: int | None = None,
    max_seconds: float | None = None,
) -> TrackFeatures:
    """Decode one clip and compute its FMA features and extras.

    Parameters
    ----------
    path : Path or str
        Audio file (any format libsndfile reads: MP3, WAV, FLAC, OGG).
    min_seconds : float
        Shorter decoded audio raises ``UnusableClipError(reason="too_short")``.
    expected_seconds : float or None
        Duration the catalogue promises (FMA: ``min(track.duration, 30)``). Decoded audio
        under ``min_expected_fraction`` of it raises ``reason="truncated"``.
    min_expected_fraction : float
        See ``expected_seconds``.
    allow_silence : bool
        If False, a clip whose peak is below -80 dBFS raises ``reason="silent"``; if
        True its (finite, mostly constant) features are returned.
    tempo : bool
        Estimate ``tempo_bpm`` (NaN when False: FMA's 518 features only).
    max_bytes, max_seconds : int, float or None
        Caps on the file's size and on decoded duration (see ``load_audio``); None: none.

    Returns
    -------
    TrackFeatures
    """
    y, sr = load_audio(path, max_bytes=max_bytes, max_seconds=max_seconds)
    duration = y.shape[-1] / sr
    if duration < min_seconds:
        raise UnusableClipError(
            REASON_TOO_SHORT, f"{duration:.2f} s decoded, minimum {min_seconds:g} s"
        )
    if expected_seconds is not None and duration < min_expected_fraction * expected_seconds:
        raise UnusableClipError(
            REASON_TRUNCATED, f"{duration:.2f} s decoded, {expected_seconds:g} s expected"
        )
    if not allow_silence and float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise UnusableClipError(REASON_SILENT, "peak below -80 dBFS")
    return compute_features(y, sr=sr, tempo=tempo)


def load_audio(
    path: Path | str, *, max_bytes: int | None = None, max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` to mono float32 at its own rate, as ``librosa.load(sr=None)`` does.

    Raises ``UnusableClipError`` (missing, empty, not audio, corrupt, no samples)
    instead of librosa's fallback to audioread. With caps, a file over ``max_bytes``
    is refused before it is opened (``file_too_large``) and at most ``max_seconds``
    of audio (plus one frame) is decoded: more is ``too_long``. The header's frame
    count is never trusted, so a file that hides its length still cannot make the
    decoder allocate more than the cap.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableClipError(REASON_MISSING_FILE, str(path))
    size = path.stat().st_size
    if size == 0:
        raise UnusableClipError(REASON_EMPTY_FILE, str(path))
    if max_bytes is not None and size > max_bytes:
        raise UnusableClipError(REASON_FILE_TOO_LARGE, f"{size:,} bytes, limit {max_bytes:,}: {path}")
    try:
        audio = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError) as exc:  # no decoder recognises the header
        raise UnusableClipError(REASON_NOT_AUDIO, str(exc)) from exc
    with audio:
        sr, header_frames = audio.samplerate, audio.frames
        _check_format(sr, audio.channels)
        max_frames = -1 if max_seconds is None else int(max_seconds * sr) + 1
        try:
            y = audio.read(frames=max_frames, dtype=np.float32, always_2d=False).T
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:  # opened, then failed
            raise UnusableClipError(REASON_CORRUPT_AUDIO, str(exc)) from exc
    if max_seconds is not None and y.shape[-1] >= max_frames:
        raise UnusableClipError(
            REASON_TOO_LONG,
            f"more than {max_seconds:g} s decoded, limit {max_seconds:g} s "
            f"(header says {header_frames / sr:.1f} s): {path}",
        )
    if y.ndim > 1:
        y = _mix_to_mono(y)
    if y.size == 0:
        raise UnusableClipError(REASON_NO_AUDIO, "0 samples decoded")
    if not np.all(np.isfinite(y)):
        raise UnusableClipError(REASON_CORRUPT_AUDIO, "non-finite samples decoded")
    return y, int(sr)


def _check_format(sr: int, channels: int) -> None:
    if not 0 < sr <= MAX_SAMPLE_RATE:
        raise UnusableClipError(REASON_UNSUPPORTED_AUDIO, f"sample rate {sr} Hz, limit {MAX_SAMPLE_RATE}")
    if not 0 < channels <= MAX_CHANNELS:
        raise UnusableClipError(REASON_UNSUPPORTED_AUDIO, f"{channels} channels, limit {MAX_CHANNELS}")


def _mix_to_mono(channels: np.ndarray) -> np.ndarray:
    """``librosa.to_mono`` of a (channels, samples) float32 array, bit for bit.

    numpy reduces over the outer axis by adding the channels in order in float32, then
    divides by their count; doing the same on contiguous columns avoids ``np.mean``'s
    strided walk over interleaved samples (15 ms of a 30 s stereo clip).
    """
    channels = channels.reshape(-1, channels.shape[-1])
    mono = channels[0].copy()
    for channel in channels[1:]:
        mono += channel
    mono /= np.float32(channels.shape[0])
    return mono


def compute_features(y: np.ndarray, *, sr: int, tempo: bool = True) -> TrackFeatures:
    """FMA features and extras of a mono signal ``y`` sampled at ``sr`` Hz.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio; float32 is used as is (librosa.load's dtype).
    sr : int
        Sample rate. Below what an 84-bin CQT from C1 needs (about 8.6 kHz), the
        signal is resampled to ``FALLBACK_ANALYSIS_SR`` first.
    tempo : bool
        Estimate ``tempo_bpm`` from the shared log-mel (NaN when False).

    Returns
    -------
    TrackFeatures
        Constant rows give std, skew and kurtosis 0; silence gives finite values.
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size < FMA_N_FFT:
        raise UnusableClipError(REASON_TOO_SHORT, f"need a mono signal of >= {FMA_N_FFT} samples")
    analysis_sr = sr
    if not _cqt_fits(sr):
        y = librosa.resample(y, orig_sr=sr, target_sr=FALLBACK_ANALYSIS_SR, res_type="soxr_hq")
        analysis_sr = FALLBACK_ANALYSIS_SR

    matrices, mel_db = _feature_matrices(y, analysis_sr)
    return TrackFeatures(
        values=summarize(matrices),
        duration_seconds=y.size / analysis_sr,
        sample_rate=int(sr),
        analysis_sample_rate=int(analysis_sr),
        tempo_bpm=_tempo(mel_db, sr=analysis_sr) if tempo else float("nan"),
    )


def _feature_matrices(y: np.ndarray, sr: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every FMA feature as a (rows, frames) matrix, plus the log-mel (for the tempo)."""
    stft = _stft_magnitude(y, n_fft=FMA_N_FFT, hop_length=FMA_HOP_LENGTH, window=_hann_window(FMA_N_FFT))
    # librosa's own (F-ordered) layout, for the two reductions over bins that must
    # add in librosa's order (rms) or sort contiguous per-frame rows (contrast).
    stft_by_frame = np.asfortranarray(stft)
    power = stft**2
    stft_max = np.max(stft, axis=0)  # squaring is monotonic: power's maximum is its square

    cqt = _cqt_magnitude(y, sr=sr, tuning=_estimate_tuning(stft, sr=sr, column_max=stft_max))
    chroma_cens = librosa.feature.chroma_cens(C=cqt, n_chroma=N_CHROMA, n_octaves=7)
    stft_tuning = _estimate_tuning(power, sr=FMA_IMPLICIT_SR, column_max=stft_max**2)
    chroma_stft = librosa.util.normalize(_chroma_basis(stft_tuning) @ power, norm=np.inf, axis=0)
    mel_db = librosa.power_to_db(_mel_basis(sr) @ power)
    centroid, bandwidth, rolloff = _spectral_shape(stft, sr=FMA_IMPLICIT_SR)

    matrices = {
        "chroma_stft": chroma_stft,
        "chroma_cqt": librosa.feature.chroma_cqt(C=cqt, n_chroma=N_CHROMA, n_octaves=7),
        "chroma_cens": chroma_cens,
        "tonnetz": librosa.feature.tonnetz(chroma=chroma_cens),
        "mfcc": librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC),
        "rmse": librosa.feature.rms(S=stft_by_frame),
        "zcr": _zero_crossing_rate(y),
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "spectral_contrast": _spectral_contrast(stft_by_frame, sr=FMA_IMPLICIT_SR),
        "spectral_rolloff": rolloff,
    }
    return matrices, mel_db


def _tempo(mel_db: np.ndarray, *, sr: int) -> float:
    """librosa's beat-tracking tempo estimate, from the already computed log-mel.

    ``beat_track(y)`` builds its onset envelope from exactly this log-mel (128 bands,
    n_fft 2048, hop 512; median over bands, 0 BPM when it is all zero) and takes
    ``feature.tempo`` of it. ``tempo`` averages the
    per-frame, max-normalised autocorrelations of an 8 s window; by linearity we average
    the frames' power spectra (each divided by its lag-0 autocorrelation, which is the
    maximum) and invert once, instead of inverting every frame.
    """
    envelope = librosa.onset.onset_strength(
        S=mel_db, sr=sr, hop_length=FMA_HOP_LENGTH, aggregate=np.median
    )
    if not np.any(envelope):
        return 0.0
    win_length = int(librosa.time_to_frames(8.0, sr=sr, hop_length=FMA_HOP_LENGTH))
    mean_autocorrelation = _mean_normalised_autocorrelation(envelope, win_length=win_length)
    bpm = librosa.feature.tempo(
        tg=mean_autocorrelation[:, None], sr=sr, hop_length=FMA_HOP_LENGTH, aggregate=None
    )
    return float(bpm[0])


def _mean_normalised_autocorrelation(envelope: np.ndarray, *, win_length: int) -> np.ndarray:
    """Mean over frames of ``librosa.feature.tempogram``'s max-normalised autocorrelations.

    Frames are centred Hann-windowed ``win_length`` slices of the linearly ramped
    envelope, as in ``tempogram``. Each frame's power spectrum is divided by its lag-0
    autocorrelation (Parseval) and summed block by block, so the buffers stay in cache.
    """
    n = envelope.shape[-1]
    padded = np.pad(envelope, win_length // 2, mode="linear_ramp", end_values=0)
    frames = librosa.util.frame(padded, frame_length=win_length, hop_length=1, axis=0)[:n]
    window = librosa.filters.get_window("hann", win_length, fftbins=True)
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)
    # Parseval weights: interior bins count twice in the real FFT.
    weights = np.full(n_pad // 2 + 1, 2.0)
    weights[0] = 1.0
    weights[-1] = 1.0 if n_pad % 2 == 0 else 2.0
    buffer = np.zeros((max(1, STFT_BLOCK_SAMPLES // n_pad), n_pad), dtype=np.float64)
    power_sum = np.zeros(n_pad // 2 + 1)
    for start in range(0, n, buffer.shape[0]):
        stop = min(start + buffer.shape[0], n)
        block = buffer[: stop - start]
        # Windowed frames written straight into the zero-padded FFT buffer (no pad copy).
        np.multiply(frames[start:stop], window, out=block[:, :win_length])
        spectrum = scipy.fft.rfft(block, axis=-1, workers=1)
        power = spectrum.real**2
        power += spectrum.imag**2
        lag0 = power @ weights / n_pad
        lag0[lag0 < np.finfo(power.dtype).tiny] = 1.0  # librosa.util.normalize's threshold
        power_sum += (1.0 / lag0) @ power
    return scipy.fft.irfft(power_sum / n, n=n_pad)[:win_length]


def _stft_magnitude(y: np.ndarray, *, n_fft: int, hop_length: int, window: np.ndarray) -> np.ndarray:
    """``np.abs(librosa.stft(y, n_fft, hop_length, window, pad_mode="constant"))``, bit for bit.

    Same zero padding, float64 windowed frames, float64 FFT, complex64 rounding and
    magnitude, but the frames are FFT'd along contiguous rows in cache-sized blocks
    (librosa transforms strided columns a few at a time). Returns (bins, frames),
    C-ordered: the layout in which sums over bins and sparse filter banks run fastest.
    """
    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    magnitude = np.empty((n_fft // 2 + 1, frames.shape[0]), dtype=np.float32)
    block = np.empty((max(1, STFT_BLOCK_SAMPLES // n_fft), n_fft), dtype=np.float64)
    for start in range(0, frames.shape[0], block.shape[0]):
        stop = min(start + block.shape[0], frames.shape[0])
        windowed = np.multiply(frames[start:stop], window, out=block[: stop - start])
        spectrum = scipy.fft.rfft(windowed, axis=-1, overwrite_x=True, workers=1)
        magnitude[:, start:stop] = np.abs(spectrum.astype(np.complex64)).T
    return magnitude


@functools.lru_cache(maxsize=4)
def _hann_window(n_fft: int) -> np.ndarray:
    """librosa.stft's default periodic Hann window, float64."""
    window = librosa.filters.get_window("hann", n_fft, fftbins=True)
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=16)
def _mel_basis(sr: int) -> scipy.sparse.csr_array:
    """``melspectrogram``'s default filter bank (128 bands, n_fft 2048) at ``sr``.

    Sparse: each band spans a few bins (about 2 nonzeros per bin in all), so the
    product costs ~1/60 of librosa's dense einsum, summing the same terms.
    """
    return scipy.sparse.csr_array(librosa.filters.mel(sr=sr, n_fft=FMA_N_FFT))


@functools.lru_cache(maxsize=256)
def _chroma_basis(tuning: float) -> np.ndarray:
    """``chroma_stft``'s filter bank at FMA's implicit 22050 Hz, per tuning (0.01 steps)."""
    return librosa.filters.chroma(sr=FMA_IMPLICIT_SR, n_fft=FMA_N_FFT, n_chroma=N_CHROMA, tuning=tuning)


# -- statistics ---------------------------------------------------------------------


def _column_positions() -> tuple[np.ndarray, np.ndarray]:
    """For each of the 518 columns: (statistic index, row index in the stacked features)."""
    row_offset, offset = {}, 0
    for name, size in FEATURE_SIZES.items():
        row_offset[name] = offset
        offset += size
    stat_index = {stat: i for i, stat in enumerate(FEATURE_STATISTICS)}
    columns = feature_columns()
    stats = np.array([stat_index[stat] for _, stat, _ in columns])
    rows = np.array([row_offset[name] + int(number) - 1 for name, _, number in columns])
    return stats, rows


_STAT_POSITIONS = _column_positions()


def summarize(matrices: dict[str, np.ndarray]) -> np.ndarray:
    """The 518 values in ``feature_columns()`` order from per-feature (rows, frames) matrices.

    Statistics are over time (axis 1), in float64: mean, std (ddof 0), skew and excess
    kurtosis (biased, as ``scipy.stats``), median, min, max. Rows that are constant to
    float precision give skew 0 and kurtosis 0 instead of scipy's NaN.
    """
    per_feature = [_row_statistics(matrices[name]) for name in FEATURE_SIZES]
    table = np.concatenate(per_feature, axis=1)  # (7 statistics, 74 rows)
    return table[_STAT_POSITIONS]


def _row_statistics(matrix: np.ndarray) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    mean = x.mean(axis=1)
    centered = x - mean[:, None]
    squared = centered * centered
    m2 = squared.mean(axis=1)
    m3 = (squared * centered).mean(axis=1)
    m4 = (squared * squared).mean(axis=1)
    # scipy's test for "constant up to rounding": variance below float resolution.
    constant = m2 <= (np.finfo(np.float64).resolution * np.abs(mean)) ** 2
    safe_m2 = np.where(constant, 1.0, m2)
    skew = np.where(constant, 0.0, m3 / safe_m2**1.5)
    kurtosis = np.where(constant, 0.0, m4 / safe_m2**2 - 3.0)
    return np.stack([
        mean, np.sqrt(m2), skew, kurtosis,
        np.median(x, axis=1), x.min(axis=1), x.max(axis=1),
    ])


# -- shared-STFT versions of librosa internals -----------------------------------------


def _estimate_tuning(spectrum: np.ndarray, *, sr: float, column_max: np.ndarray | None = None) -> float:
    """``librosa.estimate_tuning(S=spectrum, sr=sr)``, evaluating piptrack at its peaks only.

    piptrack keeps local maxima above 0.1 x the frame's maximum with 150 <= f < 4000 Hz;
    its local-max test, gradient and parabolic shift look one bin either side, so the
    band plus one bin finds the same peaks, and the shift and gradient are then needed
    at the peaks alone. The shift runs librosa's own numba kernel on each peak's three
    bins and every other step repeats librosa's float32 operations, so the estimate is
    exactly librosa's. ``column_max`` (``spectrum.max(axis=0)``) may be passed in when
    already known; only the per-frame threshold needs all bins.
    """
    n_fft = 2 * (spectrum.shape[0] - 1)
    fft_freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    in_band = np.flatnonzero((fft_freqs >= 150.0) & (fft_freqs < min(4000.0, sr / 2)))
    if in_band.size == 0 or in_band[0] < 1 or in_band[-1] + 2 > spectrum.shape[0]:
        raise UnusableClipError(REASON_TOO_SHORT, f"no pitch band at sr={sr}")
    lo = in_band[0] - 1
    band = spectrum[lo : in_band[-1] + 2]
    if column_max is None:
        column_max = np.max(spectrum, axis=0)
    masked = band * (band > 0.1 * column_max)
    inner = masked[1:-1]
    rows, cols = np.nonzero((inner > masked[:-2]) & (inner >= masked[2:]))
    rows += 1  # band rows; all in the 150-4000 Hz band by construction
    below, at, above = band[rows - 1, cols], band[rows, cols], band[rows + 1, cols]
    shift = _parabolic_interpolation(np.stack([below, at, above], axis=-1), axis=-1)[:, 1]
    gradient = (above - below) / 2.0  # np.gradient's interior difference
    mag = at + 0.5 * gradient * shift
    pitch = ((rows + lo + shift) * float(sr) / n_fft).astype(spectrum.dtype)
    keep = pitch > 0
    threshold = np.median(mag[keep]) if keep.any() else 0.0
    selected = pitch[(mag >= threshold) & keep]
    if selected.size == 0:
        return 0.0  # librosa warns and returns 0.0 on an empty pitch set
    return float(librosa.pitch_tuning(selected, bins_per_octave=CQT_BINS_PER_OCTAVE))


def _zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=512)``.

    Same edge padding, 1e-10 threshold and per-frame counting (a frame's first sample
    never counts), but crossings are counted once over the signal with a cumulative sum.
    """
    half = FMA_N_FFT // 2
    padded = np.pad(y, half, mode="edge")
    negative = padded < -1e-10  # |x| <= threshold counts as +0
    crossings = np.concatenate(([0], np.cumsum(negative[1:] != negative[:-1], dtype=np.int64)))
    n_frames = 1 + (padded.size - FMA_N_FFT) // FMA_HOP_LENGTH
    starts = np.arange(n_frames) * FMA_HOP_LENGTH
    counts = crossings[starts + FMA_N_FFT - 1] - crossings[starts]
    return (counts / FMA_N_FFT)[None, :]


def _spectral_shape(stft: np.ndarray, *, sr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid, bandwidth (p=2) and rolloff (85 %) of a magnitude STFT.

    Centroid and bandwidth come from the first two moments of the frequency axis
    (one float64 matrix product) instead of librosa's full-size deviation matrix;
    rolloff takes the first bin whose float32 cumulative sum reaches 85 % of the total.
    """
    n_fft = 2 * (stft.shape[0] - 1)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    moments = np.stack([np.ones_like(freqs), freqs, freqs**2]) @ stft.astype(np.float64)
    total = moments[0]
    # librosa.util.normalize leaves all-but-zero frames unscaled.
    total = np.where(total < np.finfo(stft.dtype).tiny, 1.0, total)
    centroid = moments[1] / total
    variance = np.maximum(moments[2] / total - centroid**2, 0.0)
    bandwidth = np.sqrt(variance)

    cumulative = _cumulative_over_bins(stft)
    threshold = 0.85 * cumulative[-1]
    rolloff = freqs[np.argmax(cumulative >= threshold, axis=0)]
    return centroid[None, :], bandwidth[None, :], rolloff[None, :]


def _cumulative_over_bins(stft: np.ndarray) -> np.ndarray:
    """``np.cumsum(stft, axis=0)``, bit for bit: the same float32 adds in the same order.

    One vectorised add per bin over all frames (on a bins-major copy) instead of
    numpy's frame-by-frame running sum, which is several times slower.
    """
    cumulative = np.array(stft, order="C")  # a copy, summed in place
    for row in range(1, cumulative.shape[0]):
        cumulative[row] += cumulative[row - 1]
    return cumulative


def _spectral_contrast(stft: np.ndarray, *, sr: float) -> np.ndarray:
    """``librosa.feature.spectral_contrast(S=stft, sr=sr, n_bands=6)``.

    Same octave bands, 2 % quantile and sort, but each band is sorted along contiguous
    per-frame rows (numpy's SIMD sort; a ``partition`` at two ranks is several times
    slower).
    """
    freqs = librosa.fft_frequencies(sr=sr, n_fft=2 * (stft.shape[0] - 1))
    edges = np.zeros(N_CONTRAST_BANDS + 2)
    edges[1:] = 200.0 * 2.0 ** np.arange(N_CONTRAST_BANDS + 1)
    frames = np.ascontiguousarray(stft.T)  # (frames, bins): sort along contiguous rows
    valley = np.zeros((N_CONTRAST_BANDS + 1, stft.shape[1]))
    peak = np.zeros_like(valley)
    for k, (f_low, f_high) in enumerate(zip(edges[:-1], edges[1:])):
        in_band = (freqs >= f_low) & (freqs <= f_high)
        idx = np.flatnonzero(in_band)
        if k > 0:
            in_band[idx[0] - 1] = True
        if k == N_CONTRAST_BANDS:
            in_band[idx[-1] + 1 :] = True
        band = np.flatnonzero(in_band)
        if k < N_CONTRAST_BANDS:
            band = band[:-1]
        take = max(int(np.rint(0.02 * in_band.sum())), 1)
        sub_band = frames[:, band[0] : band[-1] + 1]
        n_bins = sub_band.shape[1]
        ordered = np.sort(sub_band, axis=1)
        valley[k] = np.mean(ordered[:, :take], axis=1)
        peak[k] = np.mean(ordered[:, n_bins - take :], axis=1)
    return librosa.power_to_db(peak) - librosa.power_to_db(valley)


# -- CQT with a reusable filter bank ----------------------------------------------------


@dataclass(frozen=True)
class _CqtPlan:
    """Everything ``librosa.cqt`` derives from (sr, tuning) before touching the signal."""

    downsample_factor: int
    hop_length: int
    octave_bases: tuple  # per octave, top first: (sparse fft basis, n_fft)
    length_scale: np.ndarray  # sqrt of the wavelet lengths, shape (84, 1)


def _cqt_fits(sr: float) -> bool:
    """Whether an 84-bin CQT from C1 stays under Nyquist at ``sr`` for any tuning."""
    freqs = librosa.cqt_frequencies(
        n_bins=FMA_CQT_BINS, fmin=librosa.note_to_hz("C1") * 2.0 ** (0.5 / 12),
        bins_per_octave=CQT_BINS_PER_OCTAVE,
    )
    _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, window="hann", filter_scale=1)
    return bool(cutoff <= sr / 2.0)


@functools.lru_cache(maxsize=512)
def _cqt_plan(sr: float, tuning: float) -> _CqtPlan:
    """librosa 0.11 ``vqt`` (gamma 0, hann, norm 1, sparsity 0.01) up to its signal loop."""
    n_octaves = FMA_CQT_BINS // CQT_BINS_PER_OCTAVE
    fmin = librosa.note_to_hz("C1") * 2.0 ** (tuning / CQT_BINS_PER_OCTAVE)
    freqs = librosa.interval_frequencies(
        n_bins=FMA_CQT_BINS, fmin=fmin, intervals="equal",
        bins_per_octave=CQT_BINS_PER_OCTAVE, sort=True,
    )
    alpha = librosa.filters._relative_bandwidth(freqs=freqs)
    _, cutoff = librosa.filters.wavelet_lengths(
        freqs=freqs, sr=sr, window="hann", filter_scale=1, gamma=0, alpha=alpha
    )
    # Early downsampling, as librosa's __early_downsample_count.
    count_by_band = max(0, int(np.ceil(np.log2(sr / 2.0 / cutoff)) - 1) - 1)
    hop_twos = (FMA_HOP_LENGTH & -FMA_HOP_LENGTH).bit_length() - 1
    count = min(count_by_band, max(0, hop_twos - n_octaves + 1))
    factor = 2**count
    analysis_sr, hop = sr / factor, FMA_HOP_LENGTH // factor

    bases, octave_sr = [], analysis_sr
    for octave in range(n_octaves):
        top = FMA_CQT_BINS - CQT_BINS_PER_OCTAVE * octave
        sl = slice(top - CQT_BINS_PER_OCTAVE, top)
        basis, lengths = librosa.filters.wavelet(
            freqs=freqs[sl], sr=octave_sr, filter_scale=1, norm=1, pad_fft=True,
            window="hann", gamma=0, alpha=alpha[sl],
        )
        n_fft = basis.shape[1]
        basis *= lengths[:, np.newaxis] / float(n_fft)
        fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : n_fft // 2 + 1]
        fft_basis = librosa.util.sparsify_rows(fft_basis, quantile=0.01, dtype=np.complex64)
        fft_basis[:] *= np.sqrt(analysis_sr / octave_sr)
        bases.append((fft_basis, n_fft))
        octave_sr /= 2.0
    lengths, _ = librosa.filters.wavelet_lengths(
        freqs=freqs, sr=analysis_sr, window="hann", filter_scale=1, gamma=0, alpha=alpha
    )
    return _CqtPlan(factor, hop, tuple(bases), np.sqrt(lengths)[:, None])


def _octave_spectrum(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """``librosa.stft(y, n_fft, hop_length, window="ones", pad_mode="constant")``, float32.

    librosa FFTs these frames in float64 and rounds the result to complex64; one float32
    FFT moves the CQT by under 4e-7 of its peak (the tuning, from the main STFT, is not
    affected) for a third of the time. Frames are columns, so the (bins, frames)
    result is C-ordered, the layout the sparse filter bank multiplies without a copy.
    """
    padded = np.pad(y, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    return scipy.fft.rfft(frames.T, axis=0, workers=1)


def _cqt_magnitude(y: np.ndarray, *, sr: float, tuning: float) -> np.ndarray:
    """``abs(librosa.cqt(y, sr=sr, hop_length=512, n_bins=84, tuning=tuning))``."""
    plan = _cqt_plan(float(sr), float(tuning))
    hop = plan.hop_length
    if plan.downsample_factor > 1:
        y = librosa.resample(
            y, orig_sr=plan.downsample_factor, target_sr=1, res_type="soxr_hq", scale=True
        )
    responses = []
    for octave, (fft_basis, n_fft) in enumerate(plan.octave_bases):
        if octave and hop % 2 == 0:  # each lower octave: half the rate, half the hop
            hop //= 2
            y = librosa.resample(y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
        responses.append(fft_basis.dot(_octave_spectrum(y, n_fft=n_fft, hop_length=hop)))
    n_frames = min(r.shape[-1] for r in responses)
    cqt = np.empty((FMA_CQT_BINS, n_frames), dtype=np.complex64, order="F")
    end = FMA_CQT_BINS
    for response in responses:
        take = min(end, response.shape[0])
        cqt[end - take : end] = response[-take:, :n_frames]
        end -= take
    cqt /= plan.length_scale
    return np.abs(cqt)
