"""From the smoothed emotion to bars of notes: parameter blending and the :class:`Composer`.

The composer works a bar at a time. At each bar boundary it reads the current emotion, fixes
that bar's :class:`MusicParams` and asks every enabled part for its notes, so nothing about the
music changes in the middle of a bar, and every note ends by the end of its bar.

Transitions (the mapping's ``transition:``) are the only sequential state: the tempo glides
from where it is to the new target over ``tempo_glide_beats`` beats (``Bar.beat_tempos`` holds
one tempo per beat), and the harmony (leading emotion, key, mode, progression) switches at the
next bar or only at the next phrase start (``change_at``). Numeric parameters (velocity,
register, density, articulation, leap, rhythm) follow the emotion every bar either way. Given
the seed and the sequence of states, the bars are always the same.

The composer also counts phrases: each phrase's progression, patterns and variation come from
the emotion's form (:func:`.form.plan_phrase`, a pure function of the seed and the phrase number),
and the parts build their motifs from streams named after the section, so returns are heard as
returns. A harmony change at a bar line replays the interrupted phrase in the new emotion.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from collections.abc import Mapping as Mapping_
from typing import Callable

from ..labels import EMOTIONS
from ..mapping import EmotionStyle, Humanize, Mapping, PartConfig
from ..state import EmotionState
from .form import plan_phrase
from .parts import GENERATORS, SLOTS_PER_BEAT, bar_context
from .params import Bar, MusicParams, NoteEvent


def params_for(state: EmotionState, mapping: Mapping) -> MusicParams:
    """Blend the emotions' numbers by their probabilities; mode, key and progression follow the leading label.

    Tempo ranges are blended first, then the arousal (-1..1) picks the point inside the blended range.
    With ``transition.blend: argmax`` only the leading label counts.
    """
    blend = _blender(state, mapping)
    lead = mapping.emotions[state.label]
    position = (max(-1.0, min(1.0, state.arousal)) + 1) / 2
    low, high = blend(lambda style: style.tempo[0]), blend(lambda style: style.tempo[1])
    notes_per_bar = blend(lambda style: style.density)
    tempo = low + (high - low) * position
    pitch_range = _blend_range(blend, lambda style: style.pitch_range)
    velocity = _blend_range(blend, lambda style: style.velocity)
    if mapping.tempo == "follow":  # the DAW keeps the BPM: the arousal is heard in everything else
        notes_per_bar, pitch_range, velocity = _arousal_without_tempo(
            position, notes_per_bar, tempo / ((low + high) / 2), pitch_range, velocity, mapping.beats_per_bar)
    return MusicParams(
        tempo=tempo,
        mode=lead.mode,
        tonic=mapping.tonic_of(state.label),
        density=notes_per_bar / (mapping.beats_per_bar * SLOTS_PER_BEAT),
        beats_per_bar=mapping.beats_per_bar,
        emotion=state.label,
        progression=lead.progression,
        pitch_range=pitch_range,
        velocity=velocity,
        notes_per_bar=notes_per_bar,
        irregularity=blend(lambda style: 1.0 if style.rhythm == "irregular" else 0.0),
        articulation=blend(lambda style: style.articulation),
        leap=blend(lambda style: style.leap),
        progressions=(lead.progression,) + lead.progressions,
        form=lead.form,
        cells=lead.cells,
        accompaniment=lead.accompaniment,
        bass_line=lead.bass_line,
        reharmonise=lead.reharmonise,
        extensions=blend(lambda style: style.extensions),
        tension=blend(lambda style: style.tension),
        dynamics=lead.dynamics,
        swell=blend(lambda style: style.swell),
    )


FOLLOW_REGISTER = 5   # semitones the melody's register moves up (full arousal) or down (none) under tempo: follow
FOLLOW_LOUDNESS = 12  # velocity steps the same moves the velocity range


def _arousal_without_tempo(position: float, notes_per_bar: float, tempo_ratio: float, pitch_range: tuple[int, int],
                           velocity: tuple[int, int], beats_per_bar: int) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """What the arousal (*position* 0..1 in the tempo range) would have done to the BPM, done without it:
    as many notes per second as the arousal's tempo would have played (*tempo_ratio*: that tempo over the
    middle of the range), a register and a loudness that rise with it."""
    most = beats_per_bar * SLOTS_PER_BEAT  # one note per sixteenth
    notes = max(1.0, min(float(most), notes_per_bar * tempo_ratio))
    shift = round(FOLLOW_REGISTER * (2 * position - 1))
    shift = max(-pitch_range[0], min(127 - pitch_range[1], shift))
    loud = round(FOLLOW_LOUDNESS * (2 * position - 1))
    low, high = (max(1, min(127, v + loud)) for v in velocity)
    return notes, (pitch_range[0] + shift, pitch_range[1] + shift), (low, high)


def _blender(state: EmotionState, mapping: Mapping) -> Callable[[Callable[[EmotionStyle], float]], float]:
    """A probability-weighted mean over the emotions' styles (all on the label if the probabilities are empty)."""
    weights = [max(0.0, p) for p in state.probs]
    total = sum(weights)
    if total <= 0 or mapping.transition.blend == "argmax":
        weights, total = [1.0 if name == state.label else 0.0 for name in EMOTIONS], 1.0
    styles = [mapping.emotions[name] for name in EMOTIONS]

    def blend(value: Callable[[EmotionStyle], float]) -> float:
        return sum(weight * value(style) for weight, style in zip(weights, styles)) / total

    return blend


