"""A running daemon changed while it plays: the OSC control surface and mapping hot reload."""

from __future__ import annotations

import signal
import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from emobridge.demo import demo_clip_path
from jack_rig import Takes, stuck_notes
from running import connect, emobridge, fixed_tempo_mapping, free_udp_port, note_ons_since, unique_port, wait_until

pytestmark = pytest.mark.jack


def control_surface_show(osc) -> tuple[list[str], tuple[float, float]]:
    """One show driven from the control surface; the hard checks assert. Returns what the monitor heard wrong
    (a cycle it lost loses a note-off or a panic's CC) and when the show's messages came."""
    port, control = unique_port(), free_udp_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port,
                       "--osc", osc.target, "--control", f"127.0.0.1:{control}")
    surface = SimpleUDPClient("127.0.0.1", control)
    heard_wrong = []
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=20)
        started = time.monotonic()

        surface.send_message("/emobridge/control/force", "sad")
        assert wait_until(lambda: osc.received("/emobridge/mode")[-1:] == [("minor",)], 10), "forced sad never played minor"
        # /tempo says the tempo each beat plays: it glides down to sad's, the slowest of the default mapping
        assert wait_until(lambda: osc.received("/emobridge/tempo")[-1][0] < 70, 10), osc.received("/emobridge/tempo")[-3:]
        tempo = osc.received("/emobridge/tempo")[-1][0]

        # Volume, force release and the rest of the orchestration are checked in-process (test_show.py);
        # here the real UDP control server drives the real command.
        surface.send_message("/emobridge/control/pause", [])
        time.sleep(60 / tempo + 0.3)  # pause lands at the next beat
        paused_at = time.monotonic()
        time.sleep(1.5)
        assert note_ons_since(receiver, paused_at) == []
        if held := stuck_notes(receiver.settle()):
            heard_wrong.append(f"sounding through the pause: {held}")
        surface.send_message("/emobridge/control/resume", [])
        assert wait_until(lambda: note_ons_since(receiver, paused_at), 5), "no notes after resume"

        panic_at = time.monotonic()
        surface.send_message("/emobridge/control/panic", [])
        if not wait_until(lambda: {m.channel for m in receiver.snapshot() if m.time >= panic_at
                                   and m.kind == 0xB0 and m.message[1] == 123} == set(range(16)), 5):
            heard_wrong.append("the panic's all-notes-off did not arrive on all 16 channels")

        surface.send_message("/emobridge/control/force", "none")  # back to the face
        surface.send_message("/emobridge/nonsense", 1.0)           # ignored, logged
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        time.sleep(0.2)
        if held := stuck_notes(receiver.settle()):
            heard_wrong.append(f"sounding after SIGTERM: {held}")
        receiver.close()
        return heard_wrong, (started, time.monotonic())
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate()


def test_control_surface_drives_the_music(jack_watch, osc):
    takes = Takes(jack_watch, clean=1)  # every note released in a show JACK lost no cycle of
    for take in takes:
        osc.forget()
        heard_wrong, during = control_surface_show(osc)
        if not heard_wrong:
            return
        take.failed("; ".join(heard_wrong), during)
    raise AssertionError(takes.report("the control surface left notes or missed channels"))


def test_mapping_hot_reload_keeps_playing_through_a_bad_edit(jack_server, osc, tmp_path):
    mapping = tmp_path / "live.yaml"
    mapping.write_text(fixed_tempo_mapping(90))
    port = unique_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack", "--midi-port", port,
                       "--osc", osc.target, "--mapping", str(mapping))
    try:
        receiver = connect(port, daemon)
        assert wait_until(lambda: (90.0,) in osc.received("/emobridge/tempo"), 10)

        mapping.write_text(fixed_tempo_mapping(150))  # saved while playing
        assert wait_until(lambda: osc.received("/emobridge/tempo")[-1] == (150.0,), 10), "the saved edit never played"

        mapping.write_text("emotions:\n  happy: {tempo: [150,\n")  # a broken save
        broken_at = time.monotonic()
        time.sleep(3.0)
        assert daemon.poll() is None
        assert osc.received("/emobridge/tempo")[-1] == (150.0,)
        assert note_ons_since(receiver, broken_at), "the music stopped after a bad edit"

        mapping.write_text(fixed_tempo_mapping(120))
        daemon.send_signal(signal.SIGHUP)  # reload now; SIGHUP never stops the show
        assert wait_until(lambda: osc.received("/emobridge/tempo")[-1] == (120.0,), 10)
        assert daemon.poll() is None

        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=10) == 0
        _, err = daemon.communicate()
        assert "live.yaml" in err and "previous one keeps playing" in err
        receiver.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
