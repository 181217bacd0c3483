"""Form: which phrase plays when, with which progression, patterns and variation. Pure functions of the seed.

A *section* is the emotion's ``form`` read as phrases: ``AA'BA'`` is an antecedent A (it opens on the
dominant: a half cadence), its consequent A' (the same start, closing on the tonic), a contrasting B
and the return of A'. The form repeats; each time round (a *cycle*) the repeated sections come back
varied: inner chords reharmonised (a relative, a secondary dominant, a borrowed chord) with the chance
``reharmonise``, contrasts taking the emotion's next progression, accompaniment and bass patterns rotated.
Inside one cycle a return is the same music, so a listener recognises it.

The plan of a phrase depends only on (seed, the emotion's style, the phrase number), so the live
composer and ``simulate`` agree, and a bar can be recomposed from its number alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..theory import MODES, chord_pitch_classes
from .params import MusicParams

SPLIT = "|"  # inside a plan's progression, "IV|V" is a bar of two chords (the second from the half bar)

# Substitutes for an inner chord of a repeated section, by the chord the progression has there.
MAJOR_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "I": ("vi", "iii"), "IV": ("ii", "ii7", "iv"), "V": ("V7", "iii"), "vi": ("IV", "ii"), "ii": ("IV", "ii7"),
    "iii": ("I", "vi"), "II": ("ii", "IV"), "bVII": ("IV", "V"),
}
MINOR_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "i": ("VI", "III"), "iv": ("ii°", "iv7", "VI"), "v": ("V", "VII"), "VI": ("iv", "III"), "III": ("VI", "VII"),
    "VII": ("v", "III"), "V": ("vii°", "VII"), "ii°": ("iv",),
}
LIFT = {"A": 0.0, "B": 0.15, "C": -0.12}  # section dynamics: a contrast sits louder (B) or softer (C)
ECHO = -0.08  # every second time round the form, the music comes back a little softer
MOTION = {"A": 1.0, "B": 0.8, "C": 1.2}  # melody notes against the emotion's density: B in longer values


@dataclass(frozen=True)
class PhrasePlan:
    letter: str                     # A, B, C: the material
    consequent: bool                # primed in the form: closes on the tonic; unprimed: opens on the dominant
    cycle: int                      # times the whole form has gone round before this phrase
    progression: tuple[str, ...]    # one entry per bar; "X|Y" splits a bar between two chords
    accompaniment: str              # the chords part's pattern family
    bass_line: str                  # the bass part's pattern family
    lift: float                     # dynamics offset of the section, a share of the velocity range
    motion: float = 1.0             # the melody's notes per bar against the emotion's density

    @property
    def variant(self) -> str:
        """Same variant, same music: a return inside a cycle replays the section it returns to."""
        return f"{self.letter}{'1' if self.consequent else '0'}:{self.cycle}"


def form_slots(form: str) -> list[tuple[str, bool]]:
    """``"AA'BA'"`` -> ``[("A", False), ("A", True), ("B", False), ("A", True)]``."""
    slots: list[tuple[str, bool]] = []
    for char in form:
        if char == "'":
            slots[-1] = (slots[-1][0], True)
        else:
            slots.append((char, False))
    return slots


def dominant_numeral(mode: str) -> str:
    """The chord of a half cadence: V (the minor modes borrow its leading tone, as in harmonic minor),
    else the fifth degree's own chord (v in dorian and mixolydian, v° in phrygian)."""
    if mode in ("minor", "harmonic_minor"):
        return "V"
    steps = MODES[mode]
    third, fifth = (steps[(4 + 2) % 7] - steps[4]) % 12, (steps[(4 + 4) % 7] - steps[4]) % 12
    if fifth == 6:
        return "v°"
    return "V" if third == 4 else "v"


def is_tonic(numeral: str) -> bool:
    return numeral.rstrip("7").replace("maj", "") in ("I", "i")


def plan_phrase(params: MusicParams, seed: int | str, phrase: int) -> PhrasePlan:
    """The plan of phrase number *phrase* of the music, for the lead emotion's style in *params*."""
    slots = form_slots(params.form)
    cycle, slot = divmod(phrase, len(slots))
    letter, consequent = slots[slot]
    choices = params.progressions or (params.progression,)
    number = ord(letter) - ord("A")
    emotion = params.emotion
    if number == 0:
        base = choices[0]
    else:  # contrasts take the next progressions, rotating each cycle
        base = choices[(number + cycle * (len(choices) > 2)) % len(choices)] if len(choices) > 1 else choices[0]
    progression = list(base)
    rng = random.Random(f"{seed}:{emotion}:{letter}:{cycle}:harmony")
    chance = params.reharmonise if cycle > 0 or (number > 0 and len(choices) == 1) else 0.0
    if number > 0 and len(choices) == 1:
        chance = max(chance, 0.6)  # a contrast on the only progression still needs other chords
    for position in range(1, len(progression) - 1):
        if rng.random() < chance:
            progression[position] = _substitute(progression[position], progression[position + 1], params, rng)
    if not consequent and is_tonic(progression[-1]) and len(progression) > 2:
        progression[-1] = dominant_numeral(params.mode)  # the antecedent ends open, on a half cadence
    elif consequent and len(progression) > 2 and is_tonic(progression[-1]):
        penultimate = progression[-2]
        if not penultimate.upper().startswith("V") and SPLIT not in penultimate:
            progression[-2] = f"{penultimate}{SPLIT}{dominant_numeral(params.mode)}"  # quicker harmony into the cadence
    accompaniments, basses = params.accompaniment or ("block",), params.bass_line or ("root",)
    return PhrasePlan(letter, consequent, cycle, tuple(progression),
                      accompaniments[(number + cycle) % len(accompaniments)],
                      basses[(number + cycle) % len(basses)],
                      LIFT.get(letter, 0.0) + (ECHO if cycle % 2 else 0.0), MOTION.get(letter, 1.0))


def _substitute(numeral: str, following: str, params: MusicParams, rng: random.Random) -> str:
    """A relative, borrowed or secondary-dominant chord in place of *numeral*."""
    table = MAJOR_SUBSTITUTES if MODES[params.mode][2] == 4 else MINOR_SUBSTITUTES
    options = list(table.get(numeral, ()))
    target = following.split(SPLIT)[0]
    if "/" not in target and not is_tonic(target) and _can_be_targeted(target, params):
        options.append(f"V/{target}")  # tonicise the next chord
    return rng.choice(options) if options else numeral


def _can_be_targeted(numeral: str, params: MusicParams) -> bool:
    """A secondary dominant needs a major or minor target (not a diminished chord)."""
    try:
        chord = chord_pitch_classes(numeral, params.tonic, params.mode)
    except ValueError:
        return False
    return (chord[2] - chord[0]) % 12 == 7
