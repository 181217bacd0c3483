"""``simulate`` and ``render_midi``: the Standard MIDI File, measured the way a listener-study would."""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest

from emobridge.errors import UserError
from emobridge.labels import EMOTIONS
from emobridge.mapping import load_mapping, parse_mapping
from emobridge.music import analysis
from emobridge.music.composer import Composer
from emobridge.music.render import render_midi, simulate
from emobridge.state import EmotionState



def file_bytes(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def notes_of(midi: mido.MidiFile):
    """Every note in the file; every note-on must have found its note-off."""
    played = analysis.notes_of(midi)
    ons = sum(1 for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0)
    assert len(played) == ons, "notes left without a note-off"
    return played


tempos_of = analysis.tempos_of
features = analysis.features


@pytest.fixture(scope="module")
def mapping():
    return load_mapping()


@pytest.fixture(scope="module")
def measured(mapping):
    return {emotion: features(simulate(emotion, 16, 1, mapping)) for emotion in EMOTIONS}


def test_same_seed_gives_identical_bytes(mapping):
    assert file_bytes(simulate("happy", 16, 1, mapping)) == file_bytes(simulate("happy", 16, 1, mapping))


def test_other_seed_gives_other_music(mapping):
    assert file_bytes(simulate("happy", 16, 1, mapping)) != file_bytes(simulate("happy", 16, 2, mapping))


def test_file_layout_tempo_track_then_one_channel_per_part(mapping, tmp_path):
    path = tmp_path / "happy.mid"
    simulate("happy", 16, 1, mapping).save(path)
    midi = mido.MidiFile(path)
    assert midi.type == 1
    conductor = [message.type for message in midi.tracks[0]]
    assert "time_signature" in conductor and "set_tempo" in conductor
    assert tempos_of(midi)[0][0] == 0  # the tempo is known from the first tick
    parts = mapping.enabled_parts()
    assert [track.name for track in midi.tracks[1:]] == [part.name for part in parts]
    for track, part in zip(midi.tracks[1:], parts):
        channels = {message.channel for message in track if message.type in ("note_on", "note_off")}
        assert channels == {part.channel}


def test_file_lasts_exactly_the_bars(mapping):
    midi = simulate("sad", 8, 3, mapping)
    beats = 8 * mapping.beats_per_bar
    for track in midi.tracks:
        assert sum(message.time for message in track) == beats * midi.ticks_per_beat
    assert max(note.start + note.duration for note in notes_of(midi)) <= beats


def test_tempo_event_at_each_bar_whose_tempo_changes_without_glide():
    jump = parse_mapping("transition: {tempo_glide_beats: 0}", "jump.yaml")
    composer = Composer(jump, seed=0)
    states = ["sad", "sad", "happy", "happy", "sad"]
    midi = render_midi([composer.next_bar(EmotionState.fixed(name)) for name in states], jump)
    bar = jump.beats_per_bar * midi.ticks_per_beat
    assert [tick for tick, _ in tempos_of(midi)] == [0, 2 * bar, 4 * bar]


def test_tempo_glides_with_an_event_on_every_beat_of_the_glide(mapping):
    composer = Composer(mapping, seed=0)  # the default glides over 4 beats: one bar
    states = ["sad", "sad", "happy", "happy"]
    midi = render_midi([composer.next_bar(EmotionState.fixed(name)) for name in states], mapping)
    beat, bar = midi.ticks_per_beat, mapping.beats_per_bar * midi.ticks_per_beat
    tempos = tempos_of(midi)
    assert [tick for tick, _ in tempos] == [0] + [2 * bar + i * beat for i in range(4)]
    bpms = [bpm for _, bpm in tempos]
    sad, happy = (composer_tempo(mapping, name) for name in ("sad", "happy"))
    assert bpms[0] == pytest.approx(sad, abs=0.01) and bpms[-1] == pytest.approx(happy, abs=0.01)
    assert all(a < b for a, b in zip(bpms, bpms[1:]))  # rising in steps
    steps = np.diff(bpms[1:])
    assert np.allclose(steps, steps[0], atol=0.01) and bpms[1] - bpms[0] == pytest.approx(steps[0], abs=0.01)


def composer_tempo(mapping, emotion: str) -> float:
    return Composer(mapping).next_bar(EmotionState.fixed(emotion)).params.tempo


def test_drums_enabled_get_their_own_track_on_channel_10(mapping):
    with_drums = parse_mapping("parts: {drums: {enabled: true}}", "drums.yaml")
    midi = simulate("angry", 4, 1, with_drums)
    assert [track.name for track in midi.tracks[1:]] == ["melody", "chords", "bass", "drums"]
    assert {note.channel for note in notes_of(midi)} == {0, 1, 2, 9}


def test_unknown_emotion_is_refused(mapping):
    with pytest.raises(UserError, match="unknown emotion"):
        simulate("bored", 4, 1, mapping)


def test_happy_is_faster_than_sad(measured):
    assert measured["happy"].tempo > measured["sad"].tempo


def test_happy_is_major_and_sad_is_minor_by_key_profile(measured):
    assert measured["happy"].major > 0.1
    assert measured["sad"].major < -0.1


def test_default_mapping_carries_the_emotions(measured):
    """The relations music psychology expects (Gabrielsson & Lindström; Juslin & Laukka), from the MIDI."""
    m = measured
    others = lambda emotion: [m[name] for name in EMOTIONS if name != emotion]  # noqa: E731
    # happy: major, faster and denser than neutral, louder and higher than sad, more detached than sad
    assert m["happy"].major > 0
    assert m["happy"].tempo > m["neutral"].tempo and m["happy"].density > m["neutral"].density
    assert m["happy"].velocity > m["sad"].velocity and m["happy"].pitch > m["sad"].pitch
    assert m["happy"].articulation < m["sad"].articulation
    # sad: minor, slowest, softest, lowest, legato
    assert m["sad"].major < 0
    assert all(m["sad"].tempo < o.tempo and m["sad"].velocity < o.velocity and m["sad"].pitch < o.pitch
               for o in others("sad"))
    assert m["sad"].articulation > 0.9
    # angry: minor, fast, loudest, dense
    assert m["angry"].major < 0 and m["angry"].tempo > m["neutral"].tempo
    assert all(m["angry"].velocity > o.velocity for o in others("angry"))
    assert m["angry"].density > m["neutral"].density
    # fear: minor, fast-ish, irregular, large loudness swings
    assert m["fear"].major < 0 and m["fear"].tempo > m["neutral"].tempo
    assert all(m["fear"].ioi_cv > o.ioi_cv for o in others("fear"))
    assert all(m["fear"].velocity_spread > o.velocity_spread for o in others("fear"))
    # surprise: fast, not minor, wide leaps and the widest pitch spread
    assert m["surprise"].major > 0 and m["surprise"].tempo > m["neutral"].tempo
    assert all(m["surprise"].pitch_spread > o.pitch_spread and m["surprise"].interval > o.interval
               for o in others("surprise"))
    # disgust: minor, not faster than neutral
    assert m["disgust"].major < 0 and m["disgust"].tempo <= m["neutral"].tempo
