"""`emobridge ports` in a DAW's terms, and a clear fix when no MIDI backend opens."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from emobridge.demo import demo_clip_path
from jack_rig import JackReceiver

pytestmark = pytest.mark.jack


def emobridge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emobridge", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


def no_jack() -> dict:
    """A JACK server name nobody runs: the JACK backend cannot open (and on this machine ALSA has no sequencer)."""
    return {"JACK_DEFAULT_SERVER": f"nobody-{uuid.uuid4().hex[:6]}"}


def test_ports_lists_where_emobridge_can_play_into(jack_server):
    name = f"synth-{uuid.uuid4().hex[:6]}"
    synth = JackReceiver(None, virtual=name, client_name=name)  # a synth's MIDI input
    try:
        done = emobridge("ports")
    finally:
        synth.close()
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "can play into" in line)
    assert name in line, done.stdout
    assert "emobridge's own port is not listed" in done.stdout


@pytest.mark.skipif(os.path.exists("/dev/snd/seq"), reason="an ALSA sequencer is there: a MIDI backend always opens")
def test_without_a_backend_ports_exits_1_and_run_says_what_to_do(jack_server):
    ports = emobridge("ports", env=no_jack())
    assert ports.returncode == 1, ports.stdout
    assert "no MIDI backend can be used right now: start a JACK server" in ports.stdout
    run = emobridge("run", "--video", str(demo_clip_path()), "--midi-backend", "jack", env=no_jack())
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1, run.stderr  # one line, libjack's own complaints silenced
    assert "MIDI backend 'jack' is unavailable" in lines[0] and "start a JACK server" in lines[0], lines[0]
