"""Composes each bar ahead of its downbeat, on a thread of its own, so the player only sends and waits.

The player asks for the next bar a beat before the bar line, handing over the emotion of that
moment; the conductor composes it and leaves it ready. The conductor owns the composer: a new
mapping is *requested* from any thread and applied here before the next bar is composed, so a
mapping change always lands at a bar line and never in the middle of a composition.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Mapping as Mapping_
from dataclasses import dataclass

from ..mapping import Mapping
from ..music.composer import Composer
from ..music.params import Bar
from ..state import EmotionState
from .faults import Faults

log = logging.getLogger(__name__)

Voices = Mapping_[int, EmotionState]


@dataclass(frozen=True)
class ComposedBar:
    """A bar and the mapping it was composed under (its parts' channels and programs)."""

    bar: Bar
    mapping: Mapping
    request: int = 0  # which request it answers (the player ignores answers to requests it gave up on)


class Conductor:
    """Owns the :class:`Composer`; composes on request, one bar ahead."""

    IDLE_POLL = 0.1  # seconds between looks at the stop event while nobody asks for a bar

    def __init__(self, composer: Composer):
        self.composer = composer
        self._requests: queue.SimpleQueue[tuple[int, EmotionState, Voices]] = queue.SimpleQueue()
        self._asked = 0  # requests made so far (by the player's thread only)
        self._ready: queue.Queue[ComposedBar] = queue.Queue(maxsize=1)
        self._wanted_mapping: Mapping | None = None  # set by any thread, taken here at the next bar
        self._last: ComposedBar | None = None
        self.faults = Faults()

    @property
    def mapping(self) -> Mapping:
        """The mapping of the newest composed bar (or the composer's, before the first)."""
        return self._last.mapping if self._last is not None else self.composer.mapping

    # --- requests, from any thread -------------------------------------------
    def request_mapping(self, mapping: Mapping) -> None:
        """Compose with *mapping* from the next bar on (one assignment: the newest request wins)."""
        self._wanted_mapping = mapping

    def request(self, state: EmotionState, voices: Voices) -> None:
        """Compose the next bar for this emotion (the player calls it a beat ahead of the bar line)."""
        self._asked += 1
        self._requests.put((self._asked, state, voices))

    def take(self, timeout: float) -> ComposedBar | None:
        """The bar of the latest request, once composed; None if it is not ready within *timeout* seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                composed = self._ready.get(timeout=remaining)
            except queue.Empty:
                return None
            if composed.request == self._asked:
                return composed
        return None

    def discard(self) -> None:
        """Forget a bar composed for a timeline that was cut short (pause)."""
        try:
            self._ready.get_nowait()
        except queue.Empty:
            pass

    # --- the conductor's thread ----------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.faults.check("conductor")  # before taking a request, so a restart loses none
            try:
                request, state, voices = self._requests.get(timeout=self.IDLE_POLL)
            except queue.Empty:
                continue
            composed = dataclasses.replace(self.compose(state, voices), request=request)
            self.discard()  # an untaken bar is stale once a newer one is asked for
            self._ready.put(composed)

    def compose(self, state: EmotionState, voices: Voices) -> ComposedBar:
        """The next bar, with any requested mapping applied first; a composer failure gives a silent bar
        in the last tempo, so the show keeps its time."""
        wanted, self._wanted_mapping = self._wanted_mapping, None
        if wanted is not None:
            self.composer.set_mapping(wanted)
        try:
            bar = self.composer.next_bar(state, voices)
        except Exception:
            if self._last is None:
                raise
            log.exception("the composer failed; playing a silent bar and trying again at the next one")
            bar = dataclasses.replace(self._last.bar, index=self.composer.skip_bar(), events=())
        self._last = ComposedBar(bar, self.composer.mapping)
        return self._last
