"""Plays the composer's bars on the MIDI port, on the beat clock's deadlines.

Each bar is composed just before it starts, from the emotion state of that moment,
so parameters change only at bar boundaries. Note-offs that reach past a bar stay
queued and keep their deadlines. Optional MIDI clock (24 pulses per quarter note,
Start/Stop/Song Position) rides on the same deadlines, so a DAW set to external
sync follows the emotion's tempo. Whatever ends the loop, every sounding note is
released.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Callable

from .clock import BeatClock
from ..log import LogLimiter
from ..outputs.midi import MidiOut
from ..music.params import Bar
from ..music.composer import Composer
from ..state import EmotionState

log = logging.getLogger(__name__)

PULSES_PER_BEAT = 24
TIMING_CLOCK, START, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFC, 0xF2
BANK_SELECT_MSB, BANK_SELECT_LSB = 0, 32
# Same-beat order: clock pulse, then note-offs, then note-ons (a repeated key is released before it sounds again).
CLOCK, OFF, ON = 0, 1, 2


def realtime_priority(priority: int = 10) -> bool:
    """Ask for real-time scheduling of the calling thread (as JACK does), so a busy CPU cannot delay notes.

    Needs root or an rtprio limit (the 'audio' group on most Linux audio setups); without it
    the thread keeps normal scheduling, which is fine on an idle machine.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread, on Linux
    except (AttributeError, OSError):
        log.debug("no real-time scheduling for the player thread; timing may suffer under CPU load")
        return False
    return True


@dataclass(order=True)
class Scheduled:
    beat: float
    kind: int
    channel: int = field(compare=False, default=0)
    pitch: int = field(compare=False, default=0)
    velocity: int = field(compare=False, default=0)


