"""A real JACK server and a real JACK MIDI input client for the tests."""

from __future__ import annotations

import glob
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import pytest
import rtmidi

from emobridge.live.clock import fit_line
from emobridge.outputs.clock_in import read_queue

os.environ.setdefault("JACK_NO_START_SERVER", "1")


def jack_module() -> ModuleType:
    """The JACK-Client package's ``jack`` module (the test extra), or a failed test in CI and a skip elsewhere."""
    try:
        import jack  # the JACK-Client package
    except (ImportError, OSError) as error:  # OSError: the package is there, libjack is not
        if os.environ.get("CI"):
            pytest.fail(f"the JACK-Client package (the test extra) is required in CI: {error}")
        pytest.skip(f"this test uses JACK-Client: pip install '.[test]' ({error})")
    return jack


def jack_running() -> bool:
    try:
        probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="emobridge-probe")
    except rtmidi.RtMidiError:
        return False
    probe.delete()
    return True


def jack_command(*args: str) -> bool:
    """Run a JACK example client (jack_connect, jack_disconnect, jack_lsp) on this process's server."""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    # Three tries: on a busy machine, beside the other pytest worker's clients coming and going, an example
    # client now and then fails to open its own connection to the server (once in a loaded run: jack_connect).
    for attempt in range(3):
        try:
            if subprocess.run(list(args), capture_output=True, env=env, timeout=10).returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.05 * (attempt + 1))
    return False


def jack_ports() -> list[str]:
    """Every port on this process's server, as jack_lsp lists them ([] when it cannot tell)."""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    try:
        return subprocess.run(["jack_lsp"], capture_output=True, text=True, env=env, timeout=10).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return []


