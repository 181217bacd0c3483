"""The one clock that owns musical time.

Beats map to monotonic seconds through an anchor (time, beat) and a tempo. Every
event has an absolute deadline computed from that mapping, so late wake-ups never
accumulate into drift; a tempo change re-anchors at a beat boundary.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class BeatClock:
    def __init__(self, tempo: float, now: Callable[[], float] = time.monotonic, start: float | None = None):
        self.now = now
        self.tempo = float(tempo)
        self.anchor_time = now() if start is None else start
        self.anchor_beat = 0.0

    def seconds_per_beat(self) -> float:
        return 60.0 / self.tempo

    def time_of(self, beat: float) -> float:
        """Monotonic time at which *beat* falls under the current tempo."""
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
        return wait_until(self.time_of(beat), stop, self.now)


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
