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
records emotion states and CCs.

A take is never lost silently, and recording never raises into the music. At every flush
(on the recorder's own thread, which alone logs):

- a write that fails (a full disk: ENOSPC, or any OSError, at the write or the fsync) leaves the
  files as the last good flush left them (whole, readable) and keeps what it could not write in
  memory, up to :data:`MAX_BACKLOG` events and lines, to write at the next flush that can; one line
  says the recording stalled and one that it goes on;
- files that are no longer where they were (the folder deleted or moved) are noticed: the folder
  is made again and the files written back from the ones still open (a deleted file's data lives on
  while it is open), so nothing is lost; where that cannot be, a new part ``…-2.mid``/``.jsonl``
  goes on (every part keeps the session's time line: place them all at the session's start);
- :meth:`Recorder.describe` (the daemon's exit line) says which files hold what and what, if
  anything, was lost and why, and :attr:`Recorder.complete` whether anything was.

A folder that cannot be written at the start (not a folder, no space left) is a one-line
:class:`~emobridge.errors.RecorderError`.
"""

from __future__ import annotations

import copy
import errno
import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
END_OF_TRACK = b"\x00\xff\x2f\x00"  # delta 0, meta end-of-track
MAX_BACKLOG = 100_000  # events (and, apart, log lines) kept in memory while they cannot be written: ~an hour of a show
MIN_FREE_BYTES = 1 << 20  # less free space than this at the start: the disk is full
COPY_CHUNK = 1 << 20


# The file system, in one place (tests make it fail here).
def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _free_bytes(folder: Path) -> int | None:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return stat.f_bavail * stat.f_frsize


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the disk"
    return error.strerror or str(error)


@dataclass(order=True)
class _Event:
    t: float
    seq: int
    message: mido.Message | mido.MetaMessage = field(compare=False)  # its time (the delta) is set when written


class _TrackFile:
    """A type-0 Standard MIDI File that grows on disk and is whole after every append.

    mido lays out every byte: each append saves the new events as a one-track file of their own,
    and their track (with the end-of-track that closes it) goes over the old end-of-track marker;
    then the track length is patched. An append that fails puts the old end back and cuts the file
    to its old size: the file stays as the last good append left it.
    """

    def __init__(self, fd: int, ticks_per_beat: int, first: list[mido.MetaMessage]):
        self.fd = fd
        self.ticks_per_beat = ticks_per_beat
        data = self._layout(first)
        _pwrite(fd, data, 0)
        self.size = len(data)

    def _layout(self, messages: list[mido.Message | mido.MetaMessage]) -> bytes:
        out = io.BytesIO()
        mido.MidiFile(type=0, ticks_per_beat=self.ticks_per_beat, tracks=[mido.MidiTrack(messages)]).save(file=out)
        return out.getvalue()

    def append(self, messages: list[mido.Message | mido.MetaMessage]) -> None:
        """Messages whose times are delta ticks, the first one's from the last event already in the file."""
        events = self._layout(messages)[TRACK_EVENTS_AT:]
        size = self.size + len(events) - END_OF_TRACK_SIZE
        try:
            _pwrite(self.fd, events, self.size - END_OF_TRACK_SIZE)
            _pwrite(self.fd, (size - TRACK_EVENTS_AT).to_bytes(4, "big"), TRACK_LENGTH_AT)
        except OSError:
            self.undo(self.size)
            raise
        self.size = size

    def undo(self, size: int) -> None:
        """Back to *size*, an earlier good append (after a failed write or fsync): overwrites in place, then shrinks."""
        self.size = size
        try:
            _pwrite(self.fd, (size - TRACK_EVENTS_AT).to_bytes(4, "big"), TRACK_LENGTH_AT)
            _pwrite(self.fd, END_OF_TRACK, size - END_OF_TRACK_SIZE)
            os.ftruncate(self.fd, size)
        except OSError:
            pass  # the next good append writes the same bytes again


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
    return _free_stem(folder, f"session-{stamp}")


def _free_stem(folder: Path, base: str) -> str:
    stem, n = base, 2
    while (folder / f"{stem}.mid").exists() or (folder / f"{stem}.jsonl").exists():
        stem, n = f"{base}-{n}", n + 1
    return stem


def _create(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)


def _same_file(path: Path, fd: int) -> bool:
    """Whether *path* still names the open file *fd* (not deleted, moved or replaced)."""
    try:
        there, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def _pread(fd: int, size: int, offset: int) -> bytes:
    return os.pread(fd, size, offset)


class _Unreadable(Exception):
    """The open file cannot be read back (its medium is gone): what it held is lost."""


def _copy(source: int, target: int, size: int) -> None:
    """*size* bytes of the open file *source* into *target*; an OSError is the target's (tried again later)."""
    offset = 0
    while offset < size:
        try:
            chunk = _pread(source, min(COPY_CHUNK, size - offset), offset)
        except OSError as error:
            raise _Unreadable(_reason(error)) from None
        if not chunk:
            raise _Unreadable("the open file ended early")
        _pwrite(target, chunk, offset)
        offset += len(chunk)


@dataclass
class Part:
    """One pair of files of the session, and the span of session time (seconds) they hold."""

    midi_path: Path
    jsonl_path: Path
    start: float
    end: float
    lost: str | None = None  # why its files are gone, when they are

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class Lost:
    """A span of session time (seconds) whose events could not be kept, and why."""

    start: float
    end: float
    why: str


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
        self.ticks_per_beat = ticks_per_beat
        self.start = time.monotonic() if start is None else float(start)
        self.wall_start = time.time()
        self.flush_interval = flush_interval
        self.fsync = fsync
        self._lock = threading.Lock()        # pending buffers (callers hold it for microseconds)
        self._write_lock = threading.Lock()  # the files
        self._pending: list[_Event] = []
        self._lines: list[tuple[float, str]] = []  # (session seconds, JSON line)
        self._seq = 0
        self._sounding: dict[tuple[int, int], int] = {}
        self._map = _TickMap(ticks_per_beat)
        self._written_tick = 0
        self._backlog: list[_Event] = []  # events a flush could not write: the next one tries again
        self._backlog_lines: list[tuple[float, str]] = []
        self._stalled: OSError | None = None  # the write error of the flushes failing now
        self._stalled_since = 0.0
        self._lost_before_stall = 0
        self._unrestorable = ""
        self._closed = False
        self.parts: list[Part] = []
        self.lost: list[Lost] = []
        self.events_written = 0
        self.states_written = 0
        self._midi_fd = self._jsonl_fd = -1
        self._jsonl_size = 0
        self._files_closed = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            free = _free_bytes(self.folder)
            if free is not None and free < MIN_FREE_BYTES:
                raise RecorderError(f"cannot record into {self.folder}: its disk is full ({free // 1024} kB free)")
            self._stem = _session_stem(self.folder)
            self._new_part(self._stem, 0.0)
            if self.fsync:
                _fsync(self._midi_fd)
                _fsync(self._jsonl_fd)
        except RecorderError:
            raise
        except OSError as error:
            self._discard_part()
            raise RecorderError(f"cannot record into {self.folder}: {_reason(error)}") from None
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="recorder", daemon=True)
        self._flusher.start()

    @property
    def midi_path(self) -> Path:
        """The MIDI file being written (the session's only one, unless a part had to be started)."""
        return self.parts[-1].midi_path

    @property
    def jsonl_path(self) -> Path:
        return self.parts[-1].jsonl_path

    @property
    def complete(self) -> bool:
        """Nothing of the session was lost (so far)."""
        return not self.lost and not any(part.lost for part in self.parts) and not self._backlog \
            and not self._backlog_lines

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

    def emotion(self, state: Any, forced: str | None = None) -> None:
        """One emotion state (:class:`~emobridge.perception.smoothing.EmotionState`): a line of the JSON log.

        *forced*: the emotion the music played instead (forced from the control surface); the line then says
        so under ``forced``, so a reader of the take knows which stretches the face did not lead.
        """
        t = float(state.time) - self.start
        record = {
            "t": round(t, 4),
            "time": round(float(state.time), 4),
            "wall": round(self.wall_start + t, 3),
            "label": state.label,
            "confidence": round(float(state.confidence), 4),
            "valence": round(float(state.valence), 4),
            "arousal": round(float(state.arousal), 4),
            "face": bool(state.face),
            "probs": {name: round(float(p), 4) for name, p in zip(EMOTIONS, state.probs)},
        }
        if forced is not None:
            record["forced"] = forced
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._closed:
                self._lines.append((t, line))

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
        """Write what was recorded so far (the flusher thread does this every ``flush_interval``).

        Never raises: a failure keeps what could not be written for the next flush, and says so once.
        """
        with self._lock:
            events, self._pending = self._pending, []
            lines, self._lines = self._lines, []
        with self._write_lock:
            if self._files_closed:
                return
            self._backlog += events
            self._backlog_lines += lines
            self._trim_backlog()
            try:
                self._check_files()
                if self._backlog:
                    self._write_events(self._backlog)
                    self._backlog = []
                if self._backlog_lines:
                    self._write_lines(self._backlog_lines)
                    self._backlog_lines = []
            except OSError as error:
                self._stall(error)
                return
            if self._stalled is not None:
                dropped = sum(lost.end - lost.start for lost in self.lost[self._lost_before_stall:])
                log.warning("recording goes on in %s after %.1f s of failed writes; %s", self.midi_path.name,
                            time.monotonic() - self._stalled_since,
                            f"{dropped:.1f} s of it could not be held and are lost" if dropped else "nothing was lost")
                self._stalled = None

    def _stall(self, error: OSError) -> None:
        if self._stalled is None:
            self._stalled, self._stalled_since = error, time.monotonic()
            self._lost_before_stall = len(self.lost)
            log.error("recording cannot write %s (%s); it keeps the take in memory and tries again every %.1f s; "
                      "the music goes on", self.folder, _reason(error), self.flush_interval)

    def _trim_backlog(self) -> None:
        """Past MAX_BACKLOG, the oldest of what could not be written goes: counted as lost."""
        why = f"{self.folder} could not be written ({_reason(self._stalled)})" if self._stalled else "too much to hold"
        if len(self._backlog) > MAX_BACKLOG:
            self._backlog.sort()
            dropped, self._backlog = self._backlog[:-MAX_BACKLOG], self._backlog[-MAX_BACKLOG:]
            self._note_lost(dropped[0].t - self.start, dropped[-1].t - self.start, why)
        if len(self._backlog_lines) > MAX_BACKLOG:
            dropped_lines = self._backlog_lines[:-MAX_BACKLOG]
            self._backlog_lines = self._backlog_lines[-MAX_BACKLOG:]
            self._note_lost(dropped_lines[0][0], dropped_lines[-1][0], why)

    def _note_lost(self, start: float, end: float, why: str) -> None:
        if self.lost and self.lost[-1].why == why and start <= self.lost[-1].end + 1.0:
            self.lost[-1].end = max(self.lost[-1].end, end)
        else:
            self.lost.append(Lost(start, end, why))

    def _write_events(self, events: list[_Event]) -> None:
        events.sort()
        tick_map, written_tick = copy.copy(self._map), self._written_tick  # committed only once on disk
        messages = []
        for event in events:
            tick = max(written_tick, tick_map.ticks(event.t - self.start))
            messages.append(event.message.copy(time=tick - written_tick))
            written_tick = tick
            if event.message.type == "set_tempo":
                tick_map.set_tempo(tick, event.message.tempo)
        good = self._track.size
        self._track.append(messages)
        if self.fsync:
            try:
                _fsync(self._midi_fd)
            except OSError:
                self._track.undo(good)  # after a failed fsync the kernel may have dropped the pages: write them again
                raise
        self._map, self._written_tick = tick_map, written_tick
        self.events_written += len(events)
        self.parts[-1].end = max(self.parts[-1].end, events[-1].t - self.start)

    def _write_lines(self, lines: list[tuple[float, str]]) -> None:
        data = "".join(line for _, line in lines).encode("utf-8")
        try:
            _pwrite(self._jsonl_fd, data, self._jsonl_size)
            if self.fsync:
                _fsync(self._jsonl_fd)
        except OSError:
            try:
                os.ftruncate(self._jsonl_fd, self._jsonl_size)  # no half line left behind
            except OSError:
                pass
            raise
        self._jsonl_size += len(data)
        self.states_written += len(lines)
        self.parts[-1].end = max(self.parts[-1].end, max(t for t, _ in lines))

    # --- the files, where they were --------------------------------------------------
    def _new_part(self, stem: str, since: float) -> None:
        """Open a new pair of files (a new part) whose MIDI track starts at the tempo now in force."""
        part = Part(self.folder / f"{stem}.mid", self.folder / f"{stem}.jsonl", since, since)
        midi_fd = _create(part.midi_path)
        try:
            jsonl_fd = _create(part.jsonl_path)
        except OSError:
            os.close(midi_fd)
            _remove(part.midi_path)
            raise
        try:
            track = _TrackFile(midi_fd, self.ticks_per_beat, [mido.MetaMessage("set_tempo", tempo=self._map.tempo_us)])
        except OSError:
            for fd in (midi_fd, jsonl_fd):
                os.close(fd)
            _remove(part.midi_path)
            _remove(part.jsonl_path)
            raise
        self._midi_fd, self._jsonl_fd, self._track, self._jsonl_size = midi_fd, jsonl_fd, track, 0
        # A new file is read from its own tick 0 at the tempo now in force: the map starts again there.
        tempo = self._map.tempo_us
        self._map, self._written_tick = _TickMap(self.ticks_per_beat), 0
        self._map.tempo_us = tempo
        self.parts.append(part)

    def _discard_part(self) -> None:
        """A start that failed leaves no files behind."""
        for fd in (self._midi_fd, self._jsonl_fd):
            if fd >= 0:
                os.close(fd)
        self._midi_fd = self._jsonl_fd = -1
        for part in self.parts:
            _remove(part.midi_path)
            _remove(part.jsonl_path)
        self.parts.clear()

    def _check_files(self) -> None:
        """The files are where they were, or they are put back (or a new part goes on); raises while it cannot be."""
        part = self.parts[-1]
        if _same_file(part.midi_path, self._midi_fd) and _same_file(part.jsonl_path, self._jsonl_fd):
            return
        self.folder.mkdir(parents=True, exist_ok=True)  # raises while the folder cannot be made: tried again later
        if self._restore(part):
            log.warning("recording: %s was gone (folder deleted?); made it again and wrote %s and %s back from the "
                        "open files: nothing lost", self.folder, part.midi_path.name, part.jsonl_path.name)
            return
        part.lost = "deleted with its folder"
        self._note_lost(part.start, part.end, f"{part.midi_path.name} was deleted and could not be written back "
                                              f"({self._unrestorable})")
        for fd in (self._midi_fd, self._jsonl_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._new_part(_free_stem(self.folder, f"{self._stem}-{len(self.parts) + 1}"), part.end)
        log.error("recording: %s was gone and %s (%.1f s) could not be written back; the take goes on in %s",
                  self.folder, part.midi_path.name, part.seconds, self.midi_path.name)

    def _restore(self, part: Part) -> bool:
        """Write the part's files back from the open ones, at their own paths; False where the open files cannot
        be read (or something else took their names). Raises OSError while the new files cannot be written
        (a full disk): the open files stay, for the next flush to try again."""
        written: list[tuple[Path, int]] = []

        def undo() -> None:
            for path, target in written:
                os.close(target)
                _remove(path)

        try:
            for path, fd, size in ((part.midi_path, self._midi_fd, self._track.size),
                                   (part.jsonl_path, self._jsonl_fd, self._jsonl_size)):
                if _same_file(path, fd):
                    continue
                try:
                    target = _create(path)
                except FileExistsError:
                    raise _Unreadable(f"something else is now called {path.name}") from None
                written.append((path, target))
                _copy(fd, target, size)
                os.ftruncate(target, size)
                if self.fsync:
                    _fsync(target)
        except _Unreadable as error:
            undo()
            self._unrestorable = str(error)
            return False
        except OSError:
            undo()
            raise
        for path, target in written:
            if path == part.midi_path:
                os.close(self._midi_fd)
                self._midi_fd = self._track.fd = target
            else:
                os.close(self._jsonl_fd)
                self._jsonl_fd = target
        return True

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
            if self._backlog or self._backlog_lines:  # the last flush could not write them: they are lost now
                times = [e.t - self.start for e in self._backlog] + [t for t, _ in self._backlog_lines]
                why = f"{self.folder} could not be written ({_reason(self._stalled)})" if self._stalled else "not written"
                self._note_lost(min(times), max(times), why)
                log.error("recording: the last %.1f s could not be written (%s)", max(times) - min(times), why)
                self._backlog, self._backlog_lines = [], []
            for fd in (self._midi_fd, self._jsonl_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._midi_fd = self._jsonl_fd = -1
            self._files_closed = True

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        """What was recorded, truthfully, for the exit line (after ``recorded ``): the files and the seconds each
        holds, and what was lost and why."""
        kept = [part for part in self.parts if not part.lost]
        if not kept:
            text = "nothing"
        elif len(self.parts) == 1:
            part = kept[0]
            text = f"{part.midi_path} and {part.jsonl_path.name} ({part.seconds:.1f} s)"
        else:
            names = [f"{part.midi_path.name} ({part.start:.1f}–{part.end:.1f} s)" for part in kept]
            text = f"{self.folder}/{', '.join(names[:-1])}{' and ' if len(names) > 1 else ''}{names[-1]}, " \
                   "each with its .jsonl log, on the session's time line"
        if self.lost:
            total = sum(max(lost.end - lost.start, 0.0) for lost in self.lost)
            whys = "; ".join(dict.fromkeys(lost.why for lost in self.lost))
            text += f"; {total:.1f} s lost: {whys}"
        return text


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
