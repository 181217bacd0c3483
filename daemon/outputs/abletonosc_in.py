"""Live's beat through AbletonOSC's listeners (``--follow abletonosc``), for tempo: follow without MIDI or Link.

AbletonOSC (the remote script, port 11000) answers on port 11001 of whoever asked. Asked with
``/live/song/start_listen/beat``, it sends ``/live/song/get/beat i`` at every beat Live plays;
``/live/song/start_listen/tempo`` gives ``/live/song/get/tempo f`` at each change and
``/live/song/start_listen/is_playing`` gives ``/live/song/get/is_playing i`` when Live starts or stops.
This module listens (python-osc's server thread) and tells the player's grid
(:class:`~emobridge.live.clock.MasterClock`) which beat fell when: a least-squares line through the
arrival times of the last :data:`FIT_BEATS` beats, so the jitter of Live's listeners (they run with its
display updates) is averaged out. It is coarser than MIDI clock or Link (a few milliseconds after the
fit, plus the network's and Live's constant delay): use those where they are available.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer

from ..errors import OscTargetError
from .osc import encode

log = logging.getLogger(__name__)

LIVE_PORT = 11000    # where AbletonOSC listens
REPLY_PORT = 11001   # where it answers
FIT_BEATS = 8        # beats the line is fitted over
LISTENERS = ("beat", "tempo", "is_playing")


class BeatSink(Protocol):
    def place(self, t: float, beat: float, seconds_per_beat: float) -> None: ...
    def set_running(self, running: bool) -> None: ...
    def jumped(self) -> None: ...


class AbletonOscBeats:
    """Asks Live (through AbletonOSC at *live_host*:*live_port*) for its beats and feeds them to *sink*."""

    def __init__(self, sink: BeatSink, live_host: str = "127.0.0.1", live_port: int = LIVE_PORT,
                 reply_port: int = REPLY_PORT, now: Callable[[], float] = time.monotonic):
        self.sink, self.now = sink, now
        self.live = (live_host, live_port)
        self._beats: list[tuple[int, float]] = []  # (beat number, arrival time), oldest first
        self.tempo: float | None = None  # Live's tempo as its listener last said
        dispatcher = Dispatcher()
        dispatcher.map("/live/song/get/beat", self._on_beat)
        dispatcher.map("/live/song/get/tempo", self._on_tempo)
        dispatcher.map("/live/song/get/is_playing", self._on_playing)
        try:
            self.server = ThreadingOSCUDPServer(("0.0.0.0", reply_port), dispatcher)
        except OSError as error:
            raise OscTargetError(f"--follow abletonosc: cannot listen on UDP port {reply_port} for AbletonOSC's "
                                 f"answers ({error}): is another program using it?") from None
        self.reply_port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="abletonosc-in", daemon=True)
        self.thread.start()
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._ask("start_listen")

    def _ask(self, verb: str) -> None:
        for name in LISTENERS:
            try:
                self.socket.sendto(encode(f"/live/song/{verb}/{name}"), self.live)
            except OSError as error:
                log.warning("AbletonOSC: asking Live for its %s failed (%s)", name, error)

    # --- python-osc's server thread ----------------------------------------------------------------
    def _on_beat(self, _address: str, *args: object) -> None:
        t = self.now()
        try:
            beat = int(args[-1])  # the beat number (after the object id, if a version sends one)
        except (IndexError, TypeError, ValueError):
            return
        if self._beats and beat != self._beats[-1][0] + 1:
            self._beats.clear()  # Live jumped (a new position, a restart): fit afresh
            self.sink.jumped()
        self._beats.append((beat, t))
        del self._beats[:-FIT_BEATS]
        if len(self._beats) >= 2:
            at, seconds_per_beat = _fit(self._beats)
            self.sink.place(at, float(beat), seconds_per_beat)
        elif self.tempo:
            self.sink.place(t, float(beat), 60.0 / self.tempo)
        self.sink.set_running(True)

    def _on_tempo(self, _address: str, *args: object) -> None:
        try:
            self.tempo = float(args[-1])
        except (IndexError, TypeError, ValueError):
            return
        if len(self._beats) > 2:
            self._beats[:] = self._beats[-2:]  # a new tempo: the beats before it would bend the line

    def _on_playing(self, _address: str, *args: object) -> None:
        playing = bool(args and args[-1])
        if not playing:
            self._beats.clear()
        self.sink.set_running(playing)

    # --- the outputs' interface: nothing to send -------------------------------------------------------
    def send_emotion(self, state: object) -> None:
        """Nothing: this only listens."""

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        """Nothing: Live leads."""

    def close(self) -> None:
        self._ask("stop_listen")
        self.socket.close()
        self.server.shutdown()
        self.server.server_close()


def _fit(beats: list[tuple[int, float]]) -> tuple[float, float]:
    """(fitted arrival time of the newest beat, seconds per beat): least squares through (beat, time)."""
    n = len(beats)
    mean_b = sum(b for b, _ in beats) / n
    mean_t = sum(t for _, t in beats) / n
    spread = sum((b - mean_b) ** 2 for b, _ in beats)
    slope = sum((b - mean_b) * (t - mean_t) for b, t in beats) / spread
    return mean_t + slope * (beats[-1][0] - mean_b), slope
