"""OSC out: the emotion stream and the music's state to every target (``--osc`` and the mapping's ``osc:``).

Address table (prefix configurable, default ``/emobridge``), sent to targets of the ``emobridge``
preset; the other presets get only the tempo at their own address (``mapping/osc_targets.py``):

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
    /status    s stage, i 1|0, s text     when a stage (perception, player, ...) fails or stalls (0),
                                          and when it is well again (1)
    /forced    s emotion | ""             when the control surface forces an emotion on the music, and
                                          "" when it is released (the face leads again)

Two layers, like python-osc's codec and client: :class:`OscTable` decides what to send when
(pure, no sockets), :class:`OscSender` sends it to each target that wants it.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pythonosc.osc_message_builder import OscMessageBuilder

from ..errors import OscTargetError
from ..log import LogLimiter
from ..mapping.model import DawConfig
from ..mapping.osc_targets import PRESETS, OscTargetSpec, resolve_address
from ..state import EmotionState
from .daw import DawAction, DawTable, spell

if TYPE_CHECKING:
    from ..perception.chain import FaceResult

log = logging.getLogger(__name__)

Message = tuple[str, tuple[object, ...]]  # (name in the address table, OSC arguments)
# Tempo presets get a tempo only when it moved at least this much (BPM): the tempo glides
# between emotions, and a DAW need not hear every hundredth of a beat per minute.
TEMPO_RESOLUTION = 0.01


def encode(address: str, *args: object) -> bytes:
    """One OSC message as a UDP datagram (python-osc picks each argument's type tag)."""
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


class OscTable:
    """The address table's timing: which messages each event gives, given what was sent before.

    Keeps only what change detection needs, so it can be tested without a socket.
    """

    def __init__(self) -> None:
        self.last_face: bool | None = None
        self.last_music: tuple[float, str, float] | None = None  # (BPM to 0.01, mode, density to 0.001)
        self.last_faces: int | None = None

    def emotion(self, state: EmotionState) -> list[Message]:
        """One processed frame: /face on change, /emotion with a face, the rest always."""
        messages: list[Message] = []
        if state.face != self.last_face:
            self.last_face = state.face
            messages.append(("face", (1 if state.face else 0,)))
        if state.face:
            messages.append(("emotion", (state.label, float(state.confidence))))
        messages.append(("probs", tuple(float(p) for p in state.probs)))
        messages.append(("valence", (float(state.valence),)))
        messages.append(("arousal", (float(state.arousal),)))
        return messages

    def music(self, tempo: float, mode: str, density: float, bar_start: bool) -> list[Message]:
        """Tempo (BPM), mode and density (0..1): on change, and again at every bar start."""
        current = (round(tempo, 2), mode, round(density, 3))
        if not bar_start and current == self.last_music:
            return []
        self.last_music = current
        return [("tempo", (float(tempo),)), ("mode", (mode,)), ("density", (float(density),))]

    def source(self, ok: bool, name: str) -> list[Message]:
        """The camera (or file) lost (0) or back (1); the daemon calls this only on a change."""
        return [("source", (1 if ok else 0, name))]

    def status(self, stage: str, ok: bool, text: str) -> list[Message]:
        """A stage's health, on change (the daemon's watchdog calls this only then)."""
        return [("status", (stage, 1 if ok else 0, text))]

    def forced(self, emotion: str | None) -> list[Message]:
        """The emotion the music is forced to play, or "" once the face leads again."""
        return [("forced", (emotion or "",))]

    def faces(self, faces: Sequence[FaceResult]) -> list[Message]:
        """The number of faces followed (on change) and, with ``faces: each``, every face voice's emotion."""
        messages: list[Message] = []
        if len(faces) != self.last_faces:
            self.last_faces = len(faces)
            messages.append(("faces", (len(faces),)))
        for face in faces:
            if face.slot is not None and face.state is not None:
                s = face.state
                messages.append(("voice", (face.slot + 1, s.label, float(s.confidence), float(s.valence),
                                           float(s.arousal))))
        return messages


@dataclass
class _Route:
    """One target, looked up once: where its datagrams go and what it gets."""

    spec: OscTargetSpec
    family: int
    sockaddr: tuple
    selected: frozenset[str]
    tempo_address: str | None         # a tempo preset's address; None: the address table
    last_tempo: float | None = None   # BPM last sent to a tempo preset

    @classmethod
    def of(cls, spec: OscTargetSpec) -> "_Route":
        try:
            family, sockaddr = resolve_address(spec.host, spec.port)
        except OscTargetError as error:
            raise OscTargetError(f"OSC target {spec.describe()}: {error}") from None
        return cls(spec, family, sockaddr, frozenset(spec.selected), PRESETS[spec.preset].tempo_address)


def _unique_routes(routes: list[_Route]) -> list[_Route]:
    """One route per address and preset: a target given twice (``--osc`` and the mapping's ``osc:``, or twice in
    one list) gets every message once, the messages of both entries, with a warning naming it."""
    unique: dict[tuple, _Route] = {}
    for route in routes:
        key = (route.family, route.sockaddr, route.spec.preset)
        first = unique.get(key)
        if first is None:
            unique[key] = route
            continue
        log.warning("OSC target %s is given twice (on the command line and in the mapping, or twice in one of "
                    "them): it gets each message once", route.spec.describe())
        merged = first.selected | route.selected
        spec = dataclasses.replace(first.spec, messages=None if merged == frozenset(PRESETS[first.spec.preset].messages)
                                   else merged)
        unique[key] = dataclasses.replace(first, spec=spec, selected=merged)
    return list(unique.values())


class OscSender:
    """Sends each target what its preset and its ``messages`` allow; send errors are logged, never raised.

    Each target is looked up once, here: sending then costs no name lookup at frame rate, and
    one UDP socket per address family serves every target of that family.
    """

    def __init__(self, targets: Sequence[OscTargetSpec], prefix: str = "/emobridge", error_interval: float = 5.0,
                 drive_tempo: bool = True, daw: DawConfig = DawConfig()):
        self.drive_tempo = drive_tempo  # False (tempo: follow): the DAW's tempo presets are never set
        self.routes = _unique_routes([_Route.of(spec) for spec in targets])
        self.targets = [route.spec for route in self.routes]
        self.prefix = "/" + prefix.strip("/")
        self.table = OscTable()
        self.daw = DawTable(daw)  # what the abletonosc and reaper targets are asked beyond tempo
        self.sockets = {family: self._open(family) for family in {route.family for route in self.routes}}
        self.lock = threading.Lock()  # the perception and the player threads both send
        self.warn = LogLimiter(log, error_interval)  # a failing target would otherwise log at frame rate
        self.closed = False

    def _open(self, family: int) -> socket.socket:
        try:
            return socket.socket(family, socket.SOCK_DGRAM)
        except OSError as error:  # e.g. IPv6 switched off on this machine
            raise OscTargetError(f"OSC: cannot open a UDP socket for {socket.AddressFamily(family).name} ({error})") from None

    def describe(self) -> str:
        return ", ".join(spec.describe() for spec in self.targets) or "none"

    def send_emotion(self, state: EmotionState) -> None:
        """One processed frame's emotion stream (and the DAW parameters that follow it)."""
        self._send("the emotion", lambda: self.table.emotion(state))
        if self.daw.config.params:
            self._send_daw("the DAW parameters", lambda: self.daw.frame(state, float(state.time)))

    def send_daw_bar(self, state: EmotionState, tonic: int, mode: str, emotion: str, phrase_bar: int) -> None:
        """A bar line: the DAW's key, markers and emotion-matched launching (daw: in the mapping)."""
        if self.daw.config.active:
            self._send_daw("the DAW's bar", lambda: self.daw.bar(state, tonic, mode, emotion, phrase_bar))

    def send_daw_transport(self, playing: bool) -> None:
        """Start the DAW's transport with the show, stop it at the end (daw.transport; never while following)."""
        if self.drive_tempo:
            self._send_daw("the DAW's transport", self.daw.start if playing else self.daw.stop)

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        """Tempo (BPM), mode and density: the table at changes and bar starts, tempo presets on change only."""
        self._send("the music state", lambda: self.table.music(tempo, mode, density, bar_start), tempo)

    def send_source(self, ok: bool, name: str) -> None:
        """The camera (or file) lost or back."""
        self._send("the source state", lambda: self.table.source(ok, name))

    def send_faces(self, faces: Sequence[FaceResult]) -> None:
        """The face count and the face voices' emotions."""
        self._send("the faces", lambda: self.table.faces(faces))

    def send_forced(self, emotion: str | None) -> None:
        """An emotion forced on the music (None: released)."""
        self._send("the forced emotion", lambda: self.table.forced(emotion))

    def send_status(self, stage: str, ok: bool, text: str) -> None:
        """A stage failed or stalled, or is well again."""
        self._send("a status", lambda: self.table.status(stage, ok, text))

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for sock in self.sockets.values():
                sock.close()

    def _send(self, what: str, decide: Callable[[], list[Message]], tempo: float | None = None) -> None:
        """Ask the table what to send, then send each route its share; *tempo* (BPM) is for tempo presets."""
        try:
            with self.lock:
                # A reload replaces the sender while another thread may still send a last frame to the old one.
                if self.closed:
                    return
                datagrams = [(name, encode(f"{self.prefix}/{name}", *args)) for name, args in decide()]
                for route in self.routes:
                    if route.tempo_address is None:
                        for name, data in datagrams:
                            if name in route.selected:
                                self._sendto(route, data)
                    elif tempo is not None and self.drive_tempo:
                        self._send_tempo(route, route.tempo_address, tempo)
        except Exception as error:  # never let OSC stop the music
            self.warn("OSC: sending %s failed (%s); still trying", what, error)

    def _send_daw(self, what: str, decide: Callable[[], list[DawAction]]) -> None:
        """The DAW's actions, spelt for each abletonosc and reaper target that takes them."""
        try:
            with self.lock:
                if self.closed:
                    return
                actions = decide()
                for route in self.routes:
                    if "daw" not in route.selected:
                        continue
                    for action in actions:
                        for address, args in spell(action, route.spec.preset):
                            self._sendto(route, encode(address, *args))
        except Exception as error:  # never let OSC stop the music
            self.warn("OSC: sending %s failed (%s); still trying", what, error)

    def _send_tempo(self, route: _Route, address: str, tempo: float) -> None:
        tempo = float(tempo)  # an OSC float, whatever number type the player had
        if route.last_tempo is not None and abs(tempo - route.last_tempo) < TEMPO_RESOLUTION:
            return
        if self._sendto(route, encode(address, tempo)):
            route.last_tempo = tempo  # only once it went out: a failed send is tried again at the next tempo

    def _sendto(self, route: _Route, data: bytes) -> bool:
        try:
            self.sockets[route.family].sendto(data, route.sockaddr)
            return True
        except OSError as error:
            self.warn("OSC to %s failed (%s); still trying", route.spec.describe(), error)
            return False