def _blend_range(blend: Callable[[Callable[[EmotionStyle], float]], float],
                 value: Callable[[EmotionStyle], tuple[int, int]]) -> tuple[int, int]:
    """A blended [low, high] MIDI range, rounded half up at both ends so it never narrows by rounding."""
    return (math.floor(blend(lambda style: value(style)[0]) + 0.5),
            math.floor(blend(lambda style: value(style)[1]) + 0.5))


@dataclass(frozen=True)
class _Harmony:
    emotion: str
    mode: str
    tonic: int
    progressions: tuple[tuple[str, ...], ...]
    form: str


class Composer:
    """Turns a stream of emotion states into bars, one per call, deterministically for a seed."""

    def __init__(self, mapping: Mapping, seed: int = 0):
        self._mapping = mapping
        self._seed = seed
        self._index = 0
        self._harmony: _Harmony | None = None
        self._phrase_bar = 0                  # position of the next bar in the held progression
        self._phrase = 0                      # number of the phrase the next bar belongs to
        self._progression: tuple[str, ...] = ()  # the progression of that phrase (from its plan)
        self._tempo: float | None = None      # tempo of the last beat played
        self._glide: tuple[float, float] | None = None  # (from, to) of the glide under way
        self._glide_done = 0                  # beats of it played

    @property
    def mapping(self) -> Mapping:
        return self._mapping

    def set_mapping(self, mapping: Mapping) -> None:
        """Use *mapping* from the next bar on (the bar being played keeps the one it was made with)."""
        self._mapping = mapping

    def next_bar(self, state: EmotionState, voices: Mapping_[int, EmotionState] | None = None) -> Bar:
        """The next bar for *state*; *voices* (slot → a face's own emotion, ``faces: each``) add a
        melody voice per face on that slot's channel."""
        mapping = self._mapping  # read once: a set_mapping from another thread lands whole, at the next bar
        params = self._hold_harmony(params_for(state, mapping), mapping.transition.change_at)
        beat_tempos = self._glide_tempos(params.tempo, params.beats_per_bar, mapping.transition.tempo_glide_beats)
        events = compose_bar(params, mapping.enabled_parts(), self._index, self._seed,
                             phrase_bar=self._phrase_bar, humanize=mapping.humanize)
        if voices:
            events = tuple(sorted(events + compose_voices(params, voices, mapping, self._index, self._seed,
                                                          self._phrase_bar), key=lambda e: (e.beat, e.channel, e.pitch)))
        bar = Bar(self._index, params, events, beat_tempos, self._phrase_bar)
        self._index += 1
        self._phrase_bar = (self._phrase_bar + 1) % len(params.progression)
        if self._phrase_bar == 0:
            self._phrase += 1
        return bar

    def skip_bar(self) -> int:
        """Give up the next bar's number to a bar played instead (silent, after a failure): the bar after
        it is numbered on, and the form resumes where it was."""
        index, self._index = self._index, self._index + 1
        return index

    def _hold_harmony(self, params: MusicParams, change_at: str) -> MusicParams:
        """Switch to the params' harmony now (change_at bar) or only at a phrase start; play the held one.

        A phrase takes its progression from its plan (:func:`.form.plan_phrase`) when it starts. A
        change at a bar line starts the interrupted phrase again in the new harmony: the same section,
        so its motif carries on, transformed into the new key, mode, register and rhythm.
        """
        wanted = _Harmony(params.emotion, params.mode, params.tonic, params.progressions, params.form)
        if wanted != self._harmony and (self._harmony is None or change_at == "bar" or self._phrase_bar == 0):
            self._harmony, self._phrase_bar = wanted, 0  # a new harmony starts its phrase from the top
        held = self._harmony
        assert held is not None
        params = dataclasses.replace(params, emotion=held.emotion, mode=held.mode, tonic=held.tonic,
                                     progressions=held.progressions, form=held.form, phrase=self._phrase,
                                     progression=held.progressions[0])
        if self._phrase_bar == 0:
            self._progression = plan_phrase(params, self._seed, self._phrase).progression
        return dataclasses.replace(params, progression=self._progression)

    def _glide_tempos(self, target: float, beats: int, glide_beats: int) -> tuple[float, ...]:
        """One tempo per beat, moving in equal steps from the current tempo to *target* over *glide_beats* beats."""
        if self._tempo is None or glide_beats == 0:
            self._tempo, self._glide = target, None
            return (target,) * beats
        if self._glide is None or self._glide[1] != target:
            if self._tempo == target:
                return (target,) * beats
            self._glide, self._glide_done = (self._tempo, target), 0
        start, end = self._glide
        tempos = []
        for _ in range(beats):
            self._glide_done = min(glide_beats, self._glide_done + 1)
            tempos.append(start + (end - start) * self._glide_done / glide_beats)
        self._tempo = tempos[-1]
        return tuple(tempos)


