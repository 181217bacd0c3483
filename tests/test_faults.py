"""Faults a show must survive, on the real `emobridge` command with a real JACK receiver and real UDP OSC.

Each test breaks one thing while (or before) the daemon plays and checks what a performer would notice:
the music goes on (or, for a broken start, no note ever plays), the log says what happened, and a stop
still releases every note.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import rtmidi

from emobridge.demo import demo_clip_path
from jack_rig import JackReceiver, stuck_notes
from osc_listener import OscListener
from running import connect, emobridge, free_udp_port, note_ons_since, unique_port, wait_until

pytestmark = pytest.mark.jack


# --- helpers -------------------------------------------------------------------
def osc_since(listener: OscListener, mark: int, address: str) -> list[tuple]:
    with listener.lock:
        return [args for a, args in listener.messages[mark:] if a == address]


def osc_mark(listener: OscListener) -> int:
    with listener.lock:
        return len(listener.messages)


def stop(daemon: subprocess.Popen, timeout: float = 10) -> tuple[int, str]:
    """SIGTERM, then the exit status and everything the daemon logged."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    try:
        _, err = daemon.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        daemon.kill()
        _, err = daemon.communicate()
        pytest.fail(f"the daemon did not stop within {timeout} s of SIGTERM; it said: {err[-3000:]}")
    return daemon.returncode, err


def kill(daemon: subprocess.Popen) -> str:
    if daemon.poll() is None:
        daemon.kill()
    try:
        return daemon.communicate(timeout=10)[1] or ""
    except ValueError:  # already communicated
        return ""


def assert_alive(daemon: subprocess.Popen, what: str) -> None:
    if daemon.poll() is not None:
        _, err = daemon.communicate()
        pytest.fail(f"the daemon exited ({daemon.returncode}) after {what}; it said: {err[-3000:]}")


