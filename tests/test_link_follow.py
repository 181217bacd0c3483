"""Ableton Link with two real aalink peers in this process: emobridge follows a session's bars, or leads its tempo."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time

import pytest

aalink = pytest.importorskip("aalink", reason="Link tests need aalink: pip install 'emobridge[link]'")

from emobridge.live.clock import MasterClock  # noqa: E402
from emobridge.live.player import Player  # noqa: E402
from emobridge.mapping import parse_mapping  # noqa: E402
from emobridge.music.composer import Composer  # noqa: E402
from emobridge.outputs.link import LinkFollower  # noqa: E402
from emobridge.outputs.ports import FakePort  # noqa: E402
from emobridge.state import EmotionState  # noqa: E402

pytestmark = pytest.mark.link  # one Link test at a time on this machine (tests/conftest.py)

FOLLOW = """
tempo: follow
humanize: {timing_ms: 0, velocity: 0}
parts:
  drums: {enabled: true}
"""
JOIN_TIMEOUT = 10.0  # seconds two peers on one machine may take to find each other


class SessionPeer:
    """Another Link peer (a DAW) on an asyncio loop of its own."""

    def __init__(self, bpm: float, quantum: int = 4):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tempos: list[float] = []

        async def create():
            link = aalink.Link(bpm)
            link.quantum = quantum
            link.enabled = True
            link.set_tempo_callback(lambda tempo: self.tempos.append(tempo))
            return link
        self.link = self.call(create)

    def call(self, make):
        async def run():
            return await make() if asyncio.iscoroutinefunction(make) else make()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def phase_now(self, quantum: int = 4) -> tuple[float, float]:
        """(monotonic time, the session's phase at this quantum then)."""
        def look():
            self.link.quantum = quantum
            before = time.monotonic()
            phase = self.link.phase
            return (before + time.monotonic()) / 2, phase
        return self.call(look)

    def bar_times(self, quantum: int = 4, bars: int = 40) -> list[float]:
        """Monotonic times of the session's next *bars* bar lines (phase 0 at this quantum)."""
        def look():
            before = time.monotonic()
            beat = self.link.beat
            return (before + time.monotonic()) / 2, beat, 60 / self.link.tempo
        t, beat, spb = self.call(look)
        first = (beat // quantum + 1) * quantum
        return [t + (first + quantum * k - beat) * spb for k in range(bars)]

    def close(self):
        def disable():
            self.link.enabled = False
        self.call(disable)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=2)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_follower_starts_its_bars_on_the_sessions_bar_phase():
    session = SessionPeer(97.0)
    master = MasterClock()
    follower = LinkFollower(master, quantum=4)
    port = FakePort()
    player = Player(Composer(parse_mapping(FOLLOW, "follow.yaml"), seed=4), port, lambda: EmotionState.fixed("happy"),
                    master=master)
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,))
    try:
        assert wait_for(lambda: follower.peers >= 1, JOIN_TIMEOUT), \
            "the peers never found each other (multicast on the loopback blocked?)"
        # Link merges two sessions by their random ids, so the joined session may have taken either tempo: the
        # session's peer sets it, as a DAW user would, and the follower must follow.
        session.call(lambda: setattr(session.link, "tempo", 97.0))
        assert wait_for(lambda: master.tempo and abs(master.tempo - 97) < 0.01, 5.0), f"follower at {master.tempo}"
        thread.start()
        time.sleep(3.0)  # a bar and a half to come in on the next bar line
        bars = session.bar_times(bars=6)  # the session's bar lines from now on, by the session's own peer
        time.sleep(bars[-1] - time.monotonic() + 0.2)
    finally:
        stop.set()
        thread.join(timeout=5)
        follower.close()
        session.close()
    notes = [s.time for s in port.snapshot() if s.kind == 0x90 and s.message[2] > 0]
    errors = []
    for bar in bars[:-1]:
        near = [t for t in notes if abs(t - bar) < 0.05]
        assert near, f"no note within 50 ms of the session's bar line at {bar:.3f}"
        errors.append(min(abs(t - bar) for t in near))
    print(f"\nbar starts to the session's bar phase: median {statistics.median(errors) * 1000:.2f} ms, "
          f"max {max(errors) * 1000:.2f} ms over {len(errors)} bars")
    assert statistics.median(errors) < 0.002
    assert player.current.tempo_at(0) == pytest.approx(97.0, abs=0.05)


@contextlib.contextmanager
def leader_and_session(bpm: float):
    """emobridge leading a Link session (LinkTempo) and another peer in it, both at *bpm*, joined."""
    from emobridge.outputs.link import LinkTempo

    session = SessionPeer(bpm)
    leader = LinkTempo(bpm)
    try:
        assert wait_for(lambda: leader.peers >= 1, JOIN_TIMEOUT), "the peers never found each other"
        time.sleep(0.2)
        yield leader, session
    finally:
        leader.close()
        session.close()


def test_a_leaders_glide_reaches_the_other_peer_beat_by_beat():
    from emobridge.live.fanout import BarStarted, Fanout, TempoChanged
    from emobridge.outputs.osc import OscSender

    with leader_and_session(80.0) as (leader, session):
        session.tempos.clear()  # what the merge of the two sessions did, before the glide
        fanout = Fanout(OscSender([]), extras=[leader])
        glide = parse_mapping("emotions: {sad: {tempo: [80, 80]}}\n", "g.yaml")
        bar = Composer(glide, seed=1).next_bar(EmotionState.fixed("sad"), {})
        fanout.bar(BarStarted(bar, time.monotonic(), EmotionState.fixed("sad")))
        fanout.drain()
        for tempo in (95.0, 110.0, 125.0, 140.0):  # one glide step a beat
            fanout.tempo(TempoChanged(tempo, time.monotonic()))
            fanout.drain()
            assert wait_for(lambda: session.link.tempo == pytest.approx(tempo, abs=0.01), 2.0), \
                f"the other peer did not reach {tempo} BPM (it has {session.link.tempo})"
        assert [round(t, 2) for t in session.tempos] == [95.0, 110.0, 125.0, 140.0]


def test_a_leader_puts_the_sessions_bar_phase_on_its_own_downbeats():
    with leader_and_session(100.0) as (leader, session):
        downbeat = time.monotonic() - 0.2  # emobridge's bar began 0.2 s ago (a third of a beat at 100 BPM)
        leader.send_bar_line(downbeat, 4, 0.6)
        errors = []

        def phase_error_ms() -> float:
            t, phase = session.phase_now()
            expected = ((t - downbeat) / 0.6) % 4  # beats of emobridge's bar played by t
            errors.append(((phase - expected + 2) % 4 - 2) * 600)
            return abs(errors[-1])

        # the new timeline reaches the other peer over the network: within a moment, later on a loaded machine
        assert wait_for(lambda: phase_error_ms() < 2.0, 3.0), \
            f"the session's bar phase is {errors[-1]:.2f} ms off emobridge's downbeat"
