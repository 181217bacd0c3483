"""The perception thread: frames from the source, through perception, to the state the music follows.

It owns the frame source (with its reconnect policy), the :class:`Perception` chain and the MIDI
CC mapper: a mapping change is requested from any thread and applied here before the next frame.
It publishes each frame's smoothed emotion as one attribute assignment (:attr:`latest`, read by
the music) and posts the OSC side to the outputs' thread. Nothing that goes wrong with one frame
(a bad picture, a failing CC, a preview error) ends perception: the frame is skipped, logged once
per kind of error with its traceback and then now and then, and the next frame is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ProfileError, SourceError
from ..log import LogLimiter
from ..mapping import Mapping
from ..music.controls import ControlMapper
from ..music.params import Bar
from ..outputs.ports import MidiPort
from ..perception.chain import FrameResult, Perception
from ..perception.sources import FrameSource, paced
from ..state import EmotionState
from .clock import Clock
from .fanout import Fanout
from .faults import Faults
from .preview import FaceView, PreviewFrame

log = logging.getLogger("emobridge")

RETRY_FIRST, RETRY_MAX = 0.5, 5.0  # seconds before the first retry of a lost source, and the longest gap
LOST_TICK = 0.1  # seconds between no-face updates while the source is gone (the emotion keeps fading)


@dataclass
class PerceptionSettings:
    max_rate: float = 30.0  # frames classified per second at most: more costs CPU and adds nothing musical
    fast: bool = False  # files as fast as they decode (batch runs)
    stop_at_end: bool = False  # a file that ends stops the show (else it is a lost camera, retried)
    faces: str | None = None  # --faces: overrides the mapping's faces.follow
    preview: bool = False  # build a picture for the preview window at each frame
    profile_fixed: bool = False  # --profile was given: the mapping's profile: is not followed
    profile: str | None = None  # the profile file in use (from --profile or the mapping)


class PerceptionLoop:
    def __init__(self, perception: Perception, source: FrameSource, open_source: Callable[[], FrameSource],
                 fanout: Fanout, port: MidiPort, mapping: Mapping, clock: Clock,
                 music_state: Callable[[], EmotionState], current_bar: Callable[[], Bar | None],
                 settings: PerceptionSettings):
        self.perception = perception
        self.source = source
        self.open_source = open_source
        self.fanout = fanout
        self.port = port
        self.controls = ControlMapper(mapping)
        self.clock = clock
        self.music_state = music_state
        self.current_bar = current_bar
        self.settings = settings
        self.latest = EmotionState.neutral(clock())  # the newest smoothed emotion (one assignment per frame)
        self.voices: dict[int, EmotionState] = {}  # faces: each: slot → that face's emotion, for its voice
        self.preview_frame: PreviewFrame | None = None  # the newest picture for the window
        self.frames = 0  # frames processed: the watchdog's sign of life
        self.ended = False  # the source ended for good (stop_at_end): the show is over
        self._wanted_mapping: Mapping | None = None
        self._reset_controls = False
        self._errors_seen: set[str] = set()
        self.warn = LogLimiter(log, 5.0)
        self.faults = Faults()
        self.source_lost = False  # true while the source is being retried (no frames expected)

    # --- requests, from any thread --------------------------------------------
    def request_mapping(self, mapping: Mapping) -> None:
        """Smoothing, faces and CCs of *mapping* from the next frame on."""
        self._wanted_mapping = mapping

    def request_controls_reset(self) -> None:
        """Send every CC again at its next update (after a panic)."""
        self._reset_controls = True

    def stop_preview(self) -> None:
        self.settings.preview = False
        self.preview_frame = None

    # --- the thread -----------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Frames until *stop*; a source that fails or ends is retried while the music plays on.

        A file that ends counts as a lost camera (the show must not stop because a clip ran out),
        unless ``stop_at_end`` (``demo``, ``--stop-at-end``) asks for one pass; then :attr:`ended`.
        An exception out of here is the daemon's to log; it runs the loop again on the same source.
        """
        while not stop.is_set():
            try:
                self._read_frames(stop)
                if stop.is_set():
                    return
                if self.settings.stop_at_end:
                    log.info("end of %s", self.source.name)
                    self.ended = True
                    return
                log.warning("end of %s; the music goes on (no face) and emobridge will open it again "
                            "(--loop repeats it without a gap, --stop-at-end stops here)", self.source.name)
            except SourceError as error:
                log.warning("%s; the music goes on (no face) and emobridge will retry", error)
            self.fanout.source(False, self.source.name)
            if not self._reopen_source(stop):
                return
            self.fanout.source(True, self.source.name)

    def close(self) -> None:
        """Release the source (after the thread has ended)."""
        self.source.close()

    def _read_frames(self, stop: threading.Event) -> None:
        min_gap = 1.0 / self.settings.max_rate
        last = -min_gap

        def sleep(seconds: float) -> None:
            self.clock.wait_until(self.clock() + seconds, stop)

        for frame in paced(self.source, fast=self.settings.fast, clock=self.clock, sleep=sleep):
            if stop.is_set():
                return
            if not self.settings.fast and frame.time - last < min_gap:
                continue
            last = frame.time
            self.faults.check("perception")
            self._frame(frame.image)

    def _reopen_source(self, stop: threading.Event) -> bool:
        """Retry with backoff (0.5 s doubling to 5 s); meanwhile the emotion fades as for a lost face."""
        self.source.close()
        self.source_lost = True
        delay, next_try = RETRY_FIRST, self.clock() + RETRY_FIRST
        while self.clock.wait_until(self.clock() + LOST_TICK, stop):
            self._apply_requests()
            self.voices = {}
            self._publish(self.perception.lost(self.clock()))
            self.fanout.faces(())  # /faces 0, once: nobody is seen while the source is gone
            if self.clock() < next_try:
                continue
            try:
                self.source = self.open_source()
            except SourceError:
                delay = min(RETRY_MAX, delay * 2)
                next_try = self.clock() + delay
                continue
            log.info("%s is back", self.source.name)
            self.source_lost = False
            return True
        return False

    def _frame(self, image: np.ndarray) -> None:
        """One frame, guarded as a whole: whatever fails, the next frame is read."""
        try:
            self._apply_requests()
            result = self.perception.process(image, self.clock())
            if self.settings.preview:
                self.preview_frame = preview_view(image, result)  # one assignment: nobody waits on the window
            self.voices = result.voices()
            self._publish(result.state)
            self.fanout.faces(result.faces)
            self._send_controls()
        except Exception as error:  # a bad frame must not silence the show
            self._frame_failed(error)
        self.frames += 1

    def _frame_failed(self, error: Exception) -> None:
        kind = type(error).__name__
        if kind not in self._errors_seen:  # the first of a kind with its traceback, then one line now and then
            self._errors_seen.add(kind)
            log.error("perception failed on a frame; skipping it and going on", exc_info=error)
        else:
            self.warn("skipping a frame that could not be processed (%s: %s)", kind, error)

    def _apply_requests(self) -> None:
        wanted, self._wanted_mapping = self._wanted_mapping, None
        if wanted is not None:
            self.controls.set_controls(wanted)
            self.perception.set_smoothing(wanted.smoothing)
            self.perception.configure(self.settings.faces or wanted.faces.follow, wanted.faces.max_faces)
            if not self.settings.profile_fixed and wanted.profile != self.settings.profile:
                self._switch_profile(wanted.profile)
        if self._reset_controls:
            self._reset_controls = False
            self.controls.reset()

    def _switch_profile(self, path: str | None) -> None:
        """The mapping names another profile: use it from this frame, or keep the old one if it is bad."""
        from ..perception.calibration import load_profile

        try:
            profile = None if path is None else load_profile(path, self.perception.classifier.identity)
        except ProfileError as error:
            log.error("profile not changed, the previous one stays in use: %s", error)
            return
        self.perception.request_profile(profile)
        self.settings.profile = path
        log.info("resting-face profile: %s", path or "none")

    def _publish(self, state: EmotionState) -> None:
        self.latest = state
        self.fanout.emotion(state)

    def _send_controls(self) -> None:
        bar = self.current_bar()
        if bar is None:
            return
        for channel, control, value in self.controls.update(self.music_state(), bar.params, self.clock()):
            self.port.control_change(channel, control, value)


def preview_view(image: np.ndarray, result: FrameResult) -> PreviewFrame:
    """What the window shows of one frame; the one place that knows how FrameResult holds its faces."""
    faces = tuple(FaceView(face.box, tuple(float(p) for p in face.reading.probs), face.reading.label, face.slot)
                  for face in result.faces)
    return PreviewFrame(image, faces, result.state)
