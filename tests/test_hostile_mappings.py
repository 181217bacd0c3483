"""Hostile mapping files: reading one never blocks, explodes or floods the log, and the show goes on.

Each file of the table is refused by ``load_mapping`` with one short MappingError line, soon (a hang
fails the test instead of blocking it); the hot-reload watcher reports it once and then neither reads
nor parses it again until it changes; a good save afterwards is played. The same files saved while
the real daemon plays (in-process, on an offline clock) each cost one short log line and no note.
A FIFO, a device or a folder given as ``--video`` is named for what it is, not "not found".
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emobridge.errors import MappingError, SourceError
from emobridge.labels import EMOTIONS
from emobridge.mapping import MappingWatcher, files, load_mapping, parse_mapping
from emobridge.mapping.keys import TOP
from emobridge.mapping.parse import MAX_DEPTH, MAX_ERROR_CHARS, MAX_VALUES
from emobridge.perception.sources import VideoFileSource

HANG = 30.0  # seconds: far more than any refusal takes on a busy machine (they take milliseconds); a hang fails
CC_MOST = TOP.key("cc").kind.most
OSC_MOST = TOP.key("osc").kind.most


# --- the hostile files: each built at *path*, with a word its error must say ---

def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def _loop(path: Path) -> None:
    other = path.with_name(path.name + ".other")
    other.symlink_to(path.name)
    path.symlink_to(other.name)


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
    except OSError as error:  # a path longer than a socket address holds (about 100 bytes)
        pytest.skip(f"cannot bind a unix socket at {path}: {error}")
    finally:
        server.close()  # the socket file stays


def _sparse(size: int) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        with open(path, "wb") as file:
            file.truncate(size)  # no blocks written: 100 MB of holes
    return build


def _alias_bomb() -> str:
    """Nine lists of nine aliases of the list before: 9^9 (387 million) strings once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, before = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join(['*' + before] * 9)}]")
    return "\n".join(lines) + "\n"


def _merge_bomb() -> str:
    """The same with merge keys (<<), which the constructor would flatten into ever longer key lists."""
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(9)) + "}"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} {{<<: [{', '.join([f'*a{level - 1}'] * 9)}]}}")
    return "\n".join(lines) + "\n"


CC_ENTRY = "  - {source: arousal, cc: 74, channel: 1}\n"

HOSTILE = [
    # (name, build it at the path, a word the one-line error says)
    ("deep lists", _text("key: " + "[" * 100_000), "nested"),
    ("deep maps", _text("key: " + "{a: " * 100_000), "nested"),
    ("deep block maps", _text("".join("  " * depth + "a:\n" for depth in range(800))), "nested"),
    ("FIFO", _fifo, "FIFO"),
    ("symlink to /dev/zero", _link_to("/dev/zero"), "character device"),
    ("symlink to /dev/null", _link_to("/dev/null"), "character device"),
    ("directory", lambda path: path.mkdir(), "directory"),
    ("symlink loop", _loop, "symlink loop"),
    ("unix socket", _socket, "socket"),
    ("100 MB sparse file", _sparse(100 * 2**20), "MB"),
    ("broken symlink", _link_to("nowhere.yaml"), "does not exist"),
    ("binary garbage", lambda path: path.write_bytes(np.random.default_rng(7).bytes(50_000)), "UTF-8"),
    ("control characters", lambda path: path.write_bytes(bytes(range(32)) * 1000), "invalid YAML"),
    ("alias bomb", _text(_alias_bomb()), "values"),
    ("merge-key bomb", _text(_merge_bomb()), "values"),
    ("alias inside itself", _text("emotions: &a {happy: *a}\n"), "alias"),
    ("10,000 cc entries", _text("cc:\n" + CC_ENTRY * 10_000), "values"),
    ("300,000 list items", _text("key: [" + "1," * 300_000 + "1]\n"), "values"),
    (f"{CC_MOST + 1} cc entries", _text("cc:\n" + CC_ENTRY * (CC_MOST + 1)), "entries"),
    ("100 osc targets", _text("osc:\n" + "  - 127.0.0.1:9000\n" * 100), "targets"),
    ("a huge single line", _text("key" * 300_000 + ": C\n"), "invalid YAML"),
    ("a huge key", _text("? " + "k" * 900_000 + "\n: 1\n"), "unknown key"),
    ("a huge value", _text('key: "' + "x" * 900_000 + '"\n'), "key"),
    ("a 5,000-digit number", _text("beats_per_bar: " + "9" * 5000 + "\n"), "cannot read"),
    ("newlines in a key", _text('"one\\ntwo\\rthree\\u2028four": 1\n'), "unknown key"),
]
IDS = [case[0] for case in HOSTILE]


