"""--record cannot lose a take silently: a folder deleted mid-show, a disk that fills up, a disk full at the start.

What the recorder could keep it keeps (a deleted file's data lives on while it is open; what a full disk
refuses waits in memory), what it could not keep it says, in one line at the time and in the exit line.
Where the machine lets a test mount a tmpfs (root, as in CI), a real full disk is used too.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from emobridge.errors import EmobridgeError, RecorderError
from emobridge.outputs import record
from emobridge.outputs.record import Recorder
from emobridge.state import EmotionState


def read_midi(path: Path) -> list[tuple[float, mido.Message]]:
    now, out = 0.0, []
    for message in mido.MidiFile(path):
        now += message.time
        out.append((now, message))
    return out


def notes_on(path: Path) -> list[tuple[float, int]]:
    return [(round(t, 2), m.note) for t, m in read_midi(path) if m.type == "note_on"]


def play(recorder: Recorder, start: int, count: int, step: float = 0.1) -> list[tuple[float, int]]:
    """Notes (and an emotion state each) at session times start*step, (start+1)*step, ...; returns (time, pitch)."""
    played = []
    for i in range(start, start + count):
        t = i * step
        recorder.note_on(0, 40 + i % 40, 90, recorder.start + t)
        recorder.note_off(0, 40 + i % 40, recorder.start + t + step / 2)
        recorder.emotion(EmotionState.fixed("happy", recorder.start + t))
        played.append((round(t, 2), 40 + i % 40))
    return played


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def recorder_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == record.__name__]


@pytest.fixture
def manual(monkeypatch):
    """Flushes only when the test says (no timing in the tests): the flusher thread waits for ever."""
    monkeypatch.setattr(Recorder, "_flush_loop", lambda self: self._stop.wait())


def test_a_folder_deleted_mid_show_is_made_again_with_the_whole_take(tmp_path, manual, caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    folder = tmp_path / "takes"
    recorder = Recorder(folder, start=0.0)
    played = play(recorder, 0, 20)
    recorder.flush()
    shutil.rmtree(folder)  # a cleanup script, mid-show
    played += play(recorder, 20, 20)
    recorder.flush()  # noticed here, on the recorder's thread in a show
    played += play(recorder, 40, 20)
    recorder.close()
    assert recorder.midi_path.parent == folder and recorder.midi_path.exists()
    assert notes_on(recorder.midi_path) == played
    assert lines(recorder.jsonl_path) == 60
    assert recorder.complete and "lost" not in recorder.describe()
    said = recorder_log(caplog)
    assert len(said) == 1 and "gone" in said[0].getMessage() and "nothing lost" in said[0].getMessage()


def test_the_recorders_own_thread_notices_and_says_it(tmp_path, caplog):
    """No flush by hand: the flusher notices within its interval, and the line comes from its thread."""
    caplog.set_level(logging.INFO, logger=record.__name__)
    folder = tmp_path / "takes"
    recorder = Recorder(folder, start=0.0, flush_interval=0.05)
    played = play(recorder, 0, 10)
    deadline = time.monotonic() + 10
    while recorder.events_written < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    shutil.rmtree(folder)
    while not recorder_log(caplog) and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder.close()
    assert notes_on(recorder.midi_path) == played
    (said,) = recorder_log(caplog)
    assert said.threadName == "recorder" and "nothing lost" in said.getMessage()


def test_a_folder_that_cannot_be_made_again_for_a_while_loses_nothing(tmp_path, manual, caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    folder = tmp_path / "takes"
    recorder = Recorder(folder, start=0.0)
    played = play(recorder, 0, 10)
    recorder.flush()
    shutil.rmtree(folder)
    folder.write_text("a file where the folder was")  # the folder cannot be made: flushes fail
    for chunk in range(1, 4):
        played += play(recorder, chunk * 10, 10)
        recorder.flush()
    assert not recorder.complete or recorder._backlog  # held in memory, not lost
    folder.unlink()
    played += play(recorder, 40, 10)
    recorder.flush()
    recorder.close()
    assert notes_on(recorder.midi_path) == played and lines(recorder.jsonl_path) == 50
    assert recorder.complete
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 3, said  # it cannot write; the files are back; it goes on
    assert "cannot write" in said[0] and "back" in said[1] and "goes on" in said[2]


def test_a_take_that_cannot_be_written_back_goes_on_in_a_second_part_and_says_so(tmp_path, manual, monkeypatch,
                                                                                 caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)

    def unreadable(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(record, "_pread", unreadable)  # e.g. the disk was swapped: the open files are unreadable
    folder = tmp_path / "takes"
    recorder = Recorder(folder, start=0.0)
    first = play(recorder, 0, 20)
    recorder.flush()
    shutil.rmtree(folder)
    later = play(recorder, 20, 30)
    recorder.flush()
    recorder.close()
    assert [p.midi_path.name for p in recorder.parts] == [f"{recorder._stem}.mid", f"{recorder._stem}-2.mid"]
    assert not recorder.parts[0].midi_path.exists()
    assert notes_on(recorder.parts[1].midi_path) == later  # on the session's time line
    assert lines(recorder.parts[1].jsonl_path) == 30
    assert not recorder.complete
    text = recorder.describe()
    part = recorder.parts[1]
    assert f"{recorder._stem}-2.mid ({part.start:.1f}–{part.end:.1f} s)" in text
    assert part.start == pytest.approx(first[-1][0] + 0.05)  # it takes over where the first part's last flush ended
    assert f"{part.start:.1f} s lost: {recorder._stem}.mid was deleted and could not be written back " \
           "(Input/output error)" in text
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 1 and "could not be written back" in said[0] and "-2.mid" in said[0]


class FullDisk:
    """record._pwrite (and _fsync) fail with ENOSPC while *full* is set, as on a disk with no space left."""

    def __init__(self, monkeypatch, fsync: bool = False) -> None:
        self.full = False
        self.failures = 0
        real_write, real_fsync = record._pwrite, record._fsync

        def write(fd, data, offset):
            if self.full and not fsync:
                self.failures += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write(fd, data, offset)

        def sync(fd):
            if self.full and fsync:
                self.failures += 1
                raise OSError(errno.ENOSPC, "No space left on device")
            real_fsync(fd)

        monkeypatch.setattr(record, "_pwrite", write)
        monkeypatch.setattr(record, "_fsync", sync)


@pytest.mark.parametrize("at", ["write", "fsync"])
def test_a_disk_full_for_a_while_keeps_the_take_in_memory_and_writes_it_when_there_is_room(tmp_path, manual,
                                                                                         monkeypatch, caplog, at):
    caplog.set_level(logging.INFO, logger=record.__name__)
    disk = FullDisk(monkeypatch, fsync=at == "fsync")
    recorder = Recorder(tmp_path, start=0.0)
    played = play(recorder, 0, 20)
    recorder.flush()
    disk.full = True
    for chunk in range(1, 4):
        played += play(recorder, chunk * 10 + 10, 10)
        recorder.flush()
        assert notes_on(recorder.midi_path) == played[:20]  # the file stays whole: the last good flush
        assert lines(recorder.jsonl_path) == 20
    assert disk.failures >= 3
    disk.full = False
    recorder.flush()
    recorder.close()
    assert notes_on(recorder.midi_path) == played  # each once: a failed fsync's bytes are written again, not twice
    assert lines(recorder.jsonl_path) == 50
    assert recorder.complete and "lost" not in recorder.describe()
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 2, said
    assert "no space left" in said[0] and "goes on" in said[1] and "nothing was lost" in said[1]


def test_a_disk_that_stays_full_to_the_end_says_what_was_lost(tmp_path, manual, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    disk = FullDisk(monkeypatch)
    recorder = Recorder(tmp_path, start=0.0)
    played = play(recorder, 0, 30)
    recorder.flush()
    disk.full = True
    play(recorder, 30, 30)  # 3.0 to 5.9 s (and its last note-off at 5.95 s)
    recorder.flush()
    recorder.close(t=6.0)
    assert notes_on(recorder.midi_path) == played  # whole and readable, up to the disk's filling up
    assert not recorder.complete
    text = recorder.describe()
    assert text.startswith(f"{recorder.midi_path} and {recorder.jsonl_path.name} (3.0 s)")  # to its last note-off
    assert "3.0 s lost" in text and "no space left on the disk" in text
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 2 and "cannot write" in said[0] and "could not be written" in said[1]


def overflow_the_backlog(tmp_path, monkeypatch) -> Recorder:
    """A take that overflows a 50-message backlog while the disk is full, then gets room and is closed."""
    monkeypatch.setattr(record, "MAX_BACKLOG", 50)
    disk = FullDisk(monkeypatch)
    recorder = Recorder(tmp_path, start=0.0)
    disk.full = True
    for chunk in range(4):
        play(recorder, chunk * 20, 20)
        recorder.flush()
    disk.full = False
    recorder.flush()
    recorder.close()
    return recorder


def test_what_cannot_be_held_in_memory_is_counted_as_lost(tmp_path, manual, monkeypatch):
    recorder = overflow_the_backlog(tmp_path, monkeypatch)
    kept = notes_on(recorder.midi_path)
    assert kept and kept[0][0] > 0  # the oldest went
    assert not recorder.complete and "lost" in recorder.describe()


def test_a_disk_full_at_the_start_is_one_line_and_leaves_no_files(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "_free_bytes", lambda folder: 12 * 1024)
    with pytest.raises(RecorderError) as error:
        Recorder(tmp_path / "takes")
    assert str(error.value) == f"cannot record into {tmp_path / 'takes'}: its disk is full (12 kB free)"
    assert isinstance(error.value, EmobridgeError)  # the command line: one line, exit 2
    assert list((tmp_path / "takes").iterdir()) == []


def test_a_first_write_refused_at_the_start_is_one_line_and_leaves_no_files(tmp_path, monkeypatch):
    disk = FullDisk(monkeypatch)
    disk.full = True
    with pytest.raises(RecorderError) as error:
        Recorder(tmp_path)
    assert str(error.value) == f"cannot record into {tmp_path}: no space left on the disk"
    assert list(tmp_path.iterdir()) == []


# --- a real full disk: a tmpfs of its own (root only) -----------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs; skipped where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?): the full-disk cases above use a simulated one")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all the space of *disk* but *leave* bytes."""
    filler = disk / "filler"
    free = record._free_bytes(disk) or 0
    with open(filler, "wb", buffering=0) as handle:
        try:
            handle.write(b"\0" * max(0, free - leave))
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass
    return filler


