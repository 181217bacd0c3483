"""Camera cases on the real `emobridge` command: two faces with a voice each, a damaged file, a saved mapping.

The no-face policies and the orchestration around them run in-process in test_show.py; these prove the
real parts.

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
from jack_rig import stuck_notes
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
    clip = write_clip(tmp_path / "two.avi", [(2, [left]), (3, [left, right]), (4, [right])])
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


def garbled(clip: Path) -> None:
    """A stretch of the file's middle is noise, as a damaged disk or a broken capture gives: read errors mid-way."""
    data = bytearray(clip.read_bytes())
    start = len(data) // 2
    data[start:start + 200_000] = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    clip.write_bytes(bytes(data))


# A clean end and a cut-off file take the same path (the source ends); in-process tests cover it (test_show.py).
# Here the real decoder meets a damaged file.
@pytest.mark.parametrize("damage", [garbled], ids=["garbled-mid-way"])
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
        reopened = lambda: (1, str(clip)) in [args for _, args in osc.received_at("/emobridge/source")]  # noqa: E731
        deadline = ended_at + 6.0  # the first retry comes 0.5 s after the end
        while time.monotonic() < deadline and daemon.poll() is None and not reopened():
            time.sleep(0.1)
        assert daemon.poll() is None, "the daemon stopped at the end of the file"
        sources = [args for _, args in osc.received_at("/emobridge/source")]
        assert reopened(), f"the file was not opened again: {sources}"
        time.sleep(1.0)  # frames again, and a face
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


def test_faces_each_from_the_command_line_plays_the_same_voices_as_from_the_mapping(jack_server, tmp_path, faces):
    """Two daemons at once on one clip: --faces each, and faces: {follow: each} in the mapping."""
    clip = write_clip(tmp_path / "two.avi", [(4, list(faces))])
    plain = tmp_path / "plain.yaml"
    plain.write_text(fixed_tempo_mapping(120))
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text(fixed_tempo_mapping(120) + "faces: {follow: each}\n")
    runs = {"cli": ("--mapping", str(plain), "--faces", "each"), "mapping": ("--mapping", str(keyed))}
    daemons, receivers = {}, {}
    for how, args in runs.items():
        port = unique_port()
        daemons[how] = emobridge("run", "--video", str(clip), "--stop-at-end", *args, "--midi-backend", "jack",
                                 "--midi-port", port)
        receivers[how] = connect(port, daemons[how])
    heard = {}
    for how, daemon in daemons.items():
        status, err = finish(daemon)
        assert status == 0, err
        notes = [m for m in receivers[how].settle() if m.is_note_on]
        heard[how] = {channel: sum(1 for m in notes if m.channel == channel) for channel in (4, 5)}
        receivers[how].close()
    # faces.channels default 5 and 6 (counted from 1): both voices play, as much either way
    for how, counts in heard.items():
        assert counts[4] > 0 and counts[5] > 0, f"{how}: voice notes per channel {heard}"
    for channel in (4, 5):
        assert abs(heard["cli"][channel] - heard["mapping"][channel]) <= 0.3 * max(heard["mapping"][channel], 5), heard