def clear(path: Path) -> None:
    """Remove whatever is at *path* (and the loop's second link), without following symlinks."""
    for each in (path, path.with_name(path.name + ".other")):
        if each.is_dir() and not each.is_symlink():
            each.rmdir()
        elif os.path.lexists(each):
            each.unlink()


def save(path: Path, build: Callable[[Path], None]) -> None:
    """Put a hostile file at *path*, dated a minute back: a file read soon after its change is hashed again
    on the next polls (see MappingWatcher), and these tests count reads."""
    clear(path)
    build(path)
    if path.is_file() and not path.is_symlink():
        old = time.time_ns() - 60 * 10**9
        os.utime(path, ns=(old, old))


def good(tonic: str) -> str:
    return f"key: {tonic}\n"


def within(seconds: float, call: Callable[[], object]) -> tuple[object, BaseException | None, float]:
    """*call*'s result or exception and how long it took, run on a thread so that a hang fails the test."""
    outcome: list = [None, None]

    def run() -> None:
        try:
            outcome[0] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome[1] = error

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s: it blocks"
    return outcome[0], outcome[1], time.monotonic() - started


def assert_short_line(message: str, path: Path | None = None) -> None:
    assert "\n" not in message and "\r" not in message and "\u2028" not in message, message[:500]
    assert len(message) <= MAX_ERROR_CHARS, f"{len(message)} characters: {message[:500]}..."
    if path is not None:
        assert str(path) in message, message


@pytest.mark.parametrize("name, build, words", HOSTILE, ids=IDS)
def test_load_mapping_refuses_a_hostile_file_soon_in_one_short_line(tmp_path, name, build, words):
    path = tmp_path / "mapping.yaml"
    save(path, build)
    _, error, _ = within(HANG, lambda: load_mapping(path))
    assert isinstance(error, MappingError), f"{name}: {error!r}"
    assert_short_line(str(error), path)
    assert words in str(error), str(error)


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_device_given_as_the_mapping_is_refused_without_being_read(device):
    _, error, _ = within(HANG, lambda: load_mapping(device))
    assert isinstance(error, MappingError) and "character device" in str(error), error


