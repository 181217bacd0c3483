"""The one clock that owns musical time, and the clocks it runs on.

:class:`BeatClock` maps beats to clock seconds through an anchor (time, beat) and a tempo. Every
event has an absolute deadline computed from that mapping, so late wake-ups never accumulate into
drift; a tempo change re-anchors at a beat boundary.

The seconds come from a :class:`Clock`: :data:`SYSTEM_CLOCK` (``time.monotonic``, the show) or an
:class:`OfflineClock` (virtual time for tests: the whole daemon runs in-process, deterministically,
in milliseconds). Every loop of the live room waits through its clock, never on ``time.sleep``.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol


class Clock(Protocol):
    """Seconds, and waiting for them. Calling the clock gives the time now."""

    realtime: bool  # True: deadlines pass whether or not anyone is ready (the show); False: offline

    def __call__(self) -> float: ...

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        """Sleep until *deadline*; False as soon as *stop* is set."""

    def enter(self) -> None:
        """A thread that waits on this clock is about to start (called by the thread that starts it)."""

    def leave(self) -> None:
        """That thread has ended."""


def wait_until(deadline: float, stop: threading.Event, now: Callable[[], float] = time.monotonic) -> bool:
    """Sleep until the monotonic *deadline*; returns False as soon as *stop* is set."""
    while True:
        remaining = deadline - now()
        if remaining <= 0:
            return not stop.is_set()
        # Event.wait wakes within a fraction of a millisecond on Linux and macOS,
        # and lets a shutdown interrupt a long wait at once.
        if stop.wait(remaining):
            return False


class SystemClock:
    """``time.monotonic`` and real waits: the clock of a show."""

    realtime = True

    def __call__(self) -> float:
        return time.monotonic()

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        return wait_until(deadline, stop)

    def enter(self) -> None:
        pass

    def leave(self) -> None:
        pass


SYSTEM_CLOCK = SystemClock()


class OfflineClock:
    """Virtual seconds: time stands still while any taking-part thread works, and jumps to the earliest
    deadline once every one of them waits. A daemon on this clock plays minutes of music in milliseconds
    and does the same thing on every run, whatever else the machine is doing.

    Threads take part between :meth:`enter` (called by whoever starts the thread, so that time cannot run
    ahead before it begins) and :meth:`leave`. A thread blocked on anything but this clock (a queue, a
    lock) holds time still, which is what makes hand-offs between threads deterministic.
    """

    realtime = False
    POLL = 0.01  # seconds of real time between looks at a stop event nobody notifies us of

    def __init__(self, start: float = 1000.0):
        self._now = float(start)
        self._changed = threading.Condition()
        self._parties = 0
        self._waiting: dict[int, tuple[float, threading.Event]] = {}  # waiting thread → (its deadline, its stop)

    def __call__(self) -> float:
        return self._now

    def enter(self) -> None:
        with self._changed:
            self._parties += 1

    def leave(self) -> None:
        with self._changed:
            self._parties -= 1
            self._waiting.pop(threading.get_ident(), None)
            self._advance()

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        me = threading.get_ident()
        with self._changed:
            try:
                while not stop.is_set():
                    if self._now >= deadline:
                        return True
                    self._waiting[me] = (deadline, stop)
                    self._advance()
                    if self._now < deadline:
                        self._changed.wait(self.POLL)
                return False
            finally:
                self._waiting.pop(me, None)

    def stall(self, seconds: float) -> None:
        """Let *seconds* pass at once, as a frozen machine would (SIGSTOP, a closed lid), for tests of recovery."""
        with self._changed:
            self._now += seconds
            self._changed.notify_all()

    def _advance(self) -> None:
        """Everyone waits: move on to the earliest deadline (called with the condition held). A waiter
        whose stop is set is about to return, not to wait: time holds still until it has."""
        if not self._waiting or len(self._waiting) < self._parties:
            return
        if not any(stop.is_set() for _, stop in self._waiting.values()):
            self._now = max(self._now, min(deadline for deadline, _ in self._waiting.values()))
        self._changed.notify_all()


class BeatClock:
    """Beats ↔ clock seconds at a tempo (BPM), anchored at a (time, beat) pair."""

    def __init__(self, tempo: float, now: Callable[[], float] = SYSTEM_CLOCK, start: float | None = None):
        self.now = now
        self.tempo = float(tempo)
        self.anchor_time = now() if start is None else start
        self.anchor_beat = 0.0

    def seconds_per_beat(self) -> float:
        return 60.0 / self.tempo

    def time_of(self, beat: float) -> float:
        """Clock time at which *beat* falls under the current tempo."""
        return self.anchor_time + (beat - self.anchor_beat) * self.seconds_per_beat()

    def beat_at(self, t: float) -> float:
        return self.anchor_beat + (t - self.anchor_time) / self.seconds_per_beat()

    def set_tempo(self, tempo: float, at_beat: float) -> None:
        """From *at_beat* on, beats run at *tempo* (earlier beats keep their times)."""
        self.anchor_time = self.time_of(at_beat)
        self.anchor_beat = at_beat
        self.tempo = float(tempo)

    def wait_for_beat(self, beat: float, stop: threading.Event) -> bool:
        """Sleep until *beat*; False if *stop* was set first."""
        deadline = self.time_of(beat)
        waiter = getattr(self.now, "wait_until", None)
        if waiter is not None:
            return waiter(deadline, stop)
        return wait_until(deadline, stop, self.now)
