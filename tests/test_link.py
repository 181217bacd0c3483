"""Ableton Link tempo sync (only where the optional aalink package is installed)."""

from __future__ import annotations

import time

import pytest

from emobridge.outputs.link import LinkTempo, link_available
from emobridge.errors import LinkUnavailable

pytestmark = [pytest.mark.skipif(not link_available(), reason="Ableton Link needs the optional aalink package"),
              pytest.mark.link]


def test_emobridge_leads_the_session_tempo():
    leader = LinkTempo(120.0)
    follower = LinkTempo(90.0)  # another peer: on a real network this is Ableton Live
    try:
        deadline = time.monotonic() + 10
        while (leader.peers < 1 or follower.peers < 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leader.peers >= 1 and follower.peers >= 1, "the two Link peers did not find each other"
        leader.send_emotion(object())  # Link carries no emotion: a no-op
        leader.send_music(97.5, "minor", 0.4, bar_start=True)
        assert leader.tempo == pytest.approx(97.5)
        deadline = time.monotonic() + 5
        while abs(follower.tempo - 97.5) > 0.01 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.tempo == pytest.approx(97.5, abs=0.01)
    finally:
        leader.close()
        follower.close()
    leader.send_music(100.0, "major", 0.4, bar_start=True)  # after close: logged, not raised
    leader.close()


def test_tempo_is_clamped_to_what_link_accepts():
    link = LinkTempo(5.0)
    try:
        assert link.tempo == pytest.approx(20.0)
        link.set_tempo(5000)
        assert link.tempo == pytest.approx(999.0)
    finally:
        link.close()


def test_missing_binding_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_aalink(name, *args, **kwargs):
        if name == "aalink":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aalink)
    with pytest.raises(LinkUnavailable, match="pip install"):
        LinkTempo()
