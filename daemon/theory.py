"""Scales, roman-numeral chords and voice leading: the pure music theory the parts build on.

Roman numerals are read the way a musician writes them: the numeral names the degree of
the *current mode's* scale (so ``VI`` in C minor is A flat), the case gives the quality
(upper case major, lower case minor), and optional marks alter it: ``b``/``#`` before the
numeral moves the root a semitone (borrowed chords such as ``bVII`` in major), ``°``/``o``/
``dim`` makes it diminished, ``ø`` half-diminished, ``+``/``aug`` augmented, and a trailing
``7`` or ``maj7`` adds a seventh. A secondary chord names its target after a slash: ``V/V``,
``V7/ii``, ``vii°/vi`` are the dominant (or leading-tone chord) of that degree's chord, read in the
major key of its root.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

NOTE_NAMES: dict[str, int] = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

ROMAN_HELP = ("I to VII (upper case major, lower case minor), optionally b or # before and "
              "°/o/dim, ø, +/aug, 7 or maj7 after, or a secondary chord V/x, V7/x, vii°/x; e.g. I, iv, bVII, V7, vii°, V/V")

_NUMERALS = ("vii", "iii", "vi", "iv", "ii", "v", "i")  # longest first so the regex is greedy
_ROMAN = re.compile(
    r"^(?P<accidental>[b#]?)(?P<numeral>" + "|".join(_NUMERALS + tuple(n.upper() for n in _NUMERALS)) + r")"
    r"(?P<quality>°|o|dim|ø|\+|aug)?(?P<seventh>7|maj7)?$"
)
_DEGREE = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
_TRIADS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}


@dataclass(frozen=True)
class RomanChord:
    degree: int          # 0-based scale degree of the root
    alteration: int      # -1, 0 or +1 semitones applied to the root
    intervals: tuple[int, ...]  # semitones above the root, root first


def parse_note_name(name: str) -> int:
    """Pitch class of a note name such as ``C``, ``F#`` or ``Bb``; ValueError for anything else."""
    match = re.fullmatch(r"([A-Ga-g])([#b]?)", name.strip())
    if not match:
        raise ValueError(f"not a note name: {name!r}")
    offset = {"#": 1, "b": -1, "": 0}[match.group(2)]
    return (NOTE_NAMES[match.group(1).upper()] + offset) % 12


@lru_cache(maxsize=None)
def parse_roman(numeral: str) -> RomanChord:
    """Parse one roman numeral (see the module docstring); ValueError if it is not one."""
    match = _ROMAN.match(numeral)
    if not match:
        raise ValueError(f"not a roman numeral chord: {numeral!r}")
    name, quality_mark, seventh = match.group("numeral"), match.group("quality"), match.group("seventh")
    upper = name.isupper()
    quality = _quality(upper, quality_mark, numeral)
    intervals = _TRIADS[quality]
    if quality_mark == "ø":
        intervals += (10,)  # half-diminished always carries its minor seventh
    elif seventh:
        intervals += (_seventh(quality, seventh),)
    alteration = {"b": -1, "#": 1, "": 0}[match.group("accidental")]
    return RomanChord(_DEGREE[name.lower()], alteration, intervals)


def _quality(upper: bool, mark: str | None, numeral: str) -> str:
    if mark in ("°", "o", "dim", "ø"):
        if upper:
            raise ValueError(f"diminished chords are written in lower case: {numeral!r}")
        return "diminished"
    if mark in ("+", "aug"):
        if not upper:
            raise ValueError(f"augmented chords are written in upper case: {numeral!r}")
        return "augmented"
    return "major" if upper else "minor"


def _seventh(quality: str, seventh: str) -> int:
    if seventh == "maj7":
        return 11
    return 9 if quality == "diminished" else 10  # vii°7 is fully diminished; V7, ii7 take the minor seventh