def test_a_real_disk_that_fills_up_mid_show_and_is_freed(small_disk, manual, caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    recorder = Recorder(small_disk, start=0.0)
    played = play(recorder, 0, 20)
    recorder.flush()
    filler = fill(small_disk)
    for chunk in range(1, 4):
        played += play(recorder, chunk * 1000, 1000)  # more than the slack in the files' last pages
        recorder.flush()
        assert notes_on(recorder.midi_path) == played[:20]
    filler.unlink()
    recorder.flush()
    recorder.close()
    assert notes_on(recorder.midi_path) == played and recorder.complete
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 2 and "no space left" in said[0] and "goes on" in said[1]


def test_a_real_full_disk_at_the_start_is_one_line(small_disk):
    fill(small_disk)
    with pytest.raises(RecorderError, match="its disk is full"):
        Recorder(small_disk / "takes")


@pytest.mark.jack
def test_the_command_line_says_a_full_disk_in_one_line_and_exits_2(small_disk, jack_server):
    fill(small_disk)
    demo = Path(__file__).resolve().parents[1] / "daemon" / "demo" / "demo.mp4"
    done = subprocess.run([sys.executable, "-m", "emobridge.cli", "run", "--video", str(demo), "--midi-backend", "jack",
                           "--midi-port", f"emo-full-{os.getpid()}", "--record", str(small_disk / "takes")],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert said[-1].startswith("emobridge: error: cannot record into") and "disk is full" in said[-1]


def test_a_folder_deleted_while_the_disk_is_full_is_written_back_once_there_is_room(tmp_path, manual, monkeypatch,
                                                                                   caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    disk = FullDisk(monkeypatch)
    folder = tmp_path / "takes"
    recorder = Recorder(folder, start=0.0)
    played = play(recorder, 0, 20)
    recorder.flush()
    shutil.rmtree(folder)
    disk.full = True  # the files cannot be written back yet: the open ones must be kept, not given up
    played += play(recorder, 20, 20)
    recorder.flush()
    recorder.flush()
    assert len(recorder.parts) == 1 and recorder.parts[0].lost is None
    disk.full = False
    played += play(recorder, 40, 20)
    recorder.flush()
    recorder.close()
    assert len(recorder.parts) == 1 and notes_on(recorder.midi_path) == played and recorder.complete
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert len(said) == 3 and "no space left" in said[0] and "back" in said[1] and "nothing was lost" in said[2]


def test_a_stall_that_had_to_drop_says_so_when_it_goes_on(tmp_path, manual, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=record.__name__)
    overflow_the_backlog(tmp_path, monkeypatch)
    said = [r.getMessage() for r in recorder_log(caplog)]
    assert "goes on" in said[-1] and "lost" in said[-1] and "nothing was lost" not in said[-1]
