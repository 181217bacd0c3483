"""From the smoothed emotion to bars of notes: parameter blending and the :class:`Composer`.

The composer works a bar at a time. At each bar boundary it reads the current emotion, fixes
that bar's :class:`MusicParams` and asks every enabled part for its notes, so nothing about the
music changes in the middle of a bar, and every note ends by the end of its bar.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

from ..labels import EMOTIONS
from ..mapping import EmotionStyle, Mapping, PartConfig
from ..smoothing import EmotionState
from .parts import GENERATORS, SLOTS_PER_BEAT, bar_context


@dataclass(frozen=True)
class MusicParams:
    """Everything that shapes one bar."""

    tempo: float                    # BPM
    mode: str
    tonic: int                      # pitch class 0-11
    density: float                  # notes_per_bar over the sixteenths in a bar: 0..1 (sent over OSC)
    beats_per_bar: int
    emotion: str                    # the leading emotion, whose mode and progression play
    progression: tuple[str, ...]
    pitch_range: tuple[int, int]    # melody register; other parts are octaves away
    velocity: tuple[int, int]
    notes_per_bar: float            # melody notes per bar
    irregularity: float             # 0 all regular .. 1 all irregular rhythm
    articulation: float             # sounding length over the gap to the next note
    leap: float                     # chance of a melodic leap


@dataclass(frozen=True)
class NoteEvent:
    beat: float       # offset from the start of the bar, in beats
    duration: float   # beats
    channel: int      # 0-15
    pitch: int
    velocity: int     # 1-127
    part: str


@dataclass(frozen=True)
class Bar:
    index: int
    params: MusicParams
    events: tuple[NoteEvent, ...]


def params_for(state: EmotionState, mapping: Mapping) -> MusicParams:
    """Blend the emotions' numbers by their probabilities; mode and progression follow the leading label.

    Tempo ranges are blended first, then the arousal (-1..1) picks the point inside the blended range.
    """
    blend = _blender(state, mapping)
    lead = mapping.emotions[state.label]
    position = (max(-1.0, min(1.0, state.arousal)) + 1) / 2
    low, high = blend(lambda style: style.tempo[0]), blend(lambda style: style.tempo[1])
    notes_per_bar = blend(lambda style: style.density)
    return MusicParams(
        tempo=low + (high - low) * position,
        mode=lead.mode,
        tonic=mapping.tonic,
        density=notes_per_bar / (mapping.beats_per_bar * SLOTS_PER_BEAT),
        beats_per_bar=mapping.beats_per_bar,
        emotion=state.label,
        progression=lead.progression,
        pitch_range=_blend_range(blend, lambda style: style.pitch_range),
        velocity=_blend_range(blend, lambda style: style.velocity),
        notes_per_bar=notes_per_bar,
        irregularity=blend(lambda style: 1.0 if style.rhythm == "irregular" else 0.0),
        articulation=blend(lambda style: style.articulation),
        leap=blend(lambda style: style.leap),
    )


def _blender(state: EmotionState, mapping: Mapping) -> Callable[[Callable[[EmotionStyle], float]], float]:
    """A probability-weighted mean over the emotions' styles (all on the label if the probabilities are empty)."""
    weights = [max(0.0, p) for p in state.probs]
    total = sum(weights)
    if total <= 0:
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


class Composer:
    """Turns a stream of emotion states into bars, one per call, deterministically for a seed."""

    def __init__(self, mapping: Mapping, seed: int = 0):
        self._mapping = mapping
        self._seed = seed
        self._index = 0

    @property
    def mapping(self) -> Mapping:
        return self._mapping

    def set_mapping(self, mapping: Mapping) -> None:
        """Use *mapping* from the next bar on (the bar being played keeps the one it was made with)."""
        self._mapping = mapping

    def next_bar(self, state: EmotionState) -> Bar:
        mapping = self._mapping  # read once: a set_mapping from another thread lands whole, at the next bar
        params = params_for(state, mapping)
        bar = Bar(self._index, params, compose_bar(params, mapping.enabled_parts(), self._index, self._seed))
        self._index += 1
        return bar


def compose_bar(params: MusicParams, parts: tuple[PartConfig, ...], index: int, seed: int) -> tuple[NoteEvent, ...]:
    """The notes of bar *index* for *parts*: a pure function of its arguments."""
    context = bar_context(params, index)
    events: list[NoteEvent] = []
    for part in parts:
        rng = random.Random(f"{seed}:{index}:{part.name}")  # str seeds hash stably across runs
        register = (params.pitch_range[0] + 12 * part.octave, params.pitch_range[1] + 12 * part.octave)
        for note in GENERATORS[part.name](params, context, register, rng):
            events.append(NoteEvent(
                beat=note.beat,
                duration=min(note.duration, params.beats_per_bar - note.beat),
                channel=part.channel,
                pitch=note.pitch,
                velocity=max(1, min(127, round(note.velocity * part.velocity_scale))),
                part=part.name,
            ))
    return tuple(sorted(events, key=lambda e: (e.beat, e.channel, e.pitch)))
