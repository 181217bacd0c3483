"""Note generators, one per part: pure functions of the bar's parameters, harmony, phrase plan and seeds.

Every generator takes ``(params, context, register, rng)`` and returns the bar's notes with
offsets in beats from the start of the bar. The *material* (a motif's rhythm and contour, a comping
rhythm, an added colour tone) comes from random streams named after the seed, the section and the
bar's place in its phrase (:attr:`BarContext.material`), so a section that returns plays the same
music; *rng* (seeded per bar and part by the composer) only spreads loudness a little. The same
inputs always give the same notes.

The melody states a one-bar motif (a rhythm from the emotion's ``cells`` and a contour of scale
steps), plays it again from the next chord (a sequence: transposed to the chord), varies it
(inverted, displaced by an eighth, ornamented, reversed), and closes the phrase with a cadence bar:
the motif's opening and a long last note, on the tonic when the chord holds it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

from ..theory import chord_pitch_classes, nearest, pitches_in, scale_pitch_classes, voice_chord, voice_progression
from .form import SPLIT, PhrasePlan

if TYPE_CHECKING:
    from .params import MusicParams

SLOTS_PER_BEAT = 4  # the metric grid: sixteenth notes (triplet cells fall between)

GM_KICK, GM_SNARE, GM_CLOSED_HAT, GM_CRASH, GM_LOW_TOM, GM_HIGH_TOM = 36, 38, 42, 49, 45, 50

# Note lengths in beats of each rhythm cell; a negative length is a rest.
CELLS: dict[str, tuple[float, ...]] = {
    "quarter": (1.0,), "eighths": (0.5, 0.5), "sixteenths": (0.25,) * 4, "dotted": (0.75, 0.25),
    "snap": (0.25, 0.75), "syncopated": (0.5, 1.0, 0.5), "triplet": (1 / 3,) * 3, "half": (2.0,),
    "long_short": (1.5, 0.5), "gallop": (0.5, 0.25, 0.25), "rest": (-1.0,),
}
# Comping rhythms (onsets in beats of a 4-beat bar, scaled to the bar): off-beat stabs with rests between.
COMPING = ((0.0, 1.5, 3.0), (0.0, 1.5, 2.5), (0.5, 2.0, 3.5), (0.0, 2.5, 3.5))
VARIATIONS = ("invert", "displace", "ornament", "reverse")


@dataclass(frozen=True)
class Note:
    beat: float       # offset from the start of the bar
    duration: float   # beats
    pitch: int
    velocity: int     # 1-127, before the part's velocity_scale


@dataclass(frozen=True)
class BarContext:
    """Where the bar sits in the phrase and the form, and what harmony it carries."""

    position: int                       # bar within the phrase (the progression)
    chords: tuple[tuple[int, ...], ...]  # pitch classes of every chord of the phrase (first half of split bars)
    scale: tuple[int, ...]              # pitch classes of the key and mode, tonic first
    seconds: tuple[tuple[int, ...] | None, ...] = ()  # the chord from the half bar on, where a bar splits
    plan: PhrasePlan | None = None
    material: str = "0"                 # names the random streams of the music's material (seed, voice)
    accompaniment: str = ""             # the pattern families this part plays (the part's own wins)
    bass_line: str = ""
    fills: bool = True

    @property
    def chord(self) -> tuple[int, ...]:
        return self.chords[self.position]

    @property
    def second(self) -> tuple[int, ...] | None:
        return self.seconds[self.position] if self.seconds else None

    def chord_at(self, beat: float, beats: int) -> tuple[int, ...]:
        """The chord sounding at *beat*: the second one from the half bar of a split bar."""
        second = self.second
        return second if second is not None and beat >= beats / 2 - 1e-9 else self.chord

    @property
    def tonic(self) -> int:
        return self.scale[0]

    @property
    def cadence(self) -> bool:
        """The last bar of the phrase, where the music comes to rest."""
        return self.position == len(self.chords) - 1

    @property
    def half_cadence(self) -> bool:
        """The middle of a phrase of eight bars or more: the antecedent half ends here."""
        return len(self.chords) >= 8 and self.position == len(self.chords) // 2 - 1

    def stream(self, *names: object) -> random.Random:
        """A random stream for material: the same in every return of this section and bar."""
        variant = self.plan.variant if self.plan else "-"
        return random.Random(":".join(map(str, (self.material, variant, self.position) + names)))

    def motif_stream(self, *names: object) -> random.Random:
        """A random stream for the section's motif, the same in every phrase and cycle of its letter."""
        letter = self.plan.letter if self.plan else "A"
        return random.Random(":".join(map(str, (self.material, letter) + names)))


