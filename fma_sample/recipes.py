"""How each of FMA's 16 top-level genres sounds, and :func:`synthesize_clip`, which plays one.

Why: real FMA audio cannot be downloaded here, yet feature extraction, genre models and
the recommender need clips whose genre is *audible*. Each genre gets a small recipe that
differs from the others the way real genres do: tempo and rhythm (drum patterns, swing,
BPM range), timbre (harmonic content, attack, distortion, filtering), harmony
(major/minor/modal scales, genre-typical chord progressions) and noise and dynamics.
Every clip draws its own key, tempo, instrument mix and levels from its seed, so tracks
within a genre vary. The instruments are the building blocks of :mod:`fma_sample.synth`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fma_sample.errors import SynthError
from fma_sample.synth import (
    ClipContext,
    NOTE_NAMES,
    SAMPLE_RATE,
    SCALES,
    VOWELS,
    arpeggio_notes,
    bandpass,
    bass_notes,
    bass_voice,
    chord_notes,
    clap,
    drifting_noise,
    drum_track,
    fm_voice,
    formant_filter,
    glitch_events,
    harmonic_amps,
    hat,
    inharmonic_drone,
    kick,
    lowpass,
    master,
    melody_notes,
    membrane,
    metal,
    mix,
    pad_voice,
    piano_voice,
    pluck_voice,
    render_notes,
    reverb,
    sidechain,
    snare,
    speech_track,
    vinyl_crackle,
    walking_bass,
)


@dataclass(frozen=True)
class SynthesizedClip:
    """A mono clip plus the musical facts it was built from (ground truth for tests)."""

    audio: np.ndarray
    sample_rate: int
    genre_id: int
    bpm: float | None
    key: str
    scale: str


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
    dynamics = 0.55 + 0.45 * np.sin(2.0 * np.pi * t / ctx.uniform(12, 24) + ctx.uniform(0, 6.28))
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
