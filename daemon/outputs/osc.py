"""OSC out: the emotion stream and the music's state to every ``--osc HOST:PORT`` target.

Address table (prefix configurable, default ``/emobridge``):

    /emotion   s label, f confidence      every processed frame with a face
    /probs     7 f (EMOTIONS order)       every processed frame
    /valence   f -1..1                    every processed frame
    /arousal   f -1..1                    every processed frame
    /face      i 1|0                      when a face appears or is lost
    /tempo     f BPM                      on change and once per bar
    /mode      s major|minor|...          on change and once per bar
    /density   f 0..1                     on change and once per bar
    /source    i 1|0, s name              when the camera (or file) is lost, and when it is back
    /faces     i count                    when the number of faces followed changes
    /voice     i n, s label, f confidence, f valence, f arousal
                                          faces: each: every processed frame, per face voice (n from 1)
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pythonosc.osc_message_builder import OscMessageBuilder

from ..state import EmotionState
from ..errors import OscTargetError

if TYPE_CHECKING:
    from ..perception.chain import FaceResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OscTarget:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "OscTarget":
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise OscTargetError(f"OSC target {text!r} is not HOST:PORT (e.g. 127.0.0.1:9000)")
        try:
            socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
        except socket.gaierror:
            raise OscTargetError(f"OSC target host {host!r} does not resolve: check the name or use an IP address") from None
        return cls(host, int(port))


def encode(address: str, *args: object) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class OscOut:
    """Sends emobridge's address table to several UDP targets; send errors are logged, never raised."""

    def __init__(self, targets: list[OscTarget], prefix: str = "/emobridge"):
        self.targets = targets
        self.prefix = "/" + prefix.strip("/")
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lock = threading.Lock()
        self.last_face: bool | None = None
        self.last_music: tuple | None = None
        self.last_faces: int | None = None
        self.last_error_log = 0.0

    def send(self, name: str, *args: object) -> None:
        if not self.targets:
            return
        data = encode(f"{self.prefix}/{name}", *args)
        with self.lock:
            for target in self.targets:
                try:
                    self.socket.sendto(data, (target.host, target.port))
                except OSError as error:
                    self._log_error(target, error)

    def _log_error(self, target: OscTarget, error: OSError) -> None:
        # A target that refuses would otherwise log at frame rate.
        now = time.monotonic()
        if now - self.last_error_log > 5.0:
            self.last_error_log = now
            log.warning("OSC to %s:%d failed (%s); still trying", target.host, target.port, error)

    def send_emotion(self, state: EmotionState) -> None:
        """One processed frame's worth of the emotion stream."""
        if state.face != self.last_face:
            self.last_face = state.face
            self.send("face", 1 if state.face else 0)
        if state.face:
            self.send("emotion", state.label, float(state.confidence))
        self.send("probs", *(float(p) for p in state.probs))
        self.send("valence", float(state.valence))
        self.send("arousal", float(state.arousal))

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        """Tempo, mode and density: on change, and again at every bar start."""
        current = (round(tempo, 2), mode, round(density, 3))
        if bar_start or current != self.last_music:
            self.last_music = current
            self.send("tempo", float(tempo))
            self.send("mode", mode)
            self.send("density", float(density))

    def send_source(self, ok: bool, name: str) -> None:
        self.send("source", 1 if ok else 0, name)

    def send_faces(self, faces: Sequence[FaceResult]) -> None:
        """The number of faces followed (on change) and, with faces: each, every face voice's emotion."""
        if len(faces) != self.last_faces:
            self.last_faces = len(faces)
            self.send("faces", len(faces))
        for face in faces:
            if face.slot is not None and face.state is not None:
                s = face.state
                self.send("voice", face.slot + 1, s.label, float(s.confidence), float(s.valence), float(s.arousal))

    def close(self) -> None:
        self.socket.close()
