"""A JACK-native MIDI output (``--midi-backend jack-native``; optional: ``pip install 'emobridge[jack]'``).

python-rtmidi's JACK port hands every message to the next process cycle at frame 0, so with a
1,024-frame period a note can be up to 21 ms late and the lateness wanders. This port places each
message at the frame its intended time falls on. The player says the intended time of what it sends
(:meth:`at`, its deadline) and sends it :attr:`lead` (one period) early, so that it is waiting when
JACK processes the cycle it falls in. A message sent without a time (a CC, a panic) goes out at the
start of the next cycle, as with python-rtmidi.

The process callback (JACK's thread) only moves what is due this cycle from a heap into the port's
buffer. The bookkeeping of notes (retrigger, panic, refresh) is :class:`~.ports.BasePort`'s. The
server watch of :class:`~.midi.MidiOut` (JACK going away and coming back) is not here: use the
default ``jack`` backend where the JACK server may restart during a show.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any

from ..errors import MidiPortError
from .ports import BasePort

FRAME_WRAP = 1 << 32  # JACK's frame counter is 32 bits: it wraps after a day at 48 kHz
LEAD_MARGIN = 0.010  # seconds beyond a period that a timed message comes early: the sender may wake up late (busy CPU)


def frame_difference(a: int, b: int) -> int:
    """a - b in frames, across a wrap of the 32-bit counter."""
    return (a - b + FRAME_WRAP // 2) % FRAME_WRAP - FRAME_WRAP // 2


class JackMidiOut(BasePort):
    """A JACK client 'port_name' with one MIDI output 'out', frame-exact (see the module)."""

    def __init__(self, port_name: str = "emobridge", connect: str | None = None, jack_module: Any = None):
        super().__init__()
        jack = jack_module or _import_jack()
        try:
            self.client = jack.Client(port_name, no_start_server=True)
        except jack.JackError as error:
            raise MidiPortError(f"JACK-native MIDI: no JACK server to join ({error}): start JACK first") from None
        self.port = self.client.midi_outports.register("out")
        self.rate = self.client.samplerate
        self.period = self.client.blocksize
        self._heap: list[tuple[int, int, bytes, bool]] = []  # (frame, order sent, message, timed)
        self._next_cycle = 0  # the first frame of the cycle JACK processes next (written by the callback)
        self._order = itertools.count()
        self._heap_lock = threading.Lock()  # the senders and JACK's process thread
        self._stamp = threading.local()  # the intended time (clock seconds) of what this thread sends next
        # seconds early a timed message must come to be placed at its frame: a deadline early in a cycle must be
        # in the heap when JACK processes that cycle, which it does at about the cycle's first frame
        self.lead = self.period / self.rate + LEAD_MARGIN
        self.late = 0  # timed messages that reached the process callback after their cycle (placed at once instead)
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.description = f"JACK port '{port_name}:out' (jack-native, frame-exact)"
        if connect:
            try:
                self.client.connect(self.port, connect)
            except jack.JackError as error:
                self.client.deactivate()
                self.client.close()
                raise MidiPortError(f"JACK-native MIDI: cannot connect to {connect!r} ({error})") from None

    def at(self, t: float | None) -> None:
        """What this thread sends next is meant for clock time *t* (time.monotonic seconds); None: now."""
        self._stamp.at = t

    def _write(self, message: list[int]) -> None:
        intended = getattr(self._stamp, "at", None)
        if intended is None:
            frame = None  # at once: the next cycle's first frame
        else:  # JACK's estimate of the frame now (for a thread outside the callback), moved on to the deadline
            frame = (self.client.frame_time + round((intended - time.monotonic()) * self.rate)) % FRAME_WRAP
        with self._heap_lock:
            if frame is None:
                frame = self._next_cycle  # sorts before anything timed later; placed at the cycle's start
            heapq.heappush(self._heap, (frame, next(self._order), bytes(message), intended is not None))

    def _process(self, frames: int) -> None:
        """JACK's thread, every cycle: the messages meant for the period before this one, at their frames."""
        self.port.clear_buffer()
        start = self.client.last_frame_time
        last_offset = 0
        with self._heap_lock:
            self._next_cycle = (start + frames) % FRAME_WRAP
            while self._heap and frame_difference(self._heap[0][0], start) < frames:
                frame, _, message, timed = heapq.heappop(self._heap)
                offset = frame_difference(frame, start)
                if offset < 0 and timed:
                    self.late += 1
                offset = min(frames - 1, max(last_offset, offset))  # JACK wants them in order, inside the buffer
                self.port.write_midi_event(offset, message)
                last_offset = offset

    def _close(self) -> None:
        time.sleep(2 * self.period / self.rate)  # the closing panic leaves within the next cycles
        self.client.deactivate()
        self.client.close()


def _import_jack() -> Any:
    try:
        import jack  # the JACK-Client package
    except (ImportError, OSError) as error:
        raise MidiPortError(f"--midi-backend jack-native needs the JACK-Client package: pip install 'emobridge[jack]' "
                            f"({error})") from None
    return jack
