"""Mapping files and presets: where a mapping spec is read from, and re-reading it when it changes (hot reload)."""

from __future__ import annotations

import errno
import hashlib
import importlib.resources
import os
import re
import stat
import time
from pathlib import Path
from typing import NamedTuple

from ..errors import MappingError
from .model import DEFAULT_SOURCE, Mapping
from .parse import default_mapping_text, parse_mapping, short_error

PRESET_NAME = re.compile(r"[A-Za-z0-9_-]+")

MAX_FILE_BYTES = 1_000_000  # a mapping is a few kB (the commented default 17 kB); this is 60 times that

# Opening never waits: a FIFO swapped in between the stat and the open would otherwise block until a writer
# comes, and no terminal becomes ours. Flags a system lacks are 0.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)
_READ_CHUNK = 1 << 16

REGULAR_FILE = "a regular YAML file (or a symlink to one)"


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and check a mapping file or preset; ``None`` (or ``"default"``) gives the packaged default.

    *path* is a file when that file exists; otherwise a bare name names a preset (see the module docstring).
    Only a regular file (or a symlink to one) of at most :data:`MAX_FILE_BYTES` is read: a FIFO, a
    device, a socket or a folder is refused from its ``stat`` before it is opened, so nothing here can
    block or read without end. Any problem is one short :class:`MappingError` line.
    """
    if path is None or (str(path) == DEFAULT_SOURCE and not Path(path).exists()):
        return parse_mapping(default_mapping_text(), DEFAULT_SOURCE)
    resolved, source = mapping_path(path), str(path)
    return _parse_bytes(read_mapping_file(resolved, source), source)


def read_mapping_file(path: Path, source: str) -> bytes:
    """The bytes of the mapping file at *path* (*source* names it in errors), refused unless it is a
    regular file within :data:`MAX_FILE_BYTES`; the read itself stops one byte past the cap."""
    try:
        _check_regular(path, source, os.stat(path))
        return _read_regular(path, source)
    except OSError as error:
        raise _not_readable(path, source, error) from None
    except MappingError as error:
        raise short_error(error) from None


def _parse_bytes(data: bytes, source: str) -> Mapping:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise short_error(MappingError(source, "(file)", f"cannot be read ({error})", "a readable UTF-8 YAML file")) \
            from None
    return parse_mapping(text, source)


def _kind(mode: int) -> str | None:
    """What a file that is not a regular one is, in words; None for a regular file."""
    for test, words in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, None)):
        if test(mode):
            return words
    return "not a regular file"


def _check_regular(path: Path, source: str, status: os.stat_result) -> None:
    """Refuse, from its *status*, a file that is not regular or is over the cap; nothing is opened."""
    kind = _kind(status.st_mode)
    if kind is not None:
        via = f" (through a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise MappingError(source, "(file)", f"is {kind}{via}, not a file to read", REGULAR_FILE)
    if status.st_size > MAX_FILE_BYTES:  # a mapping is a few kB; parsing megabytes of YAML would stall a reload
        raise _too_big(source, status.st_size)


def _too_big(source: str, size: int, grew: bool = False) -> MappingError:
    problem = f"gave more than {_size(MAX_FILE_BYTES)} when read" if grew else f"is {_size(size)}"
    return MappingError(source, "(file)", problem, f"a mapping file of at most {_size(MAX_FILE_BYTES)}")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.0f} kB" if count >= 1000 else f"{count} bytes"


def _read_regular(path: Path, source: str) -> bytes:
    """Read a file that its stat said is regular: opened without waiting, checked again once open (it may
    have been swapped since), and read to at most one byte past the cap (it may grow while read)."""
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(descriptor)
        _check_regular(path, source, status)
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, _READ_CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:  # it grew since its stat, or is one that says 0 bytes (/proc, /sys)
        raise _too_big(source, len(data), grew=True)
    return data


def _not_readable(path: Path, source: str, error: OSError) -> MappingError:
    if error.errno == errno.ELOOP:
        problem = "is a symlink loop (its links lead back to themselves)"
    elif error.errno == errno.ENOENT and os.path.islink(path):
        problem = f"is a symlink to {os.readlink(path)}, which does not exist"
    else:
        problem = f"cannot be read ({error})"
    return short_error(MappingError(source, "(file)", problem, "a readable UTF-8 YAML file"))


def presets_dir() -> Path:
    """The folder of the packaged presets (``mappings/``)."""
    return Path(str(importlib.resources.files("emobridge.mappings")))


def list_presets() -> dict[str, Path]:
    """Preset name -> file, for every ``*.yaml`` shipped in ``mappings/``, sorted by name."""
    return {path.stem: path for path in sorted(presets_dir().glob("*.yaml"))}


def preset_is_faithful(name: str) -> bool:
    """Whether a preset claims to carry the emotions faithfully: a ``# emotion-faithful: yes`` line in it."""
    text = list_presets()[name].read_text(encoding="utf-8")
    return re.search(r"^#\s*emotion-faithful:\s*yes\b", text, re.MULTILINE | re.IGNORECASE) is not None


