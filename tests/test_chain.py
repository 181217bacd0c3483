"""The whole chain as a musician runs it: the `emobridge` command on the demo clip,
its virtual port read by a real JACK MIDI client, its OSC read by a real UDP server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from emobridge.labels import EMOTIONS
from jack_rig import stuck_notes, wall_times
from running import connect, emobridge, unique_port

pytestmark = pytest.mark.jack
MODES = {"major", "minor", "dorian", "phrygian", "lydian", "mixolydian", "harmonic_minor"}


def test_demo_plays_on_a_jack_port_and_sigterm_mid_note_releases_everything(jack_server):
    port = unique_port()
    daemon = emobridge("demo", "--midi-backend", "jack", "--midi-port", port, "--seed", "1")
    try:
        receiver = connect(port, daemon)
        # Music on more than one part: melody and chords on their own channels.
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20), "no note arrived at the JACK input"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            held = stuck_notes(receiver.settle())
            channels = {m.channel for m in receiver.snapshot() if m.is_note_on}
            if held and len(channels) >= 2:
                break
            time.sleep(0.005)
        assert held, "never caught a sounding note to interrupt"
        assert len(channels) >= 2
        signalled = time.monotonic()
        daemon.send_signal(signal.SIGTERM)  # mid-note: `held` notes are sounding right now
        assert daemon.wait(timeout=10) == 0
        time.sleep(0.3)
        messages = receiver.snapshot()
        assert stuck_notes(messages) == {}, "a note was left without its note-off"
        used = {m.channel for m in messages if m.is_note_on}
        all_off = [m for m in messages if m.kind == 0xB0 and m.message[1] == 123]
        assert used <= {m.channel for m in all_off}, "all-notes-off missing on a channel that played"
        # silence: every channel that played has had its first all-notes-off (the port's closing panic may repeat
        # them), when it crossed JACK rather than when this busy process got round to reading it
        # (chosen by when they were read, which is never early; placed by JACK's clock, which a loaded dummy
        # driver can put a few ms early: no sooner than the signal)
        at = dict(zip(map(id, messages), wall_times(messages)))
        silent_at = max(min(max(signalled, at[id(m)]) for m in all_off if m.channel == channel and m.time >= signalled)
                        for channel in used)
        assert silent_at - signalled < 0.1, "silence took longer than 100 ms after SIGTERM"
        receiver.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate()


def test_demo_sends_the_osc_table_and_stops_at_the_end_of_the_clip(jack_server, osc):
    port = unique_port()
    daemon = emobridge("demo", "--fast", "--osc", osc.target, "--midi-backend", "jack", "--midi-port", port)
    _, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    assert "end of" in err

    emotions = osc.received("/emobridge/emotion")
    assert emotions and all(label in EMOTIONS and 0 <= conf <= 1 for label, conf in emotions)
    assert len({label for label, _ in emotions}) >= 2, "the demo's changing faces should change the label"
    probs = osc.received("/emobridge/probs")
    assert len(probs) >= len(emotions)
    assert all(len(p) == 7 and abs(sum(p) - 1) < 1e-3 for p in probs)
    for name in ("valence", "arousal"):
        values = [v for (v,) in osc.received(f"/emobridge/{name}")]
        assert len(values) == len(probs) and all(-1 <= v <= 1 for v in values)
    assert osc.received("/emobridge/face")[0] == (1,)
    tempos = osc.received("/emobridge/tempo")
    assert tempos and all(20 <= t <= 300 for (t,) in tempos)
    assert all(mode in MODES for (mode,) in osc.received("/emobridge/mode"))
    assert all(0 <= d <= 1 for (d,) in osc.received("/emobridge/density"))


def test_video_file_runs_the_same_chain(jack_server, osc, tmp_path):
    from emobridge.demo import demo_clip_path
    import cv2

    # First two seconds of the demo clip as a user's own video file, paced in real time.
    clip = cv2.VideoCapture(str(demo_clip_path()))
    fps = clip.get(cv2.CAP_PROP_FPS)
    ok, frame = clip.read()
    writer = cv2.VideoWriter(str(tmp_path / "mine.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, frame.shape[1::-1])
    for _ in range(int(2 * fps)):
        writer.write(frame)
        ok, frame = clip.read()
    writer.release()
    started = time.monotonic()
    daemon = emobridge("run", "--video", str(tmp_path / "mine.avi"), "--stop-at-end", "--osc", osc.target,
                       "--midi-backend", "jack", "--midi-port", unique_port())
    _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert time.monotonic() - started >= 1.9  # paced at the file's frame rate, not as fast as possible
    frames = len(osc.received("/emobridge/probs"))
    assert 0.8 * 2 * min(fps, 30) <= frames <= 2 * fps + 1


@pytest.mark.parametrize("args, names", [
    (["run", "--video", "no-such-clip.mp4"], ["no-such-clip.mp4"]),
    (["run", "--camera", "99"], ["camera 99"]),
    (["demo", "--midi-backend", "beos"], ["beos", "jack"]),
    (["demo", "--midi-backend", "jack", "--midi-connect", "no-such-port"], ["no-such-port", "available"]),
    (["demo", "--model", "missing.onnx"], ["missing.onnx", "--model"]),
    (["demo", "--osc", "localhost"], ["localhost", "HOST:PORT"]),
])
def test_bad_options_are_one_line_errors(jack_server, args, names):
    daemon = emobridge(*args)
    out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("emobridge: error:"), err
    assert all(name in lines[0] for name in names), lines[0]


def test_broken_mapping_names_the_file(jack_server, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("emotions:\n  happy:\n    tempo: [fast, faster]\n")
    daemon = emobridge("demo", "--mapping", str(bad), "--midi-backend", "jack")
    _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 2
    assert "broken.yaml" in err and "emotions.happy.tempo" in err


def test_simulate_writes_the_same_file_for_the_same_seed(tmp_path):
    files = []
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        out = tmp_path / f"{name}.mid"
        result = subprocess.run([sys.executable, "-m", "emobridge.cli", "simulate", "--emotion", "happy", "--bars", "16",
                                 "--seed", seed, "--out", str(out)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        files.append(out.read_bytes())
    assert files[0] == files[1] and files[0] != files[2]
    import mido

    midi = mido.MidiFile(tmp_path / "a.mid")
    assert any(m.type == "set_tempo" for m in midi.tracks[0])
    channels = [{m.channel for m in track if m.type == "note_on"} for track in midi.tracks[1:]]
    assert all(len(c) == 1 for c in channels if c) and len(set().union(*channels)) >= 2
