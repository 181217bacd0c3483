"""MIDI ports behind one small interface: the wire's numbers, the note bookkeeping, a fake and a tee.

Whatever sends MIDI (the player, the daemon's CCs, ``emobridge learn``) talks to a
:class:`MidiPort`. :class:`~emobridge.outputs.midi.MidiOut` is the real one (python-rtmidi),
:class:`FakePort` keeps what it is sent (for tests), and :class:`Tee` plays on a port while
copying its channel messages to listeners such as the recorder. The real and the fake port
share :class:`BasePort`, so the tests of the fake prove the bookkeeping of the real one.

A show's receivers come and go (a DAW reconnects its input, JACK restarts), and a note-off sent
while a receiver was away never arrives. So :class:`BasePort` also keeps the wire's view of the
notes (what a receiver that heard everything would be holding) and offers two ways to heal a
receiver that missed something, neither of which ever cuts a note that sounds:
:meth:`~BasePort.refresh` (at every bar line: the note-offs of the last bar, again) and
:meth:`~BasePort.heal` (when a receiver connects: a note-off for every key ever played that is
not sounding now).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

HEAL_ALL_NOTES_OFF_OVER = 256  # keys to release at a heal beyond which one all-notes-off per channel says it shorter

# Status bytes. A channel message's first byte is its kind | channel (0-15); from SYSTEM on there is no channel.
NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE = 0x80, 0x90, 0xB0, 0xC0
SYSTEM = 0xF0
SONG_POSITION = 0xF2  # then the position in sixteenth notes: 7 bits low, 7 bits high
TIMING_CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC  # realtime: one byte each
PULSES_PER_BEAT = 24  # timing clock pulses per quarter note
KIND_MASK, CHANNEL_MASK = 0xF0, 0x0F  # the two halves of a channel message's status byte

# Controller numbers (the second byte of a control change)
BANK_SELECT_MSB, BANK_SELECT_LSB, SUSTAIN = 0, 32, 64
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123
CHANNEL_MODE = range(120, 128)  # commands, not knobs: all sound off, reset controllers, all notes off, ...


class MidiPort(Protocol):
    """What emobridge needs from a MIDI output. Channels are the wire's 0-15; every call is thread-safe."""

    description: str  # for the log, e.g. "virtual port 'emobridge' (jack)"

    def note_on(self, channel: int, pitch: int, velocity: int) -> None: ...

    def note_off(self, channel: int, pitch: int) -> None: ...

    def control_change(self, channel: int, control: int, value: int) -> None: ...

    def program_change(self, channel: int, program: int) -> None: ...

    def send(self, message: list[int]) -> None:
        """Raw bytes as they are (clock, Start/Stop, Song Position); not counted as notes."""

    def panic(self, channels: set[int] | None = None) -> None:
        """Release every sounding note, then sustain off and all-notes-off on *channels* and every channel used."""

    def refresh(self) -> None:
        """At a bar line (from the player's thread): send again the note-off of every key released since the last
        refresh that is not sounding now, for a receiver that was away when it was sent. Cheap, MIDI only."""

    def health(self) -> PortHealth:
        """Whether the port reaches its backend now (read by the daemon's main loop; never blocks)."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class PortHealth:
    """A port's state for the log and the OSC ``/status`` (stage ``midi``).

    *changes* counts the times *ok* flipped since the port opened, so a watcher that looks now and
    then sees a loss and return that happened between two looks; *text* is one line saying the
    state now (and, once back, for how long the port was gone and what was dropped meanwhile).
    """

    ok: bool
    text: str
    changes: int = 0
    dropped: int = 0  # messages not sent because the port was down, since it opened


class BasePort(ABC):
    """The note bookkeeping every port needs, written once; a subclass only puts bytes on its wire.

    It remembers which notes sound, so that a repeated pitch is retriggered and ends with its
    last note-off, and a panic or close releases everything. Each call holds the lock while it
    writes, so two threads never interleave a retrigger's two messages or a panic.
    """

    description: str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sounding: Counter[tuple[int, int]] = Counter()  # (channel, pitch) → note-ons not yet ended
        self._channels_used: set[int] = set()  # channels with notes since the start: a panic clears them all
        # The wire's view, kept from the bytes that leave (through a tee's raw sends too), not from the calls:
        self._emitted = 0  # messages put on the wire so far: a mark in its history
        self._wire_on: set[tuple[int, int]] = set()   # keys whose last message was a note-on
        self._released_at: dict[tuple[int, int], int] = {}  # key → the mark of its last release (≤ 16 × 128 keys)
        self._released: set[tuple[int, int]] = set()  # keys released since the last refresh
        self._closed = False  # after close(), nothing more goes on the wire

    @abstractmethod
    def _write(self, message: list[int]) -> None:
        """Put one message on the wire (called with the lock held)."""

    @abstractmethod
    def _close(self) -> None:
        """Let go of the wire (called with the lock held, after the closing panic)."""

    def _emit(self, message: list[int]) -> None:
        """Put one message on the wire and keep the wire's view of the notes (called with the lock held)."""
        if self._closed:
            return
        self._emitted += 1
        status = message[0] if message else 0
        kind, channel = status & KIND_MASK, status & CHANNEL_MASK
        if kind in (NOTE_ON, NOTE_OFF) and len(message) >= 3:
            key = (channel, message[1])
            if kind == NOTE_ON and message[2] > 0:
                self._wire_on.add(key)
            else:
                self._wire_on.discard(key)
                self._released.add(key)
                self._released_at[key] = self._emitted
        elif kind == CONTROL_CHANGE and len(message) >= 3 and message[1] in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            ended = {key for key in self._wire_on if key[0] == channel}
            self._wire_on -= ended
            self._released |= ended
            self._released_at.update(dict.fromkeys(ended, self._emitted))
        self._write(message)

    def at(self, t: float | None) -> None:
        """What the calling thread sends next is meant for clock time *t* (None: now). A port that can place
        a message at its time within a period (JACK-native) uses it; the others send at once, as always."""

    def mark(self) -> int:
        """A point in the port's history, for :meth:`heal`'s *before*."""
        with self._lock:
            return self._emitted

    def send(self, message: list[int]) -> None:
        with self._lock:
            self._emit(message)

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        with self._lock:
            if self._sounding[(channel, pitch)]:
                # Retrigger: some synths give every note-on its own voice, and one
                # note-off would then leave the first voice hanging.
                self._emit([NOTE_OFF | channel, pitch, 0])
            self._emit([NOTE_ON | channel, pitch, max(1, min(127, velocity))])  # velocity 0 would mean note-off
            self._sounding[(channel, pitch)] += 1
            self._channels_used.add(channel)

    def note_off(self, channel: int, pitch: int) -> None:
        with self._lock:
            if self._sounding[(channel, pitch)] <= 0:
                return  # already released by a panic
            self._sounding[(channel, pitch)] -= 1
            # A repeated pitch still held by an earlier note-on keeps sounding until its last off.
            if self._sounding[(channel, pitch)] == 0:
                del self._sounding[(channel, pitch)]
                self._emit([NOTE_OFF | channel, pitch, 0])

    def control_change(self, channel: int, control: int, value: int) -> None:
        self.send([CONTROL_CHANGE | channel, control, max(0, min(127, value))])

    def program_change(self, channel: int, program: int) -> None:
        self.send([PROGRAM_CHANGE | channel, program])

    def panic(self, channels: set[int] | None = None) -> None:
        with self._lock:
            self._panic_locked(channels)

    def _panic_locked(self, channels: set[int] | None = None) -> None:
        for channel, pitch in list(self._sounding):
            self._emit([NOTE_OFF | channel, pitch, 0])
        self._sounding.clear()
        for channel in sorted((channels or set()) | self._channels_used):
            self._emit([CONTROL_CHANGE | channel, SUSTAIN, 0])
            self._emit([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])

    def refresh(self) -> None:
        """The note-offs released since the last refresh, again, for every key that is not sounding now.

        A receiver that was away (reconnecting) when a note-off went out gets it at the next bar line,
        so no note hangs longer than its written length plus a bar. A key struck again since sounds
        on the wire and is left alone: a refresh never cuts a note.
        """
        with self._lock:
            self._repeat_releases_locked()

    def _repeat_releases_locked(self) -> None:
        for channel, pitch in sorted(self._released - self._wire_on):
            self._write([NOTE_OFF | channel, pitch, 0])
        self._released.clear()

    def heal(self, before: int | None = None) -> int:
        """For a receiver that just (re)connected: a note-off for every key played that is not sounding now
        (with *before*, a :meth:`mark`: only keys last released before it, which the receiver may have missed).

        What it holds from before it went away is released at once, and nothing that sounds is cut.
        Returns the number of messages sent.
        """
        with self._lock:
            return self._heal_locked(before)

    def _heal_locked(self, before: int | None = None) -> int:
        keys = sorted(key for key, at in self._released_at.items()
                      if key not in self._wire_on and (before is None or at < before))
        if len(keys) > HEAL_ALL_NOTES_OFF_OVER:  # more than any show plays: one message per channel instead
            quiet = sorted({channel for channel, _ in keys} - {channel for channel, _ in self._wire_on})
            for channel in quiet:
                self._write([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])
            keys = [key for key in keys if key[0] not in quiet]
            sent = len(quiet)
        else:
            sent = 0
        for channel, pitch in keys:
            self._write([NOTE_OFF | channel, pitch, 0])
        return sent + len(keys)

    def health(self) -> PortHealth:
        return PortHealth(True, f"{self.description} is open")

    def close(self) -> None:
        """The closing panic and the letting go under one hold of the lock, and nothing on the wire after:
        a thread still sending (a forced shutdown does not wait for the player) cannot strike a note between
        the panic and the close and leave it sounding.

        The note-offs of the bar so far go out once more after the panic, in a later JACK cycle: a panic (the
        player's, or in a forced stop this one) may reach a receiver that was late for its cycle as copies of its
        first message
        (JACK2 clears a port's buffer for the next cycle while a late reader still walks it; RtMidi's reader then
        repeats the last event it could read), and a synth that ignores all-notes-off would keep those keys."""
        with self._lock:
            self._panic_locked()
            self._settle_locked()
            self._repeat_releases_locked()
            self._close()
            self._closed = True

    def _settle_locked(self) -> None:
        """Between the closing panic and its repeat (lock held): a port whose messages leave in cycles (JACK) waits
        for the next one, so that the repeat reaches a reader that was late for the panic's cycle."""