def mapping_path(spec: str | Path | None) -> Path:
    """The file a mapping spec reads: the file itself if it exists, else the preset of that name.

    ``None`` is the packaged default. Watch this path for hot reload.
    """
    if spec is None:
        return list_presets()[DEFAULT_SOURCE]
    path = Path(spec)
    name = str(spec)
    if os.path.lexists(path) or not PRESET_NAME.fullmatch(name):  # lexists: a broken link or a loop is the file
        return path  # a path that does not exist fails when it is read, naming the file
    presets = list_presets()
    if name in presets:
        return presets[name]
    raise short_error(MappingError(name, "(file)", "no such file, and no preset of that name",
                                   f"a YAML file path or a preset name: {', '.join(presets)}"))


class _Signature(NamedTuple):
    """What one ``stat`` says of a file: any change of its content changes one of these."""

    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


# A file's timestamps are as fine as its file system keeps them (ext3 and HFS+ a second, FAT two, others
# a clock tick of milliseconds): a save this soon after the one read may leave the signature as it was.
RACY_NS = 3_000_000_000


class MappingWatcher:
    """What hot reload needs: re-read a mapping spec when its file's content changes.

    ``poll()`` returns the new :class:`Mapping` when the file changed since the last good load
    (or since construction), ``None`` when it did not; a changed but bad file raises
    :class:`MappingError` once per distinct content (the caller keeps playing the old mapping),
    then ``poll()`` returns ``None`` until the content changes again.

    A poll costs one ``stat``: the file is read and hashed only when its signature (type, size, times,
    inode) changed and it is a regular file within :data:`MAX_FILE_BYTES`. A file that is refused from
    its ``stat`` alone (a FIFO, a device, a folder, 100 MB) is reported once per signature and never
    opened. A file read within :data:`RACY_NS` of its last change is read again (not parsed again unless
    its bytes differ) until a read comes later than that: a second save in the same timestamp tick,
    of the same size, leaves the signature as it was, and would otherwise be missed.
    """

    def __init__(self, spec: str | Path | None):
        self.spec = spec
        self.path = mapping_path(spec)
        self.source = DEFAULT_SOURCE if spec is None else str(spec)
        self._seen: _Signature | int | None = None  # the last look: a signature, an errno, or None (missing)
        self._digest: str | None = None               # of the bytes last read; None: none yet, or refused since
        self._racy = False                            # the last read came too soon after the file's change
        try:
            self._look()
        except MappingError:
            pass  # the mapping playing is the one the caller loaded; a bad file now is reported when it changes

    def poll(self) -> Mapping | None:
        data = self._look()
        return None if data is None else _parse_bytes(data, self.source)

    def _stat(self) -> tuple[os.stat_result | OSError, _Signature | int | None]:
        """One stat of the file: its result (or error) and what is compared from one poll to the next."""
        try:
            status = os.stat(self.path)
        except OSError as error:  # missing is None (the caller says so); a broken link, a loop: reported once
            return error, None if error.errno == errno.ENOENT and not os.path.islink(self.path) else error.errno
        return status, _Signature(stat.S_IFMT(status.st_mode), status.st_size, status.st_mtime_ns,
                                  status.st_ctime_ns, status.st_ino, status.st_dev)

    def _look(self) -> bytes | None:
        """The file's bytes when they changed since the last look, else None; a refused file raises, once."""
        status, seen = self._stat()
        if seen == self._seen and not self._racy:
            return None
        self._seen, self._racy = seen, False
        if seen is None:
            return None  # missing: the caller says so, and the same bytes saved again are no change
        try:
            if isinstance(status, OSError):
                raise _not_readable(self.path, self.source, status)  # a symlink loop, no permission
            _check_regular(self.path, self.source, status)  # from the stat alone: a FIFO or a device is not opened
            data = read_mapping_file(self.path, self.source)
        except MappingError as error:
            self._digest = None  # whatever is saved next is read, even the bytes that played before
            raise short_error(error) from None
        self._racy = abs(time.time_ns() - status.st_mtime_ns) < RACY_NS
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        return data