class JackServer:
    """``jackd -d dummy`` under a private name, unless a server already runs (as in CI).

    With *name*, always a private server of that name (and this process's clients use it, through
    ``JACK_DEFAULT_SERVER``): one that a test may kill and start again without disturbing others.
    A killed server's entry in JACK's shared registry stays taken (there are 8 for the whole machine)
    until a server of the same name starts again: after a test that kills one, call :func:`reclaim`.
    """

    def __init__(self, name: str | None = None) -> None:
        self.process: subprocess.Popen | None = None
        self.name = name

    def start(self) -> str:
        if self.name is None and jack_running():
            return "existing"
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RuntimeError("no JACK server runs and jackd is not installed: apt-get install jackd2 (CI does this in .ci/run)")
        name = self.name or f"emobridge-test-{os.getpid()}"
        os.environ["JACK_DEFAULT_SERVER"] = name
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
        output = tempfile.TemporaryFile(mode="w+")  # what jackd says, for the error when it does not start
        self.process = subprocess.Popen([jackd, "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                                        stdout=output, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while not jack_running():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output.seek(0)
                said = " / ".join(line.strip() for line in output.read().splitlines()[-6:])
                raise RuntimeError(f"jackd -n {name} -d dummy did not start: {said}")
            time.sleep(0.05)
        return name

    def kill(self) -> None:
        """The server dies at once (SIGKILL): no goodbye to its clients, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def reclaim(name: str, pids: tuple[int, ...] = ()) -> None:
    """Leave no trace of private server *name*: stop what is left of it (*pids*: the jackd processes it ran, which
    may outlive a test killed midway) and free its entry in JACK's shared registry, which a killed server keeps
    until a server of the same name starts and stops cleanly. Touches no environment of this process."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)  # a frozen one cannot hear SIGTERM
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    jackd = shutil.which("jackd")
    if jackd is None:
        return
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1", JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    process = subprocess.Popen([jackd, "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "5"], capture_output=True, env=env, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        time.sleep(1.0)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for left in glob.glob(f"/dev/shm/jack_sem.{os.getuid()}_{glob.escape(name)}_*"):  # its dead clients' semaphores
        try:
            os.remove(left)
        except OSError:
            pass


def _jack_figure(tool: str) -> int:
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    try:
        return int(subprocess.run([tool], capture_output=True, text=True, env=env, timeout=5).stdout.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        raise RuntimeError(f"{tool} could not read the JACK server's figure") from None


def jack_rate() -> int:
    """Frames a second on the JACK server."""
    return _jack_figure("jack_samplerate")


def jack_period() -> float:
    """Seconds per JACK process cycle: MIDI between JACK clients moves once per cycle."""
    return _jack_figure("jack_bufsize") / jack_rate()


@dataclass(frozen=True)
class Received:
    time: float  # time.monotonic() at arrival (when the callback ran)
    message: tuple[int, ...]
    jack_time: float = 0.0  # seconds on JACK's frame clock, from RtMidi's timestamps: free of callback wake-up jitter

    @property
    def kind(self) -> int:
        return self.message[0] & 0xF0

    @property
    def channel(self) -> int:
        return self.message[0] & 0x0F

    @property
    def is_note_on(self) -> bool:
        return self.kind == 0x90 and self.message[2] > 0

    @property
    def is_note_off(self) -> bool:
        return self.kind == 0x80 or (self.kind == 0x90 and self.message[2] == 0)


CONNECT_SETTLE = 0.2  # seconds
QUEUE_SIZE = 1 << 16  # messages RtMidi keeps for a reader (its default, 100, is a second of a busy part)


class Closable(Protocol):
    def close(self) -> None: ...


_OPEN: set[Closable] = set()  # the receivers and monitors a test has not closed yet (it failed before it could)


def close_leftovers() -> int:
    """Close every receiver and monitor still open (after each test, by conftest): a test that fails midway
    must not leave its jack_midi_dump running or its client on the server. Returns how many there were."""
    left = list(_OPEN)
    for receiver in left:
        try:
            receiver.close()
        except Exception:  # noqa: BLE001 - the server may be gone; what matters is that nothing stays
            pass
        _OPEN.discard(receiver)
    return len(left)


class Listening:
    """Waiting on what a receiver has heard; a subclass gives its ``snapshot()``."""

    def snapshot(self) -> list[Received]:
        raise NotImplementedError

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(m) for m in self.snapshot()):
                return True
            time.sleep(0.02)
        return False

    def settle(self, quiet: float = 0.25, timeout: float = 3.0) -> list[Received]:
        """Everything received once nothing more arrives for *quiet* seconds: a sender's last messages (its
        note-offs at exit) reach the callback a little after the sender is gone, later still on a busy machine."""
        deadline = time.monotonic() + timeout
        count = -1
        while time.monotonic() < deadline and len(self.snapshot()) != count:
            count = len(self.snapshot())
            time.sleep(quiet)
        return self.snapshot()


class JackReceiver(Listening):
    """A JACK MIDI input client connected to the first output port whose name contains *pattern*."""

    def __init__(self, pattern: str | None, timeout: float = 15.0, virtual: str | None = None,
                 client_name: str = "emobridge-test-receiver"):
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.client_name = client_name  # a unique one lets a test (dis)connect it by name: f"{client_name}:in"
        # No callback: python-rtmidi would run it in JACK's process thread, which then waits for the GIL, and a
        # client late for its cycle loses that cycle's events (70 of 2,000 CCs beside two busy Python threads at
        # the default 5 ms switch interval; none read from RtMidi's own queue). A reader thread empties the queue.
        self.client = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client_name, queue_size_limit=QUEUE_SIZE)
        self.client.ignore_types(sysex=False, timing=False, active_sense=True)
        self.jack_clock = 0.0  # seconds: the sum of RtMidi's deltas, JACK's time of each message since the first
        self._reading = threading.Event()
        self._reader = threading.Thread(target=read_queue, args=(self.client, self._keep, self._reading),
                                        name=f"{client_name}-reader", daemon=True)
        self._reader.start()
        _OPEN.add(self)
        if virtual:  # a port that others connect to (what --midi-connect opens)
            self.client.open_virtual_port(virtual)
            self.port_name = virtual
            return
        deadline = time.monotonic() + timeout
        while True:
            ports = self.client.get_ports()
            match = [i for i, p in enumerate(ports) if pattern in p]
            # Ports are opened by index: another client's port coming or going in between shifts the list,
            # so the index is checked against the name again, and the open retried if it moved.
            if match and self._open(match[0], ports[match[0]]):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no JACK MIDI port matching {pattern!r} appeared (ports: {ports})")
            time.sleep(0.05)
        self.port_name = ports[match[0]]
        # jack_connect returns once the server has recorded the connection; its process thread switches to the
        # new graph at a later cycle, which on a busy machine can be after a sender's first messages. Let it settle.
        time.sleep(CONNECT_SETTLE)

    def _open(self, index: int, name: str) -> bool:
        try:
            self.client.open_port(index, name="in")
        except rtmidi.InvalidPortError:
            return False
        if self.client.get_port_name(index) != name:  # the list moved under us: connected to another port
            self.client.close_port()
            return False
        return True

    def _keep(self, event: tuple[list[int], float]) -> None:
        message, delta = event
        with self.lock:
            self.jack_clock += delta
            self.messages.append(Received(time.monotonic(), tuple(message), self.jack_clock))

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        if self._reading.is_set():
            return
        self._reading.set()
        self._reader.join(timeout=5)
        self.client.close_port()
        self.client.delete()
        _OPEN.discard(self)


