"""Remote control over OSC: a TouchOSC / Open Stage Control page or a lighting desk drives the show.

Off by default. :class:`ControlServer` listens on UDP (``127.0.0.1`` unless given another
address: anyone who can reach the port can pause the music) and calls a
:class:`ControlHandler`. Addresses, with the default prefix ``/emobridge``:

    address                              arguments            does
    /emobridge/control/pause             none, or 1           pause the music (notes released)
    /emobridge/control/resume            none, or 1           resume
    /emobridge/control/playing           i|f 1 or 0           resume (1) or pause (0): for a toggle button
    /emobridge/control/force             s emotion            play this emotion whatever the face shows
    /emobridge/control/force             none, s "none"/""    release: follow the face again
    /emobridge/control/force/<emotion>   none, or 1 / 0       force <emotion> (1 or none), release it (0)
    /emobridge/control/release           none, or 1           release a forced emotion
    /emobridge/control/mapping           s preset or path     switch mapping (a preset name or a YAML file)
    /emobridge/control/volume            f 0..2               master volume: scales every velocity (1 = as mapped)
    /emobridge/control/panic             none, or 1           all notes off on every channel
    /emobridge/control/calibrate         none or 1; f secs    take the next 5 s (or the seconds given, 0.5-60) of
                                                              the face as its resting face: a new profile, in use
                                                              from the frame after; saved to --profile FILE if given

Emotions are the seven of :data:`emobridge.labels.EMOTIONS` (case does not matter). A
trigger's numeric argument follows push buttons: a press (non-zero) acts, a release (0) is
ignored, so one tap is one command. Numbers may be int, float or OSC true/false. Volume
outside 0..2 is clamped; NaN and infinities are refused.

A bundle's commands are carried out at once, in order (time tags are not waited for). The
server never replies.

Anything else (an unknown address, a wrong argument, a datagram that is not OSC) is logged
and ignored: at most one line per kind every few seconds, with a count of what was left out
since. An exception in the handler is caught and logged the same way, so no packet can stop
the server thread. Accepted commands are logged at most once a second per address.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pythonosc.parsing import osc_types
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_server import BlockingOSCUDPServer

from ..labels import EMOTIONS
from ..errors import ControlAddressError, ControlServerError
from ..log import LogLimiter

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9100
VOLUME_RANGE = (0.0, 2.0)
RELEASE_WORDS = ("", "none", "release", "off", "face")
MAX_TEXT = 1024  # longest string argument accepted (a mapping path)


class ControlHandler(Protocol):
    """What the control server drives (the daemon implements it)."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def force_emotion(self, name: str | None) -> None: ...  # None: follow the face again
    def set_mapping(self, name_or_path: str) -> None: ...
    def set_volume(self, scale: float) -> None: ...  # 0..2, already clamped
    def panic(self) -> None: ...
    def calibrate(self, seconds: float) -> None: ...  # 0.5..60, already checked


CALIBRATE_SECONDS = 5.0
CALIBRATE_RANGE = (0.5, 60.0)

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def parse_allow_list(hosts: Sequence[str]) -> frozenset[str]:
    """``--control-allow`` values (host names or addresses, comma-separated or repeated) → the IP addresses
    allowed to send commands, besides this machine's loopback. Each name is looked up once, here."""
    allowed: set[str] = set()
    for item in (h.strip() for text in hosts for h in text.split(",")):
        if not item:
            continue
        try:
            infos = socket.getaddrinfo(item.strip("[]"), None, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError):
            raise ControlAddressError(f"--control-allow host {item!r} does not resolve: give a host name or an IP "
                                      "address, e.g. --control-allow 192.168.1.20") from None
        allowed.update(info[4][0] for info in infos)
    return frozenset(allowed)


