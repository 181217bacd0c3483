"""Note generators, one per part: pure functions of the bar's parameters, harmony and a seeded RNG.

Every generator takes ``(params, context, register, rng)`` and returns the bar's notes with
offsets in beats from the start of the bar. They read nothing else: the composer seeds *rng*
from (seed, bar index, part), so the same inputs always give the same notes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..theory import chord_pitch_classes, nearest, pitches_in, scale_pitch_classes, voice_progression

if TYPE_CHECKING:
    from .params import MusicParams

SLOTS_PER_BEAT = 4  # rhythms live on a sixteenth-note grid

GM_KICK, GM_SNARE, GM_CLOSED_HAT, GM_CRASH = 36, 38, 42, 49


@dataclass(frozen=True)
class Note:
    beat: float       # offset from the start of the bar
    duration: float   # beats
    pitch: int
    velocity: int     # 1-127, before the part's velocity_scale


@dataclass(frozen=True)
class BarContext:
    """Where the bar sits in the phrase and what harmony it carries."""

    position: int                       # bar within the phrase (the progression)
    chords: tuple[tuple[int, ...], ...]  # pitch classes of every chord of the phrase, root first
    scale: tuple[int, ...]              # pitch classes of the key and mode, tonic first

    @property
    def chord(self) -> tuple[int, ...]:
        return self.chords[self.position]

    @property
    def tonic(self) -> int:
        return self.scale[0]

    @property
    def cadence(self) -> bool:
        """The last bar of the phrase, where the music comes to rest."""
        return self.position == len(self.chords) - 1


Generator = Callable[["MusicParams", BarContext, "tuple[int, int]", random.Random], "list[Note]"]


def bar_context(params: MusicParams, index: int) -> BarContext:
    """The harmony of bar *index*: one chord of the progression per bar, the phrase repeating."""
    chords = tuple(chord_pitch_classes(numeral, params.tonic, params.mode) for numeral in params.progression)
    return BarContext(index % len(chords), chords, scale_pitch_classes(params.tonic, params.mode))


def melody(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """A line that follows an arch over the phrase: chord tones on the strong beats, mostly steps in between."""
    slots = params.beats_per_bar * SLOTS_PER_BEAT
    onsets = _onsets(params.notes_per_bar, slots, params.irregularity, rng)
    scale = pitches_in(context.scale, *register)
    chord_tones = pitches_in(context.chord, *register)
    pitch = nearest(chord_tones, _contour(register, context, 0.0))
    pitches = [pitch]
    for slot in onsets[1:]:
        direction = _direction(pitch, _contour(register, context, slot / slots), rng)
        degrees = rng.randint(3, 5) if rng.random() < params.leap else 1
        pitch = _step(scale, pitch, direction * degrees)
        if is_strong(slot, slots):  # land on the harmony, moving on rather than repeating
            pitch = _nearest_towards(tuple(p for p in chord_tones if p != pitches[-1]), pitch, direction)
        pitches.append(pitch)
    if context.cadence and context.tonic in context.chord:
        pitches[-1] = nearest(pitches_in((context.tonic,), *register), pitches[-1])
    return [Note(start / SLOTS_PER_BEAT, (end - start) / SLOTS_PER_BEAT * params.articulation, pitch,
                 _velocity(params, _accent(start, slots), rng))
            for start, end, pitch in zip(onsets, onsets[1:] + [slots], pitches)]


def chords(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """The bar's chord, voice-led from the previous one, struck once or a few times."""
    voicing = voice_progression(context.chords, *register)[context.position]
    starts = _comp_starts(params, context, rng)
    notes = []
    for index, (start, end) in enumerate(zip(starts, starts[1:] + [float(params.beats_per_bar)])):
        velocity = _velocity(params, 0.7 if index == 0 else 0.5, rng)
        notes += [Note(start, (end - start) * params.articulation, pitch, velocity) for pitch in voicing]
    return notes


