"""A test hook that makes the next turn of a named thread's loop raise, to prove the show survives it.

Armed in-process (``Faults.arm("player")``) or for a whole run from the environment
(``EMOBRIDGE_INJECT_FAULT=player,perception``: each named loop raises once, at its first turn).
Unarmed, a check is one look into an empty set.
"""

from __future__ import annotations

import os

THREADS = ("perception", "player", "conductor", "outputs", "main")


class InjectedFault(RuntimeError):
    """Raised by an armed hook; never raised in a show nobody armed."""


class Faults:
    def __init__(self, armed: set[str] | None = None):
        self._armed = set(armed or ())

    @classmethod
    def from_env(cls) -> "Faults":
        names = os.environ.get("EMOBRIDGE_INJECT_FAULT", "")
        return cls({name.strip() for name in names.split(",") if name.strip() in THREADS})

    def arm(self, thread: str) -> None:
        self._armed.add(thread)

    def check(self, thread: str) -> None:
        if self._armed and thread in self._armed:
            self._armed.discard(thread)
            raise InjectedFault(f"a fault injected into the {thread} thread's loop")
