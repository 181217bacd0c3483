"""Several faces: the tracker keeps each face's id, `faces: largest|average|each`, and each face's own voice.

The clips are built from the demo clip's two public-domain faces (tests/face_clips.py): Collins
smiling on the left, Hopper neutral on the right, coming and going.
"""

from __future__ import annotations

import numpy as np
import pytest

from emobridge.perception.emotion import EmotionClassifier
from emobridge.perception.faces import MultiFaceTracker
from emobridge.labels import EMOTIONS
from emobridge.errors import MappingError
from emobridge.mapping import parse_mapping
from emobridge.music.composer import Composer, compose_voices, params_for
from emobridge.theory import scale_pitch_classes
from emobridge.perception.chain import Perception
from emobridge.state import EmotionState
from face_clips import COLLINS_HAPPY, HOPPER_NEUTRAL, Placed, face_patch, frames_of

FPS = 15


@pytest.fixture(scope="module")
def left() -> Placed:
    return Placed(face_patch(COLLINS_HAPPY), 5, 60)


@pytest.fixture(scope="module")
def right() -> Placed:
    return Placed(face_patch(HOPPER_NEUTRAL), 330, 70)


@pytest.fixture(scope="module")
def scene(left, right):
    """0-2 s left alone, 2-5 s both, 5-7 s right alone (left left), 7-9 s both again, 9-11 s nobody."""
    return frames_of([(2, [left]), (3, [left, right]), (2, [right]), (2, [left, right]), (2, [])], FPS)


def span(frames, start: float, end: float, settle: float = 0.3):
    """The frames from *start* + *settle* to *end* seconds (a face is found again within a few frames)."""
    return [(t, image) for t, image in frames if start + settle <= t < end - 1e-6]


def side(box) -> str:
    return "left" if box.center[0] < 320 else "right"


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier()


# --- the tracker ---------------------------------------------------------------------
def test_tracker_keeps_each_face_id_while_it_stays_in_view(scene):
    tracker = MultiFaceTracker(max_faces=4)
    seen: list[tuple[float, dict[str, int]]] = []
    for t, image in scene:
        seen.append((t, {side(face.box): face.id for face in tracker.update(image)}))

    def ids(start, end):
        return [faces for t, faces in seen if start + 0.3 <= t < end - 1e-6]

    both = ids(2, 5) + ids(7, 9)
    assert sum(set(f) == {"left", "right"} for f in both) >= 0.9 * len(both)
    right_ids = {f["right"] for f in ids(2, 9) if "right" in f}
    assert len(right_ids) == 1, f"the right face changed id while in view: {right_ids}"
    first_left = {f["left"] for f in ids(0, 5) if "left" in f}
    second_left = {f["left"] for f in ids(7, 9) if "left" in f}
    assert len(first_left) == 1 and len(second_left) == 1
    assert first_left != second_left, "a face that left and came back is a new face"
    assert all(set(f) == {"right"} for f in ids(5, 7))
    assert all(f == {} for f in ids(9, 11))


def test_tracker_follows_no_more_than_max_faces(scene):
    tracker = MultiFaceTracker(max_faces=1)
    counts = [len(tracker.update(image)) for _, image in span(scene, 2, 5)]
    assert max(counts) == 1


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError):
        MultiFaceTracker(max_faces=0)


# --- perception: largest, average, each -----------------------------------------------
def test_largest_follows_one_face_of_two(classifier, left):
    bigger = Placed(face_patch(HOPPER_NEUTRAL, face=175), 300, 40)
    perception = Perception(classifier, follow="largest")
    frames = frames_of([(1, [left, bigger])], FPS)
    results = [perception.process(image, t) for t, image in frames]
    assert all(len(r.faces) <= 1 for r in results)
    assert side(results[-1].box) == "right"  # found afresh, the largest face wins
    assert results[-1].voices() == {}


def test_average_follows_the_mean_of_the_faces(classifier, scene):
    perception = Perception(classifier, follow="average")
    results = [perception.process(image, t) for t, image in span(scene, 2, 5, settle=0)]
    last = results[-1]
    assert len(last.faces) == 2
    mean = np.mean([face.reading.probs for face in last.faces], axis=0)
    assert np.abs(np.array(last.state.probs) - mean).max() < 0.15  # 3 s of two still faces: settled on their mean
    happy, neutral = EMOTIONS.index("happy"), EMOTIONS.index("neutral")
    readings = {side(face.box): face.reading.probs for face in last.faces}
    assert readings["left"][happy] > 0.5 and readings["right"][neutral] > 0.5
    assert 0.2 < last.state.probs[happy] < 0.8 and 0.2 < last.state.probs[neutral] < 0.8  # both count
    assert last.voices() == {}


def test_each_gives_every_face_a_slot_it_keeps_and_its_own_emotion(classifier, scene):
    perception = Perception(classifier, follow="each")
    slots: list[tuple[float, dict[str, int]]] = []
    states = {}
    for t, image in scene:
        result = perception.process(image, t)
        slots.append((t, {side(face.box): face.slot for face in result.faces}))
        for face in result.faces:
            states[side(face.box)] = face.state
        if 4.9 < t < 5.0:
            at_five = dict(states)

    def during(start, end):
        return [s for t, s in slots if start + 0.3 <= t < end - 1e-6]

    assert all(s.get("left") == 0 for s in during(0, 5) if "left" in s)
    assert {s["right"] for s in during(2, 9) if "right" in s} == {1}, "the right face keeps its voice"
    assert all(s.get("left") == 0 for s in during(7, 9) if "left" in s), "a new face takes the lowest free voice"
    assert at_five["left"].label == "happy" and at_five["right"].label == "neutral"
    assert during(9.5, 11) and all(s == {} for s in during(9.5, 11))


