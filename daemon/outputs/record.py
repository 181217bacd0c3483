"""``--record DIR``: the session as a Standard MIDI File and a JSON-lines log of the emotion stream.

Two files per session, named by the local start time:

``session-<YYYYmmdd-HHMMSS>.mid``
    SMF type 0 (one track, every channel), written *incrementally*: mido lays out the file
    and each flush's events; the flush moves them over the old end-of-track marker and
    patches the track length, so the file on disk is a complete, readable MIDI file after
    every flush. Tempo changes sent with
    :meth:`Recorder.tempo` become set-tempo events, so a DAW that imports the file sees the
    bars where they were played; every event sits on the tick nearest its real time.
``session-<YYYYmmdd-HHMMSS>.jsonl``
    One JSON object per emotion state: ``t`` (seconds since the session started, the MIDI
    file's time line), ``time`` (the state's own monotonic time), ``wall`` (Unix time),
    ``label``, ``confidence``, ``valence``, ``arousal``, ``face`` and ``probs`` (class → p).

A background thread flushes both files every ``flush_interval`` seconds (0.5 by default)
and fsyncs them, so a crash or ``kill -9`` loses at most about half a second. Every
method is thread-safe: the player thread records notes while the perception thread
records emotion states and CCs. Recording never raises into the music: a full disk is
logged once and the recorder stops writing.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import mido

from ..labels import EMOTIONS
from ..errors import RecorderError
from .ports import NOTE_OFF, SYSTEM

log = logging.getLogger(__name__)

DEFAULT_TEMPO_US = 500_000  # 120 BPM until the first tempo() call
MAX_TEMPO_US = 2**24 - 1    # a set-tempo event holds its microseconds per beat in 3 bytes
# Byte offsets in a one-track file: the MThd chunk takes 14, then the track's 'MTrk' tag (4) and its length
# (4, big-endian), then its events; the last event is the end-of-track marker (delta 0, FF 2F 00: 4 bytes).
TRACK_LENGTH_AT, TRACK_EVENTS_AT, END_OF_TRACK_SIZE = 18, 22, 4


@dataclass(order=True)
class _Event:
    t: float
    seq: int
    message: mido.Message | mido.MetaMessage = field(compare=False)  # its time (the delta) is set when written


class _TrackFile:
    """A type-0 Standard MIDI File that grows on disk and is whole after every append.

    mido lays out every byte: each append saves the new events as a one-track file of their own,
    and their track (with the end-of-track that closes it) goes over the old end-of-track marker;
    then the track length is patched.
    """

    def __init__(self, handle: BinaryIO, ticks_per_beat: int, first: list[mido.MetaMessage]):
        self.handle = handle
        self.ticks_per_beat = ticks_per_beat
        data = self._layout(first)
        handle.write(data)
        handle.flush()
        self.size = len(data)

    def _layout(self, messages: list[mido.Message | mido.MetaMessage]) -> bytes:
        out = io.BytesIO()
        mido.MidiFile(type=0, ticks_per_beat=self.ticks_per_beat, tracks=[mido.MidiTrack(messages)]).save(file=out)
        return out.getvalue()

    def append(self, messages: list[mido.Message | mido.MetaMessage]) -> None:
        """Messages whose times are delta ticks, the first one's from the last event already in the file."""
        events = self._layout(messages)[TRACK_EVENTS_AT:]
        self.handle.seek(self.size - END_OF_TRACK_SIZE)
        self.handle.write(events)
        self.size += len(events) - END_OF_TRACK_SIZE
        self.handle.seek(TRACK_LENGTH_AT)
        self.handle.write((self.size - TRACK_EVENTS_AT).to_bytes(4, "big"))
        self.handle.flush()