class MidiDump:
    """``jack_midi_dump``, JACK's own C MIDI monitor, on an input port of its own: every event with its frame on
    JACK's clock. A process apart from the test's: while the test's own threads (a player, a JACK-native port's
    callback) hold this process up, it still reads every cycle. When python-rtmidi's receivers ran their callback
    in JACK's process thread, one lost 4 of 384 clock pulses in a CI run where jack_midi_dump had them all, and
    in one full test run the five note-offs that a daemon stopped by a burst of signals sends in one cycle."""

    def __init__(self, name: str):
        if shutil.which("jack_midi_dump") is None:  # a JACK without its example clients
            message = "MIDI tests hear JACK with jack_midi_dump: apt-get install jackd2 (CI has it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.rate = jack_rate()
        self.port = f"{name}:input"
        self.got: list[tuple[int, tuple[int, ...], float]] = []  # (frame, bytes, time.monotonic() when read)
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        # -a: each event's frame, counted from the monitor's start; stdbuf: a line as each event comes
        self.process = subprocess.Popen(["stdbuf", "-oL", "jack_midi_dump", "-a", name], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        _OPEN.add(self)
        deadline = time.monotonic() + 10
        while self.port not in jack_ports():
            assert time.monotonic() < deadline and self.process.poll() is None, "jack_midi_dump did not start"
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.process.stdout:  # "  57856: 90 3c 64 note on  (channel  0): pitch  60, velocity 100"
            frame, _, text = line.partition(":")
            data = list(itertools.takewhile(lambda word: re.fullmatch("[0-9a-f]{2}", word), text.split()))
            if frame.strip().isdigit() and data:
                self.got.append((int(frame), tuple(int(b, 16) for b in data), time.monotonic()))

    def connect(self, source: str) -> None:
        assert jack_command("jack_connect", source, self.port), f"could not connect {source} to {self.port}"

    def messages(self) -> list[tuple[float, tuple[int, ...]]]:
        """(seconds on JACK's frame clock, bytes), from the first message on."""
        got = list(self.got)
        first = got[0][0] if got else 0
        return [((frame - first) / self.rate, message) for frame, message, _ in got]

    def close(self) -> None:
        _OPEN.discard(self)
        if self.process.poll() is None:
            # SIGHUP, not SIGTERM: stopped by SIGTERM, jack_midi_dump cost the server a cycle (an xrun for every
            # client) in 16 of 19 closes here, by SIGKILL in 9 of 11; by SIGHUP in none of 19, idle or under load
            self.process.send_signal(signal.SIGHUP)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.reader.join(timeout=5)


class DumpReceiver(MidiDump, Listening):
    """What :class:`JackReceiver` offers (snapshot, wait_for, settle), heard through jack_midi_dump: for the
    tests whose verdict is every note released at a stop, which one lost cycle would turn into stuck notes."""

    def __init__(self, pattern: str, timeout: float = 15.0):
        super().__init__(f"emobridge-test-dump-{os.getpid()}-{next(_DUMPS)}")
        finder = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="emobridge-test-finder")
        try:
            deadline = time.monotonic() + timeout
            while not (match := [p for p in finder.get_ports() if pattern in p]):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no JACK MIDI port matching {pattern!r} appeared")
                time.sleep(0.05)
        finally:
            finder.delete()
        self.port_name = match[0]
        self.connect(self.port_name)
        time.sleep(CONNECT_SETTLE)  # as JackReceiver: the new connection is live a cycle or more later

    def snapshot(self) -> list[Received]:
        return [Received(at, message, frame / self.rate) for frame, message, at in list(self.got)]


_DUMPS = itertools.count()


WALL_WINDOW = 1.0  # seconds of JACK time either side of a message whose readings place it on the wall clock


