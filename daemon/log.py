"""Logging helpers shared by every stage."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable


class LogLimiter:
    """Logs one line per *interval* seconds at most; the next line says how many were left out."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0, level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.interval, self.level, self.clock = logger, interval, level, clock
        self.last = -math.inf
        self.suppressed = 0
        self.lock = threading.Lock()

    def __call__(self, message: str, *args: object) -> None:
        with self.lock:
            now = self.clock()
            if now - self.last < self.interval:
                self.suppressed += 1
                return
            self.last, suppressed, self.suppressed = now, self.suppressed, 0
        if suppressed:
            message += f" (and {suppressed} more like it in the last {self.interval:g} s)"
        self.logger.log(self.level, message, *args)
