"""Wiring and lifecycle: source → perception → (latest state) → player → MIDI, and OSC beside.

Two threads: perception reads frames at the source's pace and publishes the latest
smoothed emotion; the player composes and plays bar by bar from whatever state is
latest when a bar starts. The main thread only waits for the end (Ctrl-C, SIGTERM,
or the end of a file) and then makes sure every note is released before exit; with
``--preview`` it also draws the window (GUI calls must stay on the main thread).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..perception.emotion import EmotionClassifier
from ..labels import EMOTIONS
from ..mapping import Mapping, MappingWatcher, load_mapping
from ..errors import MappingError
from ..outputs.midi import MidiOut
from ..music.params import Bar
from ..music.composer import Composer
from ..music.controls import ControlMapper
from .control import ControlServer, parse_control_address
from ..log import LogLimiter
from ..outputs.osc_targets import OscSender, parse_target
from ..perception.chain import FrameResult, Perception
from .player import Player
from .preview import FaceView, PreviewFrame, PreviewWindow, render
from ..perception.smoothing import EmotionSmoother
from ..state import EmotionState
from ..perception.sources import FrameSource, open_source, paced
from ..errors import SourceError

log = logging.getLogger("emobridge")

RELOAD_PERIOD = 0.25  # seconds between checks of the mapping file (and SIGHUP)
PREVIEW_PERIOD = 1 / 30  # seconds between preview redraws: as smooth as a webcam, no more
PREVIEW_STALE = 1.0  # seconds without a new picture (source lost) after which the window shows a blank one
BLANK_PICTURE = np.zeros((480, 640, 3), dtype=np.uint8)  # what the window shows without a picture


@dataclass
class RunConfig:
    camera: int | str | None = 0
    video: str | None = None
    images: str | None = None
    loop: bool = False
    fast: bool = False
    size: tuple[int, int] | None = None  # camera picture size to ask for (width, height); files keep theirs
    fps: float | None = None  # camera rate to ask for, a video's rate override, or an image folder's rate (default 10)
    mapping: str | None = None
    model: str | None = None
    midi_backend: str = "auto"
    midi_port: str = "emobridge"
    midi_connect: str | None = None
    osc: list[str] = field(default_factory=list)
    osc_prefix: str = "/emobridge"
    control: str | None = None  # [HOST:]PORT of the OSC control server; None: off
    link: bool = False  # share the tempo with Ableton Link peers
    midi_clock: bool = False  # send MIDI clock, Start/Stop and Song Position on the port
    speed: float = 1.0  # music clock speed-up, for soak tests
    record: str | None = None  # folder for the session's MIDI file and emotion log
    seed: int = 0
    stop_at_end: bool = False  # a file that ends stops the show (default: treated as a lost camera, retried)
    faces: str | None = None  # largest, average or each: overrides the mapping's faces.follow
    max_rate: float = 30.0  # frames classified per second at most: more costs CPU and adds nothing musical
    preview: bool = False  # a window with the picture, faces, emotion and music (headless by default)


class Daemon:
    """Everything opened and checked up front, so a bad option fails before any note plays."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.mapping: Mapping = load_mapping(config.mapping)
        faces = self.mapping.faces
        self.perception = Perception(EmotionClassifier(config.model), smoother=EmotionSmoother(self.mapping.smoothing),
                                     follow=config.faces or faces.follow, max_faces=faces.max_faces)
        self.cli_targets = [parse_target(t) for t in config.osc]
        self.osc = OscSender(self.cli_targets + list(self.mapping.osc), config.osc_prefix)
        self.outputs: list = [self.osc]  # everything with send_emotion / send_music / close
        self.control_address = parse_control_address(config.control) if config.control else None
        self.source: FrameSource = self._open_source()
        self.preview_frame: PreviewFrame | None = None  # the latest picture for the window; set by perception
        self.preview: PreviewWindow | None = None
        if config.preview:  # opened here so no display fails the start (PreviewError, exit 2) before any port opens
            self.preview = PreviewWindow()
            self.preview.open()
        self.midi = MidiOut(config.midi_port, config.midi_backend, config.midi_connect)
        self.recorder = None
        if config.record:
            from ..outputs.record import Recorder

            self.recorder = self.midi.recorder = Recorder(config.record)
        self.composer = Composer(self.mapping, seed=config.seed)
        self.controls = ControlMapper(self.mapping)
        self.watcher = MappingWatcher(config.mapping)
        self.latest = EmotionState.neutral(time.monotonic())
        self.voices: dict[int, EmotionState] = {}  # faces: each: slot → that face's emotion, for its voice
        self.forced: str | None = None
        self.stop = threading.Event()
        self.reload_now = threading.Event()
        self.mapping_missing = False
        self.warn = LogLimiter(log, 5.0)
        self.frame_errors: set[str] = set()
        self.player = Player(self.composer, self.midi, self.music_state, on_bar=self._on_bar,
                             midi_clock=config.midi_clock, speed=config.speed, voices=self.voice_states)
        if config.link:
            from ..outputs.link import LinkTempo

            self.outputs.append(LinkTempo())

    def music_state(self) -> EmotionState:
        """What the music follows: the face, or an emotion forced from the control surface."""
        if self.forced:
            return EmotionState.fixed(self.forced, time.monotonic())
        return self.latest

    def voice_states(self) -> dict[int, EmotionState]:
        """The faces' own emotions for their voices (faces: each); read by the player at each bar."""
        return self.voices

    def _open_source(self) -> FrameSource:
        c = self.config
        camera = None if (c.video or c.images) else c.camera
        return open_source(camera=camera, video=c.video, images=c.images, loop=c.loop, fps=c.fps, size=c.size)

    # --- threads -------------------------------------------------------------
    def _perceive(self) -> None:
        """Frames until Ctrl-C; a source that fails or ends is retried while the music plays on.

        A file that ends counts as a lost camera (the show must not stop because a clip ran out),
        unless ``stop_at_end`` (``demo``, ``--stop-at-end``) asks for one pass.
        """
        try:
            while not self.stop.is_set():
                try:
                    self._read_frames()
                    if self.stop.is_set() or self.config.stop_at_end:
                        log.info("end of %s", self.source.name)
                        return
                    log.warning("end of %s; the music goes on (no face) and emobridge will open it again "
                                "(--loop repeats it without a gap, --stop-at-end stops here)", self.source.name)
                except SourceError as error:
                    log.warning("%s; the music goes on (no face) and emobridge will retry", error)
                self.osc.send_source(False, self.source.name)
                if not self._reopen_source():
                    return
                self.osc.send_source(True, self.source.name)
        finally:
            self.stop.set()

    def _read_frames(self) -> None:
        min_gap = 1.0 / self.config.max_rate
        last = -min_gap
        for frame in paced(self.source, fast=self.config.fast):
            if self.stop.is_set():
                return
            if not self.config.fast and frame.time - last < min_gap:
                continue
            last = frame.time
            self._process(frame.image)

    def _reopen_source(self) -> bool:
        """Retry with backoff (0.5 s doubling to 5 s); meanwhile the emotion fades as for a lost face."""
        self.source.close()
        delay, next_try = 0.5, time.monotonic() + 0.5
        while not self.stop.wait(0.1):
            self.voices = {}
            self._publish(self.perception.lost(time.monotonic()))
            self.osc.send_faces(())  # /faces 0, once: nobody is seen while the source is gone
            if time.monotonic() < next_try:
                continue
            try:
                self.source = self._open_source()
            except SourceError:
                delay = min(5.0, delay * 2)
                next_try = time.monotonic() + delay
                continue
            log.info("%s is back", self.source.name)
            return True
        return False

    def _process(self, image) -> None:
        try:
            result = self.perception.process(image, time.monotonic())
        except Exception as error:  # a bad frame must not silence the show
            kind = type(error).__name__
            if kind not in self.frame_errors:  # the first of a kind with its traceback, then one line now and then
                self.frame_errors.add(kind)
                log.exception("perception failed on a frame; skipping it and going on")
            else:
                self.warn("skipping a frame that could not be processed (%s: %s)", kind, error)
            return
        if self.preview is not None:
            self.preview_frame = self._preview_view(image, result)  # one assignment: nobody waits on the window
        self.voices = result.voices()
        self._publish(result.state)
        self.osc.send_faces(result.faces)
        self._send_controls()

    def _preview_view(self, image, result: FrameResult) -> PreviewFrame:
        """What the window shows of one frame; the one place that knows how FrameResult holds its faces."""
        faces = tuple(FaceView(face.box, tuple(float(p) for p in face.reading.probs), face.reading.label, face.slot)
                      for face in result.faces)
        return PreviewFrame(image, faces, result.state)

    def _publish(self, state: EmotionState) -> None:
        self.latest = state
        for output in self.outputs:
            output.send_emotion(state)
        if self.recorder:
            self.recorder.emotion(state)

    def _send_controls(self) -> None:
        bar = self.player.current
        if bar is None:
            return
        for channel, control, value in self.controls.update(self.music_state(), bar.params, time.monotonic()):
            self.midi.control_change(channel, control, value)

    def _on_bar(self, bar: Bar) -> None:
        p = bar.params
        if self.recorder:
            self.recorder.tempo(p.tempo * self.config.speed)
        for output in self.outputs:
            output.send_music(p.tempo, p.mode, p.density, bar_start=True)
        s = self.latest
        log.info("bar %d: %s %.2f (v %+.2f a %+.2f) → %.0f BPM %s density %.2f",
                 bar.index, s.label, s.confidence, s.valence, s.arousal, p.tempo, p.mode, p.density)

    # --- lifecycle -----------------------------------------------------------
    def run(self) -> int:
        log.info("playing on %s; OSC → %s; source: %s", self.midi.description, self.osc.describe(), self.source.name)
        control = None
        if self.control_address:
            host, port = self.control_address
            control = ControlServer(self, host, port, prefix=self.config.osc_prefix).start()
            log.info("OSC control on %s:%d (%s/control/...)", host, control.port, self.config.osc_prefix)
        signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        # The player must get the interpreter within a millisecond of its deadline, not after
        # the default 5 ms slice of a busy perception thread.
        sys.setswitchinterval(0.001)
        cv2.setNumThreads(1)  # the perception chain is fastest on one thread, and leaves the other cores to the DAW
        player = threading.Thread(target=self.player.run, args=(self.stop,), name="player", daemon=True)
        perceive = threading.Thread(target=self._perceive, name="perception", daemon=True)
        player.start()
        perceive.start()
        try:
            if self.preview is not None:
                self._preview_loop(self.preview)  # returns at the end, or when the user closed the window
            while not self.stop.wait(RELOAD_PERIOD):
                self._reload_mapping(force=self.reload_now.is_set())
        finally:
            self.stop.set()
            player.join(timeout=2.0)  # the player releases every note as it exits
            perceive.join(timeout=2.0)
            if control:
                control.close()
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _preview_loop(self, window: PreviewWindow) -> None:
        """Redraw the window at about 30 Hz and check the mapping every RELOAD_PERIOD, until the end or until
        the user closes the window; then the preview alone closes and the music plays on headless."""
        next_frame = next_reload = time.monotonic()
        while not self.stop.wait(max(0.0, next_frame - time.monotonic())):
            next_frame = max(next_frame + PREVIEW_PERIOD, time.monotonic())  # no burst of redraws after a stall
            if not self._update_preview(window):
                log.info("preview window closed; the music plays on (Ctrl-C or SIGTERM stops it)")
                self._close_preview()
                return
            if time.monotonic() >= next_reload:
                self._reload_mapping(force=self.reload_now.is_set())
                next_reload = time.monotonic() + RELOAD_PERIOD

    def _update_preview(self, window: PreviewWindow) -> bool:
        """Draw the latest picture with the bar now playing; False once the user closed the window."""
        frame = self.preview_frame
        if frame is None or self.latest.time - frame.state.time > PREVIEW_STALE:
            # No picture yet, or the source is gone and is being retried: a blank one with the fading emotion.
            frame = PreviewFrame(BLANK_PICTURE, (), self.latest)
        bar = self.player.current
        return window.show(render(frame, bar.params if bar is not None else None))

    def _close_preview(self) -> None:
        if self.preview is not None:
            self.preview.close()
            self.preview = None  # perception stops building preview frames
            self.preview_frame = None

    def _on_signal(self, signum: int, _frame) -> None:
        if hasattr(signal, "SIGHUP") and signum == signal.SIGHUP:
            self.reload_now.set()  # handled by the main loop, not inside the signal handler
            return
        log.info("%s: releasing all notes and stopping", signal.Signals(signum).name)
        self.stop.set()

    # --- mapping: hot reload and switching -------------------------------------
    def _reload_mapping(self, force: bool = False) -> None:
        """Apply a saved (or, on SIGHUP, any) change of the mapping file from the next bar; keep playing on errors."""
        self.reload_now.clear()
        if not self.watcher.path.exists():
            if not self.mapping_missing:
                self.mapping_missing = True
                log.warning("mapping file %s is missing (deleted?); the previous mapping keeps playing", self.watcher.path)
            return
        self.mapping_missing = False
        try:
            mapping = load_mapping(self.watcher.spec) if force else self.watcher.poll()
        except MappingError as error:
            log.error("mapping not reloaded, the previous one keeps playing: %s", error)
            return
        if mapping is not None:
            self._apply_mapping(mapping)

    def _apply_mapping(self, mapping: Mapping) -> None:
        if mapping.osc != self.mapping.osc:
            old, self.osc = self.osc, OscSender(self.cli_targets + list(mapping.osc), self.config.osc_prefix)
            self.outputs[self.outputs.index(old)] = self.osc
            old.close()
        self.mapping = mapping
        self.composer.set_mapping(mapping)
        self.controls.set_controls(mapping)
        self.perception.set_smoothing(mapping.smoothing)
        self.perception.configure(self.config.faces or mapping.faces.follow, mapping.faces.max_faces)
        log.info("mapping %s loaded; it plays from the next bar", mapping.source)

    # --- the control surface (emobridge.live.control.ControlHandler) ---------------
    def pause(self) -> None:
        self.player.paused = True

    def resume(self) -> None:
        self.player.paused = False

    def force_emotion(self, name: str | None) -> None:
        if name is not None and name not in EMOTIONS:
            raise ValueError(f"unknown emotion {name!r}")
        self.forced = name

    def set_mapping(self, name_or_path: str) -> None:
        try:
            mapping = load_mapping(name_or_path)
        except MappingError as error:
            log.error("mapping not switched: %s", error)
            return
        self.watcher = MappingWatcher(name_or_path)
        self._apply_mapping(mapping)

    def set_volume(self, scale: float) -> None:
        self.player.velocity_scale = max(0.0, min(2.0, scale))

    def panic(self) -> None:
        self.midi.panic(set(range(16)))
        self.controls.reset()

    def close(self) -> None:
        self._close_preview()
        self.midi.close()
        if self.recorder:
            self.recorder.close()
            log.info("recorded %s", self.recorder.describe())
        for output in self.outputs:
            output.close()
        self.source.close()
