"""The MIDI output port: one backend module in front of python-rtmidi.

Opens a virtual port that the DAW sees as an input (ALSA sequencer, JACK or CoreMIDI),
or connects to an existing port (loopMIDI on Windows, IAC on macOS). The note
bookkeeping (retrigger, release on panic and shutdown, refresh at bar lines) is
:class:`~.ports.BasePort`'s.

On JACK the port survives its peers. A small watch (a thread of its own and a portless JACK
client, through ctypes on the libjack that python-rtmidi loaded) looks every 0.1 s and notices:

- the JACK server going away (libjack's shutdown callback posts a semaphore): the port is marked
  down, sends become counted no-ops, and every quarter second the watch tries to reach JACK again
  (a refused connect, ~2 ms); when JACK is back it reopens the same port name (with
  ``--midi-connect``, connects it to that port once it is there), sends all-notes-off on the
  channels used, and the port is up again;
- a receiver that (re)connected since the last look: it gets a note-off for every key played
  that is not sounding now (:meth:`~.ports.BasePort.heal`), so what it held from before it went
  away ends at once, and nothing that sounds is cut; one away for less than a look is healed by
  the player's bar-line :meth:`~.ports.BasePort.refresh`;
- JACK no longer running its cycles (a frozen jackd): RtMidi's JACK output spins, holding the GIL,
  once its 16 kB ring buffer is full, which would freeze the whole daemon; so no more than
  :data:`RING_BUDGET` bytes are written unless the watch has seen a cycle since, and after
  :data:`STALL_AFTER` seconds without one the port is marked down until JACK runs again;
- with ``--midi-connect``, its destination going and coming back: the port is connected to it again.

libjack's own messages (``JackSocketClientChannel read fail``, ``Cannot connect to server socket``
on every try while JACK is away) are kept from the terminal. :meth:`MidiOut.health` is what the
daemon's main loop reads to log and report each change once. No other backend tells emobridge when
a receiver or the server comes and goes: there only the bar-line refresh heals a receiver that
missed a note-off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import rtmidi

from ..stderr import quiet_stderr
from ..errors import MidiBackendUnavailable, MidiPortError
from .ports import ALL_NOTES_OFF, CONTROL_CHANGE, BasePort, PortHealth

log = logging.getLogger(__name__)

BACKENDS: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}

# The longest --midi-port name (UTF-8 bytes) each backend takes. emobridge names its client after the port,
# and a JACK client name holds 63 bytes (JACK_CLIENT_NAME_SIZE 64 with its NUL; jack_client_open refuses more,
# which RtMidi reports as "JACK server not running?"); an ALSA sequencer client or port name holds 63 too.
NAME_LIMITS: dict[str, int] = {"jack": 63, "alsa": 63}

PROBE = 0.1        # seconds between the watch's looks while JACK is up (reads of JACK's shared memory)
RETRY = 0.25       # seconds between tries to reach JACK while it is gone (a refused socket connect: ~2 ms)
STALL_AFTER = 1.5  # seconds without a JACK cycle before the port counts as down
HEAL_AFTER = (0.05, 0.35)  # seconds after a receiver connects: JACK switches its graph at a later cycle
SETTLE_TIMEOUT = 0.1  # seconds the closing panic waits for JACK's next two cycles (a 1,024-frame period: 21 ms at 48 kHz)
RING_BUDGET = 8192  # bytes written without a JACK cycle seen since (RtMidi's ring holds 16383)
WATCH_CLIENT = "emobridge-watch"


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


def check_port_name(port_name: str, backends: list[str]) -> None:
    """A name too long for one of *backends* as one line naming the limit (before any backend is asked)."""
    size = len(port_name.encode("utf-8"))
    for backend in backends:
        limit = NAME_LIMITS.get(backend)
        if limit is not None and size > limit:
            raise MidiPortError(f"MIDI port name is {size} bytes long; {backend.upper()} allows at most {limit} "
                                f"(emobridge names its {backend.upper()} client after the port): use a shorter --midi-port")


def _client(backend: str, name: str, quiet: bool = True) -> rtmidi.MidiOut:
    if backend not in BACKENDS:
        raise MidiPortError(f"unknown MIDI backend {backend!r}: available are {', '.join(compiled_backends())}")
    if backend not in compiled_backends():
        raise MidiPortError(f"MIDI backend {backend!r} is not built into python-rtmidi here: available are {', '.join(compiled_backends())}")
    # Never let a JACK client start a server of its own: a half-configured jackd is worse than a clear error.
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    if backend == "jack":
        libjack()  # from now on libjack prints nothing to the terminal
    try:
        if quiet:
            with quiet_stderr():
                client = rtmidi.MidiOut(BACKENDS[backend], name=name)
        else:  # (the watch's thread: quieting fd 2 would swallow other threads' log lines)
            client = rtmidi.MidiOut(BACKENDS[backend], name=name)
    except rtmidi.RtMidiError as error:
        raise MidiBackendUnavailable(backend, _first_line(error), backend_hint(backend)) from None
    return client


def _port_taken(backend: str, port_name: str) -> bool:
    """True when some client already offers a readable port of this name (JACK/ALSA: 'name:name…')."""
    try:
        with quiet_stderr():
            probe = rtmidi.MidiIn(BACKENDS[backend], name="emobridge-probe")
    except rtmidi.RtMidiError:
        return False
    try:
        return any(p == port_name or p.startswith(f"{port_name}:{port_name}") for p in probe.get_ports())
    finally:
        probe.delete()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def backend_hint(backend: str | None = None) -> str:
    """What to do when no MIDI backend opens (or *backend* does not): one sentence for this platform."""
    if backend == "jack" or (backend is None and sys.platform.startswith("linux")):
        text = ("start a JACK server (apt install jackd2, then your audio setup's JACK, or 'jackd -d dummy &' "
                "to try it without sound)")
        if backend is None:
            text += ", or load the ALSA sequencer (sudo modprobe snd-seq)"
        return text
    if backend == "alsa":
        return "load the ALSA sequencer (sudo modprobe snd-seq) or use --midi-backend jack"
    if sys.platform == "darwin" or backend == "coremidi":
        return "CoreMIDI always opens on macOS: reinstall python-rtmidi (pip install --force-reinstall python-rtmidi)"
    return "Windows has no virtual ports: create one with loopMIDI and use --midi-connect NAME"


@dataclass(frozen=True)
class BackendPorts:
    """What a backend offers, in a DAW's terms: where emobridge can play *into*, and who sends MIDI."""

    destinations: list[str]  # MIDI inputs of other programs (a synth, a DAW): what --midi-connect takes
    sources: list[str]       # MIDI outputs of other programs (a keyboard, a DAW's clock)


