"""The address table's timing (what to send when), without a socket."""

from __future__ import annotations

import pytest

from emobridge.labels import EMOTIONS
from emobridge.outputs.osc import OscTable
from emobridge.perception.chain import FaceResult
from emobridge.state import EmotionState


def lost() -> EmotionState:
    return EmotionState(EmotionState.neutral().probs, "neutral", 1.0, 0.0, 0.0, False, 0.0)


def names(messages: list) -> list[str]:
    return [name for name, _ in messages]


def test_a_frame_with_a_face():
    messages = dict(OscTable().emotion(EmotionState.fixed("happy")))
    assert messages["face"] == (1,)
    assert messages["emotion"] == ("happy", pytest.approx(1.0))
    assert len(messages["probs"]) == len(EMOTIONS) and messages["probs"][EMOTIONS.index("happy")] == 1.0
    assert messages["valence"][0] == pytest.approx(0.81)
    assert messages["arousal"][0] == pytest.approx(0.51)
    assert all(isinstance(arg, (str, int, float)) for _, args in messages.items() for arg in args)  # OSC types only


def test_face_only_on_change_and_emotion_only_with_a_face():
    table = OscTable()
    sent = [names(table.emotion(state)) for state in [EmotionState.fixed("sad"), EmotionState.fixed("sad"), lost(), lost()]]
    assert sent == [["face", "emotion", "probs", "valence", "arousal"],
                    ["emotion", "probs", "valence", "arousal"],
                    ["face", "probs", "valence", "arousal"],
                    ["probs", "valence", "arousal"]]
    assert table.last_face is False


def test_music_on_change_and_at_every_bar_start():
    table = OscTable()
    assert table.music(120.0, "major", 0.5, bar_start=True) == [("tempo", (120.0,)), ("mode", ("major",)),
                                                                 ("density", (0.5,))]
    assert table.music(120.0, "major", 0.5, bar_start=False) == []
    assert table.music(120.001, "major", 0.5002, bar_start=False) == []  # below 0.01 BPM and 0.001 density
    assert names(table.music(90.0, "major", 0.5, bar_start=False)) == ["tempo", "mode", "density"]
    assert names(table.music(90.0, "minor", 0.5, bar_start=False)) == ["tempo", "mode", "density"]
    assert names(table.music(90.0, "minor", 0.5, bar_start=True)) == ["tempo", "mode", "density"]


def test_source_every_time():
    table = OscTable()
    assert table.source(False, "camera 0") == [("source", (0, "camera 0"))]
    assert table.source(True, "camera 0") == [("source", (1, "camera 0"))]


def test_faces_count_on_change_and_every_voice_every_time():
    table = OscTable()
    voiced = FaceResult(id=7, box=None, reading=None, slot=1, state=EmotionState.fixed("angry"))
    unvoiced = FaceResult(id=8, box=None, reading=None)  # faces: main: no voice of its own
    assert names(table.faces([voiced, unvoiced])) == ["faces", "voice"]
    assert table.faces([voiced, unvoiced]) == [("voice", (2, "angry", 1.0, pytest.approx(voiced.state.valence),
                                                           pytest.approx(voiced.state.arousal)))]
    assert table.faces([]) == [("faces", (0,))]
    assert table.faces(()) == []