def compose_voices(params: MusicParams, voices: Mapping_[int, EmotionState], mapping: Mapping, index: int,
                   seed: int, phrase_bar: int | None = None) -> tuple[NoteEvent, ...]:
    """One melody voice per face (slot → its emotion), in the bar's key, harmony and tempo.

    A voice takes its own emotion's numbers (density, register, loudness, articulation, leaps,
    rhythm) so each face is heard, while everything that must agree (tempo, mode, key, chords)
    comes from the bar. Slots beyond ``faces.channels`` have no voice. A pure function.
    """
    parts = mapping.faces.voice_parts()
    events: list[NoteEvent] = []
    for slot, state in sorted(voices.items()):
        if slot >= len(parts):
            continue
        own = params_for(state, mapping)
        voice = dataclasses.replace(own, tempo=params.tempo, mode=params.mode, tonic=params.tonic,
                                    emotion=params.emotion, progression=params.progression,
                                    progressions=params.progressions, form=params.form, phrase=params.phrase,
                                    beats_per_bar=params.beats_per_bar)
        notes = compose_bar(voice, (parts[slot],), index, seed, phrase_bar, mapping.humanize, voice=f"face{slot + 1}")
        events += notes
    return tuple(events)


def compose_bar(params: MusicParams, parts: tuple[PartConfig, ...], index: int, seed: int,
                phrase_bar: int | None = None, humanize: Humanize | None = None,
                voice: str = "") -> tuple[NoteEvent, ...]:
    """The notes of bar *index* for *parts*: a pure function of its arguments.

    *phrase_bar* is the bar's place in the progression (default: *index* modulo its length).
    *humanize* shifts onsets and velocities by seeded random amounts (its own random stream per
    (seed, bar, part), so the notes chosen are the same with or without it).
    *voice* names the events' part instead of the part's name, and seeds its own random stream
    (two face voices with the same emotion play different lines).
    """
    plan = plan_phrase(params, seed, params.phrase)
    material = f"{seed}:{voice}" if voice else str(seed)
    context = bar_context(params, index if phrase_bar is None else phrase_bar, plan, material)
    events: list[NoteEvent] = []
    for part in parts:
        name = voice or part.name
        if part.name in ("chords", "bass", "drums"):
            context = dataclasses.replace(context, accompaniment=part.pattern if part.name == "chords" and part.pattern
                                          else plan.accompaniment,
                                          bass_line=part.pattern if part.name == "bass" and part.pattern
                                          else plan.bass_line, fills=part.fills)
        rng = random.Random(f"{seed}:{index}:{name}")  # str seeds hash stably across runs
        register = (params.pitch_range[0] + 12 * part.octave, params.pitch_range[1] + 12 * part.octave)
        # a part's articulation factor stretches or shortens its notes, but never past the next onset
        stretch = min(part.articulation, 1 / params.articulation) if part.name != "drums" else 1.0
        notes = [(note.beat, min(note.duration * stretch, params.beats_per_bar - note.beat), note.pitch,
                  note.velocity * part.velocity_scale)
                 for note in GENERATORS[part.name](params, context, register, rng)]
        if humanize is not None and humanize.enabled:
            notes = _humanized(notes, humanize, params, random.Random(f"{seed}:{index}:{name}:human"))
        events += [NoteEvent(beat=beat, duration=duration, channel=part.channel, pitch=pitch,
                             velocity=max(1, min(127, round(velocity))), part=name)
                   for beat, duration, pitch, velocity in notes]
    return tuple(sorted(events, key=lambda e: (e.beat, e.channel, e.pitch)))


