"""Stop signals in a burst, at the real command on JACK: exit 0 at once, every note released.

The handlers only count; the main loop acts. (scripts/signal_bursts runs a thousand of these.)
"""

from __future__ import annotations

import signal
import time

import pytest

from emobridge.demo import demo_clip_path
from jack_rig import stuck_notes
from running import connect, emobridge, unique_port

pytestmark = pytest.mark.jack


@pytest.mark.parametrize("burst", [
    [signal.SIGTERM, signal.SIGTERM],  # GNU timeout signals the child and its process group
    [signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGHUP] * 10,
], ids=["TERM-TERM", "mixed-x40"])
def test_a_burst_of_stop_signals_ends_the_show_cleanly(jack_server, burst):
    port = unique_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack",
                       "--midi-port", port)
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=30), "no music before the burst"
        sent = time.monotonic()
        for sig in burst:
            daemon.send_signal(sig)
        status = daemon.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if daemon.poll() is None:
            daemon.kill()
        _, err = daemon.communicate()
    assert status == 0, err[-2000:]
    assert took < 3.0, f"{took:.2f} s to stop"  # about 0.2 s here; generous for a busy machine
    assert "Traceback" not in err, err[-2000:]
    assert "end of" not in err, "a stop signal was logged as the end of the clip"
    assert stuck_notes(receiver.settle()) == {}
    receiver.close()


def busiest_window(times: list[float], start: float, end: float, width: float = 0.2) -> int:
    """The most messages in any *width*-second window that begins in [start, end)."""
    return max((sum(1 for t in times if s <= t < s + width) for s in times if start <= s < end), default=0)


def test_after_sigstop_and_sigcont_the_clock_and_notes_do_not_burst(jack_server):
    """A frozen process (a laptop lid, a VM pause): on waking it goes on from the next beat."""
    port = unique_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-clock", "--midi-backend", "jack",
                       "--midi-port", port)
    try:
        receiver = connect(port, daemon)
        assert receiver.wait_for(lambda m: m.is_note_on, timeout=30)
        time.sleep(2.0)  # normal playing to compare with (and more after waking)
        stopped = time.monotonic()
        daemon.send_signal(signal.SIGSTOP)
        time.sleep(2.0)
        daemon.send_signal(signal.SIGCONT)
        woke = time.monotonic()
        time.sleep(2.2)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.communicate()
    got = receiver.settle()
    # On JACK's frame clock, not the callback's wake-up time: right after SIGCONT the daemon's threads all run at
    # once, and on a busy machine this process's callbacks can come late and bunched, which looks like a burst.
    # The least-delayed callback gives the offset from monotonic time (a callback is never early).
    offset = min(m.time - m.jack_time for m in got)
    stopped, woke = stopped - offset, woke - offset
    pulses = [m.jack_time for m in got if m.message == (0xF8,)]
    busy = sorted(pulses + [m.jack_time for m in got if m.is_note_on])
    # every 200 ms window of normal playing, before the freeze and after the first 200 ms awake
    normal = max(busiest_window(busy, stopped - 1.8, stopped - 0.2), busiest_window(busy, woke + 0.2, woke + 2.0))
    after = sum(1 for t in busy if woke <= t < woke + 0.2)
    assert normal > 0
    assert after <= normal, f"{after} notes and pulses in the 200 ms after waking, {normal} at most before"
    # the clock alone, which is regular: a burst of the missed beats' pulses (two seconds' worth: 48 or more at
    # 60 BPM) cannot hide here. A quarter of a beat more is allowed: a player that wakes 40 ms late sends those
    # pulses at once and is on time from then on (11 in a window where 9 was usual, in one CI run): that is keeping
    # time, not catching up.
    steady = max(busiest_window(pulses, stopped - 1.8, stopped - 0.2), busiest_window(pulses, woke + 0.2, woke + 2.0))
    woken = sum(1 for t in pulses if woke <= t < woke + 0.2)
    assert woken <= steady + 24 // 4, f"{woken} clock pulses in the 200 ms after waking, {steady} at most before"
    receiver.close()
