"""The whole daemon in-process: a frame list for a camera, a fake MIDI port, an offline clock.

``offline_show(...)`` builds the real daemon with those parts; ``play(show, seconds, at={t: action})``
runs it for *seconds* of virtual time, doing each action at its virtual second, and returns when the
daemon has stopped and released its notes. Minutes of music take a fraction of a second, and a run
is the same every time, however busy the machine is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from emobridge.live.clock import Clock, OfflineClock
from emobridge.live.daemon import Daemon
from emobridge.live.wiring import Parts, RunConfig
from emobridge.mapping import MappingWatcher, load_mapping, parse_mapping
from emobridge.outputs.ports import NOTE_ON, FakePort
from emobridge.perception.chain import Perception
from emobridge.perception.emotion import EmotionClassifier
from emobridge.perception.smoothing import EmotionSmoother
from emobridge.perception.sources import FrameListSource, FrameSource


@dataclass
class OscLog:
    """An OSC sender that writes down what it would send: (clock time, address, args)."""

    clock: Clock
    sent: list[tuple[float, str, tuple]] = field(default_factory=list)
    closed: bool = False

    def describe(self) -> str:
        return "osc log"

    def send_emotion(self, state) -> None:
        self.sent.append((self.clock(), "emotion", (state.label, state.face)))

    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None:
        self.sent.append((self.clock(), "music", (round(tempo, 2), mode)))

    def send_source(self, ok: bool, name: str) -> None:
        self.sent.append((self.clock(), "source", (int(ok), name)))

    def send_status(self, stage: str, ok: bool, message: str) -> None:
        self.sent.append((self.clock(), "status", (stage, int(ok))))

    def send_faces(self, faces) -> None:
        self.sent.append((self.clock(), "faces", (len(faces),)))

    def close(self) -> None:
        self.closed = True

    def of(self, kind: str) -> list[tuple[float, tuple]]:
        return [(t, args) for t, name, args in list(self.sent) if name == kind]


@dataclass
class Show:
    daemon: Daemon
    port: FakePort
    clock: Clock
    osc: OscLog
    logs: list[OscLog]  # every OSC sender the show made (a mapping with osc: targets makes a new one)

    def note_ons(self, since: float = 0.0, until: float = float("inf")) -> list:
        return [s for s in self.port.snapshot() if s.kind == NOTE_ON and s.message[2] > 0 and since <= s.time < until]

    def music(self) -> list[tuple[float, tuple]]:
        return [entry for log in self.logs for entry in log.of("music")]


@functools.lru_cache(maxsize=1)
def classifier() -> EmotionClassifier:
    return EmotionClassifier()


def offline_show(frames: list[np.ndarray], fps: float = 10.0, mapping: str | None = None, loop: bool = True,
                 fail_after: int | None = None, reopen: Callable[[], FrameSource] | None = None,
                 clock: Clock | None = None, master=None, **config: object) -> Show:
    """The real daemon on fakes. *mapping*: a file path, preset or None (default); *config*: RunConfig fields;
    *clock*: an OfflineClock unless given (the system clock, for a test of real-time behaviour); *master*: a
    live.clock.MasterClock on that clock, for tempo: follow (the test feeds it as a DAW's clock would)."""
    clock = clock or OfflineClock()
    port = FakePort(now=clock)
    run_config = RunConfig(mapping=mapping, **config)
    loaded = load_mapping(mapping)
    logs: list[OscLog] = []

    def make_osc(targets, daw=None) -> OscLog:
        logs.append(OscLog(clock))
        return logs[-1]

    def source() -> FrameSource:
        return FrameListSource(frames, fps=fps, loop=loop, name="test frames", fail_after=fail_after)

    follow = run_config.faces or loaded.faces.follow
    perception = Perception(classifier(), smoother=EmotionSmoother(loaded.smoothing), follow=follow,
                            max_faces=loaded.faces.max_faces)
    parts = Parts(mapping=loaded, perception=perception, source=source(), open_source=reopen or source, port=port,
                  osc=make_osc(()), watcher=MappingWatcher(mapping) if mapping else None, clock=clock,
                  make_osc=make_osc, master=master)
    return Show(Daemon(run_config, parts), port, clock, logs[0], logs)


def play(show: Show, seconds: float, at: dict[float, Callable[[], object]] | None = None) -> float:
    """Run the show for *seconds* of virtual time with *at* = {second: action}; returns its start time."""
    clock, daemon = show.clock, show.daemon
    clock.enter()  # this script takes part in the virtual time, so its actions land on their seconds
    runner = threading.Thread(target=daemon.run, name="daemon-main")
    runner.start()
    try:
        assert daemon.started.wait(10), "the daemon never started"
        start = clock()
        for second, action in sorted((at or {}).items()):
            if not clock.wait_until(start + second, daemon.stop):
                break  # the show ended by itself (a clip that ends with stop_at_end)
            action()
        clock.wait_until(start + seconds, daemon.stop)
        daemon.request_stop()
    finally:
        clock.leave()
        runner.join(timeout=30)
    assert not runner.is_alive(), "the daemon did not stop"
    return start


def grid_mapping(extra: str = "") -> str:
    """Exact grid, no glide: every note where the composer put it."""
    return "humanize: {timing_ms: 0, velocity: 0}\ntransition: {tempo_glide_beats: 0}\n" + extra


def parsed(text: str):
    return parse_mapping(text, "test.yaml")
