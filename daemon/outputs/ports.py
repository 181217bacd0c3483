"""MIDI ports behind one small interface: the wire's numbers, the note bookkeeping, a fake and a tee.

Whatever sends MIDI (the player, the daemon's CCs, ``emobridge learn``) talks to a
:class:`MidiPort`. :class:`~emobridge.outputs.midi.MidiOut` is the real one (python-rtmidi),
:class:`FakePort` keeps what it is sent (for tests), and :class:`Tee` plays on a port while
copying its channel messages to listeners such as the recorder. The real and the fake port
share :class:`BasePort`, so the tests of the fake prove the bookkeeping of the real one.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Status bytes. A channel message's first byte is its kind | channel (0-15); from SYSTEM on there is no channel.
NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE = 0x80, 0x90, 0xB0, 0xC0
SYSTEM = 0xF0
SONG_POSITION = 0xF2  # then the position in sixteenth notes: 7 bits low, 7 bits high
TIMING_CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC  # realtime: one byte each
PULSES_PER_BEAT = 24  # timing clock pulses per quarter note
KIND_MASK, CHANNEL_MASK = 0xF0, 0x0F  # the two halves of a channel message's status byte

# Controller numbers (the second byte of a control change)
BANK_SELECT_MSB, BANK_SELECT_LSB, SUSTAIN = 0, 32, 64
ALL_NOTES_OFF = 123
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

    def close(self) -> None: ...


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

    @abstractmethod
    def _write(self, message: list[int]) -> None:
        """Put one message on the wire (called with the lock held)."""

    @abstractmethod
    def _close(self) -> None:
        """Let go of the wire (called with the lock held, after the closing panic)."""

    def send(self, message: list[int]) -> None:
        with self._lock:
            self._write(message)

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        with self._lock:
            if self._sounding[(channel, pitch)]:
                # Retrigger: some synths give every note-on its own voice, and one
                # note-off would then leave the first voice hanging.
                self._write([NOTE_OFF | channel, pitch, 0])
            self._write([NOTE_ON | channel, pitch, max(1, min(127, velocity))])  # velocity 0 would mean note-off
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
                self._write([NOTE_OFF | channel, pitch, 0])

    def control_change(self, channel: int, control: int, value: int) -> None:
        self.send([CONTROL_CHANGE | channel, control, max(0, min(127, value))])

    def program_change(self, channel: int, program: int) -> None:
        self.send([PROGRAM_CHANGE | channel, program])

    def panic(self, channels: set[int] | None = None) -> None:
        with self._lock:
            for channel, pitch in list(self._sounding):
                self._write([NOTE_OFF | channel, pitch, 0])
            self._sounding.clear()
            for channel in sorted((channels or set()) | self._channels_used):
                self._write([CONTROL_CHANGE | channel, SUSTAIN, 0])
                self._write([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])

    def close(self) -> None:
        self.panic()
        with self._lock:
            self._close()


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

    def _close(self) -> None:
        self.primary.close()