def test_changing_follow_starts_the_trackers_afresh(classifier):
    perception = Perception(classifier, follow="largest")
    perception.configure("each", 2)  # from the reload thread: applied by the perception thread's next frame
    perception.process(np.zeros((480, 640, 3), np.uint8), 0.0)
    assert isinstance(perception.detector, MultiFaceTracker) and perception.detector.max_faces == 2
    with pytest.raises(ValueError):
        perception.configure("everyone", 2)


# --- the mapping's faces: section ------------------------------------------------------
def test_faces_short_form_and_defaults():
    mapping = parse_mapping("faces: each\n", "test")
    assert mapping.faces.follow == "each"
    assert [part.channel for part in mapping.faces.voice_parts()] == [4, 5, 6, 7]  # YAML channels 5-8
    assert set(mapping.channels()) >= {4, 5, 6, 7}
    assert parse_mapping("faces: {follow: average}\n", "test").faces.voice_parts() == ()


@pytest.mark.parametrize("text, where", [
    ("faces: everyone\n", "faces.follow"),
    ("faces: {follow: each, channels: [1, 6]}\n", "faces.channels[0]"),  # the melody's channel
    ("faces: {follow: each, channels: [6, 6]}\n", "faces.channels[1]"),
    ("faces: {channels: 5}\n", "faces.channels"),
    ("faces: {max: 9}\n", "faces.max"),
    ("faces: {follow: each, octave: 4}\n", "faces.octave"),
    ("faces: {voices: 2}\n", "faces.voices"),
])
def test_bad_faces_settings_name_the_key(text, where):
    with pytest.raises(MappingError) as error:
        parse_mapping(text, "test.yaml")
    assert f"test.yaml: {where}:" in str(error.value)


# --- each face's voice in the music -----------------------------------------------------
def test_each_face_plays_its_own_voice_in_the_shared_harmony():
    mapping = parse_mapping("faces: {follow: each, channels: [5, 6]}\n", "test")
    happy, sad = EmotionState.fixed("happy"), EmotionState.fixed("sad")
    overall = EmotionState.fixed("neutral")
    params = params_for(overall, mapping)
    events = compose_voices(params, {0: happy, 1: sad, 2: happy}, mapping, index=0, seed=1)
    by_channel = {channel: [e for e in events if e.channel == channel] for channel in (4, 5)}
    assert {e.channel for e in events} == {4, 5}, "slot 2 has no channel, so no voice"
    assert {e.part for e in by_channel[4]} == {"face1"} and {e.part for e in by_channel[5]} == {"face2"}
    happy_notes, sad_notes = by_channel[4], by_channel[5]
    assert len(happy_notes) > len(sad_notes)  # each voice has its own emotion's density...
    assert np.mean([e.velocity for e in happy_notes]) > np.mean([e.velocity for e in sad_notes])  # ...and level
    scale = set(scale_pitch_classes(params.tonic, params.mode))
    assert all(e.pitch % 12 in scale for e in events), "voices play in the bar's key and mode"
    assert events == compose_voices(params, {0: happy, 1: sad, 2: happy}, mapping, index=0, seed=1)


def test_two_faces_with_one_emotion_play_different_lines():
    mapping = parse_mapping("faces: each\n", "test")
    happy = EmotionState.fixed("happy")
    params = params_for(happy, mapping)
    events = compose_voices(params, {0: happy, 1: happy}, mapping, index=3, seed=1)
    lines = [[(e.beat, e.pitch) for e in events if e.part == name] for name in ("face1", "face2")]
    assert lines[0] and lines[1] and lines[0] != lines[1]


def test_the_composer_adds_voices_only_for_faces_present():
    mapping = parse_mapping("faces: each\n", "test")
    composer = Composer(mapping, seed=1)
    state = EmotionState.fixed("happy")
    plain = composer.next_bar(state)
    assert not any(e.part.startswith("face") for e in plain.events)
    with_voice = composer.next_bar(state, {1: EmotionState.fixed("surprise")})
    assert {e.channel for e in with_voice.events if e.part.startswith("face")} == {5}  # slot 1: channel 6


def test_bench_times_the_chain_following_every_face(tmp_path, left, right):
    from emobridge.tools.bench import format_bench, run_bench
    from face_clips import write_clip

    clip = write_clip(tmp_path / "two.avi", [(3, [left, right])])
    result = run_bench(clip, frames=30, baseline_frames=3, steadiness=False, faces="each")
    assert result["faces"] == "each"
    assert result["chain"]["faces_per_frame"] > 1.8  # both faces, nearly every frame
    assert result["chain"]["stages"]["classify"]["median_ms"] > 0
    assert "faces: each" in format_bench(result)


def test_tracker_finds_a_small_face_beside_a_big_one_without_a_whole_frame_search(left):
    """A face in the back row (about 50 px, below what a 320 px search sees) is found by the full-resolution
    slices, and no frame pays for a whole-frame search (the plain detector is never called)."""
    small = Placed(face_patch(HOPPER_NEUTRAL, face=64), 420, 300)
    tracker = MultiFaceTracker(max_faces=4)
    tracker.full.detect = lambda *_: pytest.fail("a whole-frame search ran in a frame")
    seen = [{side(face.box) for face in tracker.update(image)} for _, image in frames_of([(3, [left, small])], FPS)]
    assert seen[-1] == {"left", "right"}
    assert sum(s == {"left", "right"} for s in seen[FPS:]) >= 0.9 * len(seen[FPS:])