Generator = Callable[["MusicParams", BarContext, "tuple[int, int]", random.Random], "list[Note]"]


def bar_context(params: MusicParams, index: int, plan: PhrasePlan | None = None, material: str = "0") -> BarContext:
    """The harmony of bar *index* of the phrase: one chord per bar (two in a split bar), the phrase repeating."""
    firsts, seconds = [], []
    for numeral in params.progression:
        first, _, second = numeral.partition(SPLIT)
        firsts.append(chord_pitch_classes(first, params.tonic, params.mode))
        seconds.append(chord_pitch_classes(second, params.tonic, params.mode) if second else None)
    return BarContext(index % len(firsts), tuple(firsts), scale_pitch_classes(params.tonic, params.mode),
                      tuple(seconds) if any(seconds) else (), plan, material,
                      plan.accompaniment if plan else "block", plan.bass_line if plan else "root")


# --- melody ---

def melody(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """The phrase's motif, stated, sequenced on the bar's chord, varied, and closed by a cadence."""
    return [Note(start, length * params.articulation, pitch,
                 velocity_at(params, context, start, _accent(start, params.beats_per_bar), rng))
            for start, length, pitch in melody_line(params, context, register)]


@lru_cache(maxsize=4096)
def melody_line(params: MusicParams, context: BarContext, register: tuple[int, int]) -> tuple[tuple[float, float, int], ...]:
    """(onset, length, pitch) of the bar's melody: a pure function, cached (the next bar starts from its end)."""
    beats = params.beats_per_bar
    motion = context.plan.motion if context.plan else 1.0
    rhythm = motif_rhythm(dataclasses.replace(params, notes_per_bar=params.notes_per_bar * motion),
                          context.motif_stream(params.emotion, "rhythm"))
    steps = motif_steps(params.leap, context.motif_stream("contour"), len(rhythm) + 4)
    role = _role(context)
    if role == "vary":
        variation = context.stream("variation").choice(VARIATIONS)
        if variation == "invert":
            steps = [-step for step in steps]
        elif variation == "reverse":
            steps = [steps[0]] + [-step for step in reversed(steps[1:len(rhythm)])]
        elif variation == "displace":
            rhythm = _displaced(rhythm, beats)
        else:
            rhythm, steps = _ornamented(rhythm, steps)
    elif role in ("cadence", "half"):
        rhythm = _cadence_rhythm(rhythm, beats, 1.0 if params.notes_per_bar >= 10 else beats / 2)
    scale = pitches_in(context.scale, *register)
    target = _contour(register, context, 0.0)
    if context.position == 0:  # a phrase states its motif from the chord tone nearest the arch
        pitch = nearest(pitches_in(context.chord, *register), target)
    else:  # later bars take it up from the chord tone nearest where the last bar ended (a sequence)
        before = melody_line(params, dataclasses.replace(context, position=context.position - 1), register)
        pitch = nearest(pitches_in(context.chord, *register), before[-1][2] + 0.5 * (target - before[-1][2]))
    pitches = []
    for index, (start, _) in enumerate(rhythm):
        if index:
            step = steps[index % len(steps)]
            target = _contour(register, context, start / beats)
            if abs(pitch - target) > 5 and (step > 0) == (pitch > target):
                step = -step  # wandered far from the phrase's arch: the motif turns back towards it
            pitch = _step(scale, pitch, step)
        chord_tones = pitches_in(context.chord_at(start, beats), *register)
        if is_strong(round(start * SLOTS_PER_BEAT), beats * SLOTS_PER_BEAT) and start == int(start * 4) / 4:
            previous = pitches[-1] if pitches else None
            direction = steps[index % len(steps)] or 1
            close = tuple(p for p in chord_tones if previous is not None and abs(p - previous) <= 2)
            choices = close or tuple(p for p in chord_tones if p != previous) or chord_tones
            pitch = _nearest_towards(choices, pitch, direction)  # a chord tone, by step (or held) when one is near
        pitches.append(pitch)
    if role == "cadence" and context.tonic in context.chord_at(rhythm[-1][0], beats):
        pitches[-1] = nearest(pitches_in((context.tonic,), *register), pitches[-1])
    elif role in ("cadence", "half"):  # an open ending rests on the chord's root or fifth
        chord = context.chord_at(rhythm[-1][0], beats)
        pitches[-1] = nearest(pitches_in((chord[0], chord[-1] if len(chord) < 3 else chord[2]), *register), pitches[-1])
    return tuple((start, length, pitch) for (start, length), pitch in zip(rhythm, pitches))


def motif_rhythm(params: MusicParams, rng: random.Random) -> list[tuple[float, float]]:
    """A bar of (onset, length) built from the emotion's cells, then tied or split to its density.

    An irregular emotion prefers bars that mix several kinds of cell. A rest's time goes to no
    note: the note before it keeps its own length.
    """
    beats = params.beats_per_bar
    cells = [name for name in params.cells if name in CELLS] or ["quarter"]
    target = max(1, round(params.notes_per_bar))
    best: list[tuple[float, float]] = []
    best_score = math.inf
    for _ in range(24):
        notes, now, used = [], 0.0, set()
        while now < beats - 1e-9:
            room = beats - now
            fits = [name for name in cells if sum(map(abs, CELLS[name])) <= room + 1e-9 and (notes or name != "rest")]
            if not fits:
                notes.append((now, room))
                break
            name = rng.choice(fits)
            used.add(name)
            for length in CELLS[name]:
                if length > 0:
                    notes.append((now, length))
                now += abs(length)
        score = abs(len(notes) - target) - 0.5 * params.irregularity * len(used)
        if score < best_score - 1e-9:
            best, best_score = notes, score
    while len(best) > target:  # too many notes for the density: tie two neighbours that touch
        touching = [i for i in range(len(best) - 1) if abs(best[i][0] + best[i][1] - best[i + 1][0]) < 1e-6]
        if not touching:
            break
        if params.irregularity >= 0.5:
            i = touching[rng.randrange(len(touching))]
        else:  # a regular line ties its two shortest neighbours, which keeps it even
            i = min(touching, key=lambda k: (round(best[k][1] + best[k + 1][1], 6), k))
        best[i:i + 2] = [(best[i][0], best[i][1] + best[i + 1][1])]
    while len(best) < target:  # too few: split the longest note in two
        i = max(range(len(best)), key=lambda k: (best[k][1], -k))
        if best[i][1] < 0.5 - 1e-9:
            break
        start, length = best[i]
        best[i:i + 1] = [(start, length / 2), (start + length / 2, length / 2)]
    return [(round(start, 4), round(length, 4)) for start, length in best]


def motif_steps(leap: float, rng: random.Random, count: int) -> list[int]:
    """Scale steps from note to note: a leap of a fourth to a sixth with the chance *leap*, else a step.

    The draws do not depend on *leap*, so one motif keeps its shape across emotions and only its
    leaps widen or narrow.
    """
    steps = [0]
    for _ in range(count - 1):
        kind, size, direction = rng.random(), rng.random(), rng.random()
        degrees = 3 + int(size * (2 + 4 * leap)) if kind < leap else (1 if kind < 0.95 else 2)  # wider for leapier emotions
        steps.append(degrees if direction < 0.5 else -degrees)
    return steps


def _role(context: BarContext) -> str:
    if context.cadence:
        return "cadence"
    if context.half_cadence:
        return "half"
    return ("state", "sequence", "vary", "sequence")[context.position % 4]


def _displaced(rhythm: list[tuple[float, float]], beats: int) -> list[tuple[float, float]]:
    """Every note after the first an eighth later; those pushed past the bar drop out."""
    moved = [rhythm[0]] + [(start + 0.5, length) for start, length in rhythm[1:] if start + 0.5 < beats - 1e-9]
    return [(start, min(length, (moved[i + 1][0] if i + 1 < len(moved) else beats) - start))
            for i, (start, length) in enumerate(moved)]


def _ornamented(rhythm: list[tuple[float, float]], steps: list[int]) -> tuple[list[tuple[float, float]], list[int]]:
    """The longest note becomes a turn: the note, its upper neighbour and the note again."""
    index = max(range(len(rhythm)), key=lambda i: (rhythm[i][1], -i))
    start, length = rhythm[index]
    if length < 0.5:
        return rhythm, steps
    half, quarter = length / 2, length / 4
    turned = rhythm[:index] + [(start, half), (start + half, quarter), (start + half + quarter, quarter)] + rhythm[index + 1:]
    bent = steps[:index + 1] + [1, -1] + steps[index + 1:]
    return turned, bent


def _cadence_rhythm(rhythm: list[tuple[float, float]], beats: int, last: float) -> list[tuple[float, float]]:
    """The motif's opening, then a long note of *last* beats to the end of the bar (a dense line closes quicker)."""
    at = beats - last
    opening = [(start, min(length, at - start)) for start, length in rhythm if start < at - 1e-9] or [(0.0, at)]
    return opening + [(at, last)]


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


def _accent(beat: float, beats: int) -> float:
    slot = beat * SLOTS_PER_BEAT
    strength = _strength(round(slot), beats * SLOTS_PER_BEAT) if abs(slot - round(slot)) < 1e-6 else 0
    return (0.3, 0.45, 0.65, 0.85, 1.0)[strength]


# --- dynamics ---

def phrase_level(params: MusicParams, context: BarContext, beat: float) -> float:
    """Where in the velocity range the phrase stands at *beat* (0..1), before accents.

    arch: a crescendo to two thirds of the phrase and a diminuendo to its end; terraced: a level
    per half bar, sudden and the same in every part (so the swings survive the full mix).
    """
    beats = params.beats_per_bar
    lift = context.plan.lift if context.plan else 0.0
    if params.dynamics == "terraced":  # as many soft halves as loud ones in a phrase, in the section's order
        variant = context.plan.variant if context.plan else "-"
        levels = [0.0, 1.0] * len(context.chords)
        random.Random(f"{context.material}:{variant}:terrace").shuffle(levels)
        level = levels[2 * context.position + int(beat >= beats / 2)]
        return max(0.0, min(1.0, 0.5 + params.swell * (level - 0.5) + lift))
    x = (context.position + beat / beats) / len(context.chords)
    peak = 0.65
    shape = math.sin(math.pi / 2 * x / peak) if x < peak else math.cos(math.pi / 2 * (x - peak) / (1 - peak))
    return max(0.0, min(1.0, 0.5 + params.swell * (shape - 0.5) + lift))


def velocity_at(params: MusicParams, context: BarContext, beat: float, accent: float, rng: random.Random) -> int:
    """A velocity in the emotion's range: the phrase's level, the metre's accent, and a little chance."""
    low, high = params.velocity
    chance = 0.06 + 0.2 * params.irregularity
    position = phrase_level(params, context, beat) + 0.3 * (accent - 0.6) + chance * (rng.random() - 0.5)
    return max(1, min(127, round(low + (high - low) * max(0.0, min(1.0, position)))))


# --- chords ---

def chords(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """The bar's chord, voice-led from the previous one, played in the section's pattern; a held chord at cadences."""
    beats = params.beats_per_bar
    voicing = voice_progression(context.chords, *register)[context.position]
    voicing = _coloured(voicing, context, register, params)
    spans = [(0.0, float(beats), voicing)]
    if context.second is not None:
        second = voice_chord(context.second, voicing, *register)
        spans = [(0.0, beats / 2, voicing), (beats / 2, float(beats), second)]
    family = "held" if context.cadence else context.accompaniment
    notes: list[Note] = []
    for start, end, voiced in spans:
        for onset, pitches in _pattern(family, params, context, start, end, voiced):
            notes += [Note(onset, 0.0, pitch, velocity_at(params, context, onset, _accent(onset, beats) * 0.8, rng))
                      for pitch in pitches]
    notes = _sustained(notes, [end for _, end, _ in spans], params.articulation,
                       pedal=family in ("arpeggio", "broken"))
    if context.cadence and context.plan and context.plan.consequent and len(voicing) >= 3 and beats >= 2:
        notes = _suspended(notes, context)
    return notes


def _pattern(family: str, params: MusicParams, context: BarContext, start: float, end: float,
             voicing: tuple[int, ...]) -> list[tuple[float, tuple[int, ...]]]:
    """(onset, pitches struck) of one chord pattern over ``start..end`` beats."""
    span = end - start
    if family == "held":
        return [(start, voicing)]
    if family == "arpeggio":
        order = list(voicing) + [voicing[0] + 12] if voicing[0] + 12 <= max(voicing) + 12 else list(voicing)
        order += order[-2:0:-1]
        step = 0.5 if params.notes_per_bar >= 3 or span <= 2 else 1.0
        return [(start + i * step, (order[i % len(order)],)) for i in range(int(round(span / step)))]
    if family == "broken":
        low, mid, top = voicing[0], voicing[len(voicing) // 2], voicing[-1]
        figure = (low, top, mid, top)
        step = 0.5 if params.notes_per_bar >= 3 or span <= 2 else 1.0
        return [(start + i * step, (figure[i % 4],)) for i in range(int(round(span / step)))]
    if family == "comping":
        onsets = context.motif_stream("comping").choice(COMPING)
        scale = span / 4
        return [(start + onset * scale, voicing) for onset in onsets if start + onset * scale < end - 1e-9]
    hits = _strikes(params, context)
    if span < params.beats_per_bar:
        hits = max(1, hits // 2)
    step = span / hits
    return [(start + i * step, voicing) for i in range(hits)]


def _sustained(notes: list[Note], ends: list[float], articulation: float, pedal: bool = False) -> list[Note]:
    """Each note lasts until the part's next onset (*pedal*: until its own pitch sounds again, as with the
    sustain pedal down) or its span's end, times the articulation."""
    lasting = []
    for note in notes:
        end = min([e for e in ends if e > note.beat + 1e-9] or [max(ends)])
        following = [other.beat for other in notes if other.beat > note.beat + 1e-9
                     and (not pedal or other.pitch == note.pitch)]
        stop = min([end] + following)
        lasting.append(Note(note.beat, max(0.05, (stop - note.beat) * articulation), note.pitch, note.velocity))
    return lasting


def _coloured(voicing: tuple[int, ...], context: BarContext, register: tuple[int, int],
              params: MusicParams) -> tuple[int, ...]:
    """The voicing with a dissonant tone (chance ``tension``) or a consonant added sixth/ninth (``extensions``).

    Decided by the section's stream, so a return sounds the same; added tones stay in the scale.
    """
    draw = context.stream("colour").random()
    chord, scale = context.chord, set(context.scale)
    if draw < params.tension:
        candidates = [pc for pc in scale if pc not in chord
                      and any((pc - c) % 12 in (1, 11) for c in chord) or (pc - chord[0]) % 12 == 6 and pc not in chord]
    elif draw < params.tension + params.extensions:
        candidates = [pc for pc in ((chord[0] + 2) % 12, (chord[0] + 9) % 12)
                      if pc in scale and pc not in chord and not any((pc - c) % 12 in (1, 11) for c in chord)]
    else:
        return voicing
    if not candidates:
        return voicing
    pc = sorted(candidates)[0] if len(candidates) == 1 else context.stream("colour-tone").choice(sorted(candidates))
    options = [p for p in pitches_in((pc,), *register) if p not in voicing]
    if not options:
        return voicing
    centre = sum(voicing) / len(voicing)
    return tuple(sorted(voicing + (nearest(tuple(options), centre),)))


def _suspended(notes: list[Note], context: BarContext) -> list[Note]:
    """A 4-3 suspension in the closing chord: the third is held as the fourth for the first beat, then resolves."""
    chord = context.chord
    third = chord[1]
    fourth = (chord[0] + 5) % 12
    if fourth not in context.scale or (third - chord[0]) % 12 not in (3, 4):
        return notes
    result = []
    for note in notes:
        if note.pitch % 12 == third and note.beat == 0:
            sus = note.pitch + (fourth - third) % 12
            result.append(Note(0.0, min(1.0, note.duration), sus, note.velocity))
            if note.duration > 1.05:
                result.append(Note(1.0, note.duration - 1.0, note.pitch, max(1, note.velocity - 8)))
        else:
            result.append(note)
    return result


# --- bass ---

def bass(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """A line under the chords in the section's bass pattern: roots and fifths, a pedal, octaves, walking, syncopated."""
    beats = params.beats_per_bar
    spans = [(0.0, float(beats), context.chord)]
    if context.second is not None:
        spans = [(0.0, beats / 2, context.chord), (beats / 2, float(beats), context.second)]
    family = "root" if context.cadence else context.bass_line
    notes: list[tuple[float, float, int]] = []
    for index, (start, end, chord) in enumerate(spans):
        following = spans[index + 1][2] if index + 1 < len(spans) else \
            context.chords[(context.position + 1) % len(context.chords)]
        notes += _bass_line(family, params, context, register, start, end, chord, following)
    return [Note(start, length * params.articulation, pitch,
                 velocity_at(params, context, start, 0.85 if start == 0 else 0.65, rng)) for start, length, pitch in notes]


def _bass_line(family: str, params: MusicParams, context: BarContext, register: tuple[int, int], start: float,
               end: float, chord: tuple[int, ...], following: tuple[int, ...]) -> list[tuple[float, float, int]]:
    root = _lowest(chord[0], register)
    fifth = root + (chord[min(2, len(chord) - 1)] - chord[0]) % 12
    if fifth - 12 >= register[0]:  # the fifth below keeps the line low and close to the root
        fifth -= 12
    span = end - start
    busy = params.notes_per_bar >= 6
    if family == "pedal":
        tonic = _lowest(context.tonic, register)
        step = 1.0 if busy else 2.0
        return _even(start, end, step, [tonic])
    if family == "octave":
        step = 0.5 if busy else 1.0
        upper = root + 12 if root + 12 <= register[1] + 12 else root
        return _even(start, end, step, [root, upper])
    if family == "walking" and span >= 2:
        scale = pitches_in(context.scale, register[0], register[0] + 19)
        target = _lowest(following[0], register)
        third = root + (chord[1] - chord[0]) % 12
        approach = target - 1 if target - 1 >= register[0] else target + 1
        if approach % 12 not in context.scale:
            approach = nearest(scale, target + (1 if target + 1 <= max(scale) else -1))
        line = [root, third, fifth if fifth > root else fifth + 12, approach][:int(span)]
        line += [root] * (int(span) - len(line))
        return [(start + i, 1.0, pitch) for i, pitch in enumerate(line)]
    if family == "syncopated" and span >= 2:
        scale_factor = span / 4
        figure = ((0.0, 1.5, root), (1.5, 1.0, root), (2.5, 0.5, fifth), (3.0, 1.0, root))
        return [(start + onset * scale_factor, length * scale_factor, pitch) for onset, length, pitch in figure]
    strikes = _strikes(params, context)
    hits = 2 * strikes if strikes == params.beats_per_bar else strikes  # dense bars drive in eighth notes
    if span < params.beats_per_bar:
        hits = max(1, hits // 2)
    step = span / hits
    pitches = [fifth if _bass_fifth(index, hits) else root for index in range(hits)]
    return [(start + index * step, step, pitch) for index, pitch in enumerate(pitches)]


def _even(start: float, end: float, step: float, pitches: list[int]) -> list[tuple[float, float, int]]:
    count = max(1, int(round((end - start) / step)))
    return [(start + i * step, step, pitches[i % len(pitches)]) for i in range(count)]


def _lowest(pitch_class: int, register: tuple[int, int]) -> int:
    return pitches_in((pitch_class,), register[0], register[0] + 11)[0]


# --- counter-melody ---

def counter(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """A slower line under the melody, moving against it: chord tones a beat (or two) apart, a held third at cadences."""
    return [Note(start, length * params.articulation, pitch,
                 velocity_at(params, context, start, _accent(start, params.beats_per_bar) * 0.8, rng))
            for start, length, pitch in counter_line(params, context, register)]


@lru_cache(maxsize=4096)
def counter_line(params: MusicParams, context: BarContext, register: tuple[int, int]) -> tuple[tuple[float, float, int], ...]:
    """(onset, length, pitch): contrary to the melody's motion wherever a chord tone lies that way."""
    beats = params.beats_per_bar
    tune = melody_line(params, context, params.pitch_range)
    step = 1.0 if params.notes_per_bar >= 4 else 2.0
    onsets = [0.0] if context.cadence else [i * step for i in range(int(beats / step))]
    if context.position == 0:
        pitch = nearest(pitches_in((context.chord[1 if len(context.chord) > 1 else 0],), *register),
                        (register[0] + register[1]) / 2)
    else:
        pitch = counter_line(params, dataclasses.replace(context, position=context.position - 1), register)[-1][2]
    line = []
    for index, start in enumerate(onsets):
        tones = pitches_in(context.chord_at(start, beats), *register)
        if context.cadence:  # the chord's third, where the line already is
            pitch = nearest(pitches_in((context.chord[1 if len(context.chord) > 1 else 0],), *register), pitch)
        else:
            if index:
                moving = _melody_motion(tune, onsets[index - 1], start)
            elif context.position:  # from the last note of the bar before
                before = melody_line(params, dataclasses.replace(context, position=context.position - 1),
                                     params.pitch_range)
                moving = (sounding(tune, start) > before[-1][2]) - (sounding(tune, start) < before[-1][2])
            else:
                moving = 0
            wanted = [p for p in tones if 0 < (p - pitch) * -moving <= 5] if moving else []
            pitch = min(wanted, key=lambda p: abs(p - pitch)) if wanted else nearest(tones, pitch)
        end = onsets[index + 1] if index + 1 < len(onsets) else float(beats)
        line.append((start, end - start, pitch))
    return tuple(line)


def sounding(tune: tuple[tuple[float, float, int], ...], at: float) -> int:
    """The melody pitch struck last at or before *at* (its first note before it starts)."""
    struck = [pitch for start, _, pitch in tune if start <= at + 1e-9]
    return struck[-1] if struck else tune[0][2]


def _melody_motion(tune: tuple[tuple[float, float, int], ...], earlier: float, later: float) -> int:
    """+1 when the melody is higher at *later* than at *earlier* (beats), -1 when lower, 0 when level."""
    change = sounding(tune, later) - sounding(tune, earlier)
    return (change > 0) - (change < 0)


# --- drums ---

def drums(params: MusicParams, context: BarContext, register: tuple[int, int], rng: random.Random) -> list[Note]:
    """A General MIDI backbeat: kick on one (and the middle of even bars), snare on the other beats, hi-hat above;
    a crash where a phrase starts and a fill in the last beat of a phrase.

    Irregular emotions add kick and snare hits off the grid, the same ones whenever the section returns.
    *register* does not apply.
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
    extra = context.stream("drums")
    for slot in range(beats * SLOTS_PER_BEAT):
        if extra.random() < 0.2 * params.irregularity:
            hits.setdefault((slot / SLOTS_PER_BEAT, extra.choice((GM_KICK, GM_SNARE))), 0.5)
    if context.cadence and context.fills:
        last = beats - 1
        hits = {key: value for key, value in hits.items() if key[0] < last or key[1] == GM_KICK}
        for i, drum in enumerate((GM_SNARE, GM_SNARE, GM_HIGH_TOM, GM_LOW_TOM)):
            hits[(last + i / 4, drum)] = 0.6 + 0.1 * i
    return [Note(beat, 0.25, pitch, velocity_at(params, context, beat, accent, rng))
            for (beat, pitch), accent in sorted(hits.items())]


GENERATORS: dict[str, Generator] = {"melody": melody, "chords": chords, "bass": bass, "drums": drums,
                                     "counter": counter}


# --- helpers ---

def _contour(register: tuple[int, int], context: BarContext, fraction: float) -> float:
    """Target pitch of an arch-shaped phrase: low at the start, highest midway, back down at the end."""
    low, high = register
    x = (context.position + fraction) / len(context.chords)
    return low + (high - low) * (0.35 + 0.35 * math.sin(math.pi * x))


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


def _bass_fifth(index: int, hits: int) -> bool:
    """Two strikes alternate root and fifth; a driving line keeps the root and turns on the last note."""
    return index == 1 if hits == 2 else hits > 2 and index == hits - 1
