"""Camera cases on the real `emobridge` command: two faces with a voice each, and the no-face policies.

Clips are built from the demo clip's faces (tests/face_clips.py); the music goes to a real JACK
receiver and OSC to a real UDP listener.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from face_clips import COLLINS_HAPPY, HOPPER_NEUTRAL, Placed, face_patch, write_clip
from jack import stuck_notes
from running import connect, emobridge, fixed_tempo_mapping, unique_port

pytestmark = pytest.mark.jack


def finish(daemon: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """Wait for the daemon to end at the end of its clip (SIGTERM if it does not); exit status and log."""
    try:
        _, err = daemon.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=10)
        pytest.fail(f"the daemon did not stop at the end of its clip; it said: {err[-2000:]}")
    return daemon.returncode, err


def play_through(clip, mapping_text: str, tmp_path, osc, *args: str):
    """Run the whole clip once with this mapping (OSC to *osc*); the receiver, once the daemon exited 0."""
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(mapping_text)
    port = unique_port()
    daemon = emobridge("run", "--video", str(clip), "--stop-at-end", "--mapping", str(mapping), *args,
                       "--midi-backend", "jack", "--midi-port", port, "--osc", osc.target)
    receiver = connect(port, daemon)
    status, err = finish(daemon)
    assert status == 0, err
    assert "Traceback" not in err, err
    receiver.settle()
    return receiver


@pytest.fixture(scope="module")
def faces() -> tuple[Placed, Placed]:
    return Placed(face_patch(COLLINS_HAPPY), 5, 60), Placed(face_patch(HOPPER_NEUTRAL), 330, 70)


def test_each_face_plays_its_own_voice_on_its_own_channel(jack_server, osc, tmp_path, faces):
    left, right = faces
    clip = write_clip(tmp_path / "two.avi", [(3, [left]), (6, [left, right]), (5, [right])])
    receiver = play_through(clip, fixed_tempo_mapping(120) + "faces: {follow: each, channels: [5, 6]}\n",
                            tmp_path, osc, "--speed", "2")

    counts = osc.received_at("/emobridge/faces")
    assert [args[0] for _, args in counts] == [1, 2, 1], f"face counts sent: {counts}"
    both_at, left_gone_at = counts[1][0], counts[2][0]
    voices = osc.received("/emobridge/voice")
    assert {args[1] for args in voices if args[0] == 1} >= {"happy"}, "the first face's own emotion"
    assert {args[1] for args in voices if args[0] == 2} >= {"neutral"}, "the second face's own emotion"

    notes = [m for m in receiver.snapshot() if m.is_note_on]
    first_voice = [m.time for m in notes if m.channel == 4]   # YAML channel 5: the left face, which came first
    second_voice = [m.time for m in notes if m.channel == 5]  # YAML channel 6: the right face
    assert first_voice and second_voice, f"channels heard: {sorted({m.channel for m in notes})}"
    assert min(second_voice) > both_at - 0.2, "the second voice played before the second face was seen"
    bar = 4 * 60 / 120 / 2  # seconds: 4 beats at 120 BPM played twice as fast
    assert max(first_voice) < left_gone_at + bar + 0.5, "the first face's voice went on after it left"
    assert max(second_voice) > left_gone_at + 2 * bar, "the second face's voice stopped when the other face left"
    assert {m.channel for m in notes} >= {0, 1, 2}, "the band (melody, chords, bass) plays under the voices"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def test_fade_out_policy_silences_the_music_without_a_face_and_brings_it_back(jack_server, osc, tmp_path, faces):
    left, _ = faces
    clip = write_clip(tmp_path / "away.avi", [(3, [left]), (5, []), (4, [left])])
    receiver = play_through(clip, fixed_tempo_mapping(120) + "smoothing: {no_face: fade_out, no_face_fade: 1.0}\n",
                            tmp_path, osc)

    face = osc.received_at("/emobridge/face")
    assert [args[0] for _, args in face] == [1, 0, 1], f"face messages: {face}"
    lost_at, back_at = face[1][0], face[2][0]
    notes = [m for m in receiver.snapshot() if m.is_note_on]
    assert [m for m in notes if m.time < lost_at], "no music while the face was there"
    silent = [m for m in notes if lost_at + 1.2 < m.time < back_at]
    assert silent == [], f"{len(silent)} notes played after the 1 s fade-out, with no face"
    fading = [m.message[2] for m in notes if lost_at + 0.5 < m.time < lost_at + 1.0]
    before = [m.message[2] for m in notes if lost_at - 1.5 < m.time < lost_at]
    if fading:  # notes struck half-way through the fade are quieter than before it
        assert max(fading) < max(before)
    assert [m for m in notes if m.time > back_at + 0.6], "the music did not come back with the face"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def test_hold_policy_keeps_the_emotion_and_the_music_without_a_face(jack_server, osc, tmp_path, faces):
    left, _ = faces
    clip = write_clip(tmp_path / "away.avi", [(3, [left]), (5, [])])
    receiver = play_through(clip, "smoothing: {no_face: hold, no_face_fade: 1.0}\n", tmp_path, osc)

    face = osc.received_at("/emobridge/face")
    assert [args[0] for _, args in face] == [1, 0]
    lost_at = face[1][0]
    modes_after = [args[0] for t, args in osc.received_at("/emobridge/mode") if t > lost_at + 1.5]
    valence = osc.received_at("/emobridge/valence")
    held = [args[0] for t, args in valence if t > lost_at + 0.1]
    last_seen = [args[0] for t, args in valence if t < lost_at - 0.1][-1]
    assert modes_after and set(modes_after) == {"major"}, "the happy face's music should hold"
    assert last_seen > 0.1 and held and max(abs(v - last_seen) for v in held) < 0.05, \
        f"the emotion drifted although the policy is hold: {last_seen:.2f} then {min(held):.2f}..{max(held):.2f}"
    assert [m for m in receiver.snapshot() if m.is_note_on and m.time > lost_at + 1.5], "the music stopped"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def cut_off(clip: Path) -> None:
    """The file stops half-way, as a recording that was still being written when it was copied."""
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2])


def garbled(clip: Path) -> None:
    """A stretch of the file's middle is noise, as a damaged disk or a broken capture gives: read errors mid-way."""
    data = bytearray(clip.read_bytes())
    start = len(data) // 2
    data[start:start + 200_000] = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [None, cut_off, garbled], ids=["ends", "cut-off-mid-way", "garbled-mid-way"])