def check_numeral(numeral: str) -> None:
    """ValueError unless *numeral* is a chord :func:`chord_pitch_classes` can read (secondary chords too)."""
    head, slash, target = numeral.partition("/")
    parse_roman(head)
    if slash:
        parse_roman(target)
        if head not in ("V", "V7", "vii°", "viio", "viidim", "vii°7", "viio7"):
            raise ValueError(f"a secondary chord is V, V7 or vii° of its target: {numeral!r}")


def scale_pitch_classes(tonic: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of the scale, tonic first."""
    return tuple((tonic + step) % 12 for step in MODES[mode])


def chord_pitch_classes(numeral: str, tonic: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of a roman-numeral chord in the key, root first."""
    head, slash, target = numeral.partition("/")
    if slash:  # a secondary chord: read *head* in the major key of the target chord's root
        check_numeral(numeral)
        return chord_pitch_classes(head, chord_pitch_classes(target, tonic, mode)[0], "major")
    chord = parse_roman(numeral)
    root = (tonic + MODES[mode][chord.degree] + chord.alteration) % 12
    return tuple((root + interval) % 12 for interval in chord.intervals)


def pitches_in(pitch_classes: tuple[int, ...], low: int, high: int) -> tuple[int, ...]:
    """Every MIDI pitch in ``low..high`` (inclusive) whose pitch class is listed, ascending."""
    wanted = set(pitch_classes)
    return tuple(p for p in range(max(0, low), min(127, high) + 1) if p % 12 in wanted)


def nearest(pitches: tuple[int, ...], target: float) -> int:
    """The pitch closest to *target* (the lower one on a tie, so the result is deterministic)."""
    return min(pitches, key=lambda p: (abs(p - target), p))


@lru_cache(maxsize=256)
def voice_progression(chords: tuple[tuple[int, ...], ...], low: int, high: int) -> tuple[tuple[int, ...], ...]:
    """Voice a progression so that each chord moves as little as possible from the one before.

    The progression loops, so it is voiced twice and the second pass is kept: its first chord
    is then led smoothly from the last one, as it will be when the phrase repeats.
    """
    previous: tuple[int, ...] | None = None
    voicings: list[tuple[int, ...]] = []
    for chord in chords + chords:
        previous = voice_chord(chord, previous, low, high)
        voicings.append(previous)
    return tuple(voicings[len(chords):])


def voice_chord(chord: tuple[int, ...], previous: tuple[int, ...] | None, low: int, high: int) -> tuple[int, ...]:
    """Close voicing of *chord* (pitch classes) inside ``low..high`` nearest to *previous*.

    Without a previous chord, the voicing nearest the middle of the register wins; with one,
    total voice movement decides and the distance from the middle only breaks ties, which
    keeps the voicing from drifting to the edge of the register over a long progression.
    """
    candidates = _voicings(chord, low, high)
    centre = (low + high) / 2

    def cost(voicing: tuple[int, ...]) -> tuple[float, float, tuple[int, ...]]:
        drift = abs(sum(voicing) / len(voicing) - centre)
        motion = 0.0 if previous is None else movement(previous, voicing)
        return motion + 0.25 * drift, drift, voicing

    return min(candidates, key=cost)


def movement(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Total semitones the voices move from chord *a* to chord *b*.

    Chords of equal size pair voices in order; otherwise every note counts its distance to
    the nearest note of the other chord.
    """
    if len(a) == len(b):
        return float(sum(abs(x - y) for x, y in zip(sorted(a), sorted(b))))
    return float(sum(min(abs(x - y) for y in b) for x in a) + sum(min(abs(x - y) for x in a) for y in b))


@lru_cache(maxsize=1024)
def _voicings(chord: tuple[int, ...], low: int, high: int) -> tuple[tuple[int, ...], ...]:
    """Every placement of the chord's notes in the register that spans at most an octave and a third."""
    options = [pitches_in((pc,), low, high) for pc in dict.fromkeys(chord)]
    voicings = {tuple(sorted(combo)) for combo in itertools.product(*options)
                if max(combo) - min(combo) <= 16 and len(set(combo)) == len(combo)}
    if not voicings:
        raise ValueError(f"register {low}..{high} cannot hold chord {chord}")
    return tuple(sorted(voicings))
