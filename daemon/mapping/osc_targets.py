"""OSC targets: where each goes, its preset (emobridge's own table, AbletonOSC, Reaper) and its messages.

A target is a UDP address, a *preset* (which addresses it understands) and the messages it
gets (all of its preset's unless chosen):

    preset       default port   messages it can get          sent as
    emobridge    (none)         emotion probs valence        the address table of ``outputs/osc.py``
                                arousal face tempo mode      under the prefix (``/emobridge/tempo f`` ...)
                                density faces voice source
    abletonosc   11000          tempo daw                    /live/song/set/tempo f BPM, on change
                                                             (AbletonOSC remote script, listens on 11000);
                                                             daw: what the mapping's daw: asks (outputs/daw.py)
    reaper       8000           tempo daw                    /tempo/raw f BPM, on change (Reaper's
                                                             Default.ReaperOSC pattern; 8000 is the listen
                                                             port Reaper suggests: use the one you set)

Command-line form (``--osc``), parsed by :func:`parse_target`::

    HOST:PORT                       emobridge table              127.0.0.1:9000
    HOST:PORT=PRESET                a preset                     127.0.0.1:8000=reaper
    HOST=PRESET, =PRESET            the preset's default port    =abletonosc (127.0.0.1:11000)
    ...=PRESET:MSG,MSG              only these messages          192.168.1.5:9000=emobridge:tempo,mode
    [IPv6]:PORT...                  an IPv6 address              [::1]:9000

Mapping-file form (a list under a key such as ``osc:``), read by :func:`targets_from_yaml`:
each entry is either the string form above or a table::

    osc:
      - {preset: abletonosc}                          # 127.0.0.1:11000
      - {host: 192.168.1.20, port: 8000, preset: reaper}
      - {host: 127.0.0.1, port: 9000, messages: [emotion, valence, arousal]}
      - "127.0.0.1:9001"

Both forms end in :class:`OscTargetSpec`, whose fields are checked in one place (the
``_check_*`` functions); the forms only add where in the text or the file a bad value is.
Sending is ``outputs.osc.OscSender``'s business.
"""

from __future__ import annotations

import reprlib
import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MappingError, OscTargetError

EMOBRIDGE_MESSAGES: tuple[str, ...] = ("emotion", "probs", "valence", "arousal", "face", "tempo", "mode", "density",
                                       "faces", "voice", "source", "status", "forced")
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Preset:
    """What a kind of target understands.

    A preset with a ``tempo_address`` gets only the tempo there, as one float in BPM; one without
    gets emobridge's address table under the prefix.
    """

    name: str
    default_port: int | None    # None: the target must say its port
    messages: tuple[str, ...]   # what a target of this preset can get
    tempo_address: str | None


PRESETS: dict[str, Preset] = {
    "emobridge": Preset("emobridge", None, EMOBRIDGE_MESSAGES, None),
    "abletonosc": Preset("abletonosc", 11000, ("tempo", "daw"), "/live/song/set/tempo"),
    "reaper": Preset("reaper", 8000, ("tempo", "daw"), "/tempo/raw"),
}
SYNTAX = "HOST:PORT, HOST:PORT=PRESET or =PRESET (presets: " + ", ".join(PRESETS) + "), e.g. 127.0.0.1:9000"


