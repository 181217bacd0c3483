"""MIDI clock in (``--clock-in PORT``): a DAW's timing clock, Start/Continue/Stop and Song Position.

The port's messages wait in python-rtmidi's own queue, and a reader thread of this module takes them from
it (:data:`READ_PAUSE` apart when it is empty) and hands each to a *sink* with the time it arrived
(:class:`~emobridge.live.clock.MasterClock` is the real one, in the live room: this module knows nothing of
beats). No note, no OSC, no log happens here. Not python-rtmidi's callback: on JACK it runs in JACK's
process thread, which must then wait for the interpreter, and a client late for its cycle loses that cycle's
messages: a lost pulse left the music a pulse off the DAW's beats until its next Start (70 of 2,000 messages
lost beside two busy Python threads; none through the queue).

When a pulse arrived is taken from rtmidi's delta times (stamped by the backend as the message came in,
free of the reader's wake-up delay and of a busy interpreter), laid onto the clock's seconds by the
smallest gap between a reading's clock time and the running sum of deltas over the last
:data:`OFFSET_WINDOW` messages: a reading can only be late, never early.

On JACK a message is stamped when its cycle is processed, at about the cycle's first frame, which is
where a DAW that sends through python-rtmidi or a JACK bridge puts it: every JACK client sees the pulse
there, so the grid is left there (nothing is taken off or added). Played through the JACK-native port
(``--midi-backend jack-native``), which puts each note at its frame, the notes land on those frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import rtmidi

from ..errors import MidiPortError
from ..stderr import quiet_stderr
from .midi import BACKENDS, _auto_order, _first_line, backend_hint, compiled_backends
from .ports import CONTINUE, SONG_POSITION, START, STOP, TIMING_CLOCK

log = logging.getLogger(__name__)

OFFSET_WINDOW = 96  # messages the arrival-time offset is the smallest over (4 beats of clock)
READ_PAUSE = 0.001  # seconds between looks at an empty queue (a pulse is 21 ms at 120 BPM)
QUEUE_SIZE = 4096  # messages rtmidi keeps until the reader comes (its default, 100, is 2 s of clock)


def read_queue(client: rtmidi.MidiIn, handle: Callable[[tuple[list[int], float]], None],
               closing: threading.Event) -> None:
    """A reader thread: every (message, delta) from *client*'s queue to *handle*, in order, until *closing*."""
    while not closing.is_set():
        try:
            event = client.get_message()
        except Exception as error:  # the port went away with its server: keep looking until closed
            log.debug("MIDI in: %s", error)
            event = None
        if event is None:
            closing.wait(READ_PAUSE)
        else:
            handle(event)


class ClockSink(Protocol):
    """What a MIDI clock drives (live.clock.MasterClock)."""

    def pulse(self, t: float) -> None: ...
    def start(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def song_position(self, sixteenths: int) -> None: ...


class ArrivalTimes:
    """Arrival times on *now*'s seconds from a stream of delta times (seconds since the message before)."""

    def __init__(self, now: Callable[[], float] = time.monotonic, window: int = OFFSET_WINDOW):
        self.now = now
        self._sum: float | None = None  # running sum of deltas (None: no message yet)
        self._offsets: deque[float] = deque(maxlen=window)

    def arrived(self, delta: float, called_at: float | None = None) -> float:
        """The time the message whose *delta* this is came in (*called_at*: when the callback ran; default now)."""
        called_at = self.now() if called_at is None else called_at
        self._sum = 0.0 if self._sum is None else self._sum + max(0.0, delta)
        self._offsets.append(called_at - self._sum)
        return self._sum + min(self._offsets)


class MidiClockIn:
    """Reads MIDI clock from the output port of another program whose name is (or contains) *port*."""

    def __init__(self, port: str, sink: ClockSink, backend: str = "auto", client_name: str = "emobridge-clock",
                 now: Callable[[], float] = time.monotonic):
        self.sink = sink
        self.times = ArrivalTimes(now)
        self.pulses = 0  # timing clocks seen (for a test, or a status line)
        self.client, self.backend, self.port_name = self._open(port, backend, client_name)
        self.description = f"MIDI clock from '{self.port_name}' ({self.backend})"
        self._closing = threading.Event()
        self._reader = threading.Thread(target=read_queue, args=(self.client, self._on_message, self._closing),
                                        name="clock-in", daemon=True)
        self._reader.start()

    def _open(self, wanted: str, backend: str, client_name: str) -> tuple[rtmidi.MidiIn, str, str]:
        errors = []
        for name in (_auto_order() if backend == "auto" else [backend]):
            if name not in compiled_backends():
                errors.append(f"{name}: not built into python-rtmidi")
                continue
            try:
                with quiet_stderr():
                    client = rtmidi.MidiIn(BACKENDS[name], name=client_name, queue_size_limit=QUEUE_SIZE)
            except rtmidi.RtMidiError as error:
                errors.append(f"{name}: {_first_line(error)}")
                continue
            ports = client.get_ports()
            matches = ([i for i, p in enumerate(ports) if p == wanted]
                       or [i for i, p in enumerate(ports) if wanted.lower() in p.lower()])
            if not matches:
                client.delete()
                listed = ", ".join(repr(p) for p in ports) or "none"
                errors.append(f"{name}: no MIDI output port {wanted!r} (there are {listed})")
                continue
            client.ignore_types(sysex=True, timing=False, active_sense=True)  # timing=False: let F8 through
            client.open_port(matches[0], name="clock-in")
            return client, name, ports[matches[0]]
        raise MidiPortError(f"--clock-in {wanted!r}: {'; '.join(errors) or backend_hint()}; "
                            "run 'emobridge ports' to see the MIDI sources")

    def _on_message(self, event: tuple[list[int], float]) -> None:
        """Stamp the message and hand it on; never raises (a malformed message must not end the clock input)."""
        try:
            message, delta = event
            t = self.times.arrived(delta)
            self.handle(message, t)
        except Exception as error:
            log.debug("MIDI clock in: %s", error)

    def handle(self, message: list[int], t: float) -> None:
        """One incoming message that arrived at *t* (the parsing, apart from rtmidi for tests)."""
        if not message:
            return
        status = message[0]
        if status == TIMING_CLOCK:
            self.pulses += 1
            self.sink.pulse(t)
        elif status == START:
            self.sink.start()
        elif status == CONTINUE:
            self.sink.resume()
        elif status == STOP:
            self.sink.stop()
        elif status == SONG_POSITION and len(message) >= 3:
            self.sink.song_position((message[1] & 0x7F) | (message[2] & 0x7F) << 7)

    def close(self) -> None:
        self._closing.set()
        self._reader.join(timeout=1.0)
        client, self.client = self.client, None
        if client is not None:
            client.close_port()
            client.delete()
