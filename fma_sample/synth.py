"""The building blocks of the sample's synthesised music: sounds, notes, rhythm, mixing.

Oscillators and envelopes, instrument voices (pads, piano, plucked strings, FM keys,
bass), drum one-shots and patterns, chords, bass lines and melodies drawn in a key,
textures (reverb, vinyl crackle, speech-like syllables, glitches) and the mix and master
stages. :mod:`fma_sample.recipes` combines them into one recipe per FMA genre.

Everything is vectorised numpy: oscillators read wavetables, drums are one-shots placed
at pattern positions, notes are rendered once per (pitch, length) and reused.
Karplus-Strong strings advance one period per numpy operation, never one sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from fma_sample.errors import SynthError

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