class _TickMap:
    """Seconds → ticks the way a reader of the file computes them back.

    Each segment starts at the (integer) tick of a tempo event and at the time a reader
    assigns to that tick, so rounding never accumulates: every event is placed on the
    tick nearest its true time, however many tempo changes came before.
    """

    def __init__(self, ticks_per_beat: int):
        self.ticks_per_beat = ticks_per_beat
        self.tick = 0          # tick of the current segment's start
        self.seconds = 0.0     # a reader's time of that tick
        self.tempo_us = DEFAULT_TEMPO_US

    def ticks(self, seconds: float) -> int:
        return max(self.tick, self.tick + round((seconds - self.seconds) * self.ticks_per_beat * 1e6 / self.tempo_us))

    def set_tempo(self, tick: int, tempo_us: int) -> None:
        self.seconds += (tick - self.tick) * self.tempo_us / (1e6 * self.ticks_per_beat)
        self.tick, self.tempo_us = tick, tempo_us


def _session_stem(folder: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem, n = f"session-{stamp}", 2
    while (folder / f"{stem}.mid").exists() or (folder / f"{stem}.jsonl").exists():
        stem, n = f"session-{stamp}-{n}", n + 1
    return stem


class Recorder:
    """Records MIDI messages and emotion states of one session into *folder*.

    Times ``t`` are monotonic seconds (``time.monotonic()``, the clock of the player and of
    :class:`~emobridge.perception.smoothing.EmotionState`); the session's time 0 is *start* (default:
    when the recorder was created). Messages may arrive slightly out of order from two
    threads; each flush writes them sorted by time, and anything older than what a previous
    flush wrote goes on that flush's last tick.
    """

    def __init__(self, folder: str | Path, ticks_per_beat: int = 480, *, start: float | None = None,
                 flush_interval: float = 0.5, fsync: bool = True):
        if not 24 <= ticks_per_beat <= 0x7FFF:
            raise ValueError(f"ticks_per_beat must be 24..32767, got {ticks_per_beat}")
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stem = _session_stem(self.folder)
            self.midi_path = self.folder / f"{stem}.mid"
            self.jsonl_path = self.folder / f"{stem}.jsonl"
            self._midi: BinaryIO = open(self.midi_path, "w+b")
            self._jsonl: TextIO = open(self.jsonl_path, "w", encoding="utf-8")
        except OSError as error:
            raise RecorderError(f"cannot record into {self.folder}: {error.strerror or error}") from None
        self.ticks_per_beat = ticks_per_beat
        self.start = time.monotonic() if start is None else float(start)
        self.wall_start = time.time()
        self.flush_interval = flush_interval
        self.fsync = fsync
        self._lock = threading.Lock()        # pending buffers (callers hold it for microseconds)
        self._write_lock = threading.Lock()  # the files
        self._pending: list[_Event] = []
        self._lines: list[str] = []
        self._seq = 0
        self._sounding: dict[tuple[int, int], int] = {}
        self._map = _TickMap(ticks_per_beat)
        self._written_tick = 0
        self._failed = False
        self._closed = False
        self.events_written = 0
        self.states_written = 0
        self._track = _TrackFile(self._midi, ticks_per_beat, [mido.MetaMessage("set_tempo", tempo=DEFAULT_TEMPO_US)])
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="recorder", daemon=True)
        self._flusher.start()

    # --- what the session sends -------------------------------------------------
    def note_on(self, channel: int, pitch: int, velocity: int, t: float | None = None) -> None:
        if velocity <= 0:
            self.note_off(channel, pitch, t)
            return
        self._add(t, mido.Message("note_on", channel=channel & 0x0F, note=pitch & 0x7F, velocity=min(127, velocity)),
                  sounding=(channel, pitch, +1))

    def note_off(self, channel: int, pitch: int, t: float | None = None) -> None:
        self._add(t, mido.Message("note_off", channel=channel & 0x0F, note=pitch & 0x7F), sounding=(channel, pitch, -1))

    def control_change(self, channel: int, control: int, value: int, t: float | None = None) -> None:
        self._add(t, mido.Message("control_change", channel=channel & 0x0F, control=control & 0x7F,
                                  value=max(0, min(127, value))))

    def program_change(self, channel: int, program: int, t: float | None = None) -> None:
        self._add(t, mido.Message("program_change", channel=channel & 0x0F, program=program & 0x7F))

    def message(self, message: list[int] | bytes, t: float | None = None) -> None:
        """Any raw channel message as a port sent it (what a :class:`~.ports.Tee` copies to its listeners)."""
        if not message or not NOTE_OFF <= message[0] < SYSTEM:
            return  # system messages have no place in a type-0 track here
        try:
            parsed = mido.Message.from_bytes(message)
        except ValueError:
            return  # not one whole message: nothing a reader of the file could play
        if parsed.type == "note_on" and parsed.velocity > 0:
            self.note_on(parsed.channel, parsed.note, parsed.velocity, t)
        elif parsed.type in ("note_on", "note_off"):
            self.note_off(parsed.channel, parsed.note, t)
        else:
            self._add(t, parsed)

    def tempo(self, bpm: float, t: float | None = None) -> None:
        """The tempo from *t* on (call it when the music's tempo changes, at the beat it changes)."""
        if not 1.0 <= bpm <= 1000.0:
            return
        self._add(t, mido.MetaMessage("set_tempo", tempo=min(MAX_TEMPO_US, mido.bpm2tempo(bpm))))

    def emotion(self, state: Any) -> None:
        """One emotion state (:class:`~emobridge.perception.smoothing.EmotionState`): a line of the JSON log."""
        record = {
            "t": round(float(state.time) - self.start, 4),
            "time": round(float(state.time), 4),
            "wall": round(self.wall_start + float(state.time) - self.start, 3),
            "label": state.label,
            "confidence": round(float(state.confidence), 4),
            "valence": round(float(state.valence), 4),
            "arousal": round(float(state.arousal), 4),
            "face": bool(state.face),
            "probs": {name: round(float(p), 4) for name, p in zip(EMOTIONS, state.probs)},
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._closed:
                self._lines.append(line)

    # --- buffering and writing ---------------------------------------------------
    def _add(self, t: float | None, message: mido.Message | mido.MetaMessage,
             sounding: tuple[int, int, int] | None = None) -> None:
        when = time.monotonic() if t is None else float(t)
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            self._pending.append(_Event(when, self._seq, message))
            if sounding is not None:
                channel, pitch, step = sounding
                key = (channel, pitch)
                count = self._sounding.get(key, 0) + step
                if count > 0:
                    self._sounding[key] = count
                else:
                    self._sounding.pop(key, None)

    def flush(self) -> None:
        """Write what was recorded so far (the flusher thread does this every ``flush_interval``)."""
        with self._lock:
            events, self._pending = self._pending, []
            lines, self._lines = self._lines, []
        with self._write_lock:
            if self._failed or self._midi.closed:
                return
            try:
                self._write_events(events)
                if lines:
                    self._jsonl.writelines(lines)
                    self.states_written += len(lines)
                self._jsonl.flush()
                if self.fsync and (events or lines):
                    os.fsync(self._midi.fileno())
                    os.fsync(self._jsonl.fileno())
            except (OSError, ValueError) as error:
                self._failed = True
                log.error("recording stopped: cannot write %s (%s); the music goes on", self.folder, error)

    def _write_events(self, events: list[_Event]) -> None:
        if not events:
            return
        events.sort()
        messages = []
        for event in events:
            tick = max(self._written_tick, self._map.ticks(event.t - self.start))
            messages.append(event.message.copy(time=tick - self._written_tick))
            self._written_tick = tick
            if event.message.type == "set_tempo":
                self._map.set_tempo(tick, event.message.tempo)
        self._track.append(messages)
        self.events_written += len(events)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def close(self, t: float | None = None) -> None:
        """Release notes still sounding in the recording (at *t*), write everything and close the files."""
        with self._lock:
            if self._closed:
                return
        for (channel, pitch), count in list(self._sounding.items()):
            for _ in range(count):
                self.note_off(channel, pitch, t)
        with self._lock:
            self._closed = True
        self._stop.set()
        if threading.current_thread() is not self._flusher:
            self._flusher.join(timeout=5)
        self.flush()
        with self._write_lock:
            for handle in (self._midi, self._jsonl):
                try:
                    handle.close()
                except OSError:
                    pass

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.midi_path} and {self.jsonl_path.name}"
