"""The one clock that owns musical time, and the clocks it runs on.

:class:`BeatClock` maps beats to clock seconds through an anchor (time, beat) and a tempo. Every
event has an absolute deadline computed from that mapping, so late wake-ups never accumulate into
drift; a tempo change re-anchors at a beat boundary.

The seconds come from a :class:`Clock`: :data:`SYSTEM_CLOCK` (``time.monotonic``, the show) or an
:class:`OfflineClock` (virtual time for tests: the whole daemon runs in-process, deterministically,
in milliseconds). Every loop of the live room waits through its clock, never on ``time.sleep``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, Protocol

from ..outputs.ports import PULSES_PER_BEAT


PROMPT_SWITCH_INTERVAL = 0.001  # seconds a thread waits for the interpreter before the holder must hand it on


@contextmanager
def prompt_threads() -> Iterator[None]:
    """While a show plays: a thread that wants the interpreter gets it within about a millisecond.

    At Python's default 5 ms a busy perception thread holds the player past its deadline, and a callback that
    JACK runs in its process thread (a JACK-native port, a MIDI clock input) misses its 2.7 ms cycle at a
    128-frame period: JACK then drops that cycle's events for that client and those downstream of it."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(PROMPT_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


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

    def wait_for_beat(self, beat: float, stop: threading.Event, early: float = 0.0) -> bool:
        """Sleep until *early* seconds before *beat*; False if *stop* was set first."""
        deadline = self.time_of(beat) - early
        waiter = getattr(self.now, "wait_until", None)
        if waiter is not None:
            return waiter(deadline, stop)
        return wait_until(deadline, stop, self.now)


# --- following a clock that leads (a DAW's MIDI clock) ----------------------------------------

FIT_PULSES = 24        # pulses the tempo estimate is fitted over: one beat, so a tempo change is followed within one
LOCK_PULSES = 6        # pulses needed before the grid counts as known (a quarter of a beat)
FOLLOW_SLICE = 0.005   # seconds a wait for a followed beat sleeps at most before it looks at the grid again
LOST_AFTER_BEATS = 2.0  # beats without a pulse after which the leader counts as gone (a cable pulled)
GAP_PULSES = 4.0       # a pulse this many pulse periods after the last starts the fit afresh (the clock had stopped)


