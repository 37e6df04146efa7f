"""Synthesised genre-typical music for the FMA-shaped sample dataset.

Why: real FMA audio cannot be downloaded here, yet feature extraction, genre models and
the recommender need clips whose genre is *audible*. Each of FMA's 16 top-level genres
gets a small recipe that differs from the others the way real genres do: tempo and
rhythm (drum patterns, swing, BPM range), timbre (harmonic content, attack, distortion,
filtering), harmony (major/minor/modal scales, genre-typical chord progressions) and
noise and dynamics. Every clip draws its own key, tempo, instrument mix and levels from
its seed, so tracks within a genre vary.

Everything is vectorised numpy: oscillators read wavetables, drums are one-shots placed
at pattern positions, notes are rendered once per (pitch, length) and reused.
Karplus-Strong strings advance one period per numpy operation, never one sample.

Public API: :func:`synthesize_clip`, :class:`SynthesizedClip`, :data:`GENRE_RECIPES`,
:data:`SAMPLE_RATE`, :class:`SynthError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

SAMPLE_RATE = 44_100
PEAK_CEILING = 0.8  # about -2 dBFS: MP3 decoding overshoots sharp peaks (seen +15%)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian_dominant": (0, 1, 4, 5, 7, 8, 10),
    "double_harmonic": (0, 1, 4, 5, 7, 8, 11),
    "pentatonic_major": (0, 2, 4, 7, 9),
    "pentatonic_minor": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "power": (0, 7, 12),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "maj9": (0, 4, 7, 11, 14),
    "min9": (0, 3, 7, 10, 14),
    "sus4": (0, 5, 7),
}
# A chord is (semitones above the key's root, quality); a progression is one chord per bar.
Chord = tuple[int, str]
Progression = tuple[Chord, ...]
# A note event: (start sample, length in samples, MIDI pitch, velocity 0..1).
Note = tuple[int, int, int, float]
Voice = Callable[[float, int], np.ndarray]

_VELOCITY = {"X": 1.0, "x": 0.8, "o": 0.35}
_TABLE_SIZE = 4096
_TWO_PI = 2.0 * np.pi


class SynthError(ValueError):
    """Raised for an unknown genre or parameters that cannot make a clip."""


@dataclass(frozen=True)
class SynthesizedClip:
    """A mono clip plus the musical facts it was built from (ground truth for tests)."""

    audio: np.ndarray
    sample_rate: int
    genre_id: int
    bpm: float | None
    key: str
    scale: str


@dataclass
class ClipContext:
    """Per-clip state every layer needs: randomness, length, tempo and key."""

    rng: np.random.Generator
    sr: int
    n: int
    bpm: float
    key: int  # MIDI pitch class root, 0..11
    scale: str

    @property
    def beat(self) -> float:
        """Samples per beat."""
        return 60.0 / self.bpm * self.sr

    @property
    def bar(self) -> float:
        """Samples per 4/4 bar."""
        return 4.0 * self.beat

    def uniform(self, low: float, high: float) -> float:
        """One uniform draw, as a plain float."""
        return float(self.rng.uniform(low, high))

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return bool(self.rng.random() < p)

    def pick(self, options: Sequence):
        """One element of ``options``, uniformly."""
        return options[int(self.rng.integers(len(options)))]


# --------------------------------------------------------------------------- pitch, filters


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


@lru_cache(maxsize=512)
def _sos(kind: str, cutoff: float | tuple[float, float], order: int, sr: int) -> np.ndarray:
    """A cached Butterworth design: designs cost more than filtering short notes."""
    return signal.butter(order, cutoff, btype=kind, fs=sr, output="sos")


def lowpass(x: np.ndarray, cutoff: float, sr: int, *, order: int = 2) -> np.ndarray:
    """Butterworth low-pass (cutoff clamped below Nyquist)."""
    return signal.sosfilt(_sos("lowpass", float(min(cutoff, 0.45 * sr)), order, sr), x)


def highpass(x: np.ndarray, cutoff: float, sr: int, *, order: int = 2) -> np.ndarray:
    """Butterworth high-pass."""
    return signal.sosfilt(_sos("highpass", float(cutoff), order, sr), x)


def bandpass(x: np.ndarray, low: float, high: float, sr: int, *, order: int = 1) -> np.ndarray:
    """Butterworth band-pass between ``low`` and ``high`` Hz."""
    band = (float(round(low, 1)), float(round(min(high, 0.45 * sr), 1)))
    return signal.sosfilt(_sos("bandpass", band, order, sr), x)


def formant_filter(x: np.ndarray, formants: Sequence[tuple[float, float]], sr: int) -> np.ndarray:
    """Sum of resonances (centre Hz, bandwidth Hz): a crude vocal tract."""
    out = np.zeros_like(x)
    for i, (centre, width) in enumerate(formants):
        out += bandpass(x, centre - width / 2, centre + width / 2, sr) * (1.0 / (1 + i))
    return out


# --------------------------------------------------------------------------- oscillators


@lru_cache(maxsize=64)
def _wavetable(amps: tuple[float, ...]) -> np.ndarray:
    """One cycle of a harmonic waveform with the given partial amplitudes."""
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE * _TWO_PI
    table = np.zeros(_TABLE_SIZE)
    for k, a in enumerate(amps, start=1):
        table += a * np.sin(k * phase)
    return (table / np.max(np.abs(table))).astype(np.float32)


def harmonic_amps(kind: str, count: int = 24) -> tuple[float, ...]:
    """Partial amplitudes of classic waveforms: saw, square, triangle, soft, organ."""
    k = np.arange(1, count + 1, dtype=float)
    if kind == "saw":
        amps = 1.0 / k
    elif kind == "square":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.0)
    elif kind == "triangle":
        amps = np.where(k % 2 == 1, 1.0 / k**2, 0.0)
    elif kind == "soft":
        amps = 1.0 / k**2.2
    elif kind == "organ":
        amps = np.where(np.isin(k, (1, 2, 3, 4, 6, 8)), 1.0 / np.sqrt(k), 0.0)
    elif kind == "reed":
        amps = np.where(k % 2 == 1, 1.0 / k, 0.35 / k)
    else:
        raise SynthError(f"unknown waveform {kind!r}")
    return tuple(float(a) for a in amps)


def oscillate(
    amps: tuple[float, ...],
    freq: float,
    n: int,
    sr: int,
    *,
    vibrato_hz: float = 0.0,
    vibrato_depth: float = 0.0,
    phase0: float = 0.0,
) -> np.ndarray:
    """Wavetable oscillator: ``n`` samples at ``freq`` Hz with optional vibrato (ratio)."""
    t = np.arange(n) / sr
    cycles = freq * t + phase0
    if vibrato_depth:
        cycles = cycles + freq * vibrato_depth / (_TWO_PI * vibrato_hz) * (
            1 - np.cos(_TWO_PI * vibrato_hz * t)
        )
    idx = ((cycles % 1.0) * _TABLE_SIZE).astype(np.int32)
    return _wavetable(amps)[idx]


def adsr(n: int, sr: int, *, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Attack-decay-sustain-release envelope fitted inside ``n`` samples."""
    t = np.arange(n) / sr
    env = np.where(
        t < attack,
        t / max(attack, 1e-4),
        sustain + (1 - sustain) * np.exp(-(t - attack) / max(decay, 1e-4)),
    )
    rel = int(min(release * sr, n // 2))
    if rel > 0:
        env[n - rel:] *= np.linspace(1.0, 0.0, rel)
    return env


def karplus_strong(freq: float, n: int, sr: int, *, rng: np.random.Generator,
                   damping: float = 0.996, brightness: float = 0.7) -> np.ndarray:
    """Plucked string: a noise burst recirculated through an averaging delay line.

    The recurrence y[i] = g * (y[i-N] + y[i-N-1]) / 2 only looks one period back,
    so a whole period is computed per numpy operation.
    """
    period = max(2, int(round(sr / freq)))
    burst = rng.uniform(-1, 1, period)
    burst = brightness * burst + (1 - brightness) * np.convolve(burst, np.ones(4) / 4, "same")
    periods = n // period + 2
    y = np.zeros((periods + 1) * period)
    y[:period] = burst
    for k in range(1, periods + 1):
        prev = y[(k - 1) * period - 1: k * period - 1] if k > 1 else np.concatenate(([0.0], burst[:-1]))
        y[k * period:(k + 1) * period] = damping * 0.5 * (y[(k - 1) * period: k * period] + prev)
    out = y[:n]
    fade = min(n, int(0.02 * sr))
    out[n - fade:] *= np.linspace(1, 0, fade)
    return out


def fm_tone(freq: float, n: int, sr: int, *, ratio: float, index: float, index_decay: float,
            decay: float, tremolo_hz: float = 0.0) -> np.ndarray:
    """Two-operator FM: electric piano (ratio 1), vibraphone/bell (ratio 3.5-4)."""
    t = np.arange(n) / sr
    mod = index * np.exp(-t / index_decay) * np.sin(_TWO_PI * ratio * freq * t)
    out = np.sin(_TWO_PI * freq * t + mod) * np.exp(-t / decay)
    if tremolo_hz:
        out *= 0.8 + 0.2 * np.sin(_TWO_PI * tremolo_hz * t)
    return out * adsr(n, sr, attack=0.003, decay=1.0, sustain=1.0, release=0.03)


# --------------------------------------------------------------------------- voices


def pad_voice(amps: tuple[float, ...], sr: int, *, attack: float, release: float,
              vibrato_hz: float = 0.0, vibrato_depth: float = 0.0, detune: float = 0.0) -> Voice:
    """Sustained tone (strings, organ, pads); ``detune`` adds a second, beating copy."""

    def render(freq: float, n: int) -> np.ndarray:
        tone = oscillate(amps, freq, n, sr, vibrato_hz=vibrato_hz, vibrato_depth=vibrato_depth)
        if detune:
            tone = 0.5 * (tone + oscillate(amps, freq * (1 + detune), n, sr, phase0=0.37))
        return tone * adsr(n, sr, attack=attack, decay=0.5, sustain=0.85, release=release)

    return render


def piano_voice(sr: int, *, brightness: float, decay: float) -> Voice:
    """Struck string: a bright fast-decaying attack over a darker, slower body."""
    bright = harmonic_amps("saw", 14)
    dark = harmonic_amps("soft", 8)

    def render(freq: float, n: int) -> np.ndarray:
        t = np.arange(n) / sr
        d = decay * (220.0 / max(freq, 55.0)) ** 0.35
        tone = (brightness * oscillate(bright, freq, n, sr) * np.exp(-t / (0.08 * d))
                + oscillate(dark, freq, n, sr, phase0=0.1) * np.exp(-t / d))
        return tone * adsr(n, sr, attack=0.002, decay=1.0, sustain=1.0, release=0.05)

    return render


def pluck_voice(sr: int, rng: np.random.Generator, *, damping: float, brightness: float) -> Voice:
    """Karplus-Strong string (acoustic guitar, oud, harp, upright bass)."""

    def render(freq: float, n: int) -> np.ndarray:
        return karplus_strong(freq, n, sr, rng=rng, damping=damping, brightness=brightness)

    return render


def fm_voice(sr: int, *, ratio: float, index: float, decay: float, tremolo_hz: float = 0.0) -> Voice:
    """FM keyboard or mallet voice."""

    def render(freq: float, n: int) -> np.ndarray:
        return fm_tone(freq, n, sr, ratio=ratio, index=index, index_decay=0.25 * decay,
                       decay=decay, tremolo_hz=tremolo_hz)

    return render


def bass_voice(amps: tuple[float, ...], sr: int, *, decay: float) -> Voice:
    """Bass: waveform with a quick attack and a plucky decay."""

    def render(freq: float, n: int) -> np.ndarray:
        env = adsr(n, sr, attack=0.004, decay=decay, sustain=0.35, release=0.03)
        return oscillate(amps, freq, n, sr) * env

    return render


def render_notes(notes: Sequence[Note], voice: Voice, n: int) -> np.ndarray:
    """Mix note events into an ``n``-sample track, rendering each (pitch, length) once."""
    out = np.zeros(n, dtype=np.float32)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for start, length, midi, velocity in notes:
        if start >= n or length <= 0:
            continue
        wave = cache.get((midi, length))
        if wave is None:
            wave = cache[(midi, length)] = voice(midi_to_hz(midi), length).astype(np.float32)
        end = min(n, start + length)
        out[start:end] += velocity * wave[: end - start]
    return out


# --------------------------------------------------------------------------- drums


def kick(sr: int, *, f_start: float, f_end: float, decay: float, click: float,
         rng: np.random.Generator) -> np.ndarray:
    """Bass drum: a sine sweeping down in pitch plus a noise click (long decay = 808)."""
    n = int(sr * min(4 * decay, 1.5))
    t = np.arange(n) / sr
    freq = f_end + (f_start - f_end) * np.exp(-t / 0.03)
    body = np.sin(_TWO_PI * np.cumsum(freq) / sr) * np.exp(-t / decay)
    noise = highpass(rng.standard_normal(n), 2000, sr) * np.exp(-t / 0.004)
    return body + click * noise


def snare(sr: int, *, tone_hz: float, noise_mix: float, decay: float,
          rng: np.random.Generator) -> np.ndarray:
    """Snare: a short membrane tone plus band-passed noise (the wires)."""
    n = int(sr * 0.35)
    t = np.arange(n) / sr
    tone = np.sin(_TWO_PI * tone_hz * t) * np.exp(-t / 0.05)
    wires = bandpass(rng.standard_normal(n), 1200, 9000, sr) * np.exp(-t / decay)
    return (1 - noise_mix) * tone + noise_mix * 1.6 * wires


def clap(sr: int, *, rng: np.random.Generator) -> np.ndarray:
    """Hand clap: three quick noise bursts then a short tail, band-passed."""
    n = int(sr * 0.3)
    t = np.arange(n) / sr
    env = np.exp(-t / 0.06)
    for offset in (0.0, 0.011, 0.023):
        env = env + (t >= offset) * np.exp(-np.clip(t - offset, 0, None) / 0.004) * 1.5
    return bandpass(rng.standard_normal(n), 900, 3500, sr) * env


def hat(sr: int, *, decay: float, rng: np.random.Generator, cutoff: float = 7000.0) -> np.ndarray:
    """Hi-hat (closed: decay ~0.03 s; open: ~0.25 s) or shaker (high-passed noise)."""
    n = int(sr * min(6 * decay, 1.0))
    t = np.arange(n) / sr
    return highpass(rng.standard_normal(n), cutoff, sr) * np.exp(-t / decay)


def metal(sr: int, *, base_hz: float, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Ride or crash cymbal: inharmonic square partials plus bright noise."""
    n = int(sr * min(3 * decay, 2.0))
    t = np.arange(n) / sr
    ratios = (1.0, 1.48, 1.92, 2.53, 3.28, 4.13)
    partials = sum(np.sign(np.sin(_TWO_PI * base_hz * r * t)) for r in ratios)
    tone = highpass(partials / len(ratios) + 0.6 * rng.standard_normal(n), 3500, sr)
    return tone * np.exp(-t / decay) * (1 - np.exp(-t / 0.001))


def membrane(sr: int, *, freq: float, decay: float, slap: float, rng: np.random.Generator) -> np.ndarray:
    """Hand drum stroke (darbuka doum/tek, frame drum, tom): pitched body plus slap noise."""
    n = int(sr * min(5 * decay, 0.8))
    t = np.arange(n) / sr
    body = np.sin(_TWO_PI * freq * (1 + 0.3 * np.exp(-t / 0.02)) * t) * np.exp(-t / decay)
    noise = bandpass(rng.standard_normal(n), 1500, 6000, sr) * np.exp(-t / 0.015)
    return body + slap * noise


def pattern_hits(pattern: str, ctx: ClipContext, *, swing: float = 0.0,
                 jitter_ms: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions and velocities of a one-bar step pattern repeated over the clip.

    ``pattern`` has 16 steps (16ths) or 12 steps (8th-note triplets); ``X``/``x``/``o``
    are loud/normal/ghost hits, ``.`` a rest. ``swing`` (0..1) delays the off-beat 16ths
    of 16-step patterns towards the triplet position. Small random timing jitter keeps
    the groove human.
    """
    steps = len(pattern)
    step_len = ctx.bar / steps
    hit_steps = np.array([i for i, c in enumerate(pattern) if c != "."], dtype=float)
    if hit_steps.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    velocity = np.array([_VELOCITY[c] for c in pattern if c != "."])
    bars = int(math.ceil(ctx.n / ctx.bar)) + 1
    positions = (np.arange(bars)[:, None] * steps + hit_steps[None, :]).ravel() * step_len
    if swing and steps == 16:
        off = np.tile(hit_steps % 2 == 1, bars)
        positions = positions + off * swing * step_len / 3.0
    positions = positions + ctx.rng.normal(0.0, jitter_ms * 1e-3 * ctx.sr, positions.size)
    velocities = np.tile(velocity, bars) * ctx.rng.uniform(0.85, 1.0, positions.size)
    keep = (positions >= 0) & (positions < ctx.n)
    return positions[keep].astype(int), velocities[keep]


def place(hits: tuple[np.ndarray, np.ndarray], sample: np.ndarray, n: int) -> np.ndarray:
    """Mix a one-shot sample at every hit position, scaled by its velocity."""
    out = np.zeros(n, dtype=np.float32)
    positions, velocities = hits
    for pos, vel in zip(positions, velocities):
        end = min(n, pos + sample.size)
        out[pos:end] += vel * sample[: end - pos]
    return out


def drum_track(ctx: ClipContext, parts: Sequence[tuple[str, np.ndarray, float]], *,
               swing: float = 0.0) -> np.ndarray:
    """Mix several (pattern, sample, gain) drum parts."""
    out = np.zeros(ctx.n, dtype=np.float32)
    for pattern, sample, gain in parts:
        out += gain * place(pattern_hits(pattern, ctx, swing=swing), sample, ctx.n)
    return out


# --------------------------------------------------------------------------- harmony


def chord_at(progression: Progression, bar: int, bars_per_chord: int = 1) -> Chord:
    """The chord playing in a given bar."""
    return progression[(bar // bars_per_chord) % len(progression)]


def voice_chord(key: int, chord: Chord, low: int) -> list[int]:
    """MIDI pitches of a chord, with its root placed in the octave from ``low``."""
    offset, quality = chord
    root = low + (key + offset - low) % 12
    return [root + interval for interval in CHORD_QUALITIES[quality]]


def chord_notes(ctx: ClipContext, progression: Progression, pattern: str, *, low: int,
                length_beats: float, strum_ms: float = 0.0, bars_per_chord: int = 1,
                swing: float = 0.0, velocity: float = 0.7) -> list[Note]:
    """Block or strummed chords hit on a step pattern, following the progression."""
    notes: list[Note] = []
    length = int(length_beats * ctx.beat)
    positions, velocities = pattern_hits(pattern, ctx, swing=swing)
    for pos, vel in zip(positions, velocities):
        pitches = voice_chord(ctx.key, chord_at(progression, int(pos // ctx.bar), bars_per_chord), low)
        for i, midi in enumerate(pitches):
            delay = int(i * strum_ms * 1e-3 * ctx.sr)
            notes.append((int(pos) + delay, max(1, length - delay), midi, velocity * vel))
    return notes


def arpeggio_notes(ctx: ClipContext, progression: Progression, pattern: str, *, low: int,
                   length_beats: float, order: Sequence[int] = (0, 1, 2, 1),
                   bars_per_chord: int = 1, velocity: float = 0.6) -> list[Note]:
    """Broken chords: each hit plays the next chord tone in ``order`` (octave above allowed)."""
    notes: list[Note] = []
    positions, velocities = pattern_hits(pattern, ctx)
    for i, (pos, vel) in enumerate(zip(positions, velocities)):
        pitches = voice_chord(ctx.key, chord_at(progression, int(pos // ctx.bar), bars_per_chord), low)
        step = order[i % len(order)]
        midi = pitches[step % len(pitches)] + 12 * (step // len(pitches))
        notes.append((int(pos), int(length_beats * ctx.beat), midi, velocity * vel))
    return notes


def bass_notes(ctx: ClipContext, progression: Progression, pattern: str, *, low: int,
               figure: Sequence[int] = (0,), length_beats: float = 0.5,
               bars_per_chord: int = 1, swing: float = 0.0) -> list[Note]:
    """Bass line: each hit plays the next semitone offset of ``figure`` above the chord root."""
    notes: list[Note] = []
    positions, velocities = pattern_hits(pattern, ctx, swing=swing)
    for i, (pos, vel) in enumerate(zip(positions, velocities)):
        root = voice_chord(ctx.key, chord_at(progression, int(pos // ctx.bar), bars_per_chord), low)[0]
        notes.append((int(pos), int(length_beats * ctx.beat), root + figure[i % len(figure)], 0.9 * vel))
    return notes


def walking_bass(ctx: ClipContext, progression: Progression, *, low: int) -> list[Note]:
    """Jazz walking bass: quarter notes, chord tones on 1 and 3, approach notes between."""
    notes: list[Note] = []
    length = int(0.95 * ctx.beat)
    bars = int(ctx.n // ctx.bar) + 1
    for bar in range(bars):
        pitches = voice_chord(ctx.key, chord_at(progression, bar), low)
        nxt = voice_chord(ctx.key, chord_at(progression, bar + 1), low)[0]
        line = (pitches[0], ctx.pick(pitches[1:]), pitches[2], nxt + ctx.pick((-1, 1, 2)))
        for beat, midi in enumerate(line):
            notes.append((int(bar * ctx.bar + beat * ctx.beat), length, midi, 0.85))
    return notes


def melody_notes(ctx: ClipContext, progression: Progression, *, low: int, high: int,
                 durations: Sequence[float], rest_prob: float = 0.15, scale: str | None = None,
                 bars_per_chord: int = 1, legato: float = 0.95) -> list[Note]:
    """A random-walk melody on the scale that lands on chord tones on strong beats."""
    intervals = SCALES[scale or ctx.scale]
    pool = np.array([m for m in range(low, high + 1) if (m - ctx.key) % 12 in intervals])
    index = len(pool) // 2
    notes: list[Note] = []
    beat = 0.0
    total_beats = ctx.n / ctx.beat
    while beat < total_beats:
        dur = float(ctx.pick(durations))
        if not ctx.chance(rest_prob):
            index = int(np.clip(index + ctx.pick((-2, -1, -1, 0, 1, 1, 2, 3, -3)), 0, len(pool) - 1))
            if beat % 2 == 0:
                chord = chord_at(progression, int(beat // 4), bars_per_chord)
                tones = {p % 12 for p in voice_chord(ctx.key, chord, 0)}
                candidates = [i for i in range(len(pool)) if pool[i] % 12 in tones]
                if candidates:
                    index = min(candidates, key=lambda i: abs(i - index))
            velocity = 0.6 + 0.4 * float(beat % 4 == 0)
            notes.append((int(beat * ctx.beat), int(dur * legato * ctx.beat), int(pool[index]), velocity))
        beat += dur
    return notes


# --------------------------------------------------------------------------- textures


def vinyl_crackle(ctx: ClipContext, *, density: float) -> np.ndarray:
    """Record surface: sparse random clicks plus filtered hiss."""
    clicks = (ctx.rng.random(ctx.n) < density) * ctx.rng.uniform(-1, 1, ctx.n)
    hiss = lowpass(ctx.rng.standard_normal(ctx.n), 6000, ctx.sr) * 0.05
    return highpass(clicks, 1500, ctx.sr) + hiss


def reverb(x: np.ndarray, ctx: ClipContext, *, seconds: float, wet: float) -> np.ndarray:
    """Diffuse room: convolution with exponentially decaying, darkened noise."""
    length = int(seconds * ctx.sr)
    t = np.arange(length) / ctx.sr
    ir = lowpass(ctx.rng.standard_normal(length), 5000, ctx.sr) * np.exp(-6.9 * t / seconds)
    ir = (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)
    tail = signal.fftconvolve(x.astype(np.float32), ir)[: x.size]
    return (1 - wet) * x + wet * tail


def sidechain(ctx: ClipContext, *, depth: float) -> np.ndarray:
    """Gain that ducks on every beat, the pumping of four-on-the-floor dance music."""
    since_beat = (np.arange(ctx.n) % ctx.beat) / ctx.sr
    return 1.0 - depth * np.exp(-since_beat / 0.09)


VOWELS: dict[str, tuple[tuple[float, float], ...]] = {
    "a": ((730, 130), (1090, 90), (2440, 160)),
    "e": ((530, 90), (1840, 100), (2480, 160)),
    "i": ((270, 60), (2290, 100), (3010, 200)),
    "o": ((570, 90), (840, 80), (2410, 160)),
    "u": ((300, 70), (870, 80), (2240, 160)),
}


def syllable(ctx: ClipContext, *, f0: float, length: int, vowel: str, consonant: bool) -> np.ndarray:
    """One spoken syllable: an optional fricative, then a voiced vowel with falling pitch."""
    t = np.arange(length) / ctx.sr
    glide = f0 * (1.0 + 0.08 * np.sin(np.pi * t / t[-1]) - 0.06 * t / t[-1])
    pulses = _wavetable(harmonic_amps("saw", 40))[((np.cumsum(glide) / ctx.sr % 1.0) * _TABLE_SIZE).astype(np.int32)]
    voiced = formant_filter(pulses, VOWELS[vowel], ctx.sr)
    voiced *= adsr(length, ctx.sr, attack=0.02, decay=0.08, sustain=0.7, release=0.04)
    if consonant:
        frication = int(0.05 * ctx.sr)
        noise = bandpass(ctx.rng.standard_normal(frication), 2500, 8000, ctx.sr) * np.hanning(frication)
        return np.concatenate((0.5 * noise, voiced))
    return voiced


def speech_track(ctx: ClipContext, *, f0: float, rate: float, pause: float,
                 on_beat: bool = False) -> np.ndarray:
    """Speech-like phrases: syllable bursts with vowel formants, separated by pauses.

    ``on_beat`` snaps syllables to the 16th-note grid (rap) instead of free timing.
    """
    out = np.zeros(ctx.n, dtype=np.float32)
    pos = int(ctx.uniform(0.1, 0.6) * ctx.sr)
    vowels = tuple(VOWELS)
    while pos < ctx.n:
        phrase_end = pos + int(ctx.uniform(1.2, 3.5) * ctx.sr)
        pitch = f0 * ctx.uniform(0.9, 1.15)
        while pos < min(phrase_end, ctx.n):
            length = int(ctx.sr / rate * ctx.uniform(0.6, 1.3))
            if on_beat:
                sixteenth = ctx.beat / 4
                pos = int(math.ceil(pos / sixteenth) * sixteenth)
                length = int(sixteenth * ctx.pick((1, 1, 2, 2, 3)))
                if pos >= ctx.n:
                    break
            burst = syllable(ctx, f0=pitch, length=max(length, 800), vowel=ctx.pick(vowels),
                             consonant=ctx.chance(0.6))
            end = min(ctx.n, pos + burst.size)
            out[pos:end] += ctx.uniform(0.6, 1.0) * burst[: end - pos]
            pos += burst.size + int(ctx.uniform(0.0, 0.05) * ctx.sr)
            pitch *= 0.985  # declination across the phrase
        pos += int(pause * ctx.uniform(0.6, 1.6) * ctx.sr)
    return out


def glitch_events(ctx: ClipContext, *, count: int) -> np.ndarray:
    """Experimental glitches: bit-crushed beeps, stuttered noise and clicks at random times."""
    out = np.zeros(ctx.n, dtype=np.float32)
    for _ in range(count):
        length = int(ctx.uniform(0.01, 0.25) * ctx.sr)
        start = int(ctx.rng.integers(0, max(1, ctx.n - length)))
        t = np.arange(length) / ctx.sr
        kind = ctx.pick(("beep", "crush", "stutter", "click"))
        if kind == "beep":
            burst = np.sign(np.sin(_TWO_PI * ctx.uniform(200, 6000) * t))
        elif kind == "crush":
            burst = np.round(np.sin(_TWO_PI * ctx.uniform(50, 900) * t) * 3) / 3
        elif kind == "stutter":
            burst = np.resize(ctx.rng.standard_normal(max(8, length // 8)), length)
        else:
            burst = np.zeros(length)
            burst[:: max(1, length // 6)] = 1.0
        out[start:start + length] += ctx.uniform(0.2, 1.0) * burst * np.hanning(length)
    return out


def drifting_noise(ctx: ClipContext, *, block_seconds: float = 0.4) -> np.ndarray:
    """Noise whose resonant band wanders (overlap-added band-passed blocks)."""
    block = int(block_seconds * ctx.sr)
    window = np.hanning(2 * block)
    out = np.zeros(ctx.n + 2 * block, dtype=np.float32)
    centre = ctx.uniform(300, 3000)
    for start in range(0, ctx.n, block):
        centre = float(np.clip(centre * 2 ** ctx.rng.normal(0, 0.35), 120, 9000))
        semitone_centre = midi_to_hz(round(69 + 12 * math.log2(centre / 440)))
        seg = bandpass(ctx.rng.standard_normal(2 * block), semitone_centre * 0.8, semitone_centre * 1.25, ctx.sr)
        out[start:start + 2 * block] += seg * window
    return out[: ctx.n]


def inharmonic_drone(ctx: ClipContext, *, base_hz: float, partials: int) -> np.ndarray:
    """Slowly beating inharmonic partials: a metallic, unpitched drone."""
    t = np.arange(ctx.n) / ctx.sr
    out = np.zeros(ctx.n)
    for _ in range(partials):
        ratio = ctx.uniform(1.0, 7.0)
        swell = 0.5 + 0.5 * np.sin(_TWO_PI * ctx.uniform(0.02, 0.2) * t + ctx.uniform(0, 6.28))
        out += np.sin(_TWO_PI * base_hz * ratio * t) * swell / ratio
    return out


# --------------------------------------------------------------------------- mixing


def mix(*layers: tuple[np.ndarray, float]) -> np.ndarray:
    """Sum (signal, gain) layers after normalising each to unit RMS, so gains are levels."""
    out = np.zeros(layers[0][0].size)
    for layer, gain in layers:
        rms = float(np.sqrt(np.mean(np.square(layer, dtype=np.float64))))
        if rms > 1e-9:
            out += layer * (gain / rms)
    return out


def master(x: np.ndarray, ctx: ClipContext, *, rms_db: float) -> np.ndarray:
    """Remove rumble, set loudness, soft-limit peaks, keep headroom and fade the ends."""
    x = highpass(x, 30.0, ctx.sr)
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms < 1e-9:
        raise SynthError("synthesised clip is silent")
    x = np.tanh(x * (10 ** (rms_db / 20) / rms))
    x *= min(1.0, PEAK_CEILING / float(np.max(np.abs(x))))  # headroom for MP3 overshoot
    fade = min(x.size // 4, int(0.01 * ctx.sr))
    x[:fade] *= np.linspace(0, 1, fade)
    x[x.size - fade:] *= np.linspace(1, 0, fade)
    return x.astype(np.float32)


# --------------------------------------------------------------------------- genres


def _render_rock(ctx: ClipContext) -> np.ndarray:
    """Backbeat drums, distorted saw power chords, driving 8th bass, optional lead."""
    prog = ctx.pick((((0, "power"), (5, "power"), (7, "power"), (5, "power")),
                     ((0, "power"), (8, "power"), (10, "power"), (7, "power")),
                     ((0, "power"), (10, "power"), (5, "power"), (0, "power"))))
    r = ctx.rng
    saw = harmonic_amps("saw", 30)
    chug = ctx.pick(("x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.", "X.......X.......", "xxx.xxx.xxx.xxx."))
    guitar = render_notes(chord_notes(ctx, prog, chug, low=40, length_beats=0.5 if "." in chug[1:2] else 0.25,
                                      strum_ms=6), pad_voice(saw, ctx.sr, attack=0.005, release=0.03,
                                                             detune=0.006), ctx.n)
    guitar = lowpass(np.tanh(ctx.uniform(4, 14) * guitar), ctx.uniform(3000, 5500), ctx.sr, order=4)
    bass = render_notes(bass_notes(ctx, prog, "x.x.x.x.x.x.x.x.", low=28, length_beats=0.45),
                        bass_voice(saw, ctx.sr, decay=0.2), ctx.n)
    drums = drum_track(ctx, (
        (ctx.pick(("x.......x.x.....", "x.x.....x.......", "x......xx.x.....")),
         kick(ctx.sr, f_start=160, f_end=55, decay=0.12, click=0.4, rng=r), 1.0),
        ("....X.......X...", snare(ctx.sr, tone_hz=190, noise_mix=0.7, decay=0.15, rng=r), 0.9),
        (ctx.pick(("x.x.x.x.x.x.x.x.", "x.o.x.o.x.o.x.o.")), hat(ctx.sr, decay=0.04, rng=r), 0.35),
        ("X...............", metal(ctx.sr, base_hz=430, decay=0.9, rng=r), 0.3 * ctx.chance(0.6)),
    ))
    layers = [(guitar, ctx.uniform(0.8, 1.2)), (lowpass(bass, 900, ctx.sr), 0.5), (drums, ctx.uniform(0.7, 1.0))]
    if ctx.chance(0.5):
        lead = render_notes(melody_notes(ctx, prog, low=62, high=79, durations=(0.5, 0.5, 1.0, 0.25),
                                         scale="pentatonic_minor"),
                            pad_voice(saw, ctx.sr, attack=0.01, release=0.05, vibrato_hz=5.5,
                                      vibrato_depth=0.006), ctx.n)
        layers.append((lowpass(np.tanh(8 * lead), 4500, ctx.sr), 0.35))
    return master(mix(*layers), ctx, rms_db=ctx.uniform(-13, -10))


def _render_electronic(ctx: ClipContext) -> np.ndarray:
    """Four-on-the-floor kick, off-beat open hats, pumping saw bass, supersaw chords, arp."""
    prog = ctx.pick((((0, "min7"), (8, "maj7"), (3, "maj"), (10, "maj")),
                     ((0, "min"), (0, "min"), (8, "maj"), (10, "maj")),
                     ((0, "min9"), (5, "min7"), (0, "min9"), (7, "min7"))))
    r = ctx.rng
    saw = harmonic_amps("saw", 24)
    drums = drum_track(ctx, (
        ("X...X...X...X...", kick(ctx.sr, f_start=180, f_end=48, decay=0.18, click=0.3, rng=r), 1.1),
        ("....x.......x...", clap(ctx.sr, rng=r), 0.5),
        ("..x...x...x...x.", hat(ctx.sr, decay=0.18, rng=r, cutoff=8000), 0.35),
        (ctx.pick(("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", "................")),
         hat(ctx.sr, decay=0.02, rng=r, cutoff=9000), 0.25),
    ))
    pump = sidechain(ctx, depth=ctx.uniform(0.5, 0.85))
    bass = render_notes(bass_notes(ctx, prog, ctx.pick(("..x...x...x...x.", "x.xxx.xxx.xxx.xx", "..xx..xx..xx..xx")),
                                   low=33, length_beats=0.22, figure=(0, 0, 12, 0)),
                        bass_voice(saw, ctx.sr, decay=0.12), ctx.n)
    bass = lowpass(bass, ctx.uniform(400, 1400), ctx.sr, order=4) * pump
    chords = render_notes(chord_notes(ctx, prog, ctx.pick(("x...............", "x..x..x.........", "..x..x..x..x..x.")),
                                      low=57, length_beats=ctx.pick((4.0, 0.6))),
                          pad_voice(saw, ctx.sr, attack=0.01, release=0.1, detune=0.012), ctx.n)
    chords = lowpass(chords, ctx.uniform(1800, 5000), ctx.sr) * pump
    layers = [(drums, 1.0), (bass, ctx.uniform(0.5, 0.8)), (chords, ctx.uniform(0.3, 0.6))]
    if ctx.chance(0.6):
        arp = render_notes(arpeggio_notes(ctx, prog, "xxxxxxxxxxxxxxxx", low=69, length_beats=0.2,
                                          order=(0, 1, 2, 3, 2, 1)),
                           bass_voice(harmonic_amps("square", 16), ctx.sr, decay=0.08), ctx.n)
        layers.append((arp * pump, ctx.uniform(0.15, 0.35)))
    return master(mix(*layers), ctx, rms_db=ctx.uniform(-12, -9))


def _render_hiphop(ctx: ClipContext) -> np.ndarray:
    """Heavy boom-bap/808 kick, snare on 2 and 4, swung hats, dusty keys loop, rap."""
    prog = ctx.pick((((0, "min7"), (5, "min7")), ((0, "min7"), (8, "maj7"), (7, "min7"), (5, "min7")),
                     ((0, "min9"), (0, "min9"), (3, "maj7"), (5, "min7"))))
    r = ctx.rng
    swing = ctx.uniform(0.3, 0.8)
    drums = drum_track(ctx, (
        (ctx.pick(("X......X..X.....", "X.....X...X..x..", "X..X......X.....")),
         kick(ctx.sr, f_start=120, f_end=48, decay=ctx.uniform(0.25, 0.5), click=0.3, rng=r), 1.3),
        ("....X.......X...", snare(ctx.sr, tone_hz=200, noise_mix=0.6, decay=0.12, rng=r), 0.8),
        (ctx.pick(("xxxxxxxxxxxxxxxx", "x.x.x.x.x.x.x.x.", "x.xox.xox.xox.xo")),
         hat(ctx.sr, decay=0.03, rng=r), 0.25),
    ), swing=swing)
    keys_voice = ctx.pick((fm_voice(ctx.sr, ratio=1.0, index=1.5, decay=0.9),
                           piano_voice(ctx.sr, brightness=0.3, decay=1.2)))
    keys = render_notes(chord_notes(ctx, prog, ctx.pick(("x.......x.......", "x.....x.....x...")),
                                    low=55, length_beats=1.8, swing=swing), keys_voice, ctx.n)
    keys = lowpass(keys, ctx.uniform(1800, 3500), ctx.sr, order=2)
    sub = render_notes(bass_notes(ctx, prog, "x.........x.....", low=31, length_beats=1.5),
                       bass_voice(harmonic_amps("soft", 3), ctx.sr, decay=0.6), ctx.n)
    layers = [(drums, 1.0), (keys, ctx.uniform(0.35, 0.6)), (sub, 0.6),
              (vinyl_crackle(ctx, density=ctx.uniform(2e-4, 1e-3)), ctx.uniform(0.03, 0.08))]
    if ctx.chance(0.7):
        layers.append((speech_track(ctx, f0=ctx.uniform(95, 150), rate=6.0, pause=0.4, on_beat=True),
                       ctx.uniform(0.4, 0.7)))
    return master(mix(*layers), ctx, rms_db=ctx.uniform(-13, -10))


def _render_classical(ctx: ClipContext) -> np.ndarray:
    """No percussion: bowed strings (vibrato, slow attack), cello line, hall, slow dynamics."""
    major = SCALES[ctx.scale] == SCALES["major"]
    if major:
        prog = ctx.pick((((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")),
                         ((0, "maj"), (9, "min"), (2, "min"), (7, "dom7"))))
    else:
        prog = ctx.pick((((0, "min"), (5, "min"), (7, "maj"), (0, "min")),
                         ((0, "min"), (8, "maj"), (5, "min"), (7, "dom7"))))
    strings = harmonic_amps("saw", 12)
    violins = pad_voice(strings, ctx.sr, attack=ctx.uniform(0.15, 0.4), release=0.3, vibrato_hz=5.5,
                        vibrato_depth=0.004, detune=0.003)
    section = render_notes(chord_notes(ctx, prog, "x...............", low=55, length_beats=4.0, velocity=0.5),
                           violins, ctx.n)
    cello = render_notes(bass_notes(ctx, prog, ctx.pick(("x.......x.......", "x...............")), low=36,
                                    length_beats=2.0), pad_voice(strings, ctx.sr, attack=0.12, release=0.2,
                                                                 vibrato_hz=5.0, vibrato_depth=0.003), ctx.n)
    melody = render_notes(melody_notes(ctx, prog, low=67, high=88, durations=(1.0, 2.0, 1.0, 0.5, 1.5),
                                       rest_prob=0.1, legato=1.0), violins, ctx.n)
    layers = [(lowpass(section, 5000, ctx.sr), 0.6), (cello, 0.45), (melody, ctx.uniform(0.4, 0.7))]
    if ctx.chance(0.4):
        harp = render_notes(arpeggio_notes(ctx, prog, "x.x.x.x.x.x.x.x.", low=48, length_beats=1.5,
                                           order=(0, 1, 2, 3, 4, 3, 2, 1)),
                            pluck_voice(ctx.sr, ctx.rng, damping=0.998, brightness=0.4), ctx.n)
        layers.append((harp, 0.3))
    music = reverb(mix(*layers), ctx, seconds=ctx.uniform(1.5, 2.5), wet=0.35)
    t = np.arange(ctx.n) / ctx.sr
    dynamics = 0.55 + 0.45 * np.sin(_TWO_PI * t / ctx.uniform(12, 24) + ctx.uniform(0, 6.28))
    return master(music * dynamics, ctx, rms_db=ctx.uniform(-24, -19))


def _render_jazz(ctx: ClipContext) -> np.ndarray:
    """Swing ride and hi-hat on 2 and 4, walking bass, 7th-chord comping, optional horn."""
    prog = ctx.pick((((2, "min7"), (7, "dom7"), (0, "maj7"), (0, "maj7")),
                     ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "dom7")),
                     ((0, "min7"), (5, "dom7"), (10, "maj7"), (3, "maj7"))))
    r = ctx.rng
    drums = drum_track(ctx, (
        ("x..x.xx..x.x", metal(ctx.sr, base_hz=ctx.uniform(380, 520), decay=0.6, rng=r), 0.6),
        ("...x.....x..", hat(ctx.sr, decay=0.025, rng=r, cutoff=5000), 0.3),
        (ctx.pick(("..o.....o..o", "........o...", ".....o.....o")),
         snare(ctx.sr, tone_hz=230, noise_mix=0.8, decay=0.1, rng=r), 0.3),
        ("x.....x.....", kick(ctx.sr, f_start=110, f_end=60, decay=0.1, click=0.1, rng=r), 0.25),
    ))
    bass = render_notes(walking_bass(ctx, prog, low=31), pluck_voice(ctx.sr, r, damping=0.995, brightness=0.3), ctx.n)
    comp_voice = ctx.pick((piano_voice(ctx.sr, brightness=0.5, decay=0.7),
                           fm_voice(ctx.sr, ratio=1.0, index=1.2, decay=0.6)))
    comp = render_notes(chord_notes(ctx, prog, ctx.pick(("x....x......", "...x.....x..", "x.......x...")),
                                    low=52, length_beats=0.9, velocity=0.5), comp_voice, ctx.n)
    layers = [(drums, 0.8), (lowpass(bass, 1500, ctx.sr), 0.8), (comp, 0.55)]
    if ctx.chance(0.6):
        horn = render_notes(melody_notes(ctx, prog, low=60, high=82, durations=(0.5, 0.5, 0.5, 1.0, 0.33),
                                         scale=ctx.pick(("dorian", "mixolydian"))),
                            pad_voice(harmonic_amps("reed", 16), ctx.sr, attack=0.03, release=0.05,
                                      vibrato_hz=5.0, vibrato_depth=0.005), ctx.n)
        layers.append((lowpass(horn, 3500, ctx.sr), 0.45))
    return master(reverb(mix(*layers), ctx, seconds=0.8, wet=0.15), ctx, rms_db=ctx.uniform(-20, -16))


def _render_folk(ctx: ClipContext) -> np.ndarray:
    """Finger-picked Karplus-Strong guitar, optional strums, fiddle, foot stomp."""
    prog = ctx.pick((((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")), ((0, "maj"), (9, "min"), (5, "maj"), (7, "maj")),
                     ((0, "min"), (10, "maj"), (8, "maj"), (10, "maj"))))
    r = ctx.rng
    guitar = pluck_voice(ctx.sr, r, damping=ctx.uniform(0.994, 0.998), brightness=ctx.uniform(0.5, 0.9))
    picking = render_notes(arpeggio_notes(ctx, prog, "x.x.x.x.x.x.x.x.", low=ctx.pick((45, 48, 50)),
                                          length_beats=1.5, order=(0, 2, 1, 3, 0, 2, 1, 4)), guitar, ctx.n)
    layers = [(picking, 1.0)]
    if ctx.chance(0.5):
        strum = render_notes(chord_notes(ctx, prog, "x...x...x...x...", low=52, length_beats=1.0, strum_ms=15),
                             guitar, ctx.n)
        layers.append((strum, 0.5))
    if ctx.chance(0.5):
        fiddle = render_notes(melody_notes(ctx, prog, low=64, high=84, durations=(0.5, 1.0, 1.0, 2.0)),
                              pad_voice(harmonic_amps("saw", 14), ctx.sr, attack=0.06, release=0.1,
                                        vibrato_hz=6.0, vibrato_depth=0.006), ctx.n)
        layers.append((bandpass(fiddle, 400, 4000, ctx.sr), 0.35))
    if ctx.chance(0.4):
        stomp = membrane(ctx.sr, freq=70, decay=0.08, slap=0.2, rng=r)
        layers.append((drum_track(ctx, (("x...x...x...x...", stomp, 1.0),)), 0.3))
    return master(reverb(mix(*layers), ctx, seconds=0.6, wet=0.2), ctx, rms_db=ctx.uniform(-20, -16))


def _render_experimental(ctx: ClipContext) -> np.ndarray:
    """No pulse: wandering noise, inharmonic drones, glitches and abrupt silences."""
    layers = [(drifting_noise(ctx), ctx.uniform(0.2, 1.0)),
              (inharmonic_drone(ctx, base_hz=ctx.uniform(40, 300), partials=int(ctx.rng.integers(4, 10))),
               ctx.uniform(0.2, 1.0)),
              (glitch_events(ctx, count=int(ctx.rng.integers(20, 120))), ctx.uniform(0.3, 1.0))]
    out = mix(*layers)
    gate_block = int(ctx.uniform(0.3, 2.0) * ctx.sr)
    gate = np.repeat(ctx.rng.random(ctx.n // gate_block + 1) > ctx.uniform(0.1, 0.35), gate_block)[: ctx.n]
    gate = np.convolve(gate.astype(float), np.ones(256) / 256, "same")
    return master(out * (0.05 + 0.95 * gate), ctx, rms_db=ctx.uniform(-24, -14))


def _render_spoken(ctx: ClipContext) -> np.ndarray:
    """Speech: formant syllable bursts in phrases, room tone, sometimes a radio band or music bed."""
    voice = speech_track(ctx, f0=ctx.pick((ctx.uniform(90, 140), ctx.uniform(170, 240))),
                         rate=ctx.uniform(3.5, 5.5), pause=ctx.uniform(0.3, 0.9))
    room = lowpass(ctx.rng.standard_normal(ctx.n), 3000, ctx.sr)
    layers = [(voice, 1.0), (room, ctx.uniform(0.01, 0.05))]
    if ctx.chance(0.25):
        bed = render_notes(chord_notes(ctx, ((0, "maj7"), (5, "maj7")), "x...............", low=55, length_beats=4.0),
                           pad_voice(harmonic_amps("soft", 6), ctx.sr, attack=0.5, release=0.5), ctx.n)
        layers.append((bed, 0.12))
    out = mix(*layers)
    if ctx.chance(0.3):
        out = bandpass(out, 300, 3400, ctx.sr, order=2)  # telephone / AM radio band
    return master(out, ctx, rms_db=ctx.uniform(-21, -17))


def _render_pop(ctx: ClipContext) -> np.ndarray:
    """I-V-vi-IV on bright piano or synth, clap backbeat, 8th-note bass, sung-like lead."""
    prog = ctx.pick((((0, "maj"), (7, "maj"), (9, "min"), (5, "maj")), ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")),
                     ((0, "maj"), (5, "maj"), (9, "min"), (7, "maj"))))
    r = ctx.rng
    drums = drum_track(ctx, (
        (ctx.pick(("x.......x.x.....", "x...x...x...x...", "x.....x.x.......")),
         kick(ctx.sr, f_start=150, f_end=52, decay=0.14, click=0.3, rng=r), 1.0),
        ("....x.......x...",
         ctx.pick((clap(ctx.sr, rng=r), snare(ctx.sr, tone_hz=210, noise_mix=0.6, decay=0.12, rng=r))), 0.8),
        ("x.x.x.x.x.x.x.x.", hat(ctx.sr, decay=0.035, rng=r), 0.3),
    ))
    keys_voice = ctx.pick((piano_voice(ctx.sr, brightness=0.9, decay=1.0),
                           bass_voice(harmonic_amps("saw", 20), ctx.sr, decay=0.25)))
    keys = render_notes(chord_notes(ctx, prog, ctx.pick(("x...x...x...x...", "x.x.x.x.x.x.x.x.", "x..x..x...x..x..")),
                                    low=57, length_beats=0.9), keys_voice, ctx.n)
    bass = render_notes(bass_notes(ctx, prog, "x.x.x.x.x.x.x.x.", low=33, length_beats=0.45),
                        bass_voice(harmonic_amps("soft", 6), ctx.sr, decay=0.3), ctx.n)
    lead = render_notes(melody_notes(ctx, prog, low=60, high=76, durations=(0.5, 1.0, 0.5, 1.5), rest_prob=0.2),
                        pad_voice(harmonic_amps("saw", 20), ctx.sr, attack=0.03, release=0.08, vibrato_hz=5.5,
                                  vibrato_depth=0.008), ctx.n)
    lead = formant_filter(lead, VOWELS[ctx.pick(("a", "o", "e"))], ctx.sr)
    layers = [(drums, 1.0), (keys, ctx.uniform(0.45, 0.7)), (bass, 0.5), (lead, ctx.uniform(0.45, 0.7))]
    return master(reverb(mix(*layers), ctx, seconds=0.9, wet=0.15), ctx, rms_db=ctx.uniform(-14, -11))


def _render_blues(ctx: ClipContext) -> np.ndarray:
    """Triplet shuffle, 12-bar I7-IV7-V7, boogie bass, overdriven comping, bluesy lead."""
    prog = tuple((offset, "dom7") for offset in (0, 0, 0, 0, 5, 5, 0, 0, 7, 5, 0, 7))
    r = ctx.rng
    drums = drum_track(ctx, (
        ("x.xx.xx.xx.x", hat(ctx.sr, decay=0.04, rng=r, cutoff=6000), 0.35),
        ("x.....x.....", kick(ctx.sr, f_start=120, f_end=55, decay=0.12, click=0.2, rng=r), 0.8),
        ("...x.....x..", snare(ctx.sr, tone_hz=200, noise_mix=0.6, decay=0.13, rng=r), 0.7),
    ))
    boogie = render_notes(bass_notes(ctx, prog, "x.xx.xx.xx.x", low=33, figure=(0, 4, 7, 9, 10, 9, 7, 4),
                                     length_beats=0.6), bass_voice(harmonic_amps("saw", 16), ctx.sr, decay=0.2), ctx.n)
    comp = render_notes(chord_notes(ctx, prog, ctx.pick(("x.xx.xx.xx.x", "...x.....x..")), low=52, length_beats=0.55),
                        pad_voice(harmonic_amps("saw", 20), ctx.sr, attack=0.005, release=0.05), ctx.n)
    comp = lowpass(np.tanh(ctx.uniform(2, 4) * comp), 3000, ctx.sr)
    lead = render_notes(melody_notes(ctx, prog, low=60, high=79, durations=(0.67, 0.33, 1.0, 1.33), rest_prob=0.35,
                                     scale="blues"),
                        pad_voice(harmonic_amps("reed", 18), ctx.sr, attack=0.02, release=0.06, vibrato_hz=5.5,
                                  vibrato_depth=0.01), ctx.n)
    layers = [(drums, 0.8), (lowpass(boogie, 1200, ctx.sr), 0.6), (comp, 0.5), (bandpass(lead, 500, 3500, ctx.sr), 0.5)]
    return master(reverb(mix(*layers), ctx, seconds=0.7, wet=0.15), ctx, rms_db=ctx.uniform(-17, -13))


def _render_country(ctx: ClipContext) -> np.ndarray:
    """Boom-chick: root-fifth bass on 1 and 3, strummed steel strings on 2 and 4, twangy lead."""
    prog = ctx.pick((((0, "maj"), (5, "maj"), (7, "maj"), (0, "maj")), ((0, "maj"), (0, "maj"), (5, "maj"), (7, "maj")),
                     ((0, "maj"), (7, "maj"), (5, "maj"), (0, "maj"))))
    r = ctx.rng
    drums = drum_track(ctx, (
        ("x.......x.......", kick(ctx.sr, f_start=110, f_end=60, decay=0.09, click=0.1, rng=r), 0.6),
        (ctx.pick(("....x.......x...", "oxoxXxoxoxoxXxox")),
         snare(ctx.sr, tone_hz=220, noise_mix=0.85, decay=0.07, rng=r), 0.45),
    ))
    bass = render_notes(bass_notes(ctx, prog, "x.......x.......", low=36, figure=(0, 7), length_beats=1.0),
                        pluck_voice(ctx.sr, r, damping=0.995, brightness=0.3), ctx.n)
    strum = render_notes(chord_notes(ctx, prog, ctx.pick(("....x.......x...", "..x.x.x...x.x.x.")), low=55,
                                     length_beats=0.8, strum_ms=12),
                         pluck_voice(ctx.sr, r, damping=0.996, brightness=0.95), ctx.n)
    lead_voice = ctx.pick((pluck_voice(ctx.sr, r, damping=0.997, brightness=1.0),
                           pad_voice(harmonic_amps("triangle", 10), ctx.sr, attack=0.12, release=0.2,
                                     vibrato_hz=5.0, vibrato_depth=0.008)))
    lead = render_notes(melody_notes(ctx, prog, low=62, high=81, durations=(0.5, 1.0, 1.0, 0.5),
                                     scale="pentatonic_major"), lead_voice, ctx.n)
    layers = [(drums, 0.7), (bass, 0.7), (strum, 0.8), (lead, ctx.uniform(0.4, 0.6))]
    return master(reverb(mix(*layers), ctx, seconds=0.6, wet=0.15), ctx, rms_db=ctx.uniform(-16, -13))


def _render_soul(ctx: ClipContext) -> np.ndarray:
    """Laid-back backbeat with ghost notes, electric-piano 7th/9th chords, syncopated bass, vocal-like lead."""
    prog = ctx.pick((((0, "min9"), (5, "dom7")), ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "dom7")),
                     ((5, "maj7"), (4, "min7"), (2, "min7"), (0, "maj7"))))
    r = ctx.rng
    swing = ctx.uniform(0.1, 0.4)
    drums = drum_track(ctx, (
        (ctx.pick(("x......xx.x.....", "x.....x...x.....", "x..x......x..x..")),
         kick(ctx.sr, f_start=130, f_end=52, decay=0.15, click=0.2, rng=r), 0.9),
        ("..o.X..o..o.X.o.", snare(ctx.sr, tone_hz=190, noise_mix=0.55, decay=0.12, rng=r), 0.7),
        ("xoxoxoxoxoxoxoxo", hat(ctx.sr, decay=0.03, rng=r), 0.22),
    ), swing=swing)
    rhodes = render_notes(chord_notes(ctx, prog, ctx.pick(("x.....x.....x...", "x.......x.......", "..x...x...x...x.")),
                                      low=53, length_beats=1.4, swing=swing),
                          fm_voice(ctx.sr, ratio=1.0, index=1.8, decay=1.2, tremolo_hz=ctx.uniform(3, 6)), ctx.n)
    bass = render_notes(bass_notes(ctx, prog, "x..x..x...x.x...", low=31, figure=(0, 0, 12, 7, 10),
                                   length_beats=0.6, swing=swing),
                        bass_voice(harmonic_amps("soft", 5), ctx.sr, decay=0.35), ctx.n)
    layers = [(drums, 0.9), (rhodes, 0.6), (bass, 0.6)]
    if ctx.chance(0.6):
        lead = render_notes(melody_notes(ctx, prog, low=60, high=77, durations=(0.5, 1.0, 1.5, 0.75), rest_prob=0.25,
                                         scale="pentatonic_minor"),
                            pad_voice(harmonic_amps("saw", 20), ctx.sr, attack=0.05, release=0.1, vibrato_hz=5.0,
                                      vibrato_depth=0.012), ctx.n)
        layers.append((formant_filter(lead, VOWELS[ctx.pick(("a", "o", "u"))], ctx.sr), 0.5))
    return master(reverb(mix(*layers), ctx, seconds=1.0, wet=0.15), ctx, rms_db=ctx.uniform(-17, -13))


def _render_international(ctx: ClipContext) -> np.ndarray:
    """Modal music: drone on root and fifth, darbuka doum/tek rhythm, ornamented plucked lead."""
    r = ctx.rng
    drone = render_notes([(0, ctx.n, 36 + ctx.key, 1.0), (0, ctx.n, 43 + ctx.key, 0.7)],
                         pad_voice(harmonic_amps("reed", 24), ctx.sr, attack=1.0, release=1.0,
                                   vibrato_hz=0.3, vibrato_depth=0.002), ctx.n)
    perc = drum_track(ctx, (
        (ctx.pick(("x..x..x.x...x...", "x...x.x.x...x...", "x.....x...x.....")),
         membrane(ctx.sr, freq=ctx.uniform(80, 120), decay=0.18, slap=0.2, rng=r), 1.0),
        (ctx.pick(("...x..x....xx.x.", "..x.x...x.x.x.xx", "x.xxx.xxx.xxx.xx")),
         membrane(ctx.sr, freq=ctx.uniform(500, 900), decay=0.03, slap=1.0, rng=r), 0.6),
    ))
    lead_voice = pluck_voice(ctx.sr, r, damping=0.996, brightness=0.9)
    lead = render_notes(melody_notes(ctx, ((0, "maj"),), low=55 + ctx.key % 5, high=81,
                                     durations=(0.25, 0.25, 0.5, 0.5, 1.0), rest_prob=0.1), lead_voice, ctx.n)
    lead = np.tanh(3 * lead)  # sympathetic-string buzz
    layers = [(drone, ctx.uniform(0.3, 0.5)), (perc, ctx.uniform(0.6, 0.9)), (lead, 0.8)]
    return master(reverb(mix(*layers), ctx, seconds=0.9, wet=0.2), ctx, rms_db=ctx.uniform(-17, -13))


def _render_old_time(ctx: ClipContext) -> np.ndarray:
    """Ragtime oom-pah piano through a gramophone: narrow band, hiss and crackle."""
    prog = ctx.pick((((0, "maj"), (9, "dom7"), (2, "dom7"), (7, "dom7")),
                     ((0, "maj"), (0, "maj"), (7, "dom7"), (0, "maj")),
                     ((0, "maj"), (5, "maj"), (7, "dom7"), (0, "maj"))))
    piano = piano_voice(ctx.sr, brightness=0.6, decay=0.8)
    oom = render_notes(bass_notes(ctx, prog, "x.......x.......", low=36, figure=(0, 7), length_beats=0.9), piano, ctx.n)
    pah = render_notes(chord_notes(ctx, prog, "....x.......x...", low=55, length_beats=0.8, velocity=0.5), piano, ctx.n)
    tune = render_notes(melody_notes(ctx, prog, low=67, high=86, durations=(0.5, 0.25, 0.75, 0.5, 1.0),
                                     rest_prob=0.05), ctx.pick((piano, pad_voice(harmonic_amps("reed", 12), ctx.sr,
                                                                                   attack=0.03, release=0.05,
                                                                                   vibrato_hz=6, vibrato_depth=0.01))),
                        ctx.n)
    music = mix((oom, 0.6), (pah, 0.5), (tune, 0.7))
    music = bandpass(music, ctx.uniform(250, 400), ctx.uniform(2500, 3800), ctx.sr, order=2)
    surface = vinyl_crackle(ctx, density=ctx.uniform(1e-3, 4e-3))
    out = mix((music, 1.0), (surface, ctx.uniform(0.15, 0.35)))
    return master(out, ctx, rms_db=ctx.uniform(-22, -18))


def _render_easy_listening(ctx: ClipContext) -> np.ndarray:
    """Bossa/lounge: rim-click clave, shaker, vibraphone maj7/9 chords, soft bass, warm filter."""
    prog = ctx.pick((((0, "maj7"), (2, "min7"), (7, "dom7"), (0, "maj7")), ((0, "maj9"), (5, "maj7")),
                     ((2, "min7"), (7, "dom7"), (0, "maj7"), (9, "min7"))))
    r = ctx.rng
    drums = drum_track(ctx, (
        ("x..x..x...x..x..", membrane(ctx.sr, freq=1700, decay=0.01, slap=0.4, rng=r), 0.35),
        ("xoxoxoxoxoxoxoxo", hat(ctx.sr, decay=0.05, rng=r, cutoff=5000), 0.12),
        ("x..xx..xx..xx..x", kick(ctx.sr, f_start=90, f_end=60, decay=0.1, click=0.0, rng=r), 0.3),
    ))
    vibes = fm_voice(ctx.sr, ratio=4.0, index=ctx.uniform(0.5, 1.2), decay=1.2, tremolo_hz=ctx.uniform(4, 6))
    chords = render_notes(chord_notes(ctx, prog, ctx.pick(("x.....x.........", "x..x..x...x..x..")), low=55,
                                      length_beats=1.5, velocity=0.45),
                          ctx.pick((vibes, pluck_voice(ctx.sr, r, damping=0.996, brightness=0.3))), ctx.n)
    bass = render_notes(bass_notes(ctx, prog, "x..x....x..x....", low=33, figure=(0, 7, 7, 0), length_beats=1.0),
                        bass_voice(harmonic_amps("soft", 3), ctx.sr, decay=0.5), ctx.n)
    melody = render_notes(melody_notes(ctx, prog, low=64, high=81, durations=(1.0, 1.5, 0.5, 2.0), rest_prob=0.25),
                          ctx.pick((vibes, pad_voice(harmonic_amps("soft", 8), ctx.sr, attack=0.08, release=0.2,
                                                     vibrato_hz=5, vibrato_depth=0.004))), ctx.n)
    music = mix((drums, 0.5), (chords, 0.6), (bass, 0.5), (melody, 0.55))
    music = lowpass(reverb(music, ctx, seconds=1.4, wet=0.25), ctx.uniform(3500, 6000), ctx.sr)
    return master(music, ctx, rms_db=ctx.uniform(-22, -18))


def _render_instrumental(ctx: ClipContext) -> np.ndarray:
    """Soundtrack/ambient: piano arpeggios over a slow detuned pad and sub drone, cinematic booms."""
    major = SCALES[ctx.scale] == SCALES["major"]
    prog = (((9, "min"), (5, "maj"), (0, "maj"), (7, "maj")) if major
            else ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj")))
    r = ctx.rng
    piano = render_notes(arpeggio_notes(ctx, prog, ctx.pick(("x.x.x.x.x.x.x.x.", "x..x..x.x..x..x.")), low=57,
                                        length_beats=2.0, order=(0, 1, 2, 3, 4, 3, 2, 1), bars_per_chord=2),
                         piano_voice(ctx.sr, brightness=0.4, decay=1.5), ctx.n)
    pad = render_notes(chord_notes(ctx, prog, "x...............", low=48, length_beats=8.0, bars_per_chord=2),
                       pad_voice(harmonic_amps("saw", 16), ctx.sr, attack=1.5, release=1.0, detune=0.008), ctx.n)
    pad = lowpass(pad, ctx.uniform(900, 2000), ctx.sr)
    layers = [(piano, 0.8), (pad, ctx.uniform(0.4, 0.7))]
    if ctx.chance(0.5):
        layers.append((drum_track(ctx, (("x...............", kick(ctx.sr, f_start=80, f_end=40, decay=0.6,
                                                                   click=0.0, rng=r), 1.0),)), 0.4))
    return master(reverb(mix(*layers), ctx, seconds=2.5, wet=0.35), ctx, rms_db=ctx.uniform(-21, -17))


@dataclass(frozen=True)
class GenreRecipe:
    """How one top-level genre sounds: tempo range, candidate scales and a renderer."""

    title: str
    bpm: tuple[float, float] | None  # None: no steady pulse
    scales: tuple[str, ...]
    render: Callable[[ClipContext], np.ndarray]


GENRE_RECIPES: dict[int, GenreRecipe] = {
    2: GenreRecipe("International", (90, 140), ("phrygian_dominant", "double_harmonic", "pentatonic_major", "dorian"),
                   _render_international),
    3: GenreRecipe("Blues", (70, 105), ("mixolydian",), _render_blues),
    4: GenreRecipe("Jazz", (110, 190), ("major", "dorian"), _render_jazz),
    5: GenreRecipe("Classical", (60, 96), ("major", "minor", "harmonic_minor"), _render_classical),
    8: GenreRecipe("Old-Time / Historic", (85, 115), ("major",), _render_old_time),
    9: GenreRecipe("Country", (95, 135), ("major",), _render_country),
    10: GenreRecipe("Pop", (96, 128), ("major",), _render_pop),
    12: GenreRecipe("Rock", (110, 150), ("minor", "mixolydian"), _render_rock),
    13: GenreRecipe("Easy Listening", (80, 105), ("major",), _render_easy_listening),
    14: GenreRecipe("Soul-RnB", (66, 98), ("dorian", "minor"), _render_soul),
    15: GenreRecipe("Electronic", (120, 135), ("minor",), _render_electronic),
    17: GenreRecipe("Folk", (80, 120), ("major", "mixolydian", "dorian"), _render_folk),
    20: GenreRecipe("Spoken", None, ("major",), _render_spoken),
    21: GenreRecipe("Hip-Hop", (85, 100), ("minor", "dorian"), _render_hiphop),
    38: GenreRecipe("Experimental", None, ("whole_tone",), _render_experimental),
    1235: GenreRecipe("Instrumental", (60, 90), ("major", "minor"), _render_instrumental),
}


def synthesize_clip(genre_id: int, *, seed: int | Sequence[int], seconds: float = 30.0,
                    sample_rate: int = SAMPLE_RATE) -> SynthesizedClip:
    """Synthesise one mono clip typical of a top-level FMA genre.

    Parameters
    ----------
    genre_id : int
        A top-level FMA genre id (a key of :data:`GENRE_RECIPES`).
    seed : int or sequence of int
        Entropy for :class:`numpy.random.SeedSequence`; the same seed gives the same samples.
    seconds : float
        Clip length (FMA clips are 30 s; tests use shorter ones).
    sample_rate : int
        Samples per second.

    Returns
    -------
    SynthesizedClip
        float32 samples in [-1, 1] plus the tempo, key and scale drawn for the clip.
    """
    recipe = GENRE_RECIPES.get(int(genre_id))
    if recipe is None:
        raise SynthError(f"no recipe for genre id {genre_id!r}; known: {sorted(GENRE_RECIPES)}")
    if not 0.05 <= seconds <= 600:
        raise SynthError(f"clip length must be within 0.05..600 s, got {seconds}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    bpm = float(rng.uniform(*recipe.bpm)) if recipe.bpm else None
    scale = recipe.scales[int(rng.integers(len(recipe.scales)))]
    ctx = ClipContext(rng=rng, sr=sample_rate, n=int(round(seconds * sample_rate)),
                      bpm=bpm or float(rng.uniform(70, 110)), key=int(rng.integers(12)), scale=scale)
    audio = recipe.render(ctx)
    return SynthesizedClip(audio=audio, sample_rate=sample_rate, genre_id=int(genre_id), bpm=bpm,
                           key=NOTE_NAMES[ctx.key], scale=scale)
