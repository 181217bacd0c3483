"""The MIDI output port: one backend module in front of python-rtmidi.

Opens a virtual port that the DAW sees as an input (ALSA sequencer, JACK or CoreMIDI),
or connects to an existing port (loopMIDI on Windows, IAC on macOS). The note
bookkeeping (retrigger, release on panic and shutdown) is :class:`~.ports.BasePort`'s.
"""

from __future__ import annotations

import os
import sys

import rtmidi

from ..stderr import quiet_stderr
from ..errors import MidiPortError
from .ports import BasePort

BACKENDS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}


def compiled_backends() -> list[str]:
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in BACKENDS.items() if api in compiled]


def _auto_order() -> list[str]:
    if sys.platform.startswith("linux"):
        # JACK when ALSA's sequencer is missing (containers, JACK-only setups)
        return ["alsa", "jack"] if os.path.exists("/dev/snd/seq") else ["jack"]
    if sys.platform == "darwin":
        return ["coremidi", "jack"]
    return ["winmm"]


def _client(backend: str, name: str) -> rtmidi.MidiOut:
    if backend not in BACKENDS:
        raise MidiPortError(f"unknown MIDI backend {backend!r}: available are {', '.join(compiled_backends())}")
    if backend not in compiled_backends():
        raise MidiPortError(f"MIDI backend {backend!r} is not built into python-rtmidi here: available are {', '.join(compiled_backends())}")
    # Never let a JACK client start a server of its own: a half-configured jackd is worse than a clear error.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        with quiet_stderr():
            client = rtmidi.MidiOut(BACKENDS[backend], name=name)
    except rtmidi.RtMidiError as error:
        raise MidiPortError(f"MIDI backend {backend!r} is unavailable ({_first_line(error)})") from None
    return client


def _port_taken(backend: str, port_name: str) -> bool:
    """True when some client already offers a readable port of this name (JACK/ALSA: 'name:name…')."""
    try:
        with quiet_stderr():
            probe = rtmidi.MidiIn(BACKENDS[backend], name=f"{port_name}-probe")
    except rtmidi.RtMidiError:
        return False
    try:
        return any(p == port_name or p.startswith(f"{port_name}:{port_name}") for p in probe.get_ports())
    finally:
        probe.delete()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def list_output_ports(backend: str = "auto") -> dict[str, list[str]]:
    """Output ports per usable backend (what ``--midi-connect`` accepts)."""
    ports: dict[str, list[str]] = {}
    for name in (_auto_order() if backend == "auto" else [backend]):
        try:
            client = _client(name, "emobridge-list")
        except MidiPortError:
            continue
        ports[name] = client.get_ports()
        client.delete()
    return ports


class MidiOut(BasePort):
    """A :class:`~.ports.MidiPort` on python-rtmidi, for emobridge's notes and CCs (thread-safe)."""

    def __init__(self, port_name: str = "emobridge", backend: str = "auto", connect: str | None = None):
        super().__init__()
        self.port_name = port_name
        self.port, self.backend = self._open(backend, port_name, connect)
        self.description = f"{'connected to' if connect else 'virtual port'} '{connect or port_name}' ({self.backend})"

    def _open(self, backend: str, port_name: str, connect: str | None) -> tuple[rtmidi.MidiOut, str]:
        candidates = _auto_order() if backend == "auto" else [backend]
        errors = []
        for name in candidates:
            try:
                client = _client(name, port_name)
            except MidiPortError as error:
                if backend != "auto":
                    raise
                errors.append(str(error))
                continue
            if connect is None:
                return self._open_virtual(client, name, port_name), name
            return self._connect(client, name, connect), name
        raise MidiPortError("no MIDI backend could be opened: " + "; ".join(errors))

    @staticmethod
    def _open_virtual(client: rtmidi.MidiOut, backend: str, port_name: str) -> rtmidi.MidiOut:
        if backend == "winmm":
            raise MidiPortError("Windows has no virtual MIDI ports: create one with loopMIDI and use --midi-connect NAME")
        if _port_taken(backend, port_name):
            # Two daemons on one port name would play over each other into the same DAW track.
            raise MidiPortError(f"MIDI port '{port_name}' is already open ({backend}): another emobridge is running; "
                                "stop it or use --midi-port OTHER_NAME")
        try:
            client.open_virtual_port(port_name)
        except rtmidi.RtMidiError as error:
            raise MidiPortError(f"could not open virtual MIDI port '{port_name}' on {backend} ({_first_line(error)})") from None
        return client

    @staticmethod
    def _connect(client: rtmidi.MidiOut, backend: str, wanted: str) -> rtmidi.MidiOut:
        ports = client.get_ports()
        matches = [i for i, p in enumerate(ports) if p == wanted] or [i for i, p in enumerate(ports) if wanted.lower() in p.lower()]
        if not matches:
            listed = ", ".join(repr(p) for p in ports) or "none"
            raise MidiPortError(f"MIDI output port {wanted!r} not found on {backend}: available are {listed}")
        client.open_port(matches[0])
        return client

    # --- the wire (BasePort calls these with its lock held) ---------------------
    def _write(self, message: list[int]) -> None:
        self.port.send_message(message)

    def _close(self) -> None:
        self.port.close_port()
        self.port.delete()