def bass(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """Chord roots in the lowest octave of the register, with the fifth as a passing colour."""
    root_class = context.chord[0]
    root = pitches_in((root_class,), register[0], register[0] + 11)[0]
    fifth = root + (context.chord[min(2, len(context.chord) - 1)] - root_class) % 12
    if fifth - 12 >= register[0]:  # the fifth below keeps the line low and close to the root
        fifth -= 12
    strikes = _strikes(params, context)
    hits = 2 * strikes if strikes == params.beats_per_bar else strikes  # dense bars drive in eighth notes
    step = params.beats_per_bar / hits
    pitches = [fifth if _bass_fifth(index, hits) else root for index in range(hits)]
    return [Note(index * step, step * params.articulation, pitch, _velocity(params, 0.8 if index == 0 else 0.6, rng))
            for index, pitch in enumerate(pitches)]


def drums(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """A General MIDI backbeat: kick on one (and the middle of even bars), snare on the other beats, hi-hat above.

    Irregular emotions add random kick and snare hits off the grid. *register* does not apply.
    """
    beats = params.beats_per_bar
    hits: dict[tuple[float, int], float] = {}
    hat_step = 0.5 if params.notes_per_bar >= 6 else 1.0
    for index in range(int(beats / hat_step)):
        hits[(index * hat_step, GM_CLOSED_HAT)] = 0.4 if index % 2 else 0.6
    for beat in range(beats):
        is_kick = beat == 0 or (beats % 2 == 0 and beat == beats // 2)
        hits[(float(beat), GM_KICK if is_kick else GM_SNARE)] = 1.0 if beat == 0 else 0.8
    if context.position == 0:
        hits[(0.0, GM_CRASH)] = 1.0
    for slot in range(beats * SLOTS_PER_BEAT):
        if rng.random() < 0.2 * params.irregularity:
            hits.setdefault((slot / SLOTS_PER_BEAT, rng.choice((GM_KICK, GM_SNARE))), 0.5)
    return [Note(beat, 0.25, pitch, _velocity(params, accent, rng)) for (beat, pitch), accent in sorted(hits.items())]


GENERATORS: dict[str, Generator] = {"melody": melody, "chords": chords, "bass": bass, "drums": drums}


def _onsets(notes_per_bar: float, slots: int, irregularity: float, rng: random.Random) -> list[int]:
    """Sixteenth-note slots to play: the metrically strongest ones, some pushed off the grid when irregular."""
    whole = math.floor(notes_per_bar)
    count = min(slots, max(1, whole + (rng.random() < notes_per_bar - whole)))
    ranked = sorted(range(slots), key=lambda slot: (-_strength(slot, slots), rng.random()))
    chosen = set(ranked[:count])
    for slot in sorted(chosen - {0}):  # the downbeat stays: it anchors the bar
        if rng.random() < irregularity:
            free = [s for s in range(1, slots) if s not in chosen]
            if free:
                chosen.remove(slot)
                chosen.add(rng.choice(free))
    return sorted(chosen)


def is_strong(slot: int, slots: int) -> bool:
    """The strong beats of the bar (the downbeat, and the half bar in even meters): the melody's chord tones."""
    return _strength(slot, slots) >= 3


def _strength(slot: int, slots: int) -> int:
    """Metric weight of a sixteenth slot: downbeat > half bar > beat > eighth > sixteenth."""
    if slot == 0:
        return 4
    if slots % 8 == 0 and slot == slots // 2:
        return 3
    if slot % SLOTS_PER_BEAT == 0:
        return 2
    return 1 if slot % 2 == 0 else 0


def _accent(slot: int, slots: int) -> float:
    return (0.3, 0.45, 0.65, 0.85, 1.0)[_strength(slot, slots)]


def _velocity(params: MusicParams, accent: float, rng: random.Random) -> int:
    """A velocity inside the emotion's range: accents reach up, chance spreads it (more so when irregular)."""
    low, high = params.velocity
    chance = 0.3 + 0.5 * params.irregularity
    position = (1 - chance) * accent + chance * rng.random()
    return max(1, min(127, round(low + (high - low) * position)))


def _contour(register: tuple[int, int], context: BarContext, fraction: float) -> float:
    """Target pitch of an arch-shaped phrase: low at the start, highest midway, back down at the end."""
    low, high = register
    x = (context.position + fraction) / len(context.chords)
    return low + (high - low) * (0.35 + 0.35 * math.sin(math.pi * x))


def _direction(pitch: int, target: float, rng: random.Random) -> int:
    """Up or down, leaning towards the contour target the further the line is from it."""
    lean = max(-0.4, min(0.4, (target - pitch) / 12))
    return 1 if rng.random() < 0.5 + lean else -1


def _step(scale: tuple[int, ...], pitch: int, degrees: int) -> int:
    """Move *degrees* scale steps from *pitch*, turning back at the edge of the register."""
    index = scale.index(nearest(scale, pitch))
    target = index + degrees
    if not 0 <= target < len(scale):
        target = index - degrees
    return scale[max(0, min(len(scale) - 1, target))]


def _nearest_towards(pitches: tuple[int, ...], target: int, direction: int) -> int:
    """The pitch nearest *target*; on a tie, the one in the direction of travel."""
    return min(pitches, key=lambda p: (abs(p - target), -direction * p))


def _strikes(params: MusicParams, context: BarContext) -> int:
    """How often chords and bass sound in a bar: once when sparse and at cadences, twice, or every beat when dense."""
    if context.cadence or params.notes_per_bar < 6:
        return 1
    return 2 if params.notes_per_bar < 10 else params.beats_per_bar


def _comp_starts(params: MusicParams, context: BarContext, rng: random.Random) -> list[float]:
    """When the chord is struck; irregular emotions push the later strikes off the beat."""
    hits = _strikes(params, context)
    step = params.beats_per_bar / hits
    starts = [index * step for index in range(hits)]
    push = step / 4  # at most a quarter of the gap, so strikes never collide
    return [start + (rng.choice((-push, push)) if index and rng.random() < params.irregularity else 0.0)
            for index, start in enumerate(starts)]


def _bass_fifth(index: int, hits: int) -> bool:
    """Two strikes alternate root and fifth; a driving line keeps the root and turns on the last note."""
    return index == 1 if hits == 2 else hits > 2 and index == hits - 1
