"""Mapping files and presets: where a mapping spec is read from, and re-reading it when it changes (hot reload)."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from pathlib import Path

from ..errors import MappingError
from .model import DEFAULT_SOURCE, Mapping
from .parse import default_mapping_text, parse_mapping

PRESET_NAME = re.compile(r"[A-Za-z0-9_-]+")

MAX_FILE_BYTES = 1_000_000


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and check a mapping file or preset; ``None`` (or ``"default"``) gives the packaged default.

    *path* is a file when that file exists; otherwise a bare name names a preset (see the module docstring).
    """
    if path is None or (str(path) == DEFAULT_SOURCE and not Path(path).exists()):
        return parse_mapping(default_mapping_text(), DEFAULT_SOURCE)
    resolved, source = mapping_path(path), str(path)
    try:
        size = resolved.stat().st_size
        if size > MAX_FILE_BYTES:  # a mapping is a few kB; parsing megabytes of YAML would stall a reload
            raise MappingError(source, "(file)", f"is {size / 1e6:.1f} MB", f"a mapping file under {MAX_FILE_BYTES // 1000} kB")
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(source, "(file)", f"cannot be read ({error})", "a readable UTF-8 YAML file") from None
    return parse_mapping(text, source)


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
    if path.exists() or not PRESET_NAME.fullmatch(name):
        return path  # a path that does not exist fails when it is read, naming the file
    presets = list_presets()
    if name in presets:
        return presets[name]
    raise MappingError(name, "(file)", "no such file, and no preset of that name",
                       f"a YAML file path or a preset name: {', '.join(presets)}")


class MappingWatcher:
    """What hot reload needs: re-read a mapping spec when its file's content changes.

    ``poll()`` returns the new :class:`Mapping` when the file changed since the last good load
    (or since construction), ``None`` when it did not; a changed but bad file raises
    :class:`MappingError` once per distinct content (the caller keeps playing the old mapping),
    then ``poll()`` returns ``None`` until the content changes again.
    """

    def __init__(self, spec: str | Path | None):
        self.spec = spec
        self.path = mapping_path(spec)
        self._digest = self._read_digest()

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self) -> Mapping | None:
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return None
        self._digest = digest  # a bad file is reported once, not on every poll
        return load_mapping(self.spec)