def list_ports(backend: str = "auto") -> tuple[dict[str, BackendPorts], dict[str, str]]:
    """Per backend tried: its ports if it opens, else why not."""
    found: dict[str, BackendPorts] = {}
    failed: dict[str, str] = {}
    for name in (_auto_order() if backend == "auto" else [backend]):
        try:
            client = _client(name, "emobridge-list")
        except MidiPortError as error:
            failed[name] = str(error)
            continue
        destinations = client.get_ports()
        client.delete()
        with quiet_stderr():
            probe = rtmidi.MidiIn(BACKENDS[name], name="emobridge-list")
        sources = probe.get_ports()
        probe.delete()
        found[name] = BackendPorts(destinations, sources)
    return found, failed


def _abandon(client: Any) -> None:
    """Keep a client of a dead JACK server forever: its destructor would wait a second on the dead server
    (RtMidi's closePort), holding the GIL, and then call into it. The process's exit reclaims it."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(client))


class MidiOut(BasePort):
    """A :class:`~.ports.MidiPort` on python-rtmidi, for emobridge's notes and CCs (thread-safe).

    *watch* (JACK only): notice the server and receivers coming and going, as the module says.
    """

    def __init__(self, port_name: str = "emobridge", backend: str = "auto", connect: str | None = None,
                 *, watch: bool = True):
        super().__init__()
        check_port_name(port_name, _auto_order() if backend == "auto" else [backend])
        self.port_name = port_name
        self.connect = connect
        self.port, self.backend = self._open(backend, port_name, connect)
        self.description = f"{'connected to' if connect else 'virtual port'} '{connect or port_name}' ({self.backend})"
        self._up = True
        self._text = f"MIDI {self.description} is open"
        self._changes = 0
        self._dropped = 0
        self._dropped_before = 0  # dropped when the port was last up again (or opened)
        self._down_since = 0.0
        self._unconfirmed = 0  # bytes written since the watch last saw a JACK cycle
        self._watch: _JackWatch | None = None
        if watch and self.backend == "jack" and libjack() is not None:
            self._watch = _JackWatch(self, libjack())
            self._watch.start()

    def _open(self, backend: str, port_name: str, connect: str | None) -> tuple[rtmidi.MidiOut, str]:
        candidates = _auto_order() if backend == "auto" else [backend]
        errors = []
        for name in candidates:
            try:
                client = _client(name, port_name)
            except MidiBackendUnavailable as error:
                if backend != "auto":
                    raise
                errors.append(f"{name}: {error.reason}")
                continue
            if connect is None:
                return self._open_virtual(client, name, port_name), name
            return self._connect(client, name, connect, port_name), name
        raise MidiPortError(f"no MIDI backend could be opened ({'; '.join(errors)}): {backend_hint()}")

    @staticmethod
    def _open_virtual(client: rtmidi.MidiOut, backend: str, port_name: str) -> rtmidi.MidiOut:
        if backend == "winmm":
            raise MidiPortError("Windows has no virtual MIDI ports: create one with loopMIDI and use --midi-connect NAME")
        if _port_taken(backend, port_name):
            # Two daemons on one port name would play over each other into the same DAW track.
            client.delete()
            raise MidiPortError(f"MIDI port '{port_name}' is already open ({backend}): another emobridge is running; "
                                "stop it or use --midi-port OTHER_NAME")
        try:
            client.open_virtual_port(port_name)
        except rtmidi.RtMidiError as error:
            client.delete()
            raise MidiPortError(f"could not open virtual MIDI port '{port_name}' on {backend} ({_first_line(error)})") from None
        return client

    @staticmethod
    def _connect(client: rtmidi.MidiOut, backend: str, wanted: str, port_name: str = "emobridge") -> rtmidi.MidiOut:
        ports = client.get_ports()
        matches = [i for i, p in enumerate(ports) if p == wanted] or [i for i, p in enumerate(ports) if wanted.lower() in p.lower()]
        if not matches:
            client.delete()
            listed = ", ".join(repr(p) for p in ports) or "none"
            raise MidiPortError(f"MIDI output port {wanted!r} not found on {backend}: available are {listed}")
        client.open_port(matches[0], name=port_name)  # our end is 'port_name:port_name' either way
        return client

    # --- the wire (BasePort calls these with its lock held) ---------------------
    def _write(self, message: list[int]) -> None:
        if not self._up:
            self._dropped += 1
            return
        if self._watch is not None:
            size = len(message) + 4  # RtMidi's ring keeps each message after its length (an int)
            if self._unconfirmed + size > RING_BUDGET:
                self._dropped += 1  # JACK has run no cycle for a while: a full ring would hang this thread
                return
            self._unconfirmed += size
        self.port.send_message(message)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()  # first, and without the lock: the watch may be waiting for it
        super().close()

    def _settle_locked(self) -> None:
        if self._watch is not None and self._up:
            self._watch.wait_for_cycles(2, SETTLE_TIMEOUT)

    def _close(self) -> None:
        port, self.port, self._up = self.port, None, False
        if port is None:
            return
        if self._watch is not None and not self._watch.server_alive():
            _abandon(port)  # JACK is gone: closing would block on it
        else:
            port.close_port()
            port.delete()
        if self._watch is not None:
            self._watch.close_client()

    # --- what the daemon reads ---------------------------------------------------
    def health(self) -> PortHealth:
        """Up or down, with one line for the log (read it from any thread; it never blocks on JACK)."""
        with self._lock:
            return PortHealth(self._up, self._text, self._changes, self._dropped)

    # --- what the watch does (from its own thread) ----------------------------------
    def _lost(self, reason: str, abandon: bool) -> None:
        """JACK went away (or stopped running): sends become counted no-ops. *abandon*: the client is dead
        (the port is reopened once JACK is back); else the same client runs again when JACK does."""
        with self._lock:
            dead = None
            if abandon and self.port is not None:
                dead, self.port = self.port, None
            if self._up:
                self._up = False
                self._changes += 1
                self._down_since = time.monotonic()
            elif dead is None:
                return  # down already, and nothing new
            self._text = (f"MIDI {self.description} is gone: {reason}; the music goes on without MIDI, "
                          "and the port comes back by itself")
        if dead is not None:
            _abandon(dead)

    def _back(self, client: rtmidi.MidiOut | None, how: str) -> None:
        """Up again: on *client* (a port reopened on a new server), or on the same one (JACK runs again)."""
        with self._lock:
            if client is not None:
                self.port = client
            self._up = True
            self._unconfirmed = 0
            self._changes += 1
            gone = time.monotonic() - self._down_since
            dropped, self._dropped_before = self._dropped - self._dropped_before, self._dropped
            self._text = (f"MIDI {self.description} is back ({how}) after {gone:.1f} s down; "
                          f"{dropped} messages were dropped since it was last up")
            if client is not None:  # a new server: nothing of ours sounds there; say so to whatever connects first
                for channel in sorted(self._channels_used):
                    self._write([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])
            else:  # the same server ran again: release what a receiver may hold from the stale ring
                self._heal_locked()

    def _cycle_seen(self) -> None:
        with self._lock:
            self._unconfirmed = 0

    def _reopen(self) -> rtmidi.MidiOut:
        """A fresh client on the JACK that is back, with the same port name (raises when it cannot). With
        --midi-connect the watch connects it to its destination (now, or once that is back too)."""
        client = _client("jack", self.port_name, quiet=False)
        try:
            client.open_virtual_port(self.port_name)
        except rtmidi.RtMidiError:
            client.delete()
            raise
        return client


class LibJack:
    """The few libjack calls the watch needs, bound with ctypes to the libjack that python-rtmidi loaded
    (its wheels bundle their own copy: a second copy in the process would be a second JACK library).

    No Python runs on libjack's threads or under its locks: Python there needs the GIL, which a thread
    calling python-rtmidi holds while it waits on libjack (and libjack holds the machine-wide JACK
    registry lock while it reports an error), so any Python callback could freeze every JACK client on
    the machine. The error and info functions are C's ``strlen`` (libjack's messages are dropped, not
    printed; ``EMOBRIDGE_JACK_MESSAGES=1`` leaves them on the terminal), the shutdown callback is C's
    ``sem_post`` on a semaphore the watch polls, and connections are polled, not called back.
    """

    NO_START_SERVER = 0x01
    IS_INPUT, IS_OUTPUT = 0x1, 0x2

    def __init__(self, lib: ctypes.CDLL, libc: ctypes.CDLL):
        self.lib, self.libc = lib, libc
        p, c = ctypes.c_void_p, ctypes.c_char_p
        self._sign(lib, "jack_client_open", p, [c, ctypes.c_int, ctypes.POINTER(ctypes.c_int)])
        self._sign(lib, "jack_client_close", ctypes.c_int, [p])
        self._sign(lib, "jack_activate", ctypes.c_int, [p])
        self._sign(lib, "jack_on_shutdown", None, [p, p, p])
        self._sign(lib, "jack_port_by_name", p, [p, c])
        self._sign(lib, "jack_port_connected", ctypes.c_int, [p])
        self._sign(lib, "jack_port_get_all_connections", ctypes.POINTER(c), [p, p])
        self._sign(lib, "jack_get_ports", ctypes.POINTER(c), [p, c, c, ctypes.c_ulong])
        self._sign(lib, "jack_connect", ctypes.c_int, [p, c, c])
        self._sign(lib, "jack_free", None, [p])
        self._sign(lib, "jack_get_cycle_times", ctypes.c_int, [p, ctypes.POINTER(ctypes.c_uint32),
                                                               ctypes.POINTER(ctypes.c_uint64),
                                                               ctypes.POINTER(ctypes.c_uint64),
                                                               ctypes.POINTER(ctypes.c_float)])
        self._sign(libc, "sem_init", ctypes.c_int, [p, ctypes.c_int, ctypes.c_uint])
        self._sign(libc, "sem_trywait", ctypes.c_int, [p])
        self.sem_post = ctypes.cast(libc.sem_post, p).value  # a C function pointer for jack_on_shutdown
        if not os.environ.get("EMOBRIDGE_JACK_MESSAGES"):
            silent = ctypes.cast(libc.strlen, p).value  # void (*)(const char *): reads the line, does nothing
            lib.jack_set_error_function.argtypes = lib.jack_set_info_function.argtypes = [p]
            lib.jack_set_error_function(silent)
            lib.jack_set_info_function(silent)

    @staticmethod
    def _sign(lib: ctypes.CDLL, name: str, restype: Any, argtypes: list[Any]) -> None:
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes

    def open(self, name: str) -> int | None:
        status = ctypes.c_int()
        client = self.lib.jack_client_open(name.encode(), self.NO_START_SERVER, ctypes.byref(status))
        return client or None

    def semaphore(self) -> Any:
        """A process-private POSIX semaphore (sem_t) that C code may post and the watch polls; None where unsupported."""
        sem = ctypes.create_string_buffer(64)  # sizeof(sem_t) is 16 or 32 on Linux
        return sem if self.libc.sem_init(sem, 0, 0) == 0 else None

    def posted(self, sem: Any) -> bool:
        return self.libc.sem_trywait(sem) == 0

    def cycle_frames(self, client: int) -> int | None:
        """The frame count at the start of JACK's current cycle (it moves only while JACK runs cycles)."""
        frames, usecs, next_usecs, period = ctypes.c_uint32(), ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_float()
        if self.lib.jack_get_cycle_times(client, ctypes.byref(frames), ctypes.byref(usecs), ctypes.byref(next_usecs),
                                         ctypes.byref(period)) != 0:
            return None
        return frames.value

    def _names(self, names: Any) -> list[str]:
        if not names:
            return []
        found, i = [], 0
        while names[i]:
            found.append(names[i].decode("utf-8", "replace"))
            i += 1
        self.lib.jack_free(names)
        return found

    def ports(self, client: int, pattern: str, flags: int) -> list[str]:
        return self._names(self.lib.jack_get_ports(client, pattern.encode(), b"midi", flags))

    def connections(self, client: int, port: int) -> set[str]:
        return set(self._names(self.lib.jack_port_get_all_connections(client, port)))