def parse_control_address(text: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` → (host, port); port 0 picks a free one."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") if host.startswith("[") else host
    if not host or not port.isdigit() or not 0 <= int(port) < 65536 or ":" in host and not text.startswith("["):
        raise ControlAddressError(f"control address {text!r} is not PORT or HOST:PORT (e.g. 9100 or 0.0.0.0:9100)")
    return host, int(port)


BUNDLE_HEAD = b"#bundle\x00"
MAX_BUNDLE_DEPTH = 8
SUPPORTED_TAGS = frozenset("ihfdsbrmtTFN[]")  # what python-osc's message parser knows


class _Malformed(Exception):
    """A datagram that is not OSC (or uses what this server does not parse)."""


def parse_datagram(data: bytes, depth: int = 0) -> list[OscMessage]:
    """The messages of an OSC datagram, bundles flattened in order; :class:`_Malformed` otherwise.

    python-osc's own bundle parser loops forever on a negative element size (1.10.2) and logs
    to the root logger for unknown type tags, so bundles are walked and type tags checked
    here, and only single messages go to python-osc.
    """
    if data.startswith(BUNDLE_HEAD):
        if depth >= MAX_BUNDLE_DEPTH or len(data) < 16:
            raise _Malformed("a bundle too short or nested too deep")
        messages, index = [], 16  # head and time tag
        while index < len(data):
            if index + 4 > len(data):
                raise _Malformed("a bundle element without its size")
            size = int.from_bytes(data[index:index + 4], "big", signed=True)
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise _Malformed("a bundle element size that does not fit")
            messages += parse_datagram(data[index:index + size], depth + 1)
            index += size
        return messages
    if not data.startswith(b"/"):
        raise _Malformed("neither a message nor a bundle")
    try:
        _address, index = osc_types.get_string(data, 0)
        if data[index:]:
            tags, _ = osc_types.get_string(data, index)
            if not tags.startswith(",") or not set(tags[1:]) <= SUPPORTED_TAGS:
                raise _Malformed("an unsupported type tag string")
        return [OscMessage(data)]
    except _Malformed:
        raise
    except Exception as error:  # python-osc's ParseError, and whatever else odd bytes provoke
        raise _Malformed(str(error)) from None


class _Refused(Exception):
    """An argument list that does not fit the address; the text says what was expected."""


def _text(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _number(args: tuple, what: str) -> float:
    if len(args) != 1 or not isinstance(args[0], (int, float)):  # bool is an int: OSC true/false
        raise _Refused(f"expected one number ({what}), got {_text(args)}")
    value = float(args[0])
    if not math.isfinite(value):
        raise _Refused(f"expected a finite number ({what}), got {_text(args)}")
    return value


def _pressed(args: tuple) -> bool:
    """A trigger's argument: none or non-zero acts; 0 (a button's release) does not."""
    if not args:
        return True
    return _number(args, "none, or 1 to act and 0 for a button release") != 0.0


def _emotion(value: Any) -> str | None:
    """An emotion name, or None for the release words."""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _Refused(f"expected an emotion name, got {_text(value)}")
    name = value.strip().lower()
    if name in RELEASE_WORDS:
        return None
    if name not in EMOTIONS:
        raise _Refused(f"unknown emotion {_text(value)}: use one of {', '.join(EMOTIONS)} or none")
    return name


class _ControlDispatcher(Dispatcher):
    """Parses every datagram itself: exact addresses, no bundle waits, nothing escapes."""

    def __init__(self, server: "ControlServer"):
        super().__init__(strict_timing=False)
        self.control = server

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        self.control._packet(data, client_address)
        return []  # never reply: a spoofed source address must not make us send anything


class _Server(BlockingOSCUDPServer):
    def verify_request(self, request, client_address) -> bool:
        return True  # let non-OSC datagrams through so that they are counted and logged

    def handle_error(self, request, client_address) -> None:  # the last safety net; never prints a traceback
        self._on_error(client_address)


class ControlServer:
    """The OSC control server; ``start()`` serves on a background thread until ``close()``."""

    def __init__(self, handler: ControlHandler, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 prefix: str = "/emobridge", log_interval: float = 5.0, allow: frozenset[str] | None = None):
        self.handler = handler
        # None: anyone who can reach the port; else these addresses and this machine's loopback
        self.allow = None if allow is None else frozenset(allow) | LOOPBACK
        self.refused = 0  # datagrams from hosts not allowed
        self.warn_refused = LogLimiter(log, log_interval)
        self.prefix = "/" + prefix.strip("/") + "/control" if prefix.strip("/") else "/control"
        self.commands: dict[str, Callable[[tuple], None]] = {
            "pause": self._pause, "resume": self._resume, "playing": self._playing,
            "force": self._force, "release": self._release, "mapping": self._mapping,
            "volume": self._volume, "panic": self._panic, "calibrate": self._calibrate,
        }
        self.commands.update({f"force/{name}": self._force_one(name) for name in EMOTIONS})
        self.warn_unknown = LogLimiter(log, log_interval)
        self.warn_arguments = LogLimiter(log, log_interval)
        self.warn_malformed = LogLimiter(log, log_interval)
        self.warn_handler = LogLimiter(log, log_interval, logging.ERROR)
        self.info = {name: LogLimiter(log, 1.0, logging.INFO) for name in self.commands}
        self.received = 0  # datagrams seen, for tests and status lines
        self.thread: threading.Thread | None = None
        try:
            self.server = _Server((host, port), _ControlDispatcher(self))
        except OSError as error:
            raise ControlServerError(f"OSC control server cannot listen on {host}:{port} ({error.strerror or error}): "
                                     f"pick another port, e.g. --control {port + 1 if port else DEFAULT_PORT}") from None
        self.server._on_error = lambda client: self.warn_malformed("OSC control: a datagram from %s failed", client)
        self.host = host
        self.port: int = self.server.server_address[1]

    @property
    def addresses(self) -> list[str]:
        return [f"{self.prefix}/{name}" for name in self.commands]

    def start(self) -> "ControlServer":
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="osc-control", daemon=True)
        self.thread.start()
        log.info("OSC control listening on %s:%d (%s/…)", self.host, self.port, self.prefix)
        if self.allow is None and self.host not in LOOPBACK and self.host != "localhost":
            log.warning("OSC control on %s:%d takes commands (pause, panic, switch mappings) from anyone who can "
                        "reach this machine; limit it with --control-allow HOST[,HOST...]", self.host, self.port)
        return self

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=2.0)
            self.thread = None
        self.server.server_close()

    def __enter__(self) -> "ControlServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- packets -------------------------------------------------------------
    def _packet(self, data: bytes, client: tuple[str, int]) -> None:
        self.received += 1
        if self.allow is not None and _host(client) not in self.allow:
            self.refused += 1
            self.warn_refused("OSC control: refused a datagram from %s, which is not in --control-allow", _client(client))
            return
        try:
            messages = parse_datagram(data)
        except (_Malformed, RecursionError):
            self.warn_malformed("OSC control: ignored a datagram from %s that is not OSC (%d bytes)",
                                _client(client), len(data))
            return
        for message in messages:
            self._message(message.address, tuple(message.params), client)

    def _message(self, address: str, args: tuple, client: tuple[str, int]) -> None:
        command = address[len(self.prefix) + 1:] if address.startswith(self.prefix + "/") else None
        action = self.commands.get(command) if command else None
        if action is None:
            self.warn_unknown("OSC control: ignored unknown address %s from %s (known: %s/{%s})",
                              _text(address), _client(client), self.prefix,
                              ",".join(c for c in self.commands if "/" not in c) + ",force/<emotion>")
            return
        try:
            action(args)
        except _Refused as refused:
            self.warn_arguments("OSC control: ignored %s from %s: %s", address, _client(client), refused)
        except Exception as error:  # the handler's own failure (a bad mapping file, ...): keep serving
            self.warn_handler("OSC control: %s failed: %s", address, str(error).splitlines()[0] if str(error) else
                              type(error).__name__)

    # --- commands ------------------------------------------------------------
    def _note(self, command: str, message: str, *args: object) -> None:
        self.info[command](message, *args)

    def _pause(self, args: tuple) -> None:
        if _pressed(args):
            self._note("pause", "remote: pause")
            self.handler.pause()

    def _resume(self, args: tuple) -> None:
        if _pressed(args):
            self._note("resume", "remote: resume")
            self.handler.resume()

    def _playing(self, args: tuple) -> None:
        playing = _number(args, "1 to play, 0 to pause") != 0.0
        self._note("playing", "remote: %s", "resume" if playing else "pause")
        self.handler.resume() if playing else self.handler.pause()

    def _force(self, args: tuple) -> None:
        if len(args) > 1:
            raise _Refused(f"expected one emotion name or none, got {_text(args)}")
        name = _emotion(args[0]) if args else None
        self._note("force", "remote: %s", f"force {name}" if name else "release the forced emotion")
        self.handler.force_emotion(name)

    def _force_one(self, name: str) -> Callable[[tuple], None]:
        def force(args: tuple) -> None:
            chosen = name if _pressed(args) else None
            self._note(f"force/{name}", "remote: %s", f"force {chosen}" if chosen else "release the forced emotion")
            self.handler.force_emotion(chosen)
        return force

    def _release(self, args: tuple) -> None:
        if _pressed(args):
            self._note("release", "remote: release the forced emotion")
            self.handler.force_emotion(None)

    def _mapping(self, args: tuple) -> None:
        if len(args) != 1 or not isinstance(args[0], str) or not args[0].strip() or len(args[0]) > MAX_TEXT \
                or "\x00" in args[0]:
            raise _Refused(f"expected one string, a preset name or a YAML file path, got {_text(args)}")
        self._note("mapping", "remote: mapping %s", args[0].strip())
        self.handler.set_mapping(args[0].strip())

    def _volume(self, args: tuple) -> None:
        low, high = VOLUME_RANGE
        scale = min(high, max(low, _number(args, f"volume {low:g} to {high:g}")))
        self._note("volume", "remote: volume %.2f", scale)
        self.handler.set_volume(scale)

    def _panic(self, args: tuple) -> None:
        if _pressed(args):
            self._note("panic", "remote: panic")
            self.handler.panic()

    def _calibrate(self, args: tuple) -> None:
        if not _pressed(args):
            return
        value = float(args[0]) if args else 1.0
        low, high = CALIBRATE_RANGE
        seconds = CALIBRATE_SECONDS if value == 1.0 else min(high, max(low, value))  # 1: a button's press
        self._note("calibrate", "remote: calibrate on the next %.1f s of the face", seconds)
        self.handler.calibrate(seconds)


def _host(client: tuple[str, int] | Any) -> str:
    try:
        return str(client[0])
    except (TypeError, IndexError):
        return "?"


def _client(client: tuple[str, int] | Any) -> str:
    try:
        return f"{client[0]}:{client[1]}"
    except (TypeError, IndexError):
        return "?"
