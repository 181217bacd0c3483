"""Signals, handled the only safe way: the handler counts, the main loop acts.

A handler that logs, takes a lock or sets a ``threading.Event`` can deadlock when a second signal
arrives while the first is being handled (Ctrl-C twice; GNU ``timeout`` signals child and group).
"""

from __future__ import annotations

import os
import select
import signal


class SignalFlags:
    """What the signal handlers may touch: counters, nothing else (no locks, no logging, no events).

    With :meth:`open_wakeup`, Python's own C-level handler also writes a byte to a pipe that the main
    loop waits on, so a stop is acted on at once rather than at the next tick.
    """

    def __init__(self) -> None:
        self.wakeup: tuple[int, int] | None = None  # (read end, write end) of the wake-up pipe
        self.stops = 0  # INT and TERM received
        self.reloads = 0  # HUP received
        self.seen_stops = 0  # stops the main loop has acted on
        self.seen_reloads = 0

    def handle(self, signum: int, _frame: object) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            self.reloads += 1
        else:
            self.stops += 1

    def open_wakeup(self) -> None:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)  # a full pipe must drop the byte, never block the handler
        self.wakeup = (read, write)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)

    def wait(self, seconds: float) -> None:
        """Sleep up to *seconds*, less if a signal arrives (main thread, real time only)."""
        assert self.wakeup is not None
        readable, _, _ = select.select([self.wakeup[0]], [], [], seconds)
        if readable:
            try:
                os.read(self.wakeup[0], 4096)
            except BlockingIOError:
                pass

    def close_wakeup(self) -> None:
        if self.wakeup is not None:
            signal.set_wakeup_fd(-1)
            for fd in self.wakeup:
                os.close(fd)
            self.wakeup = None