class Player:
    def __init__(self, composer: Composer, midi: MidiOut, state: Callable[[], EmotionState],
                 on_bar: Callable[[Bar], None] | None = None, now: Callable[[], float] = time.monotonic,
                 midi_clock: bool = False, speed: float = 1.0,
                 voices: Callable[[], Mapping[int, EmotionState]] | None = None):
        self.composer = composer
        self.voices = voices  # slot → a face's own emotion (faces: each), read at each bar start
        self.midi = midi
        self.state = state
        self.on_bar = on_bar
        self.now = now
        self.midi_clock = midi_clock
        self.speed = speed  # >1 plays faster than written (soak tests); the DAW-facing default is 1
        self.queue: list[Scheduled] = []
        self.clock: BeatClock | None = None
        self.current: Bar | None = None  # the bar being played (its params drive CCs and OSC)
        self.velocity_scale = 1.0  # master volume, applied as bars are queued
        self.paused = False  # takes effect at the next beat
        self.warn = LogLimiter(log, 5.0)
        self._programs: dict[int, tuple[int | None, int | None]] = {}  # channel → (bank, program) sent
        self._programs_for = None  # the mapping whose programs were last sent
        self.channels_played: set[int] = set()  # released at pause and exit, even after a mapping change

    def run(self, stop: threading.Event) -> None:
        realtime_priority()
        try:
            self._send_programs()
            self._loop(stop)
        finally:
            if self.midi_clock:
                self._send([STOP])
            self.midi.panic(self._channels())

    def _channels(self) -> set[int]:
        return set(self.composer.mapping.channels()) | self.channels_played

    def _send_programs(self) -> None:
        """Bank and program of every part (and face voice) that has one, where the channel does not have it yet.

        Called at start and before each bar, so a reloaded mapping's new instruments arrive with its
        first bar, while an unchanged one sends nothing (a repeated program change can cut a sound).
        """
        mapping = self.composer.mapping
        if mapping is self._programs_for:
            return
        self._programs_for = mapping
        for part in mapping.enabled_parts() + mapping.faces.voice_parts():
            wanted = (part.bank, part.program)
            if wanted == (None, None) or self._programs.get(part.channel) == wanted:
                continue
            self._programs[part.channel] = wanted
            if part.bank is not None:  # bank select takes effect with the next program change
                self.midi.control_change(part.channel, BANK_SELECT_MSB, part.bank >> 7)
                self.midi.control_change(part.channel, BANK_SELECT_LSB, part.bank & 0x7F)
            if part.program is not None:
                self.midi.program_change(part.channel, part.program)

    def _loop(self, stop: threading.Event) -> None:
        bar_start = 0.0
        while not stop.is_set():
            self._send_programs()
            bar = self._compose()
            self.current = bar
            self._queue_bar(bar, bar_start)
            if self.on_bar:
                self.on_bar(bar)
            for beat in range(bar.params.beats_per_bar):
                if self.paused:
                    bar_start = self._hold(stop)
                    break
                self._set_tempo(bar.tempo_at(beat), bar_start + beat)
                if not self._play_until(bar_start + beat + 1, stop):
                    return
            else:
                bar_start += bar.params.beats_per_bar

    def _compose(self) -> Bar:
        """The next bar; if the composer fails, a silent bar in the last tempo keeps the show's time."""
        try:
            if self.voices is None:
                return self.composer.next_bar(self.state())
            return self.composer.next_bar(self.state(), self.voices())
        except Exception:
            if self.current is None:
                raise
            log.exception("the composer failed; playing a silent bar and trying again at the next one")
            return dataclasses.replace(self.current, index=self.current.index + 1, events=())

    def _set_tempo(self, tempo: float, beat: float) -> None:
        """Tempo glides move beat by beat; each change re-anchors the clock at its beat."""
        if self.clock is None:
            self.clock = BeatClock(tempo * self.speed, self.now)
            self.clock.anchor_beat = beat
            if self.midi_clock:
                self._send([SONG_POSITION, 0, 0])  # a fresh timeline starts at the song's beginning
                self._send([START])
        else:
            self.clock.set_tempo(tempo * self.speed, at_beat=beat)

    def _hold(self, stop: threading.Event) -> float:
        """Paused: silence, then wait for resume; the music restarts on a fresh bar and timeline."""
        self.queue.clear()
        if self.midi_clock:
            self._send([STOP])
        self.midi.panic(self._channels())
        while self.paused and not stop.wait(0.02):
            pass
        self.clock = None
        return 0.0

    def _queue_bar(self, bar: Bar, bar_start: float) -> None:
        scale = self.velocity_scale
        for event in bar.events:
            start = bar_start + event.beat
            velocity = max(1, min(127, round(event.velocity * scale)))
            heapq.heappush(self.queue, Scheduled(start, ON, event.channel, event.pitch, velocity))
            heapq.heappush(self.queue, Scheduled(start + event.duration, OFF, event.channel, event.pitch))
        if self.midi_clock:
            for pulse in range(bar.params.beats_per_bar * PULSES_PER_BEAT):
                heapq.heappush(self.queue, Scheduled(bar_start + pulse / PULSES_PER_BEAT, CLOCK))

    def _play_until(self, beat: float, stop: threading.Event) -> bool:
        """Send every queued message due before *beat*, then wait for *beat*; False when stopped."""
        assert self.clock is not None
        while self.queue and self.queue[0].beat < beat:
            item = heapq.heappop(self.queue)
            if not self.clock.wait_for_beat(item.beat, stop):
                return False
            self._emit(item)
        return self.clock.wait_for_beat(beat, stop)

    def _emit(self, item: Scheduled) -> None:
        try:
            if item.kind == ON:
                # The no-face fade_out policy lowers each note as it is struck, so the fade is smooth
                # within a bar; a note faded below velocity 1 is not struck (its note-off is harmless).
                velocity = round(item.velocity * self._presence())
                if velocity >= 1:
                    self.channels_played.add(item.channel)
                    self.midi.note_on(item.channel, item.pitch, min(127, velocity))
            elif item.kind == OFF:
                self.midi.note_off(item.channel, item.pitch)
            else:
                self.midi.send([TIMING_CLOCK])
        except Exception as error:  # a port error must not stop the show's clock
            self.warn("MIDI output failed (%s); still playing", error)

    def _presence(self) -> float:
        try:
            return self.state().presence_at(self.now())
        except Exception:  # the state must never stop a note; play it at full level
            return 1.0

    def _send(self, message: list[int]) -> None:
        try:
            self.midi.send(message)
        except Exception as error:
            self.warn("MIDI output failed (%s); still playing", error)