class PortWatcher:
    """Polls the JACK graph every few milliseconds and remembers whether a port named *name* ever appeared."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[str] = []
        self.client = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="emobridge-test-watcher")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.is_set():
            self.seen += [p for p in self.client.get_ports() if self.name in p and p not in self.seen]
            time.sleep(0.003)

    def close(self) -> list[str]:
        self.done.set()
        self.thread.join(timeout=2)
        self.client.delete()
        return self.seen


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("emobridge: error:"), err
    return lines[0]


# (a) the camera gone and back, and (d) the mapping file deleted or broken while running, run in-process on a
# real image folder and real files: tests/test_show.py.


# --- (b) the MIDI peer disconnects and reconnects ----------------------------------
def test_receiver_disconnect_and_reconnect(jack_server):
    port = unique_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port)
    try:
        first = connect(port, daemon)
        assert first.wait_for(lambda m: m.is_note_on, timeout=20)
        first.close()  # the synth's JACK client goes away mid-note
        time.sleep(2.0)
        assert_alive(daemon, "its JACK peer closed")

        second = JackReceiver(port, timeout=10)  # ...and comes back as a new client
        assert second.wait_for(lambda m: m.is_note_on, timeout=10), "no notes after the peer reconnected"
        status, err = stop(daemon)
        assert status == 0, err
        assert "Traceback" not in err, err
        time.sleep(0.3)
        assert stuck_notes(second.snapshot()) == {}, "a note was left sounding on the reconnected peer"
        second.close()
    finally:
        kill(daemon)


# --- (c) an OSC target that refuses ------------------------------------------------
def test_osc_target_that_refuses_does_not_stop_the_music(jack_server, osc):
    """One target has nothing listening (the kernel refuses every datagram); another goes away mid-run and comes
    back on the same port. The music and the good target carry on throughout."""
    dead = free_udp_port()
    flaky = OscListener()
    flaky_port = flaky.port
    port = unique_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port,
                       "--osc", f"127.0.0.1:{dead}", "--osc", flaky.target, "--osc", osc.target)
    revived = None
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20)
        assert flaky.wait_for("/emobridge/probs", 10)
        flaky.close()  # now refuses too
        closed_at, mark = time.monotonic(), osc_mark(osc)
        time.sleep(3.0)
        assert_alive(daemon, "an OSC target refused")
        assert note_ons_since(receiver, closed_at + 0.5), "the music stopped"
        assert len(osc_since(osc, mark, "/emobridge/probs")) > 10, "the good OSC target stopped getting messages"

        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        got: list[str] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: got.append(address))
        revived = ThreadingOSCUDPServer(("127.0.0.1", flaky_port), dispatcher)
        threading.Thread(target=revived.serve_forever, daemon=True).start()
        assert wait_until(lambda: "/emobridge/probs" in got, 10), "the target that came back gets nothing"

        status, err = stop(daemon)
        assert status == 0, err
        assert "Traceback" not in err, err
        time.sleep(0.2)
        assert stuck_notes(receiver.settle()) == {}
        receiver.close()
    finally:
        kill(daemon)
        if revived is not None:
            revived.shutdown()
            revived.server_close()


# --- (e) the model missing or corrupt at start ---------------------------------------
def _bad_models(folder: Path) -> dict[str, Path]:
    from emobridge.perception.emotion import default_model_path

    real = default_model_path().read_bytes()
    models = {
        "missing": folder / "missing.onnx",
        "empty": folder / "empty.onnx",
        "garbage": folder / "garbage.onnx",
        "truncated": folder / "truncated.onnx",
        "folder": folder / "folder.onnx",
    }
    models["empty"].write_bytes(b"")
    models["garbage"].write_bytes(bytes(range(256)) * 64)
    models["truncated"].write_bytes(real[: len(real) // 2])
    models["folder"].mkdir()
    try:
        from onnx_models import linear_model

        models["no-metadata"] = linear_model(folder / "no-metadata.onnx", None)  # a valid ONNX, not an emotion model
    except ImportError:
        pass
    return models


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated", "folder", "no-metadata"])
def test_bad_model_fails_before_any_port_or_note(jack_server, tmp_path, kind):
    models = _bad_models(tmp_path)
    if kind not in models:
        pytest.skip("onnx is not installed")
    model = models[kind]
    port = unique_port()
    watcher = PortWatcher(port)
    try:
        daemon = emobridge("run", "--video", str(demo_clip_path()), "--midi-backend", "jack", "--midi-port", port,
                           "--model", str(model))
        try:
            _, err = daemon.communicate(timeout=60)
        finally:
            kill(daemon)
        time.sleep(0.1)
    finally:
        seen = watcher.close()
    assert daemon.returncode == 2, err
    line = one_line_error(err)
    assert model.name in line, line
    assert seen == [], f"the MIDI port {seen} appeared although the model was bad"


# --- (f) a second instance on the same port name -----------------------------------------
def test_second_instance_with_the_same_port_name_is_refused(jack_server):
    port = unique_port()
    first = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port)
    try:
        receiver = connect(port, first)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20)
        second = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port)
        try:
            _, err = second.communicate(timeout=25)
        except subprocess.TimeoutExpired:
            err = kill(second)
            pytest.fail(f"a second instance on port {port!r} kept running; it said: {err[-2000:]}")
        assert second.returncode == 2, err
        line = one_line_error(err)
        assert port in line and "already" in line, line
        marked = time.monotonic()
        assert wait_until(lambda: note_ons_since(receiver, marked), 5), "the first instance stopped playing"
        status, err = stop(first)
        assert status == 0, err
        receiver.close()
    finally:
        kill(first)


# --- the control server under a fuzz, inside the running daemon ---------------------
def test_a_fuzzed_control_port_leaves_the_show_playing(jack_server, osc):
    import random

    from pythonosc.udp_client import SimpleUDPClient

    port, control = unique_port(), free_udp_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port,
                       "--osc", osc.target, "--control", f"127.0.0.1:{control}")
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20)
        rng = random.Random(7)
        valid = SimpleUDPClient("127.0.0.1", control)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
            send = lambda data: sock.sendto(data, ("127.0.0.1", control))  # noqa: E731
            for i in range(10_000):
                kind = i % 4
                if kind == 0:
                    send(rng.randbytes(rng.randrange(0, 200)))                     # noise
                elif kind == 1:
                    send(b"/emobridge/control/" + rng.randbytes(12) + b"\0\0\0\0,f\0\0")  # bad address
                elif kind == 2:
                    send(b"#bundle\0" + rng.randbytes(8) + (rng.randrange(-5, 400)).to_bytes(4, "big", signed=True))
                else:
                    send(b"/emobridge/control/volume\0\0\0,s\0\0loud\0\0\0\0")   # wrong type
        after = time.monotonic()

        def forced_sad() -> bool:  # UDP may drop a datagram behind a flood: ask again until it lands
            valid.send_message("/emobridge/control/force", "sad")
            return wait_until(lambda: osc.received("/emobridge/mode")[-1:] == [("minor",)], 2.0)
        assert wait_until(forced_sad, 60, step=0), "the control server stopped answering after the fuzz"
        assert wait_until(lambda: note_ons_since(receiver, after), 10), "the music stopped after the fuzz"
        status, err = stop(daemon)
        assert status == 0
        assert len(err.splitlines()) < 80, f"the log flooded: {len(err.splitlines())} lines"
        assert "Traceback" not in err
        receiver.close()
    finally:
        if daemon.poll() is None:
            kill(daemon)