@dataclass(frozen=True)
class OscTargetSpec:
    """One OSC target: where, which preset, and which of the preset's messages (None: all)."""

    host: str
    port: int
    preset: str = "emobridge"
    messages: frozenset[str] | None = None

    def __post_init__(self) -> None:
        _check_messages(_check_preset(self.preset), self.messages)
        _check_host(self.host)
        _check_port(self.port)

    @property
    def selected(self) -> tuple[str, ...]:
        """The messages this target gets, in the preset's order."""
        return tuple(m for m in PRESETS[self.preset].messages if self.messages is None or m in self.messages)

    def describe(self) -> str:
        """The ``--osc`` form, which :func:`parse_target` reads back to an equal spec."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        extra = "" if self.messages is None else ":" + ",".join(self.selected)
        return f"{host}:{self.port}" + ("" if self.preset == "emobridge" and not extra else f"={self.preset}{extra}")


# --- the checks, one per field --------------------------------------------------------------

def _check_preset(name: object) -> Preset:
    if not isinstance(name, str) or name not in PRESETS:
        raise OscTargetError(f"unknown preset {_show(name)}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host.strip():
        raise OscTargetError(f"host {_show(host)} is not a host name or an IP address")
    return host.strip()


def _check_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise OscTargetError(f"port {_show(port)} is not a number from 1 to 65535")
    return port


def _check_messages(preset: Preset, messages: frozenset[str] | None) -> frozenset[str] | None:
    if messages is not None:
        unknown = sorted(set(messages) - set(preset.messages))
        if unknown or not messages:
            raise OscTargetError(f"preset {preset.name} has no message {', '.join(unknown) or '(none given)'}: "
                                 f"choose from {', '.join(preset.messages)}")
    return messages


@functools.lru_cache(maxsize=256)
def resolve_address(host: str, port: int) -> tuple[int, tuple]:
    """(address family, socket address) of a target: the one name lookup a target needs.

    Kept for the process: the check when ``--osc`` or a mapping is read and the sender built from
    it share one lookup (a failed lookup is not kept, so a typo fixed in a saved mapping is tried anew).
    """
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except (socket.gaierror, UnicodeError, IndexError):
        raise OscTargetError(f"host {host!r} does not resolve: check the name or use an IP address") from None
    return info[0], info[4]


# --- the --osc text form ------------------------------------------------------------------------

def parse_target(text: str, resolve: bool = True) -> OscTargetSpec:
    """The ``--osc`` form (see the module docstring); :class:`OscTargetError` says what is wrong.

    *resolve* looks the host up now, so that a typo stops the start with a clear line
    rather than failing later at every send.
    """
    try:
        spec = _parse(text)
        if resolve:
            resolve_address(spec.host, spec.port)
    except OscTargetError as error:
        raise OscTargetError(f"OSC target {text!r}: {error}") from None
    return spec


def _parse(text: str) -> OscTargetSpec:
    where, sep, preset_part = text.strip().partition("=")
    name, _, chosen = preset_part.partition(":")
    preset = _check_preset(name.strip().lower() if sep else "emobridge")
    messages = None
    if chosen.strip():
        messages = frozenset(m.strip().lower() for m in chosen.split(",") if m.strip())
    host, port = _host_port(where.strip(), preset)
    return OscTargetSpec(host, port, preset.name, messages)


def _host_port(where: str, preset: Preset) -> tuple[str, int]:
    if where.startswith("["):  # [IPv6] or [IPv6]:PORT
        host, bracket, rest = where[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise OscTargetError(f"not {SYNTAX}")
        port_text = rest[1:]
    elif where.count(":") == 1:
        host, _, port_text = where.partition(":")
    elif ":" in where:
        raise OscTargetError("write an IPv6 address in brackets, e.g. [::1]:9000")
    else:
        host, port_text = where, ""
    host = host.strip() or DEFAULT_HOST
    if not port_text:
        if preset.default_port is None:
            raise OscTargetError(f"has no port: {SYNTAX}")
        return host, preset.default_port
    return host, _check_port(int(port_text) if port_text.isdigit() else port_text)


# --- the mapping-file form -----------------------------------------------------------------------

_YAML_KEYS = ("host", "port", "preset", "messages")
_T = TypeVar("_T")


def targets_from_yaml(value: Any, source: str, path: str = "osc", resolve: bool = True) -> list[OscTargetSpec]:
    """A mapping file's list of targets (see the module docstring); a bad entry raises ``MappingError``."""
    allowed_entry = f"'HOST:PORT[=PRESET]' or a table with keys {', '.join(_YAML_KEYS)}; presets {', '.join(PRESETS)}"
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(source, path, f"expected a list, got {_show(value)}", f"a list of entries {allowed_entry}")
    specs = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(entry, str):
            specs.append(_field(source, where, allowed_entry, parse_target, entry, resolve))
        elif isinstance(entry, dict):
            specs.append(_yaml_entry(entry, source, where, resolve))
        else:
            raise MappingError(source, where, f"expected a string or a table, got {_show(entry)}", allowed_entry)
    return specs


def _yaml_entry(entry: dict, source: str, where: str, resolve: bool) -> OscTargetSpec:
    unknown = [str(k) for k in entry if k not in _YAML_KEYS]
    if unknown:
        raise MappingError(source, f"{where}.{unknown[0]}", "unknown key", f"keys {', '.join(_YAML_KEYS)}")
    preset = _field(source, f"{where}.preset", ", ".join(PRESETS), _check_preset, entry.get("preset", "emobridge"))
    host = _field(source, f"{where}.host", "a host name or an IP address", _check_host, entry.get("host", DEFAULT_HOST))
    port = entry.get("port", preset.default_port)
    if port is None:
        raise MappingError(source, f"{where}.port", "missing", f"a UDP port 1 to 65535 (preset {preset.name} has no default)")
    port = _field(source, f"{where}.port", "a UDP port 1 to 65535", _check_port, port)
    messages = _yaml_messages(entry.get("messages"), preset, source, f"{where}.messages")
    if resolve:
        _field(source, f"{where}.host", "a host name or an IP address", resolve_address, host, port)
    return OscTargetSpec(host, port, preset.name, messages)


def _yaml_messages(messages: Any, preset: Preset, source: str, where: str) -> frozenset[str] | None:
    allowed = f"a list of some of {', '.join(preset.messages)}"
    if messages is None:
        return None
    if not isinstance(messages, list) or not messages or not all(isinstance(m, str) for m in messages):
        raise MappingError(source, where, f"got {_show(messages)}", allowed)
    return _field(source, where, allowed, _check_messages, preset, frozenset(messages))


def _field(source: str, where: str, allowed: str, check: Callable[..., _T], *args: Any) -> _T:
    """*check*'s result, its :class:`OscTargetError` as a ``MappingError`` at *where* in the file."""
    try:
        return check(*args)
    except OscTargetError as error:
        raise MappingError(source, where, str(error), allowed) from None


def _show(value: Any) -> str:
    return reprlib.repr(value)