@dataclass(frozen=True)
class Sent:
    """One message a :class:`FakePort` was sent: its clock's time (seconds) and its bytes."""

    time: float
    message: tuple[int, ...]

    @property
    def kind(self) -> int:
        return self.message[0] & KIND_MASK

    @property
    def channel(self) -> int:
        return self.message[0] & CHANNEL_MASK


class FakePort(BasePort):
    """A port that keeps every message it is sent, with the time from *now*, instead of sending it."""

    def __init__(self, now: Callable[[], float] = time.monotonic, description: str = "fake port") -> None:
        super().__init__()
        self.now = now
        self.description = description
        self.closed = False
        self._sent: list[Sent] = []

    def _write(self, message: list[int]) -> None:
        self._sent.append(Sent(self.now(), tuple(message)))

    def _close(self) -> None:
        self.closed = True

    def snapshot(self) -> list[Sent]:
        """Everything sent so far, in order (a copy: safe while other threads keep sending)."""
        with self._lock:
            return list(self._sent)

    def messages(self) -> list[tuple[int, ...]]:
        return [sent.message for sent in self.snapshot()]

    def notes_on(self) -> list[tuple[int, int, int]]:
        """(channel, pitch, velocity) of every note-on, in order."""
        return [(s.channel, s.message[1], s.message[2]) for s in self.snapshot() if s.kind == NOTE_ON]

    def sounding(self) -> set[tuple[int, int]]:
        """(channel, pitch) of the notes a synth would still play: struck, and not ended since.

        Read from the messages, not from the bookkeeping, so a test of it checks the bytes.
        """
        held: set[tuple[int, int]] = set()
        for sent in self.snapshot():
            if sent.kind == NOTE_ON and sent.message[2] > 0:
                held.add((sent.channel, sent.message[1]))
            elif sent.kind in (NOTE_ON, NOTE_OFF):
                held.discard((sent.channel, sent.message[1]))
            elif sent.kind == CONTROL_CHANGE and sent.message[1] == ALL_NOTES_OFF:
                held = {note for note in held if note[0] != sent.channel}
        return held