class MasterClock:
    """The beat grid of a clock that leads (MIDI clock from a DAW), as the player reads it.

    The clock input's reader thread writes: :meth:`pulse` for each timing clock (F8)
    with its time, and :meth:`start`, :meth:`resume`, :meth:`stop`, :meth:`song_position` for FA, FB,
    FC and F2. The player only reads: :meth:`time_of` a song beat, :attr:`running`, :attr:`generation`.
    The fitted grid is one tuple, replaced whole at each pulse, so a reader never sees half of an update.

    The tempo is a least-squares line through the last :data:`FIT_PULSES` pulse times: ±1 ms of jitter
    on each pulse moves a beat's predicted time by a quarter of a millisecond, and a new tempo has the
    whole window after one beat. Pulses keep coming while the leader is stopped on many DAWs, so the
    tempo is known at Start and the first beat can be played on time.
    """

    follows = True  # a player on this clock plays the leader's beats; it never sets a tempo

    def __init__(self, now: Clock = SYSTEM_CLOCK, fit: int = FIT_PULSES):
        self.now = now
        self._lock = threading.Lock()
        self._times: list[float] = []  # the last *fit* pulse times, oldest first
        self._fit = fit
        self._serial = -1              # pulses seen so far, minus one: the serial of the newest pulse
        # (serial of the newest pulse, its fitted time, fitted seconds per pulse): None until locked
        self._grid: tuple[float, float, float] | None = None
        self._zero = 0                 # serial of the pulse at song position 0 of the current run
        self._position = 0             # pulses: where Continue goes on from (Song Position sets it)
        self.running = False
        self.generation = 0            # +1 at every Start, Continue, Stop and jump: the timeline changed

    # --- the clock input's thread ---------------------------------------------------------------
    def pulse(self, t: float) -> None:
        """A timing clock pulse (F8) that arrived at clock time *t*."""
        with self._lock:
            self._serial += 1
            grid = self._grid
            if grid is not None and self._times and t - self._times[-1] > GAP_PULSES * grid[2]:
                self._times.clear()  # pulses from before a silence would bend the line
                self._grid = None
            self._times.append(t)
            del self._times[:-self._fit]
            if self.running:
                self._position = self._serial - self._zero + 1  # a Stop now continues after this pulse
            if len(self._times) >= LOCK_PULSES:
                self._grid = (self._serial, *fit_line(self._times))

    def start(self) -> None:
        """Start (FA): the song from its beginning; the next pulse is beat 0."""
        with self._lock:
            self._zero, self._position = self._serial + 1, 0
            self.running = True
            self.generation += 1

    def resume(self) -> None:
        """Continue (FB): the song from the Song Position; the next pulse is that position."""
        with self._lock:
            self._zero = self._serial + 1 - self._position
            self.running = True
            self.generation += 1

    def stop(self) -> None:
        """Stop (FC): the music stops at the next beat; the position is kept for a Continue."""
        with self._lock:
            self.running = False
            self.generation += 1

    def place(self, t: float, beat: float, seconds_per_beat: float) -> None:
        """A leader that says its beat outright (an Ableton Link session): song *beat* falls at clock time *t*,
        and beats last *seconds_per_beat* from there on. Pulses and Song Positions play no part then."""
        with self._lock:
            self._zero = 0
            self._grid = (beat * PULSES_PER_BEAT, t, seconds_per_beat / PULSES_PER_BEAT)

    def jumped(self) -> None:
        """The leader's beat moved at once (a peer joined another session, a beat was forced): lay anew."""
        with self._lock:
            self.generation += 1

    def set_running(self, running: bool) -> None:
        """A leader's transport that is a state, not a message (Link's start/stop sync)."""
        with self._lock:
            if running != self.running:
                self.running = running
                self.generation += 1

    def song_position(self, sixteenths: int) -> None:
        """Song Position (F2): where the next Continue goes on from (a jump, if it comes while running)."""
        with self._lock:
            self._position = sixteenths * 6  # a sixteenth is 6 pulses
            if self.running:
                self._zero = self._serial + 1 - self._position
                self.generation += 1

    # --- the player's side ------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        """The grid is known and alive: enough pulses, the last one no longer than a couple of beats ago."""
        grid = self._grid
        return grid is not None and self.now() - grid[1] < LOST_AFTER_BEATS * PULSES_PER_BEAT * grid[2]

    @property
    def tempo(self) -> float | None:
        """BPM of the leader now, or None before the grid is known."""
        grid = self._grid
        return None if grid is None else 60.0 / (grid[2] * PULSES_PER_BEAT)

    def seconds_per_beat(self) -> float:
        grid = self._grid
        assert grid is not None, "the leader's grid is not known yet"
        return grid[2] * PULSES_PER_BEAT

    def time_of(self, beat: float) -> float:
        """Clock time of song position *beat* (quarter notes) of the current run, on the fitted grid."""
        grid, zero = self._grid, self._zero
        assert grid is not None, "the leader's grid is not known yet"
        serial, at, period = grid
        return at + (zero + beat * PULSES_PER_BEAT - serial) * period

    def beat_at(self, t: float) -> float:
        grid, zero = self._grid, self._zero
        assert grid is not None, "the leader's grid is not known yet"
        serial, at, period = grid
        return (serial - zero + (t - at) / period) / PULSES_PER_BEAT

    def set_tempo(self, tempo: float, at_beat: float) -> None:
        """The leader owns the tempo: a composed tempo changes nothing here."""

    def wait_for_beat(self, beat: float, stop: threading.Event, early: float = 0.0) -> bool:
        """Sleep until *early* seconds before *beat* on the newest grid (it moves as pulses come); False if
        *stop* was set first."""
        while True:
            now = self.now()
            deadline = self.time_of(beat) - early
            if deadline <= now:
                return not stop.is_set()
            if not self.now.wait_until(min(deadline, now + FOLLOW_SLICE), stop):
                return False


def fit_line(times: list[float]) -> tuple[float, float]:
    """(fitted time of the newest pulse, seconds per pulse): least squares through equally numbered *times*."""
    n = len(times)
    mean_x = (n - 1) / 2
    mean_t = sum(times) / n
    spread = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (t - mean_t) for x, t in enumerate(times)) / spread
    return mean_t + slope * (n - 1 - mean_x), slope


class FollowedTimeline:
    """A player's timeline on a :class:`MasterClock`: the player's beat 0 is song beat *offset*."""

    follows = True

    def __init__(self, master: MasterClock, offset: float):
        self.master = master
        self.offset = offset
        self.generation = master.generation

    @property
    def tempo(self) -> float:
        return self.master.tempo or 120.0

    @property
    def valid(self) -> bool:
        """The leader still plays the run this timeline was made for."""
        return self.master.running and self.master.generation == self.generation and self.master.locked

    def seconds_per_beat(self) -> float:
        return self.master.seconds_per_beat()

    def time_of(self, beat: float) -> float:
        return self.master.time_of(beat + self.offset)

    def beat_at(self, t: float) -> float:
        return self.master.beat_at(t) - self.offset

    def set_tempo(self, tempo: float, at_beat: float) -> None:
        pass

    def wait_for_beat(self, beat: float, stop: threading.Event, early: float = 0.0) -> bool:
        return self.master.wait_for_beat(beat + self.offset, stop, early)
