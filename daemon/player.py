"""Plays the composer's bars on the MIDI port, on the beat clock's deadlines.

Each bar is composed just before it starts, from the emotion state of that moment,
so parameters change only at bar boundaries. Note-offs that reach past a bar stay
queued and keep their deadlines. Whatever ends the loop, every sounding note is
released.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .clock import BeatClock
from .midi_out import MidiOut
from .music.composer import Bar, Composer
from .smoothing import EmotionState

log = logging.getLogger(__name__)


@dataclass(order=True)
class Scheduled:
    beat: float
    is_on: bool  # False sorts first: a note-off at the same beat as a note-on of that pitch goes out before it
    channel: int = field(compare=False)
    pitch: int = field(compare=False)
    velocity: int = field(compare=False, default=0)


class Player:
    def __init__(self, composer: Composer, midi: MidiOut, state: Callable[[], EmotionState],
                 on_bar: Callable[[Bar], None] | None = None, now: Callable[[], float] = time.monotonic):
        self.composer = composer
        self.midi = midi
        self.state = state
        self.on_bar = on_bar
        self.now = now
        self.queue: list[Scheduled] = []
        self.clock: BeatClock | None = None
        self.current: Bar | None = None  # the bar being played (its params drive CCs and OSC)
        self.velocity_scale = 1.0  # master volume, applied as bars are queued
        self.paused = False  # takes effect at the next beat

    def run(self, stop: threading.Event) -> None:
        try:
            self._send_programs()
            self._loop(stop)
        finally:
            self.midi.panic(set(self.composer.mapping.channels()))

    def _send_programs(self) -> None:
        for part in self.composer.mapping.enabled_parts():
            if part.program is not None:
                self.midi.program_change(part.channel, part.program)

    def _loop(self, stop: threading.Event) -> None:
        bar_start = 0.0
        while not stop.is_set():
            bar = self.composer.next_bar(self.state())
            self.current = bar
            self._queue_bar(bar, bar_start)
            if self.on_bar:
                self.on_bar(bar)
            for beat in range(bar.params.beats_per_bar):
                if self.paused:
                    bar_start = self._hold(stop)
                    break
                # Tempo glides move beat by beat; each change re-anchors the clock at its beat.
                if self.clock is None:
                    self.clock = BeatClock(bar.tempo_at(beat), self.now)
                else:
                    self.clock.set_tempo(bar.tempo_at(beat), at_beat=bar_start + beat)
                if not self._play_until(bar_start + beat + 1, stop):
                    return
            else:
                bar_start += bar.params.beats_per_bar

    def _hold(self, stop: threading.Event) -> float:
        """Paused: silence, then wait for resume; the music restarts on a fresh bar and timeline."""
        self.queue.clear()
        self.midi.panic(set(self.composer.mapping.channels()))
        while self.paused and not stop.wait(0.02):
            pass
        self.clock = None
        return 0.0

    def _queue_bar(self, bar: Bar, bar_start: float) -> None:
        scale = self.velocity_scale
        for event in bar.events:
            start = bar_start + event.beat
            velocity = max(1, min(127, round(event.velocity * scale)))
            heapq.heappush(self.queue, Scheduled(start, True, event.channel, event.pitch, velocity))
            heapq.heappush(self.queue, Scheduled(start + event.duration, False, event.channel, event.pitch))

    def _play_until(self, beat: float, stop: threading.Event) -> bool:
        """Send every queued message due before *beat*, then wait for *beat*; False when stopped."""
        assert self.clock is not None
        while self.queue and self.queue[0].beat < beat:
            item = heapq.heappop(self.queue)
            if not self.clock.wait_for_beat(item.beat, stop):
                return False
            if item.is_on:
                self.midi.note_on(item.channel, item.pitch, item.velocity)
            else:
                self.midi.note_off(item.channel, item.pitch)
        return self.clock.wait_for_beat(beat, stop)