def test_a_file_that_ends_or_breaks_is_a_lost_camera_the_music_goes_on_and_it_is_opened_again(
        jack_server, osc, tmp_path, faces, damage):
    left, _ = faces
    clip = write_clip(tmp_path / "short.avi", [(2 if damage is None else 4, [left])])
    if damage is not None:
        damage(clip)
    port = unique_port()
    daemon = emobridge("run", "--video", str(clip), "--midi-backend", "jack", "--midi-port", port,
                       "--osc", osc.target)
    try:
        receiver = connect(port, daemon)
        assert osc.wait_for("/emobridge/source", timeout=20), "no /emobridge/source 0 when the file ended"
        ended_at, (ok, name) = osc.received_at("/emobridge/source")[0]
        assert (ok, name) == (0, str(clip))
        deadline = ended_at + 6.0
        while time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.1)
        assert daemon.poll() is None, "the daemon stopped at the end of the file"
        sources = [args for _, args in osc.received_at("/emobridge/source")]
        assert (1, str(clip)) in sources, f"the file was not opened again: {sources}"
        assert [m for m in receiver.snapshot() if m.is_note_on and m.time > ended_at + 0.2], "the music stopped"
        faces_seen = [args[0] for _, args in osc.received_at("/emobridge/face")]
        assert faces_seen[0] == 1 and 0 in faces_seen and 1 in faces_seen[faces_seen.index(0):], \
            f"face messages (want seen, lost at the end, seen again once reopened): {faces_seen}"
    finally:
        daemon.send_signal(signal.SIGTERM)
        status, err = finish(daemon, timeout=10)
    assert status == 0, err
    assert f"end of {clip}; the music goes on" in err, err
    assert "Traceback" not in err and "perception failed" not in err, err
    assert "[mjpeg @" not in err, f"FFmpeg's decoder noise reached the terminal: {err[-2000:]}"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def test_switching_to_each_face_in_a_saved_mapping_gives_the_faces_their_voices(jack_server, osc, tmp_path, faces):
    clip = write_clip(tmp_path / "two.avi", [(4, list(faces))])
    mapping = tmp_path / "live.yaml"
    mapping.write_text(fixed_tempo_mapping(120))
    port = unique_port()
    daemon = emobridge("run", "--video", str(clip), "--loop", "--mapping", str(mapping), "--speed", "2",
                       "--midi-backend", "jack", "--midi-port", port, "--osc", osc.target)
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20)
        time.sleep(2.0)
        assert not [m for m in receiver.snapshot() if m.is_note_on and m.channel in (4, 5)], "voices before asked"
        mapping.write_text(fixed_tempo_mapping(120) + "faces: {follow: each, channels: [5, 6]}\n")
        saved = time.monotonic()
        assert receiver.wait_for(lambda m: m.is_note_on and m.channel == 4 and m.time > saved, timeout=10)
        assert receiver.wait_for(lambda m: m.is_note_on and m.channel == 5 and m.time > saved, timeout=10)
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        status, err = finish(daemon, timeout=10)
    assert status == 0, err
    assert "Traceback" not in err and "perception failed" not in err, err
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def test_a_clip_with_no_face_at_all_plays_neutral_music(jack_server, osc, tmp_path):
    clip = write_clip(tmp_path / "empty_room.avi", [(4, [])])
    receiver = play_through(clip, fixed_tempo_mapping(120), tmp_path, osc)
    assert [args[0] for args in osc.received("/emobridge/face")] == [0]
    assert osc.received("/emobridge/emotion") == [], "an emotion was reported without a face"
    assert osc.received("/emobridge/faces") == [(0,)]
    assert {args[0] for args in osc.received("/emobridge/mode")} == {"major"}  # neutral's mode
    assert [m for m in receiver.snapshot() if m.is_note_on], "no music without a face"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()
