"""Ableton Link tempo sync (optional: ``pip install aalink``).

emobridge leads a Link session: the tempo it composes at becomes the session's tempo, so
Ableton Live, Bitwig, Reason, Traktor, phone apps and anything else with Link enabled on the
same network follow it. Nothing else is shared (no start/stop, no beat alignment of
emobridge's own bars).

The binding is aalink (maintained, wheels on PyPI for Linux, macOS and Windows; GPL-3.0+,
which is why it is an optional extra rather than a dependency of the MIT package). aalink
wants a running asyncio loop, so :class:`LinkTempo` keeps one on a small thread of its own.

:class:`LinkTempo` is an output like the OSC sender (``send_emotion``, ``send_music``,
``close``), so the daemon can keep it in its list of outputs; errors are logged, never raised
out of the sends.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from ..log import LogLimiter
from ..errors import LinkUnavailable

log = logging.getLogger(__name__)

TEMPO_RANGE = (20.0, 999.0)  # what Link accepts
TEMPO_RESOLUTION = 0.01


def link_available() -> bool:
    try:
        import aalink  # noqa: F401
    except ImportError:
        return False
    return True


class LinkTempo:
    """A Link peer whose tempo follows emobridge's music."""

    def __init__(self, bpm: float = 120.0, timeout: float = 5.0):
        try:
            import aalink
        except ImportError:
            raise LinkUnavailable("Ableton Link needs the aalink package: pip install 'emobridge[link]' "
                                  "(or pip install aalink)") from None
        self.timeout = timeout
        self.warn = LogLimiter(log, 5.0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="link", daemon=True)
        self.thread.start()
        self.last_tempo: float | None = None

        async def create() -> Any:
            link = aalink.Link(_clamp(bpm))
            link.enabled = True
            return link

        try:
            self.link = self._run(create())
        except Exception:
            self._stop_loop()
            raise

    def _run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout)

    def _call(self, function) -> Any:
        if self.loop.is_closed() or not self.loop.is_running():
            raise RuntimeError("Link is closed")

        async def call() -> Any:
            return function()
        return self._run(call())

    # --- state -----------------------------------------------------------------
    @property
    def tempo(self) -> float:
        return float(self._call(lambda: self.link.tempo))

    @property
    def peers(self) -> int:
        """Other Link peers in the session."""
        return int(self._call(lambda: self.link.num_peers))

    def set_tempo(self, bpm: float) -> None:
        value = _clamp(bpm)

        def apply() -> None:
            self.link.tempo = value
        self._call(apply)
        self.last_tempo = value

    # --- the outputs' interface (live.fanout.Output) ---------------------------
    def send_emotion(self, state: object) -> None:
        """Link carries no emotion."""

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        try:
            if self.last_tempo is None or abs(_clamp(tempo) - self.last_tempo) >= TEMPO_RESOLUTION:
                self.set_tempo(tempo)
        except Exception as error:  # never let Link stop the music
            self.warn("Ableton Link: setting the tempo failed (%s); still trying", error)

    def close(self) -> None:
        if not self.loop.is_running():
            return
        try:
            def disable() -> None:
                self.link.enabled = False
            self._call(disable)
        except Exception as error:
            log.debug("Ableton Link: disabling failed (%s)", error)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=2.0)
        if not self.loop.is_running():
            self.loop.close()


def _clamp(bpm: float) -> float:
    low, high = TEMPO_RANGE
    return min(high, max(low, float(bpm)))
