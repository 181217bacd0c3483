"""Running the real `emobridge` command in tests, and waiting on what it does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from emobridge.labels import EMOTIONS
from jack_rig import DumpReceiver


def emobridge(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emobridge.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ), **kwargs)


def unique_port() -> str:
    return f"emobridge-{uuid.uuid4().hex[:6]}"


def connect(port: str, daemon: subprocess.Popen) -> DumpReceiver:
    try:
        return DumpReceiver(port, timeout=30)
    except TimeoutError:
        daemon.kill()
        pytest.fail(f"the daemon's port never appeared; it said: {daemon.communicate()[1][-2000:]}")


def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def note_ons_since(receiver: DumpReceiver, t: float) -> list:
    return [m for m in receiver.snapshot() if m.is_note_on and m.time >= t]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_tempo_mapping(bpm: int) -> str:
    """A mapping whose every emotion plays at one tempo, with no glide: tempo changes are easy to see."""
    lines = ["transition: {tempo_glide_beats: 0}", "emotions:"]
    lines += [f"  {emotion}: {{tempo: [{bpm}, {bpm}]}}" for emotion in EMOTIONS]
    return "\n".join(lines) + "\n"