def counting(monkeypatch, name: str) -> list[int]:
    """Count the calls of ``files.<name>`` (reads of a file, parses of its text)."""
    calls = [0]
    original = getattr(files, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(files, name, counted)
    return calls


@pytest.mark.parametrize("name, build, words", HOSTILE, ids=IDS)
def test_the_watcher_reports_a_hostile_save_once_reads_it_at_most_once_and_reloads_a_good_save(
        tmp_path, monkeypatch, name, build, words):
    path = tmp_path / "live.yaml"
    path.write_text(good("C"))
    watcher = MappingWatcher(path)
    assert watcher.poll() is None
    reads, parses = counting(monkeypatch, "_read_regular"), counting(monkeypatch, "parse_mapping")
    save(path, build)

    _, error, _ = within(HANG, watcher.poll)
    assert isinstance(error, MappingError) and words in str(error), f"{name}: {error!r}"
    assert_short_line(str(error), path)
    regular_within_cap = path.is_file() and path.stat().st_size <= files.MAX_FILE_BYTES
    assert reads[0] == (1 if regular_within_cap else 0), "a file refused from its stat was opened"
    assert parses[0] <= 1
    seen = (reads[0], parses[0])
    for _ in range(20):  # the daemon polls four times a second while the show plays
        result, error, _ = within(HANG, watcher.poll)
        assert result is None and error is None, f"reported again: {error}"
    assert (reads[0], parses[0]) == seen, "the refused file was read or parsed again though it did not change"

    clear(path)
    path.write_text(good("G"))
    assert watcher.poll().tonic == 7, "a good save after the hostile one was not loaded"
    assert watcher.poll() is None


def test_the_same_good_bytes_saved_after_a_refused_file_are_loaded_again(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text(good("A"))
    watcher = MappingWatcher(path)
    save(path, _fifo)
    with pytest.raises(MappingError, match="FIFO"):
        watcher.poll()
    clear(path)
    path.write_text(good("A"))  # what played before the FIFO: the show is told to play it again
    assert watcher.poll().tonic == 9


def test_a_second_save_that_leaves_the_stat_as_it_was_is_still_seen(tmp_path, monkeypatch):
    """Two saves of the same size within one timestamp tick leave size, times and inode as they were; a
    file read that soon after its change is read (and hashed) again on the next poll, so the second save
    is found. The tick is simulated: the watcher's stat is frozen at the first save's."""
    monkeypatch.setattr(files, "RACY_NS", 10**18)  # however slow this machine, the read counts as soon
    path = tmp_path / "live.yaml"
    path.write_text(good("C"))
    watcher = MappingWatcher(path)
    path.write_text(good("G"))
    frozen = watcher._stat()
    monkeypatch.setattr(watcher, "_stat", lambda: frozen)
    assert watcher.poll().tonic == 7
    path.write_text(good("A"))  # the same size as G, and to the watcher the same stat
    assert watcher.poll().tonic == 9
    assert watcher.poll() is None  # read again, the same bytes: not parsed again


def test_an_old_file_costs_one_stat_a_poll_not_a_read(tmp_path, monkeypatch):
    path = tmp_path / "live.yaml"
    save(path, _text(good("C")))
    watcher = MappingWatcher(path)
    reads = counting(monkeypatch, "_read_regular")
    for _ in range(50):
        assert watcher.poll() is None
    assert reads[0] == 0


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="no /proc here")
def test_a_file_that_reads_longer_than_its_stat_said_is_cut_at_the_cap(monkeypatch):
    """A regular file whose stat says 0 bytes and that reads on (/proc, /sys, or one growing while read)."""
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    asked: list[int] = []
    real_read = os.read
    with monkeypatch.context() as patch, pytest.raises(MappingError, match=r"gave more than 100 bytes when read"):
        patch.setattr(files.os, "read", lambda fd, n: asked.append(n) or real_read(fd, n))
        load_mapping("/proc/self/status")
    assert sum(asked) <= 101, asked  # read to one byte past the cap, not to the end


# --- limits of the language ---

def test_cc_entries_are_capped_at_the_declared_limit():
    assert len(parse_mapping("cc:\n" + CC_ENTRY * CC_MOST, "c.yaml").controls) == CC_MOST
    with pytest.raises(MappingError, match=rf"c\.yaml: cc: {CC_MOST + 1} entries, more than {CC_MOST}"):
        parse_mapping("cc:\n" + CC_ENTRY * (CC_MOST + 1), "c.yaml")


def test_osc_targets_are_capped_before_any_is_looked_up(monkeypatch):
    from emobridge.mapping import osc_targets

    assert len(parse_mapping("osc:\n" + "  - 127.0.0.1:9000\n" * OSC_MOST, "o.yaml").osc) == OSC_MOST
    looked_up = []
    monkeypatch.setattr(osc_targets, "resolve_address", lambda *args: looked_up.append(args))
    with pytest.raises(MappingError, match=rf"o\.yaml: osc: {OSC_MOST + 1} targets, more than {OSC_MOST}"):
        parse_mapping("osc:\n" + "  - no.such.host.invalid:9000\n" * (OSC_MOST + 1), "o.yaml")
    assert looked_up == []


def test_nesting_up_to_the_depth_cap_is_yaml_past_it_an_error():
    inside = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the top-level mapping is the first level
    with pytest.raises(MappingError, match="emotions: expected a mapping"):
        parse_mapping(f"emotions: {inside}\n", "d.yaml")
    with pytest.raises(MappingError, match=f"nested more than {MAX_DEPTH} deep"):
        parse_mapping(f"emotions: [{inside}]\n", "d.yaml")


def test_anchors_and_aliases_of_a_real_mapping_are_fine_and_an_alias_counts_what_it_repeats():
    style = "{tempo: [60, 70], mode: minor}"
    text = "emotions:\n  sad: &calm " + style + "\n" + "".join(f"  {e}: *calm\n" for e in EMOTIONS if e != "sad")
    mapping = parse_mapping(text, "a.yaml")
    assert {each.mode for each in mapping.emotions.values()} == {"minor"}
    # one list of 2,000 items and five aliases of it: 12,000 values as the file means them
    many = "[" + ", ".join(["1"] * 2000) + "]"
    with pytest.raises(MappingError, match=f"more than {MAX_VALUES:,} values"):
        parse_mapping(f"a: &many {many}\nb: [*many, *many, *many, *many, *many]\n", "a.yaml")


def test_every_part_of_an_error_is_cut_and_kept_on_one_line():
    huge = "k" * 100_000
    with pytest.raises(MappingError) as caught:
        parse_mapping(f"? {huge}\n: 1\n", "/" + "d" * 5000 + "/mapping.yaml")
    error = caught.value
    assert_short_line(str(error))
    assert "100,000 characters in all" in error.path and "characters in all" in error.source
    with pytest.raises(MappingError) as caught:
        parse_mapping("key: H\n", "name\nwith a newline")  # the source is named as given, on one line
    assert str(caught.value).startswith("name\\nwith a newline: ")


# --- the show goes on: each hostile file saved while the real daemon plays ---

def test_hostile_saves_while_the_show_plays_cost_one_short_line_each_and_a_good_save_plays(tmp_path, caplog):
    from show import offline_show, play
    from test_show import fixed_tempo, happy_frames

    path = tmp_path / "live.yaml"
    path.write_text(fixed_tempo(90))
    show = offline_show(happy_frames(), mapping=str(path))
    every = 2.0  # seconds of virtual time between two saves: eight reload checks
    cases = [(name, build) for name, build, _ in HOSTILE if name != "unix socket"]  # may skip: not in a show
    at = {every * (i + 1): (lambda build=build: save(path, build)) for i, (_, build) in enumerate(cases)}
    last = every * (len(cases) + 1)
    at[last] = lambda: (clear(path), path.write_text(fixed_tempo(150)))
    start = play(show, last + 6.0, at=at)

    for i, (name, _) in enumerate(cases):
        saved = start + every * (i + 1)
        assert show.note_ons(saved + 0.5, saved + every), f"no notes after saving the {name}"
    tempos = [args[0] for t, args in show.music()]
    assert tempos[0] == 90.0 and tempos[-1] == 150.0, "the good save after the hostile ones was not played"
    assert all(tempo == 90.0 for t, (tempo, _) in show.music() if t < start + last), "a hostile save was played"

    lines = [record.getMessage() for record in caplog.records
             if "mapping not reloaded" in record.getMessage() or "is missing" in record.getMessage()]
    assert len(lines) == len(cases), "\n".join(line[:300] for line in lines)
    for line in lines:
        assert "\n" not in line and len(line) < MAX_ERROR_CHARS + 100, line[:500]
    assert not [record for record in caplog.records if record.exc_info], "a save was logged with a traceback"


# --- --video given something that is not a file ---

VIDEO_NOT_FILES = [
    ("FIFO", _fifo, "is a FIFO (named pipe)"),
    ("directory", lambda path: path.mkdir(), "is a directory"),
    ("character device", _link_to("/dev/zero"), "is a character device"),
    ("symlink loop", _loop, "symlink loop"),
    ("missing", lambda path: None, "not found"),
]


@pytest.mark.parametrize("name, build, words", VIDEO_NOT_FILES, ids=[case[0] for case in VIDEO_NOT_FILES])
def test_video_that_is_not_a_file_is_named_for_what_it_is(tmp_path, name, build, words):
    path = tmp_path / "clip.mp4"
    build(path)
    _, error, _ = within(HANG, lambda: VideoFileSource(path))
    assert isinstance(error, SourceError), repr(error)
    message = str(error)
    assert "\n" not in message and str(path) in message and words in message, message
    if name != "missing":
        assert "not found" not in message, message