def _humanized(notes: list[tuple[float, float, int, float]], humanize: Humanize, params: MusicParams,
               rng: random.Random) -> list[tuple[float, float, int, float]]:
    """Onsets shifted by a Gaussian of *timing_ms* (notes struck together move together), velocities by
    one of *velocity*; both cut at two standard deviations. Notes stay inside the bar, and a note
    ends before the next one of the same pitch starts, so nothing overlaps itself."""
    beats = params.beats_per_bar
    sigma = humanize.timing_ms / 1000 * params.tempo / 60  # milliseconds to beats at this tempo
    shifts: dict[float, float] = {}
    for beat in sorted({note[0] for note in notes}):
        shifts[beat] = max(-2 * sigma, min(2 * sigma, rng.gauss(0, sigma))) if sigma > 0 else 0.0
    moved = []
    for beat, duration, pitch, velocity in notes:
        start = max(0.0, min(beats - 0.01, beat + shifts[beat]))
        end = max(start + 0.01, min(float(beats), beat + shifts[beat] + duration))
        if humanize.velocity > 0:
            velocity += max(-2 * humanize.velocity, min(2 * humanize.velocity, rng.gauss(0, humanize.velocity)))
        moved.append([start, end, pitch, velocity])
    for note in moved:
        later = [other[0] for other in moved if other[2] == note[2] and other[0] > note[0]]
        if later:
            note[1] = max(note[0] + 0.005, min(note[1], min(later)))
    return [(round(start, 4), round(end, 4) - round(start, 4), pitch, velocity) for start, end, pitch, velocity in moved]
