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


def test_the_relations_cover_the_issue():
    """Each emotion has relations for what the issue asks of it."""
    text = " ".join(name for name, _ in RELATIONS)
    for phrase in ("happy is major", "happy is faster than neutral", "happy is denser than neutral",
                   "happy is louder than sad", "happy is higher than sad", "happy is more staccato than sad",
                   "sad is minor", "sad is the slowest", "sad is the softest", "sad is the lowest", "sad is legato",
                   "angry is minor", "angry is faster", "angry is the loudest", "angry is denser",
                   "fear is minor", "fear is faster", "fear is the most irregular", "fear swings most in loudness",
                   "surprise is faster", "surprise is not minor", "surprise has the widest leaps",
                   "surprise has the widest pitch spread", "disgust is minor", "disgust is not faster than neutral",
                   "neutral is moderate in tempo", "neutral is moderate in loudness"):
        assert phrase in text, phrase


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
