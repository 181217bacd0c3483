"""Psychology acceptance: the music of each emotion, measured from the simulated MIDI file alone.

For the default mapping and every preset that claims to be emotion-faithful (a
``# emotion-faithful: yes`` line), each of the seven emotions is simulated for 16 bars and
measured (tempo from the tempo events, mode by Krumhansl-Kessler key-profile correlation,
density, loudness and its spread, register and its spread, melodic interval, inter-onset
regularity, articulation); the relations of music psychology (Gabrielsson & Lindström;
Juslin & Laukka) must all hold and the seven must be clearly apart.

``python -m emobridge.music.analysis`` prints the same measurements as a table.
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import lru_cache

import mido
import pytest

from emobridge.labels import EMOTIONS
from emobridge.mapping import list_presets, load_mapping, preset_is_faithful
from emobridge.music import analysis
from emobridge.music.analysis import MIN_DISTANCE, RELATIONS, check_relations, distinctness, features, format_table, measure_mapping

FAITHFUL = [name for name in list_presets() if preset_is_faithful(name)]


@lru_cache(maxsize=None)
def measured(preset: str, seed: int = 1) -> dict[str, analysis.Features]:
    return measure_mapping(load_mapping(preset), bars=16, seed=seed)


def test_there_are_three_presets_and_the_default_claims_faithfulness():
    assert {"default", "ambient", "driving"} <= set(list_presets())
    assert "default" in FAITHFUL


@pytest.mark.parametrize("preset", FAITHFUL)
def test_every_relation_holds(preset):
    m = measured(preset)
    failed = check_relations(m)
    assert not failed, f"{preset}: {failed}\n{format_table(m)}"


@pytest.mark.parametrize("preset", FAITHFUL)
def test_the_seven_emotions_are_clearly_different(preset):
    distance, pair = distinctness(measured(preset))
    assert distance > MIN_DISTANCE, f"{preset}: {pair} only {distance:.2f} apart\n{format_table(measured(preset))}"


@pytest.mark.parametrize("preset", FAITHFUL)
def test_the_emotions_hold_for_another_seed(preset):
    assert not check_relations(measured(preset, seed=7))


# What each relation compares: (emotion, feature, compared with, which way). It is compared with another
# emotion, with every other ("others": the slowest, the loudest...), or with a threshold (0: the sign of the
# major-minor correlation). "between": strictly inside the others' span. Together the names cover the issue.
MEANINGS: dict[str, tuple[str, str, str | float, str]] = {
    "happy is major": ("happy", "major", 0.0, ">"),
    "happy is faster than neutral": ("happy", "tempo", "neutral", ">"),
    "happy is denser than neutral": ("happy", "density", "neutral", ">"),
    "happy is louder than sad": ("happy", "velocity", "sad", ">"),
    "happy is higher than sad": ("happy", "pitch", "sad", ">"),
    "happy is more staccato than sad": ("happy", "articulation", "sad", "<"),
    "sad is minor": ("sad", "major", 0.0, "<"),
    "sad is the slowest": ("sad", "tempo", "others", "<"),
    "sad is the softest": ("sad", "velocity", "others", "<"),
    "sad is the lowest": ("sad", "pitch", "others", "<"),
    "sad is the most legato": ("sad", "articulation", "others", ">"),
    "sad is legato (dur/gap > 0.85)": ("sad", "articulation", 0.85, ">"),
    "angry is minor": ("angry", "major", 0.0, "<"),
    "angry is faster than neutral": ("angry", "tempo", "neutral", ">"),
    "angry is the loudest": ("angry", "velocity", "others", ">"),
    "angry is denser than neutral": ("angry", "density", "neutral", ">"),
    "fear is minor": ("fear", "major", 0.0, "<"),
    "fear is faster than neutral": ("fear", "tempo", "neutral", ">"),
    "fear is the most irregular": ("fear", "ioi_cv", "others", ">"),
    "fear swings most in loudness": ("fear", "velocity_spread", "others", ">"),
    "surprise is not minor": ("surprise", "major", 0.0, ">"),
    "surprise is faster than neutral": ("surprise", "tempo", "neutral", ">"),
    "surprise has the widest leaps": ("surprise", "interval", "others", ">"),
    "surprise has the widest pitch spread": ("surprise", "pitch_spread", "others", ">"),
    "disgust is minor": ("disgust", "major", 0.0, "<"),
    "disgust is not faster than neutral": ("disgust", "tempo", "neutral", "<="),
    "neutral is moderate in tempo": ("neutral", "tempo", "others", "between"),
    "neutral is moderate in density": ("neutral", "density", "others", "between"),
    "neutral is moderate in loudness": ("neutral", "velocity", "others", "between"),
    "neutral is moderate in register": ("neutral", "pitch", "others", "between"),
    "neutral is moderate in articulation": ("neutral", "articulation", "others", "between"),
}
BASE = 0.5  # every feature of every emotion, before a case moves some


def flat(**moved: float) -> dict[str, analysis.Features]:
    """Seven emotions alike (every feature BASE) but for *moved*: {"sad__tempo": value}."""
    alike = analysis.Features(**{field.name: BASE for field in fields(analysis.Features)})
    changes: dict[str, dict[str, float]] = {name: {} for name in EMOTIONS}
    for where, value in moved.items():
        emotion, feature = where.split("__")
        changes[emotion][feature] = value
    return {name: replace(alike, **changes[name]) for name in EMOTIONS}


def test_every_relation_has_its_meaning_written_down():
    assert [name for name, _ in RELATIONS] == list(MEANINGS)


@pytest.mark.parametrize("name, holds", RELATIONS, ids=[name for name, _ in RELATIONS])
def test_each_relation_computes_what_its_name_says(name, holds):
    """The relation holds with its emotion on the named side, and fails with it on the other side or
    with the emotion (every other one, for "the most") it is compared with further out."""
    emotion, feature, against, way = MEANINGS[name]
    at = f"{emotion}__{feature}"
    if isinstance(against, float):
        step = 0.01 if way == ">" else -0.01
        assert holds(flat(**{at: against + step})) and not holds(flat(**{at: against - step}))
        return
    if way == "between":
        spread = {f"{EMOTIONS[0]}__{feature}": BASE - 1, f"{EMOTIONS[1]}__{feature}": BASE + 1}
        assert holds(flat(**spread, **{at: BASE}))
        assert not holds(flat(**spread, **{at: BASE + 2})) and not holds(flat(**spread, **{at: BASE - 2}))
        return
    step = 1.0 if way == ">" else -1.0
    assert holds(flat(**{at: BASE + step})) and not holds(flat(**{at: BASE - step}))
    assert holds(flat(**{at: BASE})) == (way == "<=")  # a tie passes only "not faster than"
    rivals = [name for name in EMOTIONS if name != emotion] if against == "others" else [against]
    for rival in rivals:
        assert not holds(flat(**{at: BASE + step, f"{rival}__{feature}": BASE + 2 * step})), rival


def test_relations_catch_a_broken_mapping():
    """A mapping that swaps happy and sad must fail the check: the test can tell the difference."""
    m = dict(measured("default"))
    m["happy"], m["sad"] = m["sad"], m["happy"]
    failed = check_relations(m)
    assert "happy is major" in failed and "sad is the slowest" in failed


def test_measurements_of_a_known_file():
    """The measuring code itself, on a file written by hand: C major quarter notes at 90 BPM."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90))])
    track = mido.MidiTrack()
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 60]
    for index, pitch in enumerate(pitches):
        velocity = 60 if index % 2 else 80
        track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=0 if index == 0 else 240))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    track.append(mido.MetaMessage("end_of_track", time=240))  # the file lasts 16 beats
    midi.tracks += [conductor, track]
    f = features(midi, melody_channel=0)
    assert f.tempo == pytest.approx(90, abs=0.01)
    assert f.major > 0.1
    assert f.density == pytest.approx(1.0)          # one note per beat
    assert f.velocity == pytest.approx(70) and f.velocity_spread == pytest.approx(10)
    assert f.ioi_cv == pytest.approx(0.0)           # a steady grid
    assert f.articulation == pytest.approx(0.5)     # half the gap sounds
    assert f.pitch == pytest.approx(sum(pitches) / len(pitches))


def test_table_has_a_row_per_emotion():
    table = format_table(measured("default"))
    assert all(f"| {emotion} |" in table for emotion in EMOTIONS)
    assert table.splitlines()[0].startswith("| emotion | tempo BPM")


def test_analysis_entry_point_prints_the_table(capsys):
    assert analysis.main(["--mapping", "default", "--bars", "8"]) == 0
    out = capsys.readouterr().out
    assert "### default (claims emotion-faithful" in out and "relations: " in out and "| sad |" in out
