"""OSC targets with presets: emobridge's own table, AbletonOSC and Reaper.

A target is a UDP address, a *preset* (which addresses it understands) and the messages it
gets (all of its preset's unless chosen):

    preset       default port   messages it can get          sent as
    emobridge    (none)         emotion probs valence        the table of ``osc.py`` under the prefix
                                arousal face tempo mode      (``/emobridge/tempo f`` ...)
                                density
    abletonosc   11000          tempo                        /live/song/set/tempo f BPM, on change
                                                             (AbletonOSC remote script, listens on 11000)
    reaper       8000           tempo                        /tempo/raw f BPM, on change (Reaper's
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

:class:`OscSender` sends to a list of targets with the method names of ``osc.OscOut``
(``send_emotion``, ``send_music``, ``close``), so the daemon can use it in its place. Send
errors (a refused port, an unreachable host) are logged once every few seconds, never raised.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..log import LogLimiter
from .osc import OscOut, encode
from ..errors import OscTargetError
from ..state import EmotionState

if TYPE_CHECKING:
    from ..perception.chain import FaceResult

log = logging.getLogger(__name__)

EMOBRIDGE_MESSAGES: tuple[str, ...] = ("emotion", "probs", "valence", "arousal", "face", "tempo", "mode", "density",
                                       "faces", "voice", "source")
ABLETONOSC_TEMPO = "/live/song/set/tempo"
REAPER_TEMPO = "/tempo/raw"
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Preset:
    name: str
    default_port: int | None    # None: the target must say its port
    messages: tuple[str, ...]   # what a target of this preset can get
    summary: str


PRESETS: dict[str, Preset] = {
    "emobridge": Preset("emobridge", None, EMOBRIDGE_MESSAGES, "emobridge's own address table"),
    "abletonosc": Preset("abletonosc", 11000, ("tempo",), f"AbletonOSC remote script: {ABLETONOSC_TEMPO} f"),
    "reaper": Preset("reaper", 8000, ("tempo",), f"Reaper's default OSC pattern: {REAPER_TEMPO} f"),
}
# Tempo values closer than this count as unchanged (BPM)
TEMPO_RESOLUTION = 0.01


@dataclass(frozen=True)
class OscTargetSpec:
    """One OSC target: where, which preset, and which of the preset's messages (None: all)."""

    host: str
    port: int
    preset: str = "emobridge"
    messages: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise OscTargetError(f"unknown OSC preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 < self.port < 65536:
            raise OscTargetError(f"OSC port {self.port!r} is not a number from 1 to 65535")
        if self.messages is not None:
            allowed = PRESETS[self.preset].messages
            unknown = sorted(set(self.messages) - set(allowed))
            if unknown or not self.messages:
                raise OscTargetError(f"OSC preset {self.preset} has no message {', '.join(unknown) or '(none given)'}: "
                                     f"choose from {', '.join(allowed)}")

    @property
    def selected(self) -> tuple[str, ...]:
        """The messages this target gets, in the preset's order."""
        return tuple(m for m in PRESETS[self.preset].messages if self.messages is None or m in self.messages)

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        extra = "" if self.messages is None else ":" + ",".join(self.selected)
        return f"{host}:{self.port}" + ("" if self.preset == "emobridge" and not extra else f"={self.preset}{extra}")


SYNTAX = "HOST:PORT, HOST:PORT=PRESET or =PRESET (presets: " + ", ".join(PRESETS) + "), e.g. 127.0.0.1:9000"


def parse_target(text: str, resolve: bool = True) -> OscTargetSpec:
    """The ``--osc`` form (see the module docstring); :class:`OscTargetError` says what is wrong."""
    where, sep, preset_part = text.strip().partition("=")
    preset, _, chosen = preset_part.partition(":")
    preset = preset.strip().lower() if sep else "emobridge"
    if preset not in PRESETS:
        raise OscTargetError(f"OSC target {text!r}: unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    messages = None
    if chosen.strip():
        messages = frozenset(m.strip().lower() for m in chosen.split(",") if m.strip())
    host, port = _host_port(where.strip(), text, PRESETS[preset])
    spec = OscTargetSpec(host, port, preset, messages)
    if resolve:
        check_resolves(spec.host, spec.port)
    return spec


def _host_port(where: str, text: str, preset: Preset) -> tuple[str, int]:
    if where.startswith("["):  # [IPv6] or [IPv6]:PORT
        host, bracket, rest = where[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise OscTargetError(f"OSC target {text!r} is not {SYNTAX}")
        port_text = rest[1:] if rest else ""
    elif where.count(":") == 1:
        host, _, port_text = where.partition(":")
    elif ":" in where:
        raise OscTargetError(f"OSC target {text!r}: write an IPv6 address in brackets, e.g. [::1]:9000")
    else:
        host, port_text = where, ""
    host = host.strip() or DEFAULT_HOST
    if not port_text:
        if preset.default_port is None:
            raise OscTargetError(f"OSC target {text!r} has no port: {SYNTAX}")
        return host, preset.default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise OscTargetError(f"OSC target {text!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def check_resolves(host: str, port: int) -> None:
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise OscTargetError(f"OSC target host {host!r} does not resolve: check the name or use an IP address") from None


_YAML_KEYS = ("host", "port", "preset", "messages")


def targets_from_yaml(value: Any, source: str, path: str = "osc", resolve: bool = True) -> list[OscTargetSpec]:
    """A mapping file's list of targets (see the module docstring); a bad entry raises ``MappingError``."""
    from ..errors import MappingError

    allowed_entry = f"'HOST:PORT[=PRESET]' or a table with keys {', '.join(_YAML_KEYS)}; presets {', '.join(PRESETS)}"
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(source, path, f"expected a list, got {_show(value)}", f"a list of entries {allowed_entry}")
    specs = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        try:
            if isinstance(entry, str):
                specs.append(parse_target(entry, resolve=resolve))
                continue
            if not isinstance(entry, dict):
                raise MappingError(source, where, f"expected a string or a table, got {_show(entry)}", allowed_entry)
            specs.append(_yaml_entry(entry, source, where, resolve))
        except OscTargetError as error:
            raise MappingError(source, where, str(error), allowed_entry) from None
    return specs


def _yaml_entry(entry: dict, source: str, where: str, resolve: bool) -> OscTargetSpec:
    from ..errors import MappingError

    unknown = [str(k) for k in entry if k not in _YAML_KEYS]
    if unknown:
        raise MappingError(source, f"{where}.{unknown[0]}", "unknown key", f"keys {', '.join(_YAML_KEYS)}")
    preset = entry.get("preset", "emobridge")
    if preset not in PRESETS:
        raise MappingError(source, f"{where}.preset", f"got {_show(preset)}", ", ".join(PRESETS))
    host = entry.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host.strip():
        raise MappingError(source, f"{where}.host", f"got {_show(host)}", "a host name or an IP address")
    port = entry.get("port", PRESETS[preset].default_port)
    if port is None:
        raise MappingError(source, f"{where}.port", "missing", f"a UDP port 1 to 65535 (preset {preset} has no default)")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise MappingError(source, f"{where}.port", f"got {_show(port)}", "a UDP port 1 to 65535")
    messages = entry.get("messages")
    allowed = PRESETS[preset].messages
    if messages is not None:
        if not isinstance(messages, list) or not messages or not all(isinstance(m, str) for m in messages):
            raise MappingError(source, f"{where}.messages", f"got {_show(messages)}",
                               f"a list of some of {', '.join(allowed)}")
        bad = [m for m in messages if m not in allowed]
        if bad:
            raise MappingError(source, f"{where}.messages", f"{bad[0]!r} is not a message of preset {preset}",
                               ", ".join(allowed))
        messages = frozenset(messages)
    spec = OscTargetSpec(host.strip(), port, preset, messages)
    if resolve:
        check_resolves(spec.host, spec.port)
    return spec


def _show(value: Any) -> str:
    import reprlib

    return reprlib.repr(value)


class _Table(OscOut):
    """osc.OscOut's own message logic (what to send when), collected instead of sent."""

    def __init__(self, prefix: str):
        super().__init__([], prefix)
        self.socket.close()  # this one never sends
        self.collected: list[tuple[str, tuple]] = []

    def send(self, name: str, *args: object) -> None:
        self.collected.append((name, args))

    def take(self) -> list[tuple[str, tuple]]:
        taken, self.collected = self.collected, []
        return taken


class _Route:
    def __init__(self, spec: OscTargetSpec):
        self.spec = spec
        self.selected = frozenset(spec.selected)
        try:
            info = socket.getaddrinfo(spec.host, spec.port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError, IndexError):
            raise OscTargetError(f"OSC target host {spec.host!r} does not resolve: check the name or use an IP address") from None
        self.family, self.sockaddr = info[0], info[4]
        self.last_tempo: float | None = None


class OscSender:
    """Sends each target its preset's messages; a drop-in for ``osc.OscOut`` (same methods)."""

    def __init__(self, targets: Sequence[OscTargetSpec], prefix: str = "/emobridge", error_interval: float = 5.0):
        self.targets = list(targets)
        self.routes = [_Route(spec) for spec in self.targets]
        self.prefix = "/" + prefix.strip("/")
        self.table = _Table(prefix)
        self.sockets: dict[int, socket.socket] = {}
        self.lock = threading.Lock()
        self.warn = LogLimiter(log, error_interval)
        self.closed = False

    def describe(self) -> str:
        return ", ".join(spec.describe() for spec in self.targets) or "none"

    # --- the OscOut interface -------------------------------------------------
    def send_emotion(self, state: EmotionState) -> None:
        """One processed frame: the emotion stream to emobridge-preset targets."""
        self._via_table("the emotion", lambda table: table.send_emotion(state))

    def send_source(self, ok: bool, name: str) -> None:
        """The camera (or file) lost (0) or back (1), to emobridge-preset targets."""
        self._via_table("the source state", lambda table: table.send_source(ok, name))

    def send_faces(self, faces: Sequence[FaceResult]) -> None:
        """The face count and the face voices' emotions, to emobridge-preset targets."""
        self._via_table("the faces", lambda table: table.send_faces(faces))

    def _via_table(self, what: str, collect: Callable[[_Table], None]) -> None:
        """Let the table decide what to send (osc.OscOut's logic), then send it to emobridge-preset targets."""
        try:
            with self.lock:
                collect(self.table)
                self._send_table(self.table.take())
        except Exception as error:  # never let OSC stop the music
            self.warn("OSC: sending %s failed (%s); still trying", what, error)

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        """Tempo, mode and density: the table at changes and bar starts; tempo presets on change only."""
        try:
            with self.lock:
                self.table.send_music(tempo, mode, density, bar_start)
                self._send_table(self.table.take())
                for route in self.routes:
                    if route.spec.preset != "emobridge" and "tempo" in route.selected:
                        self._send_tempo(route, float(tempo))
        except Exception as error:
            self.warn("OSC: sending the music state failed (%s); still trying", error)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for sock in self.sockets.values():
                sock.close()
            self.sockets.clear()

    # --- sending ---------------------------------------------------------------
    def _send_table(self, messages: list[tuple[str, tuple]]) -> None:
        for route in self.routes:
            if route.spec.preset != "emobridge":
                continue
            for name, args in messages:
                if name in route.selected:
                    self._sendto(route, encode(f"{self.prefix}/{name}", *args))

    def _send_tempo(self, route: _Route, tempo: float) -> None:
        if route.last_tempo is not None and abs(tempo - route.last_tempo) < TEMPO_RESOLUTION:
            return
        address = ABLETONOSC_TEMPO if route.spec.preset == "abletonosc" else REAPER_TEMPO
        if self._sendto(route, encode(address, tempo)):
            route.last_tempo = tempo

    def _sendto(self, route: _Route, data: bytes) -> bool:
        if self.closed:
            return False
        try:
            sock = self.sockets.get(route.family)
            if sock is None:
                sock = self.sockets[route.family] = socket.socket(route.family, socket.SOCK_DGRAM)
            sock.sendto(data, route.sockaddr)
            return True
        except OSError as error:
            self.warn("OSC to %s failed (%s); still trying", route.spec.describe(), error)
            return False