class Listener(Protocol):
    def message(self, message: list[int], t: float) -> None:
        """One channel message as it left, at *t* (seconds on the Tee's clock); must not raise."""


class Tee(BasePort):
    """Plays on *primary* and copies each channel message to every listener (the recorder).

    The bookkeeping runs here and the primary gets only raw bytes, so listeners see exactly
    what the primary sent: retriggers and a panic's note-offs included. Clock and other system
    bytes are not copied: they keep time, they are not music. Closing the tee closes the
    primary, not the listeners.
    """

    def __init__(self, primary: MidiPort, *listeners: Listener, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.primary = primary
        self.listeners = listeners
        self.now = now
        self.description = primary.description

    def _write(self, message: list[int]) -> None:
        self.primary.send(message)
        if message[0] < SYSTEM:
            t = self.now()
            for listener in self.listeners:
                listener.message(message, t)

    def refresh(self) -> None:
        """The primary's refresh: it keeps the wire's view of what it sent, and its repeats are no music to record."""
        with self._lock:
            self._released.clear()  # the tee's own view is not the one that refreshes
        self.primary.refresh()

    def _repeat_releases_locked(self) -> None:
        self._released.clear()  # the primary repeats them on the wire as it closes; no music to record

    def heal(self, before: int | None = None) -> int:
        return self.primary.heal(before) if isinstance(self.primary, BasePort) else 0

    def at(self, t: float | None) -> None:
        if isinstance(self.primary, BasePort):
            self.primary.at(t)

    @property
    def lead(self) -> float:
        """The primary's: how early a timed message should come (a frame-exact port's cycle; else 0)."""
        return float(getattr(self.primary, "lead", 0.0))

    def health(self) -> PortHealth:
        return self.primary.health()

    def _close(self) -> None:
        self.primary.close()
