"""The OSC control server over real UDP on loopback: every command, bad input ignored, a fuzz."""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from emobridge.errors import ControlAddressError, ControlServerError
from emobridge.live.control import ControlServer, parse_allow_list, parse_control_address
from emobridge.log import LogLimiter
from emobridge.labels import EMOTIONS


class Recorder:
    """A ControlHandler that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.lock = threading.Lock()
        self.fail_mapping = False

    def _add(self, *call) -> None:
        with self.lock:
            self.calls.append(call)

    def pause(self) -> None:
        self._add("pause")

    def resume(self) -> None:
        self._add("resume")

    def force_emotion(self, name) -> None:
        self._add("force", name)

    def set_mapping(self, name_or_path) -> None:
        if self.fail_mapping:
            raise ValueError("my.yaml: emotions.happy.tempo: expected [low, high] numbers")
        self._add("mapping", name_or_path)

    def set_volume(self, scale) -> None:
        self._add("volume", scale)

    def panic(self) -> None:
        self._add("panic")

    def calibrate(self, seconds) -> None:
        self._add("calibrate", seconds)

    def snapshot(self) -> list[tuple]:
        with self.lock:
            return list(self.calls)


@pytest.fixture
def served():
    handler = Recorder()
    server = ControlServer(handler, port=0, log_interval=60.0).start()
    client = SimpleUDPClient("127.0.0.1", server.port)
    yield server, handler, client
    server.close()


def settle(server: ControlServer, sent: int, timeout: float = 10.0) -> None:
    """Wait until the server has taken *sent* datagrams (UDP on loopback does not lose them here)."""
    deadline = time.monotonic() + timeout
    while server.received < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)


P = "/emobridge/control"


def test_every_command_reaches_the_handler(served):
    server, handler, client = served
    sends = [
        (f"{P}/pause", []), (f"{P}/resume", []), (f"{P}/pause", [1]), (f"{P}/resume", [1.0]),
        (f"{P}/playing", [0]), (f"{P}/playing", [1]),
        (f"{P}/force", ["happy"]), (f"{P}/force", ["SAD "]), (f"{P}/force", []), (f"{P}/force", ["none"]),
        (f"{P}/force/angry", []), (f"{P}/force/fear", [1]), (f"{P}/force/fear", [0]), (f"{P}/release", []),
        (f"{P}/mapping", ["cinematic"]), (f"{P}/mapping", ["/tmp/my mapping.yaml"]),
        (f"{P}/volume", [0.5]), (f"{P}/volume", [1]), (f"{P}/volume", [7.0]), (f"{P}/volume", [-1.0]),
        (f"{P}/panic", []), (f"{P}/panic", [1]),
    ]
    for address, args in sends:
        client.send_message(address, args)
    settle(server, len(sends))
    assert handler.snapshot() == [
        ("pause",), ("resume",), ("pause",), ("resume",),
        ("pause",), ("resume",),
        ("force", "happy"), ("force", "sad"), ("force", None), ("force", None),
        ("force", "angry"), ("force", "fear"), ("force", None), ("force", None),
        ("mapping", "cinematic"), ("mapping", "/tmp/my mapping.yaml"),
        ("volume", 0.5), ("volume", 1.0), ("volume", 2.0), ("volume", 0.0),
        ("panic",), ("panic",),
    ]


def test_calibrate_takes_a_press_or_seconds(served):
    server, handler, client = served
    sends = [[], [1], [True], [0], [3.0], [0.1], [600.0]]
    for args in sends:
        client.send_message(f"{P}/calibrate", args)
    client.send_message(f"{P}/calibrate", ["soon"])  # refused, logged
    settle(server, len(sends) + 1)
    assert handler.snapshot() == [("calibrate", 5.0), ("calibrate", 5.0), ("calibrate", 5.0),
                                  ("calibrate", 3.0), ("calibrate", 0.5), ("calibrate", 60.0)]


def test_button_releases_do_nothing(served):
    server, handler, client = served
    for name in ("pause", "resume", "panic", "release"):
        client.send_message(f"{P}/{name}", [0])
    settle(server, 4)
    assert handler.snapshot() == []


def test_every_emotion_can_be_forced(served):
    server, handler, client = served
    for name in EMOTIONS:
        client.send_message(f"{P}/force", [name])
        client.send_message(f"{P}/force/{name}", [1.0])
    settle(server, 2 * len(EMOTIONS))
    assert handler.snapshot() == [c for name in EMOTIONS for c in (("force", name), ("force", name))]


def test_a_bundle_of_commands_is_carried_out(served):
    server, handler, client = served
    bundle = OscBundleBuilder(IMMEDIATELY)
    for address, arg in ((f"{P}/volume", 0.25), (f"{P}/force", "surprise")):
        message = OscMessageBuilder(address)
        message.add_arg(arg)
        bundle.add_content(message.build())
    client.send(bundle.build())
    settle(server, 1)
    assert handler.snapshot() == [("volume", 0.25), ("force", "surprise")]


def test_bad_arguments_and_unknown_addresses_are_ignored_and_logged(served, caplog):
    server, handler, client = served
    bad = [
        (f"{P}/force", ["joy"]), (f"{P}/force", [3]), (f"{P}/force", ["happy", "sad"]),
        (f"{P}/volume", []), (f"{P}/volume", ["loud"]), (f"{P}/volume", [float("nan")]),
        (f"{P}/volume", [float("inf")]), (f"{P}/volume", [0.5, 0.5]),
        (f"{P}/mapping", []), (f"{P}/mapping", [""]), (f"{P}/mapping", [42]), (f"{P}/mapping", ["x" * 5000]),
        (f"{P}/playing", []), (f"{P}/playing", ["yes"]), (f"{P}/pause", ["now"]), (f"{P}/panic", [b"\x01"]),
        (f"{P}/force/joy", []), (f"{P}/stop", []), ("/emobridge/pause", []), ("/other/thing", [1]), (f"{P}", []),
    ]
    with caplog.at_level(logging.WARNING, logger="emobridge.live.control"):
        for address, args in bad:
            client.send_message(address, args)
        settle(server, len(bad))
    assert handler.snapshot() == []
    text = caplog.text
    assert "unknown emotion 'joy'" in text  # the first refused argument is logged in full
    assert "unknown address '/emobridge/control/force/joy'" in text
    # one line per kind within the interval (60 s here), not one per packet
    assert len(caplog.records) == 2
    # the server still works
    client.send_message(f"{P}/panic", [])
    settle(server, len(bad) + 1)
    assert handler.snapshot() == [("panic",)]


def test_handler_exceptions_are_caught_and_logged(served, caplog):
    server, handler, client = served
    handler.fail_mapping = True
    with caplog.at_level(logging.WARNING, logger="emobridge.live.control"):
        client.send_message(f"{P}/mapping", ["broken.yaml"])
        client.send_message(f"{P}/mapping", ["broken.yaml"])
        settle(server, 2)
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "emotions.happy.tempo" in caplog.text
    handler.fail_mapping = False
    client.send_message(f"{P}/mapping", ["default"])
    settle(server, 3)
    assert handler.snapshot() == [("mapping", "default")]


def test_a_custom_prefix(served):
    handler = Recorder()
    with ControlServer(handler, port=0, prefix="show/") as server:
        client = SimpleUDPClient("127.0.0.1", server.port)
        client.send_message("/show/control/pause", [])
        client.send_message(f"{P}/resume", [])
        settle(server, 2)
    assert handler.snapshot() == [("pause",)]


def _fuzz_datagrams(count: int, rng: random.Random) -> list[bytes]:
    """Random bytes, and near-OSC: truncated or corrupted messages and bundles, bad type tags, future bundles."""
    valid = []
    for address, arg in ((f"{P}/volume", 0.5), (f"{P}/force", "happy"), (f"{P}/mapping", "x.yaml")):
        builder = OscMessageBuilder(address)
        builder.add_arg(arg)
        valid.append(builder.build().dgram)
    future = OscBundleBuilder(int(time.time()) + 10**6)  # a bundle for the far future must not block the server
    future.add_content(OscMessageBuilder(f"{P}/panic").build())
    valid.append(future.build().dgram)
    datagrams = []
    for i in range(count):
        kind = i % 6
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 200))
        elif kind == 1:  # a real packet, truncated
            packet = rng.choice(valid)
            data = packet[:rng.randrange(0, len(packet))]
        elif kind == 2:  # a real packet with random bytes flipped (not the first: keep it looking like OSC)
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(1, len(data))] = rng.randrange(256)
            data = bytes(data)
        elif kind == 3:  # an OSC address with a random type tag string and random payload
            tags = "".join(rng.choice("ifsbhdtTFNIcrm[]") for _ in range(rng.randrange(0, 8)))
            head = f"{P}/{rng.choice(['volume', 'force', 'pause', 'zzz'])}".encode() + b"\0"
            head += b"\0" * (-len(head) % 4)
            tag = ("," + tags).encode() + b"\0"
            tag += b"\0" * (-len(tag) % 4)
            data = head + tag + rng.randbytes(rng.randrange(0, 40))
        elif kind == 4:  # a bundle header with nonsense inside, or sizes that lie
            data = b"#bundle\0" + struct.pack(">Q", rng.getrandbits(64)) + struct.pack(">i", rng.randrange(-5, 1000))
            data += rng.randbytes(rng.randrange(0, 60))
        else:
            data = valid[-1]  # the far-future bundle itself
        datagrams.append(data)
    return datagrams


def test_fuzz_of_ten_thousand_datagrams_neither_kills_nor_floods(caplog):
    handler = Recorder()
    count = 10_000
    with caplog.at_level(logging.DEBUG, logger="emobridge.live.control"):
        server = ControlServer(handler, port=0, log_interval=5.0).start()
        try:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            rng = random.Random(6)
            sent = 0
            for data in _fuzz_datagrams(count, rng):
                sender.sendto(data, ("127.0.0.1", server.port))
                sent += 1
                if sent % 50 == 0:  # keep the receive buffer from overflowing on a busy machine
                    settle_quick(server, sent)
            settle_quick(server, sent)
            assert server.thread is not None and server.thread.is_alive()
            before = len(handler.snapshot())
            SimpleUDPClient("127.0.0.1", server.port).send_message(f"{P}/force", ["disgust"])
            deadline = time.monotonic() + 5
            while handler.snapshot()[before:] != [("force", "disgust")] and time.monotonic() < deadline:
                time.sleep(0.01)
            assert handler.snapshot()[before:] == [("force", "disgust")]
        finally:
            server.close()
    assert server.received >= count * 0.95  # loopback UDP may drop a few under load; nearly all must arrive
    # at most one line per kind per 5 s (plus the start line and the few valid commands the mutations made)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 20, [r.getMessage() for r in noisy]
    assert len(caplog.records) <= 60


def settle_quick(server: ControlServer, sent: int) -> None:
    """Wait until the server has taken everything sent, or has taken nothing more for 0.2 s."""
    last, quiet_since = -1, time.monotonic()
    while server.received < sent and time.monotonic() - quiet_since < 0.2:
        if server.received != last:
            last, quiet_since = server.received, time.monotonic()
        time.sleep(0.001)


def test_a_port_in_use_is_a_clear_error():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ControlServerError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*pick another port"):
            ControlServer(Recorder(), port=blocker.getsockname()[1])
    finally:
        blocker.close()


def test_binds_loopback_by_default():
    server = ControlServer(Recorder(), port=0)
    try:
        assert server.server.server_address[0] == "127.0.0.1"
    finally:
        server.close()


@pytest.mark.parametrize("text, expected", [
    ("9100", ("127.0.0.1", 9100)), ("0.0.0.0:9200", ("0.0.0.0", 9200)), ("localhost:0", ("localhost", 0)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_parse_control_address(text, expected):
    assert parse_control_address(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "host:", "host:99999", ":9100", "::1:9100", "1.2.3.4:-1"])
def test_parse_control_address_refuses(text):
    with pytest.raises(ControlAddressError, match="is not PORT or HOST:PORT"):
        parse_control_address(text)


def test_log_limiter_counts_what_it_left_out():
    now = [0.0]
    records: list[str] = []

    class Sink(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("emobridge.test-limiter")
    logger.addHandler(Sink())
    logger.propagate = False
    limit = LogLimiter(logger, interval=5.0, clock=lambda: now[0])
    for _ in range(100):
        limit("bad packet %d", 1)
    now[0] = 6.0
    limit("bad packet %d", 2)
    assert records == ["bad packet 1", "bad packet 2 (and 99 more like it in the last 5 s)"]


def test_hostile_bundles_are_refused_quickly():
    """python-osc 1.10.2 loops forever on a bundle element of negative size; ours refuses it."""
    from emobridge.live.control import _Malformed, parse_datagram

    head = b"#bundle\x00" + bytes(8)
    message = OscMessageBuilder(f"{P}/panic").build().dgram
    for data in (head + struct.pack(">i", -4) + b"\x00" * 8, head + struct.pack(">i", 6) + message,
                 head + struct.pack(">i", 4000) + message, (head + struct.pack(">i", 16 + 4 + 28)) * 20,
                 b"/x\x00\x00,I\x00\x00", b"/x\x00\x00,c\x00\x00abcd", b"/x\x00\x00"[:3]):
        with pytest.raises(_Malformed):
            parse_datagram(data)
    nested = head + struct.pack(">i", len(message)) + message
    for _ in range(3):
        nested = head + struct.pack(">i", len(nested)) + nested
    assert [m.address for m in parse_datagram(nested)] == [f"{P}/panic"]


def send_from(source_ip: str, port: int, address: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source_ip, 0))
        s.sendto(OscMessageBuilder(address=address).build().dgram, ("127.0.0.1", port))


def test_an_allow_list_refuses_other_hosts_and_keeps_this_machine(caplog):
    # Linux routes all of 127/8 to loopback: 127.0.0.2 stands in for another host on the network.
    handler = Recorder()
    server = ControlServer(handler, host="0.0.0.0", port=0, allow=parse_allow_list(["192.0.2.7"])).start()
    try:
        with caplog.at_level(logging.WARNING, logger="emobridge.live.control"):
            send_from("127.0.0.2", server.port, f"{P}/panic")
            send_from("127.0.0.1", server.port, f"{P}/pause")
            settle(server, 2)
        assert handler.snapshot() == [("pause",)]
        assert server.refused == 1
        assert "refused a datagram from 127.0.0.2" in caplog.text
        assert "anyone who can reach" not in caplog.text
    finally:
        server.close()


def test_binding_beyond_loopback_without_an_allow_list_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="emobridge.live.control"):
        server = ControlServer(Recorder(), host="0.0.0.0", port=0).start()
        server.close()
    assert "takes commands (pause, panic, switch mappings) from anyone" in caplog.text
    assert "--control-allow" in caplog.text


def test_an_allow_list_host_that_does_not_resolve_is_a_clear_error():
    with pytest.raises(ControlAddressError, match="--control-allow host 'no-such-host.invalid' does not resolve"):
        parse_allow_list(["192.168.1.2,no-such-host.invalid"])
    assert "192.168.1.2" in parse_allow_list(["192.168.1.2, 10.0.0.1"])
