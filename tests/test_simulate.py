"""``simulate`` and ``render_midi``: the Standard MIDI File, measured the way a listener-study would."""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass

import mido
import numpy as np
import pytest

from emobridge.labels import EMOTIONS
from emobridge.mapping import load_mapping, parse_mapping
from emobridge.music.composer import Composer
from emobridge.music.render import render_midi, simulate
from emobridge.smoothing import EmotionState

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
DRUM_CHANNEL = 9


@dataclass(frozen=True)
class Played:
    start: float      # beats from the start of the file
    duration: float   # beats
    channel: int
    pitch: int
    velocity: int


def file_bytes(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def notes_of(midi: mido.MidiFile) -> list[Played]:
    """Every note in the file, paired note-on with note-off."""
    played = []
    for track in midi.tracks:
        tick, sounding = 0, {}
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = (tick, message.velocity)
            elif message.type in ("note_off", "note_on"):
                start, velocity = sounding.pop((message.channel, message.note))
                played.append(Played(start / midi.ticks_per_beat, (tick - start) / midi.ticks_per_beat,
                                     message.channel, message.note, velocity))
        assert not sounding, f"notes left without a note-off: {sounding}"
    return sorted(played, key=lambda note: (note.start, note.channel, note.pitch))


def tempos_of(midi: mido.MidiFile) -> list[tuple[int, float]]:
    tick, tempos = 0, []
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempos.append((tick, mido.tempo2bpm(message.tempo)))
    return tempos


def key_correlations(notes: list[Played]) -> tuple[float, float]:
    """Best correlation with any major key and with any minor key (duration-weighted pitch classes)."""
    histogram = np.zeros(12)
    for note in notes:
        if note.channel != DRUM_CHANNEL:
            histogram[note.pitch % 12] += note.duration
    best = {}
    for name, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        best[name] = max(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1] for tonic in range(12))
    return best["major"], best["minor"]


@dataclass(frozen=True)
class Features:
    tempo: float
    major: float          # major minus minor key correlation: > 0 major, < 0 minor
    density: float        # melody notes per beat
    velocity: float       # mean velocity, all notes
    velocity_spread: float
    pitch: float          # mean melody pitch
    pitch_spread: float
    interval: float       # mean melodic interval in semitones
    ioi_cv: float         # inter-onset intervals' coefficient of variation (melody): 0 is a steady grid
    articulation: float   # mean sounding length over the gap to the next melody note


def features(midi: mido.MidiFile, melody_channel: int = 0) -> Features:
    notes = notes_of(midi)
    melody = [note for note in notes if note.channel == melody_channel]
    onsets = [note.start for note in melody]
    gaps = np.diff(onsets)
    tempos = [bpm for _, bpm in tempos_of(midi)]
    major, minor = key_correlations(notes)
    length = max(note.start + note.duration for note in notes)
    return Features(
        tempo=statistics.mean(tempos),
        major=major - minor,
        density=len(melody) / length,
        velocity=statistics.mean(note.velocity for note in notes),
        velocity_spread=statistics.pstdev(note.velocity for note in melody),
        pitch=statistics.mean(note.pitch for note in melody),
        pitch_spread=statistics.pstdev(note.pitch for note in melody),
        interval=float(np.mean(np.abs(np.diff([note.pitch for note in melody])))),
        ioi_cv=float(np.std(gaps) / np.mean(gaps)),
        articulation=statistics.mean(note.duration / gap for note, gap in zip(melody, gaps)),
    )


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


def test_tempo_event_at_each_bar_whose_tempo_changes(mapping):
    composer = Composer(mapping, seed=0)
    states = ["sad", "sad", "happy", "happy", "sad"]
    midi = render_midi([composer.next_bar(EmotionState.fixed(name)) for name in states], mapping)
    bar = mapping.beats_per_bar * midi.ticks_per_beat
    assert [tick for tick, _ in tempos_of(midi)] == [0, 2 * bar, 4 * bar]


def test_drums_enabled_get_their_own_track_on_channel_10(mapping):
    with_drums = parse_mapping("parts: {drums: {enabled: true}}", "drums.yaml")
    midi = simulate("angry", 4, 1, with_drums)
    assert [track.name for track in midi.tracks[1:]] == ["melody", "chords", "bass", "drums"]
    assert {note.channel for note in notes_of(midi)} == {0, 1, 2, 9}


def test_unknown_emotion_is_refused(mapping):
    with pytest.raises(ValueError, match="unknown emotion"):
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
