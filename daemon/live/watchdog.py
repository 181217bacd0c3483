"""The watchdog: what went wrong on other threads, said from the main thread, and stages that stall.

Other threads only count a problem or queue it (the player must not log); the main loop calls
:meth:`Watchdog.check` every turn, which logs each failure (the first of a thread with its
traceback), MIDI send failures, the MIDI port lost and back, and a stage that stopped making progress — perception with no
frame for a while although its source is not known lost, the player late by more than a bar —
once when it starts and once when it ends, on the log and as OSC ``/status``.
"""

from __future__ import annotations

import logging
import queue

from ..outputs.ports import MidiPort
from .clock import Clock
from .fanout import Fanout
from .perceive import PerceptionLoop
from .player import Player

log = logging.getLogger("emobridge")

PERCEPTION_STALL = 3.0  # seconds without a processed frame (while the source is not known lost) that count as a stall
PLAYER_SLACK = 0.5  # seconds beyond a bar without a beat before the player counts as late


class Watchdog:
    def __init__(self, clock: Clock, perceiver: PerceptionLoop, player: Player, fanout: Fanout, port: MidiPort,
                 speed: float = 1.0):
        self.clock, self.perceiver, self.player, self.fanout, self.speed = clock, perceiver, player, fanout, speed
        self.port = port
        self._port_changes = 0  # the port's health changes already reported
        self.failures: queue.SimpleQueue[tuple[str, BaseException]] = queue.SimpleQueue()  # (thread, error)
        self.restarts: dict[str, int] = {}  # thread → times its loop failed and was run again
        self._reported_send_failures = 0
        self._frames_seen, self._frames_at = 0, clock()
        self._stalled: set[str] = set()  # stages reported stalled and not yet well again

    def failed(self, thread: str, error: BaseException) -> None:
        """From the failing thread: queue it for the main thread to report."""
        self.failures.put((thread, error))

    def check(self) -> None:
        while True:
            try:
                thread, error = self.failures.get_nowait()
            except queue.Empty:
                break
            self._report_failure(thread, error)
        self._check_sends()
        self._check_port()
        self._check_perception()
        self._check_player()

    def _check_sends(self) -> None:
        failures = self.player.send_failures
        if failures != self._reported_send_failures:
            error = self.player.last_send_error
            log.warning("MIDI output failed %d times so far (last: %s: %s); still playing", failures,
                        type(error).__name__, error)
            self._reported_send_failures = failures

    def _check_port(self) -> None:
        """The MIDI port lost (JACK died) or back: one line each way, and /status midi."""
        health = self.port.health()
        if health.changes == self._port_changes:
            return
        self._port_changes = health.changes
        (log.info if health.ok else log.warning)("%s", health.text)
        self.fanout.status("midi", health.ok, health.text)

    def _check_perception(self) -> None:
        now = self.clock()
        if self.perceiver.frames != self._frames_seen or self.perceiver.source_lost:
            self._frames_seen, self._frames_at = self.perceiver.frames, now
            self._progress("perception", True, "perception is processing frames again")
        elif now - self._frames_at > PERCEPTION_STALL:
            self._progress("perception", False, f"perception has processed no frame for {now - self._frames_at:.0f} s "
                                                "(a frozen camera driver?); the music goes on")

    def _check_player(self) -> None:
        bar = self.player.current
        if bar is None or self.player.paused:
            return
        late = self.clock() - self.player.last_beat
        bar_seconds = bar.params.beats_per_bar * 60.0 / (bar.params.tempo * self.speed)
        if late > bar_seconds + PLAYER_SLACK:
            self._progress("player", False, f"the player is late by more than a bar ({late:.1f} s since a beat)")
        else:
            self._progress("player", True, "the player keeps time again")

    def _progress(self, stage: str, ok: bool, message: str) -> None:
        """Log and send a stage's stall once when it starts and once when it ends."""
        if ok == (stage not in self._stalled):
            return
        if ok:
            self._stalled.discard(stage)
            log.info("%s", message)
        else:
            self._stalled.add(stage)
            log.warning("%s", message)
        self.fanout.status(stage, ok, message)

    def _report_failure(self, thread: str, error: BaseException) -> None:
        self.restarts[thread] = self.restarts.get(thread, 0) + 1
        if self.restarts[thread] == 1:  # the first with its traceback; the stage is run again either way
            log.error("the %s thread failed; it runs again and the show goes on", thread, exc_info=error)
        else:
            log.error("the %s thread failed again (%s: %s, %d times); it runs again", thread, type(error).__name__,
                      error, self.restarts[thread])
        self.fanout.status(thread, False, f"the {thread} thread failed ({type(error).__name__}) and was restarted")