def wall_times(messages: list[Received]) -> list[float]:
    """Each message's time on the wall clock (time.monotonic), from its time on JACK's clock.

    A reading (*time*) comes late by however long the reader took to get to it (a busy machine: tens of ms),
    never early, so the reading nearest its JACK time in a second either side shows the offset between the two
    clocks; the window keeps a slow drift of JACK's dummy driver out of it (0.09% under three busy processes)."""
    bins: dict[int, float] = {}
    for m in messages:
        key = int(m.jack_time // WALL_WINDOW)
        bins[key] = min(bins.get(key, float("inf")), m.time - m.jack_time)
    times = []
    for m in messages:
        key = int(m.jack_time // WALL_WINDOW)
        offset = min(bins.get(k, float("inf")) for k in (key - 1, key, key + 1))
        times.append(m.jack_time + offset)
    return times


def stuck_notes(messages: list[Received]) -> dict[tuple[int, int], int]:
    """(channel, pitch) → note-ons not followed by a note-off (or an all-notes-off on the channel)."""
    held: dict[tuple[int, int], int] = {}
    for m in messages:
        if m.is_note_on:
            key = (m.channel, m.message[1])
            held[key] = held.get(key, 0) + 1
        elif m.is_note_off:
            held.pop((m.channel, m.message[1]), None)
    return {k: v for k, v in held.items() if v}


TIMING_ATTEMPTS = 3  # a shared machine can hold any thread up for a moment; a real timing fault shows in every attempt


CLOCK_LOSS_BOUND = 0.002  # of a take's length: the dummy driver keeps the wall clock within 0.1% when unhurt


@dataclass(frozen=True)
class ServerTrouble:
    """What the JACK server itself lost in a take: *xruns* it reported, and *clock_loss* seconds its frame clock fell
    behind the wall clock in *seconds* of take (the dummy driver drops the time of a cycle it started late)."""
    xruns: int
    clock_loss: float
    seconds: float

    def __bool__(self) -> bool:
        return self.xruns > 0 or self.clock_loss > CLOCK_LOSS_BOUND * self.seconds

    def __str__(self) -> str:
        return (f"JACK reported {self.xruns} xruns, its clock {self.clock_loss * 1000:.0f} ms behind the wall clock "
                f"in {self.seconds:.1f} s")


class JackWatch:
    """The JACK server's own health while a take plays, heard as one more client of it.

    JACK tells every client when any client, or its own driver, missed a cycle (an xrun): that cycle's MIDI is lost
    or late for everyone, whoever sent it, and a jack_midi_dump monitor's frame count, which counts the cycles it
    ran, falls behind by the cycles it missed. A take the server disturbed so says nothing about what emobridge
    sent; :class:`Takes` takes it again. The callback runs in JACK's notification thread, never in its process
    thread: this client has no process callback, so it costs the server no Python in a cycle."""

    def __init__(self) -> None:
        jack = jack_module()
        self.client = jack.Client(f"emobridge-test-watch-{os.getpid()}-{next(_WATCHES)}", no_start_server=True)
        self.rate = self.client.samplerate
        self.xruns: list[float] = []  # time.monotonic() of each notification; appended by the notification thread
        self.client.set_xrun_callback(lambda delayed_usecs: self.xruns.append(time.monotonic()))
        self.client.activate()
        _OPEN.add(self)
        time.sleep(CONNECT_SETTLE)  # a client joining the graph can itself cost the server a cycle

    def mark(self) -> tuple[int, float]:
        return self.client.frame_time, time.monotonic()

    def trouble(self, mark: tuple[int, float], start: float, end: float) -> ServerTrouble:
        """What the server lost between *start* and *end* (time.monotonic()), and its clock since *mark*."""
        time.sleep(0.05)  # a notification comes a moment after the cycle it is about
        frame, wall = mark
        seconds = time.monotonic() - wall
        jack_seconds = ((self.client.frame_time - frame) % 2**32) / self.rate  # JACK's frame counter wraps at 2^32
        xruns = sum(1 for t in list(self.xruns) if start <= t <= end + 0.05)
        return ServerTrouble(xruns, max(0.0, seconds - jack_seconds), seconds)

    def close(self) -> None:
        _OPEN.discard(self)
        try:
            self.client.deactivate()
        finally:
            self.client.close()


_WATCHES = itertools.count()


DISTURBED: list[str] = []  # every take retaken in this session, with what the server lost in it: conftest reports them


class Takes:
    """Takes of a real-time check until *clean* of them had a JACK server that lost nothing (at most *most* in
    all), for a verdict that a lost cycle would spoil: a count of messages, their spacing, their lateness.

        takes = Takes(watch)
        for take in takes:
            result = measure()
            if good(result):
                return
            take.failed(describe(result), during=(first.time, last.time))
        raise AssertionError(takes.report("what no take did"))

    *during* is when the take's own messages came (time.monotonic()); without it, the whole take. A test's
    monitor that closes costs the server a cycle as it goes (jack_midi_dump stops on a signal), after its messages.
    A fault of emobridge's shows in every take; a take the server disturbed (a busy machine, a late client) does
    not count against the check, and one it left alone does. When the server loses cycles in every take, the
    check fails and says so: that machine cannot judge real-time behaviour."""

    # at most 10: one CI run here needed four takes of the player's grid, the server losing 20-30 cycles in each of
    # the first three (a take is 3-8 s; only a disturbed take costs one more)
    def __init__(self, watch: JackWatch, clean: int = TIMING_ATTEMPTS, most: int = 10) -> None:
        self.watch, self.clean, self.most = watch, clean, most
        self.seen: list[tuple[str, ServerTrouble]] = []

    def __iter__(self):
        while sum(1 for _, trouble in self.seen if not trouble) < self.clean and len(self.seen) < self.most:
            self._mark = self.watch.mark()
            self._failed = False
            yield self
            if not self._failed:
                raise RuntimeError("a take that did not pass must say why: take.failed(...)")

    def failed(self, why: str, during: tuple[float, float] | None = None) -> ServerTrouble:
        """This take did not pass, for *why*; returns what the server lost in it (false when nothing)."""
        start, end = during or (self._mark[1], time.monotonic())
        trouble = self.watch.trouble(self._mark, start - 0.1, end)
        self.seen.append((why, trouble))
        if trouble:
            DISTURBED.append(f"{os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0]}: {why} ({trouble})")
        self._failed = True
        return trouble

    def report(self, what: str) -> str:
        clean = [why for why, trouble in self.seen if not trouble]
        disturbed = [f"{why} ({trouble})" for why, trouble in self.seen if trouble]
        if not clean:
            return f"{what}: JACK itself lost cycles in all {len(self.seen)} takes: " + "; ".join(disturbed)
        return (f"{what} in {len(clean)} takes JACK left alone: " + "; ".join(clean)
                + (f" (and in {len(disturbed)} it disturbed: " + "; ".join(disturbed) + ")" if disturbed else ""))


@dataclass(frozen=True)
class ClockSpacing:
    """How evenly MIDI clock pulses came: *mean_gap*, the tempo they keep, and the 95th-percentile *error* of each
    gap from the ideal one, seconds."""
    pulses: int
    mean_gap: float
    error: float

    @classmethod
    def of(cls, pulse_times: list[float], ideal_gap: float) -> ClockSpacing:
        gaps = [b - a for a, b in zip(pulse_times, pulse_times[1:])]
        if not gaps:
            return cls(len(pulse_times), 0.0, float("inf"))
        errors = sorted(abs(g - ideal_gap) for g in gaps)
        return cls(len(pulse_times), tempo_gap(pulse_times), errors[int(0.95 * len(errors))])

    def steady(self, ideal_gap: float, max_error: float, min_pulses: int) -> bool:
        """At the tempo (mean gap within 1 %) and each pulse where it belongs but for *max_error*."""
        return (self.pulses >= min_pulses and abs(self.mean_gap - ideal_gap) <= 0.01 * ideal_gap
                and self.error <= max_error)


def tempo_gap(pulse_times: list[float]) -> float:
    """The gap between pulses that the train keeps, seconds: the slope of the line through them.

    First to last over the count would make one late pulse at either edge of a window the tempo of the whole
    window (60 ms late in 4 s reads 1.5% fast); the line weighs it as one pulse of many."""
    return fit_line(pulse_times)[1]


def assert_steady_in_some_attempt(measure, max_error: float, min_pulses: int, watch: JackWatch) -> None:
    """*measure()* plays one window and returns its pulse times and the ideal gap between them (seconds), and when
    its pulses came (time.monotonic(), from and to); passes as soon as one window is steady.

    The bound stays tight: a player held up by its own work (a window redraw, a blocking call) is late in every
    window, while another process's burst on a busy machine disturbs only the window it fell in, and a window in
    which the JACK server lost cycles (*watch*) is taken again."""
    takes = Takes(watch)
    for take in takes:
        pulse_times, ideal_gap, during = measure()
        spacing = ClockSpacing.of(pulse_times, ideal_gap)
        if spacing.steady(ideal_gap, max_error, min_pulses):
            return
        take.failed(f"{spacing.pulses} pulses, mean gap {spacing.mean_gap * 1000:.2f} ms, "
                    f"95th-percentile error {spacing.error * 1000:.2f} ms", during)
    raise AssertionError(takes.report(f"no steady window (ideal gap {ideal_gap * 1000:.2f} ms, error bound "
                                      f"{max_error * 1000:.2f} ms, at least {min_pulses} pulses)"))
