"""Plays composed bars on the MIDI port, on the beat clock's deadlines: MIDI sends and waits, nothing else.

Each bar is composed ahead by the :class:`~emobridge.live.conductor.Conductor` (asked a beat before
the bar line, with the emotion of that moment), so parameters change only at bar boundaries and no
composing, logging or network I/O happens on this thread. Note-offs that reach past a bar stay
queued and keep their deadlines. Optional MIDI clock (24 pulses per quarter note, Start/Stop/Song
Position, and Song Position + Continue after a pause) rides on the same deadlines, so a DAW set to
external sync follows the emotion's tempo beat by beat and keeps its place in the song.
``on_bar`` is told of every bar as it starts and must only hand it on (the daemon queues it for the
outputs' thread). Whatever ends the loop, every sounding note is released.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import os
import threading
from collections.abc import Mapping as Mapping_
from dataclasses import dataclass, field
from typing import Callable

from ..mapping import Mapping
from ..music.composer import Composer
from ..music.params import Bar
from ..outputs.ports import (BANK_SELECT_LSB, BANK_SELECT_MSB, CONTINUE, PULSES_PER_BEAT, SONG_POSITION, START, STOP,
                             TIMING_CLOCK, MidiPort)
from ..state import EmotionState
from .clock import SYSTEM_CLOCK, BeatClock, Clock, FollowedTimeline, MasterClock
from .conductor import ComposedBar, Conductor
from .faults import Faults

# Same-beat order: clock pulse, then note-offs, then note-ons (a repeated key is released before it sounds again).
CLOCK, OFF, ON = 0, 1, 2
FIRST_BAR_WAIT = 5.0  # seconds the first bar may take to compose (a cold start loads the theory tables)
LATE_BAR_WAIT = 0.005  # seconds a composed bar may be late at its downbeat before a silent bar keeps the time
STALL_BEATS = 0.25  # lateness (in beats) that counts as a stall (a frozen VM, a closed lid): overdue events are dropped
FOLLOW_POLL = 0.002  # seconds between looks at a stopped leader: how late a Start can be noticed at most
FOLLOW_TEMPO_STEP = 0.25  # BPM the leader's tempo must move before the outputs are told (the estimate wavers less)
SIXTEENTHS_PER_BEAT = 4  # Song Position counts sixteenth notes
SONG_POSITION_SPAN = 1 << 14  # sixteenths a Song Position can say (14 bits): 1,024 bars of 4/4, then it wraps


def song_position(beat: float) -> list[int]:
    """The Song Position message for a song position in beats (quarter notes), wrapped into its 14 bits."""
    sixteenths = round(beat * SIXTEENTHS_PER_BEAT) % SONG_POSITION_SPAN
    return [SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7]


def realtime_priority(priority: int = 10) -> bool:
    """Ask for real-time scheduling of the calling thread (as JACK does), so a busy CPU cannot delay notes.

    Needs root or an rtprio limit (the 'audio' group on most Linux audio setups); without it
    the thread keeps normal scheduling, which is fine on an idle machine.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread, on Linux
    except (AttributeError, OSError):
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
    """conductor: a :class:`Conductor` (or a bare :class:`Composer`, which gets one); port: any MIDI port;
    state/voices: what the music follows, read when the next bar is asked for; on_bar/on_tempo: told of every
    bar as it starts and of every beat whose tempo differs from the beat before (a glide), to hand on only."""

    def __init__(self, conductor: Conductor | Composer, midi: MidiPort, state: Callable[[], EmotionState],
                 on_bar: Callable[[Bar], None] | None = None, clock: Clock = SYSTEM_CLOCK,
                 midi_clock: bool = False, speed: float = 1.0,
                 voices: Callable[[], Mapping_[int, EmotionState]] | None = None, start_conductor: bool = True,
                 on_tempo: Callable[[float], None] | None = None, master: MasterClock | None = None):
        self.start_conductor = start_conductor  # False: whoever made the conductor runs its thread (the daemon)
        self.conductor = conductor if isinstance(conductor, Conductor) else Conductor(conductor)
        self.voices = voices or dict  # slot → a face's own emotion (faces: each)
        self.midi = midi
        self.state = state
        self.on_bar = on_bar
        self.on_tempo = on_tempo
        self.master = master  # tempo: follow: the leader's beat grid (its MIDI clock); None: emobridge leads
        self._told_tempo: float | None = None  # the leader's tempo as the outputs were last told it
        self.now = clock
        self.midi_clock = midi_clock and master is None  # a follower sends no clock of its own
        # seconds before its deadline a message goes to the port: a frame-exact port (JACK-native) needs a cycle's
        # notice to put it at its frame; every other port sends at once, so 0
        self.lead = float(getattr(midi, "lead", 0.0)) if clock.realtime else 0.0
        # a frame-exact port is told each message's deadline (offline, clock seconds are not the port's)
        self._deadline_to = getattr(midi, "at", None) if clock.realtime else None
        self.speed = speed  # >1 plays faster than written (soak tests); the DAW-facing default is 1
        self.queue: list[Scheduled] = []
        self.clock: BeatClock | FollowedTimeline | None = None
        self.current: Bar | None = None  # the bar being played (its params drive CCs and OSC)
        self.velocity_scale = 1.0  # master volume, applied as bars are queued
        self.paused = False  # takes effect at the next beat
        self.late_bars = 0  # bars whose composition missed the downbeat (a silent bar played instead)
        self.stalls = 0  # times the player woke up a stall late and dropped what was overdue
        self.last_beat = 0.0  # clock time of the last beat begun: the watchdog's sign of life
        self.faults = Faults()
        self._conductor_thread: threading.Thread | None = None
        self.send_failures = 0  # MIDI sends that raised (counted here; reported by whoever watches)
        self.last_send_error: Exception | None = None
        self._programs: dict[int, tuple[int | None, int | None]] = {}  # channel → (bank, program) sent
        self._programs_for: Mapping | None = None  # the mapping whose programs were last sent
        self.channels_played: set[int] = set()  # released at pause and exit, even after a mapping change
        self.song_offset = 0.0  # song position (beats) of the timeline's beat 0: where a resume continues from
        self._resuming = False  # the next timeline continues the song (Song Position + Continue), not restarts it
        self._bar_song_beat = 0.0  # song position (beats) of the bar being played

    def run(self, stop: threading.Event) -> None:
        """Play until *stop*; may be called again after a failure (a fresh timeline, the same conductor)."""
        realtime_priority()
        if self.start_conductor and (self._conductor_thread is None or not self._conductor_thread.is_alive()):
            self._conductor_thread = threading.Thread(target=self.conductor.run, args=(stop,), name="conductor",
                                                      daemon=True)
            self._conductor_thread.start()
        self.queue.clear()
        self.clock = None
        self.song_offset, self._resuming = 0.0, False  # a fresh run starts the song again
        try:
            self._loop(stop)
        finally:
            if self.midi_clock:
                self._send([STOP])
            self.midi.panic(self._channels())
            if stop.is_set() and self._conductor_thread is not None:
                self._conductor_thread.join(timeout=1.0)

    def _channels(self) -> set[int]:
        return set(self.conductor.mapping.channels()) | self.channels_played

    def _ask_for_next_bar(self) -> None:
        self.conductor.request(self.state(), self.voices())

    def _loop(self, stop: threading.Event) -> None:
        bar_start = 0.0
        self._ask_for_next_bar()
        composed = self.conductor.take(FIRST_BAR_WAIT)  # composed while the leader (if any) is awaited
        if self.master is not None and not self._follow(stop):
            return
        while not stop.is_set():
            if composed is None:  # the conductor missed the downbeat: keep the time with a silent bar
                composed = self._silent_bar()
            self.faults.check("player")
            bar = composed.bar
            if self.master is not None:
                bar = self._at_leaders_tempo(bar)
            self._guarded(self.midi.refresh)  # note-offs a receiver that was away may have missed, again
            self._send_programs(composed.mapping)
            self.current = bar
            self._queue_bar(bar, bar_start)
            if self.on_bar:
                self.on_bar(bar)
            beats = bar.params.beats_per_bar
            self._bar_song_beat = self.song_offset + bar_start
            for beat in range(beats):
                if self.paused or self._leader_moved():
                    # The song goes on from this bar's line if none of it played, else from the next one.
                    self.song_offset = self._bar_song_beat + (beats if beat else 0)
                    bar_start = self._hold(stop)
                    if self.master is not None and not self._follow(stop):
                        return
                    self._ask_for_next_bar()
                    composed = self.conductor.take(FIRST_BAR_WAIT)
                    break
                tempo = bar.tempo_at(beat)
                self._set_tempo(tempo, bar_start + beat)
                if self.master is not None:
                    self._tell_leaders_tempo()
                elif beat and self.on_tempo and tempo != bar.tempo_at(beat - 1):
                    self.on_tempo(tempo)  # a glide: the DAW and Link hear the tempo of the beat now playing
                self.last_beat = self.now()
                if beat == beats - 1:
                    self._ask_for_next_bar()  # a beat ahead: composed while this beat plays
                if not self._play_until(bar_start + beat + 1, stop):
                    return
            else:
                bar_start += beats
                composed = self.conductor.take(LATE_BAR_WAIT if self.now.realtime else FIRST_BAR_WAIT)

    # --- tempo: follow ---------------------------------------------------------------------------
    def _follow(self, stop: threading.Event) -> bool:
        """Wait until the leader plays with a known grid (and no pause), then lay this timeline on its next bar
        line: at once when it has just started from a bar line. False when stopped."""
        master = self.master
        assert master is not None
        while self.paused or not (master.running and master.locked):
            self.last_beat = self.now()  # waiting for the DAW is keeping time too (the watchdog's sign of life)
            if not self.now.wait_until(self.now() + FOLLOW_POLL, stop):
                return False
        beats = self.conductor.mapping.beats_per_bar
        # song beats are counted from the song's start (Song Position 0 is bar 1, beat 1): bars fall on multiples
        first = math.ceil(master.beat_at(self.now()) / beats - 1e-6) * beats
        self.clock = FollowedTimeline(master, first)
        self._told_tempo = None
        return True

    def _leader_moved(self) -> bool:
        """The leader stopped, jumped or went silent since this timeline was laid on it."""
        return isinstance(self.clock, FollowedTimeline) and not self.clock.valid

    def _at_leaders_tempo(self, bar: Bar) -> Bar:
        """The bar as it will play: at the leader's tempo (what the outputs and the recording are told)."""
        tempo = round(self.clock.tempo if self.clock is not None else bar.params.tempo, 2)
        beats = bar.params.beats_per_bar
        return dataclasses.replace(bar, params=dataclasses.replace(bar.params, tempo=tempo), beat_tempos=(tempo,) * beats)

    def _tell_leaders_tempo(self) -> None:
        tempo = self.clock.tempo if self.clock is not None else None
        if tempo is None or self.on_tempo is None:
            return
        if self._told_tempo is None:
            self._told_tempo = tempo  # the bar line just told it
        elif abs(tempo - self._told_tempo) >= FOLLOW_TEMPO_STEP:
            self._told_tempo = tempo
            self.on_tempo(round(tempo, 2))

    def _silent_bar(self) -> ComposedBar:
        assert self.current is not None, "the first bar never came"
        self.late_bars += 1
        last = self.current
        return ComposedBar(Bar(last.index + 1, last.params, (), last.beat_tempos[-1:] * last.params.beats_per_bar,
                               last.phrase_bar), self.conductor.mapping)

    def _send_programs(self, mapping: Mapping) -> None:
        """Bank and program of every part (and face voice) that has one, where the channel does not have it yet.

        Before each bar, so a reloaded mapping's new instruments arrive with its first bar, while an
        unchanged one sends nothing (a repeated program change can cut a sound).
        """
        if mapping is self._programs_for:
            return
        self._programs_for = mapping
        for part in mapping.enabled_parts() + mapping.faces.voice_parts():
            wanted = (part.bank, part.program)
            if wanted == (None, None) or self._programs.get(part.channel) == wanted:
                continue
            self._programs[part.channel] = wanted
            if part.bank is not None:  # bank select takes effect with the next program change
                self._guarded(self.midi.control_change, part.channel, BANK_SELECT_MSB, part.bank >> 7)
                self._guarded(self.midi.control_change, part.channel, BANK_SELECT_LSB, part.bank & 0x7F)
            if part.program is not None:
                self._guarded(self.midi.program_change, part.channel, part.program)

    def _set_tempo(self, tempo: float, beat: float) -> None:
        """Tempo glides move beat by beat; each change re-anchors the clock at its beat (a leader's: no change)."""
        if self.clock is None:
            self.clock = BeatClock(tempo * self.speed, self.now)
            self.clock.anchor_beat = beat
            if self.midi_clock:
                # A fresh run starts the song at its beginning; a resume continues it where the pause left
                # it (a synced DAW would jump back to bar 1 at every Start).
                self._send(song_position(self.song_offset))
                self._send([CONTINUE] if self._resuming else [START])
        else:
            self.clock.set_tempo(tempo * self.speed, at_beat=beat)

    def _hold(self, stop: threading.Event) -> float:
        """Paused: silence, then wait for resume; the music goes on with a fresh bar on a fresh timeline whose
        beat 0 is song position :attr:`song_offset` (the bar line after the last one played)."""
        self.queue.clear()
        self.conductor.discard()
        if self.midi_clock:
            self._send([STOP])
        self.midi.panic(self._channels())
        while self.paused and self.master is None and self.now.wait_until(self.now() + 0.02, stop):
            pass
        self.clock = None
        self._resuming = True
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
            due = self.queue[0].beat
            if self._stalled(due):
                self._recover_from_stall(due)
                continue
            if not self.clock.wait_for_beat(due, stop, self.lead):
                return False
            if self._stalled(due):
                continue  # the wait itself ended a stall late: recover before sending anything
            self._stamp(self.clock.time_of(due))  # a frame-exact port places it at its deadline, not at the wake-up
            self._emit(heapq.heappop(self.queue))
            self._stamp(None)  # what else this thread sends (a panic) goes out now
        return self.clock.wait_for_beat(beat, stop, self.lead)

    def _stamp(self, deadline: float | None) -> None:
        if self._deadline_to is not None:
            self._deadline_to(deadline)

    def _stalled(self, beat: float) -> bool:
        assert self.clock is not None
        return self.now() - self.clock.time_of(beat) > STALL_BEATS * self.clock.seconds_per_beat()

    def _recover_from_stall(self, overdue: float) -> None:
        """Woken far too late: drop what was due up to the next beat (releasing its notes) and move the
        timeline so that beat falls now, instead of playing everything missed in one burst."""
        assert self.clock is not None
        self.stalls += 1
        next_beat = math.floor(overdue) + 1
        while self.queue and self.queue[0].beat < next_beat:
            item = heapq.heappop(self.queue)
            if item.kind == OFF:
                self._emit(item)  # a note struck before the stall ends now
        if isinstance(self.clock, BeatClock):  # a leader's grid is its own: the dropped beats are simply gone
            self.clock.anchor_time, self.clock.anchor_beat = self.now(), float(next_beat)

    def _emit(self, item: Scheduled) -> None:
        if item.kind == ON:
            # The no-face fade_out policy lowers each note as it is struck, so the fade is smooth
            # within a bar; a note faded below velocity 1 is not struck (its note-off is harmless).
            velocity = round(item.velocity * self._presence())
            if velocity >= 1:
                self.channels_played.add(item.channel)
                self._guarded(self.midi.note_on, item.channel, item.pitch, min(127, velocity))
        elif item.kind == OFF:
            self._guarded(self.midi.note_off, item.channel, item.pitch)
        else:
            self._send([TIMING_CLOCK])

    def _presence(self) -> float:
        try:
            return self.state().presence_at(self.now())
        except Exception:  # the state must never stop a note; play it at full level
            return 1.0

    def _send(self, message: list[int]) -> None:
        self._guarded(self.midi.send, message)

    def _guarded(self, send: Callable[..., None], *args: int | list[int]) -> None:
        """A port error must not stop the show's clock: count it (the daemon reports it), play on."""
        try:
            send(*args)
        except Exception as error:
            self.last_send_error = error
            self.send_failures += 1
