"""Ableton Link (optional: ``pip install aalink``): emobridge leads a session's tempo, or follows its beat.

:class:`LinkTempo` leads (``--link``): the tempo emobridge plays becomes the session's, beat by beat
through a glide (Link keeps the beat, and so the bar phase, continuous at every change), so Ableton
Live, Bitwig, Reason, Traktor, phone apps and anything else with Link on the same network follow it.
At each of emobridge's bar lines the session's bar phase (quantum = beats per bar) is checked, and
moved onto emobridge's downbeat when it is off by more than :data:`PHASE_TOLERANCE`: the other
peers' bars start with emobridge's.

:class:`LinkFollower` follows (``--follow link``, ``tempo: follow``): it joins the session as a peer
and tells the player's grid (:class:`~emobridge.live.clock.MasterClock`) which session beat falls
when, every few milliseconds; the player's bars start where the session's phase is 0 with a quantum
of the mapping's beats per bar, so they land on the bars of every other peer. With
``--follow link-transport`` it also shares start and stop (Link's start/stop sync: Live's "Start Stop
Sync" preference), and plays only while the session plays.

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
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..log import LogLimiter
from ..errors import LinkUnavailable

log = logging.getLogger(__name__)

TEMPO_RANGE = (20.0, 999.0)  # what Link accepts
TEMPO_RESOLUTION = 0.01
PHASE_TOLERANCE = 0.001  # seconds the session's bar phase may be off emobridge's downbeat before it is moved


def link_available() -> bool:
    try:
        import aalink  # noqa: F401
    except ImportError:
        return False
    return True


class _LinkPeer:
    """What both kinds of peer share: aalink's Link, made and used on an event loop of its own thread."""

    def __init__(self, timeout: float) -> None:
        try:
            import aalink
        except ImportError:
            raise LinkUnavailable("Ableton Link needs the aalink package: pip install 'emobridge[link]' "
                                  "(or pip install aalink)") from None
        self.aalink = aalink
        self.timeout = timeout
        self.warn = LogLimiter(log, 5.0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="link", daemon=True)
        self.thread.start()

    def _join(self, create: Callable[[], Any]) -> Any:
        """The Link that *create* makes on the loop (the loop is stopped again if that fails)."""
        async def made() -> Any:
            return create()

        try:
            return self._run(made())
        except Exception:
            self._stop_loop()
            raise

    def _run(self, coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout)

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=2.0)
        if not self.loop.is_running():
            self.loop.close()


class LinkTempo(_LinkPeer):
    """A Link peer whose tempo follows emobridge's music."""

    def __init__(self, bpm: float = 120.0, timeout: float = 5.0):
        super().__init__(timeout)
        self.last_tempo: float | None = None

        def create() -> Any:
            link = self.aalink.Link(_clamp(bpm))
            link.enabled = True
            return link

        self.link = self._join(create)

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

    def send_bar_line(self, downbeat: float, beats_per_bar: int, seconds_per_beat: float) -> None:
        """emobridge's bar began at *downbeat* (time.monotonic seconds): keep the session's bar phase on it."""
        def align() -> None:
            self.link.quantum = beats_per_bar
            elapsed = (time.monotonic() - downbeat) / seconds_per_beat  # beats of this bar played by now
            error = (float(self.link.phase) - elapsed + beats_per_bar / 2) % beats_per_bar - beats_per_bar / 2
            if abs(error) * seconds_per_beat > PHASE_TOLERANCE:
                self.link.force_beat(float(self.link.beat) - error)
        try:
            self._call(align)
        except Exception as error:  # never let Link stop the music
            self.warn("Ableton Link: aligning the bar phase failed (%s); still trying", error)

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


FOLLOW_POLL = 0.005  # seconds between two looks at the session's beat (its tempo can change at any moment)
JUMP_BEATS = 0.01  # beats the session's beat may differ from where the last look said it would be, before it counts
                   # as a jump (a tempo change keeps the beat continuous: it moves far less in 5 ms)


class GridSink(Protocol):
    """What a followed Link session drives (live.clock.MasterClock)."""

    def place(self, t: float, beat: float, seconds_per_beat: float) -> None: ...
    def set_running(self, running: bool) -> None: ...
    def jumped(self) -> None: ...


class LinkFollower(_LinkPeer):
    """A Link peer whose session's beat the player plays on (see the module); *quantum*: beats per bar."""

    def __init__(self, sink: GridSink, quantum: int, transport: bool = False, timeout: float = 5.0,
                 now: Any = time.monotonic):
        super().__init__(timeout)
        self.sink, self.transport, self.now = sink, transport, now

        def create() -> Any:
            link = self.aalink.Link(120.0)  # a peer takes the session's tempo as it joins
            link.quantum = quantum
            link.start_stop_sync_enabled = transport
            link.enabled = True
            return link

        self.link = self._join(create)
        self._last: tuple[float, float, float] | None = None  # (time, beat, seconds per beat) of the last look

        async def begin() -> asyncio.Task:
            return asyncio.ensure_future(self._poll())
        self._poller = asyncio.run_coroutine_threadsafe(begin(), self.loop).result(timeout)

    async def _poll(self) -> None:
        while True:
            try:
                self.look()
            except Exception as error:  # never let Link stop the music
                self.warn("Ableton Link: reading the session failed (%s); still trying", error)
            await asyncio.sleep(FOLLOW_POLL)

    def look(self) -> None:
        """One look at the session (on the Link loop's thread): which beat falls now, at what tempo."""
        before = self.now()
        beat = float(self.link.beat)  # the session's beat on Link's own clock, now
        after = self.now()
        tempo = float(self.link.tempo)
        t, seconds_per_beat = (before + after) / 2, 60.0 / tempo
        if self._last is not None:
            last_t, last_beat, last_spb = self._last
            if abs(last_beat + (t - last_t) / last_spb - beat) > JUMP_BEATS:
                self.sink.jumped()  # e.g. this peer just joined a session that was there first
        self._last = (t, beat, seconds_per_beat)
        self.sink.place(t, beat, seconds_per_beat)
        # Alone, there is no session to follow yet; with start/stop sync, only while it plays.
        joined = int(self.link.num_peers) > 0
        self.sink.set_running(joined and (bool(self.link.playing) if self.transport else True))

    @property
    def peers(self) -> int:
        return int(self.link.num_peers)

    # --- the outputs' interface: a follower sends nothing -------------------------------------
    def send_emotion(self, state: object) -> None:
        """Link carries no emotion."""

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        """The session leads the tempo: nothing to send."""

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def finish() -> None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass
            self.link.enabled = False
        try:
            asyncio.run_coroutine_threadsafe(finish(), self.loop).result(self.timeout)
        except Exception as error:
            log.debug("Ableton Link: leaving the session failed (%s)", error)
        self._stop_loop()


def _clamp(bpm: float) -> float:
    low, high = TEMPO_RANGE
    return min(high, max(low, float(bpm)))