_libjack: LibJack | None = None
_libjack_tried = False
_libjack_lock = threading.Lock()


def _libjack_path() -> str | None:
    """The libjack mapped into this process (python-rtmidi's, bundled or the system's), else the system's."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and "/libjack" in fields[5] and ".so" in fields[5]:
                    return fields[5].strip()
    except OSError:
        pass
    return ctypes.util.find_library("jack")


def libjack() -> LibJack | None:
    """libjack through ctypes, bound once; None where it cannot be (then no watch: the port works as before)."""
    global _libjack, _libjack_tried
    with _libjack_lock:
        if not _libjack_tried:
            _libjack_tried = True
            path = _libjack_path()
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
                _libjack = LibJack(ctypes.CDLL(path), libc) if path else None
            except (OSError, AttributeError) as error:
                log.debug("no JACK watch: libjack could not be bound (%s)", error)
        return _libjack


class _JackWatch:
    """The thread and portless JACK client that notice JACK and receivers coming and going (see the module)."""

    def __init__(self, out: MidiOut, jack: LibJack):
        self.out = out
        self.jack = jack
        self.full_name = f"{out.port_name}:{out.port_name}"  # our port, the same in both modes
        self.client: int | None = None
        self.jport: int | None = None  # our port's jack_port_t*, as this client sees it
        self._knows_port = False  # our port was found by its name (JACK renames a client whose name is taken)
        self._shutdown = jack.semaphore()  # posted by libjack (in C) when the server goes away
        self._stop = threading.Event()
        self._receivers: set[str] = set()  # the ports ours fed at the last look
        self._heals: list[float] = []  # when to heal next
        self._heal_before: int | None = None  # the second heal repeats the first (lost if JACK's graph was late)
        self._frames: int | None = None
        self._cycle_at = time.monotonic()
        self._stalled = False
        self._logged = ""
        self._destination: str | None = None  # --midi-connect: the full name of the port we fed last
        self._next_connect = 0.0
        self._thread = threading.Thread(target=self._run, name="midi-watch", daemon=True)
        if self._open_client():
            self._knows_port = self.jport is not None
            if self._knows_port:
                self._receivers = self.jack.connections(self.client, self.jport)
            else:
                log.debug("MIDI watch: no JACK port named %s (a renamed client?): only JACK's comings and goings "
                          "are watched", self.full_name)

    # --- the thread ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pause = self._look()
            except Exception:  # the watch must outlive any surprise; it looks again a little later
                log.debug("MIDI watch: a look failed", exc_info=True)
                pause = RETRY
            self._stop.wait(pause)

    def _gone(self) -> bool:
        return self._shutdown is not None and self.jack.posted(self._shutdown)

    def _look(self) -> float:
        """One look: returns the seconds until the next."""
        if self.client is not None and self._gone():
            self.close_client()
            self.out._lost("the JACK server went away", abandon=True)
        if self.client is None and not self._open_client():
            return RETRY  # (the port went down when the server did; a watch that cannot look changes nothing)
        if self.jport is None and self._knows_port and self.out.port is not None:
            self.out._lost("its JACK server restarted", abandon=True)  # between two looks
        if self.out.port is None and not self._reopen():
            return RETRY
        now = time.monotonic()
        self._check_cycles(now)
        if self.out.connect is not None and self.out._up:
            self._reconnect()
        self._check_receivers(now)
        if self._heals and self._heals[0] <= now:
            self._heals.pop(0)
            if self.out._up:
                first = len(self._heals) == len(HEAL_AFTER) - 1
                mark = self.out.mark()
                self.out.heal(None if first else self._heal_before)
                self._heal_before = mark
        return min([PROBE] + [max(0.0, at - now) for at in self._heals[:1]])

    def _check_receivers(self, now: float) -> None:
        """A port that ours feeds now and did not at the last look: a receiver (re)connected, to be healed.
        (One away for less than a look is not seen: the bar-line refresh is for that.)"""
        if not self._knows_port or self.jport is None:
            return
        receivers = self.jack.connections(self.client, self.jport)
        if receivers - self._receivers:
            self._heals = [now + delay for delay in HEAL_AFTER]
        self._receivers = receivers

    def _open_client(self) -> bool:
        while self._shutdown is not None and self.jack.posted(self._shutdown):
            pass  # a post from a client closed before
        client = self.jack.open(WATCH_CLIENT)
        if client is None:
            return False
        if self._shutdown is not None:
            self.jack.lib.jack_on_shutdown(client, self.jack.sem_post, ctypes.addressof(self._shutdown))
        self.jack.lib.jack_activate(client)
        self.client = client
        self.jport = self.jack.lib.jack_port_by_name(client, self.full_name.encode()) or None
        self._frames, self._cycle_at = None, time.monotonic()
        return True

    def close_client(self) -> None:
        client, self.client, self.jport = self.client, None, None
        if client is not None:
            self.jack.lib.jack_client_close(client)  # on a dead server it fails at once (no server to wait for)

    def _reopen(self) -> bool:
        """Our port on the JACK that is here now; False while it cannot be (its name is taken)."""
        if self.jport is not None:
            self._say(f"MIDI port {self.full_name} not reopened yet: another client holds that name")
            return False
        try:
            client = self.out._reopen()
        except (MidiPortError, rtmidi.RtMidiError) as error:
            self._say(f"MIDI port {self.full_name} not reopened yet: {_first_line(error)}")
            return False
        self.jport = self.jack.lib.jack_port_by_name(self.client, self.full_name.encode()) or None
        self._knows_port = self.jport is not None
        self._receivers = set()
        self._next_connect = 0.0
        how = "JACK is back; the port was reopened"
        if self.out.connect is not None:
            how += f" and connects to {self.out.connect!r} whenever that is there"
        self.out._back(client, how)
        self._logged = ""
        self._frames, self._cycle_at, self._stalled = None, time.monotonic(), False
        if self.out.connect is not None:
            self._reconnect()
        return True

    def _check_cycles(self, now: float) -> None:
        frames = self.jack.cycle_frames(self.client)
        if frames is None:
            return
        if frames != self._frames:
            self._frames, self._cycle_at = frames, now
            self.out._cycle_seen()
            if self._stalled:
                self._stalled = False
                self.out._back(None, "JACK runs its cycles again")
        elif not self._stalled and now - self._cycle_at > STALL_AFTER:
            self._stalled = True
            self.out._lost(f"JACK has run no cycle for {now - self._cycle_at:.1f} s (is jackd frozen?)", abandon=False)

    def _reconnect(self) -> None:
        """--midi-connect: when our port feeds nothing (its destination went and came back), feed it again."""
        if not self._knows_port or self.jport is None or self.jack.lib.jack_port_connected(self.jport) > 0:
            return
        now = time.monotonic()
        if now < self._next_connect:
            return
        inputs = self.jack.ports(self.client, "", LibJack.IS_INPUT)
        wanted = self.out.connect or ""
        matches = [p for p in inputs if p == self._destination] or [p for p in inputs if p == wanted] or \
                  [p for p in inputs if wanted.lower() in p.lower()]
        if not matches:
            return
        self._next_connect = now + 1.0  # a refused connection is tried again once a second, not at every look
        if self.jack.lib.jack_connect(self.client, self.full_name.encode(), matches[0].encode()) == 0:
            self._destination = matches[0]
            log.debug("MIDI: connected %s to %s again", self.full_name, matches[0])

    def wait_for_cycles(self, cycles: int, timeout: float) -> bool:
        """Until JACK has begun *cycles* more cycles; False after *timeout* seconds or when JACK is gone.

        Two are what a message written now needs to have left: the cycle running now may already have
        taken what RtMidi's ring held, so it is the next one that carries it to the port."""
        if self.client is None or self._gone():
            return False
        frames = self.jack.cycle_frames(self.client)
        deadline = time.monotonic() + timeout
        while frames is not None and cycles > 0 and time.monotonic() < deadline:
            time.sleep(0.001)
            if self._gone():
                return False
            now = self.jack.cycle_frames(self.client)
            if now != frames:
                frames, cycles = now, cycles - 1
        return cycles <= 0

    def server_alive(self) -> bool:
        """JACK is there and ran a cycle within the last half second (closing our port will not block)."""
        if self.client is None or self._gone():
            return False
        frames = self.jack.cycle_frames(self.client)
        if frames is None:
            return False
        deadline = time.monotonic() + 0.5
        while frames == self._frames and time.monotonic() < deadline:  # the watch saw this cycle: wait for one more
            time.sleep(0.01)
            if self._gone():
                return False
            if self.jack.cycle_frames(self.client) != frames:
                return True
        return frames != self._frames

    def _say(self, text: str) -> None:
        if text != self._logged:
            self._logged = text
            log.debug("%s", text)
