"""A real python-osc UDP server on 127.0.0.1 that records every message."""

from __future__ import annotations

import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer


class OscListener:
    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        self.times: list[float] = []  # time.monotonic() at arrival, one per message
        self.lock = threading.Lock()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._record)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        # a short poll: close() waits for serve_forever to notice, 0.5 s per test by default
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _record(self, address: str, *args) -> None:
        with self.lock:
            self.messages.append((address, args))
            self.times.append(time.monotonic())

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self, address: str) -> list[tuple]:
        with self.lock:
            return [args for a, args in self.messages if a == address]

    def received_at(self, address: str) -> list[tuple[float, tuple]]:
        """(arrival time, arguments) of every message to *address*."""
        with self.lock:
            return [(t, args) for t, (a, args) in zip(self.times, self.messages) if a == address]

    def forget(self) -> None:
        """Drop what arrived so far: a test's next take hears only its own show."""
        with self.lock:
            self.messages.clear()
            self.times.clear()

    def wait_for(self, address: str, timeout: float = 5.0) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.received(address):
            time.sleep(0.01)
        return self.received(address)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
