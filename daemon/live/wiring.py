"""What a show is made of, and the one factory that builds the real parts from the command line.

:class:`Parts` is what the :class:`~emobridge.live.daemon.Daemon` is given: a test passes a fake
source, a :class:`~emobridge.outputs.ports.FakePort` and an
:class:`~emobridge.live.clock.OfflineClock` and runs the whole daemon in-process;
:func:`build_parts` opens the real ones, in an order that lets a bad option fail (one line, exit 2)
before a MIDI port appears or a note plays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..mapping import Mapping, MappingWatcher, load_mapping
from ..mapping.osc_targets import OscTargetSpec, parse_target
from ..outputs.osc import OscSender
from ..outputs.ports import MidiPort
from ..perception.chain import Perception
from ..perception.sources import FrameSource
from .clock import SYSTEM_CLOCK, Clock
from .control import parse_allow_list, parse_control_address


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
    profile: str | None = None  # resting-face profile file (--profile); None: the mapping's profile:, if any
    midi_backend: str = "auto"
    midi_port: str = "emobridge"
    midi_connect: str | None = None
    osc: list[str] = field(default_factory=list)
    osc_prefix: str = "/emobridge"
    control: str | None = None  # [HOST:]PORT of the OSC control server; None: off
    control_allow: list[str] = field(default_factory=list)  # hosts that may send control commands (+ loopback)
    link: bool = False  # share the tempo with Ableton Link peers
    midi_clock: bool = False  # send MIDI clock, Start/Stop and Song Position on the port
    speed: float = 1.0  # music clock speed-up, for soak tests
    record: str | None = None  # folder for the session's MIDI file and emotion log
    seed: int = 0
    stop_at_end: bool = False  # a file that ends stops the show (default: treated as a lost camera, retried)
    faces: str | None = None  # largest, average or each: overrides the mapping's faces.follow
    max_rate: float = 30.0  # frames classified per second at most: more costs CPU and adds nothing musical
    preview: bool = False  # a window with the picture, faces, emotion and music (headless by default)


@dataclass
class Parts:
    """Everything the daemon plays with; each part is owned by one thread once the show runs."""

    mapping: Mapping
    perception: Perception
    source: FrameSource                       # opened already: a bad camera fails before the music
    open_source: Callable[[], FrameSource]    # opens it again after it was lost
    port: MidiPort                            # where the notes go (a tee to the recorder when recording)
    osc: OscSender
    cli_targets: Sequence[OscTargetSpec] = ()  # --osc targets, kept when a mapping brings its own
    extras: list[Any] = field(default_factory=list)  # other outputs with send_emotion/send_music (Link)
    recorder: Any = None                      # outputs.record.Recorder, with --record
    watcher: MappingWatcher | None = None     # hot reload of the mapping file; None: no file to watch
    preview: Any = None                       # live.preview.PreviewWindow, with --preview
    clock: Clock = SYSTEM_CLOCK
    control_address: tuple[str, int] | None = None
    control_allow: frozenset[str] | None = None  # None: any host may control
    load_mapping: Callable[[str], Mapping] = load_mapping
    make_osc: Callable[[Sequence[OscTargetSpec]], OscSender] = OscSender
    profile_path: str | None = None           # where the profile in use came from: a live recalibration saves there


def build_parts(config: RunConfig) -> Parts:
    """The real parts for *config*; raises an :class:`~emobridge.errors.EmobridgeError` for a bad option."""
    import cv2

    from ..perception.calibration import load_profile
    from ..perception.emotion import EmotionClassifier
    from ..perception.smoothing import EmotionSmoother

    cv2.setNumThreads(1)  # the perception chain is fastest on one thread, and leaves the other cores to the DAW
    mapping = load_mapping(config.mapping)
    classifier = EmotionClassifier(config.model)
    profile_path = config.profile or mapping.profile
    if profile_path:  # a bad or foreign profile stops the start with one line, before any port opens
        classifier.use_profile(load_profile(profile_path, classifier.identity))
    perception = Perception(classifier, smoother=EmotionSmoother(mapping.smoothing),
                            follow=config.faces or mapping.faces.follow, max_faces=mapping.faces.max_faces)
    cli_targets = [parse_target(t) for t in config.osc]
    make_osc = functools.partial(OscSender, prefix=config.osc_prefix)
    control_address = parse_control_address(config.control) if config.control else None
    control_allow = parse_allow_list(config.control_allow) if config.control_allow else None
    reopen = source_opener(config)
    source = reopen()
    preview = _open_preview() if config.preview else None  # before the port: no display fails the start
    port, recorder = _open_port(config)
    extras = [_open_link()] if config.link else []
    return Parts(mapping=mapping, perception=perception, source=source, open_source=reopen, port=port,
                 osc=make_osc(cli_targets + list(mapping.osc)), cli_targets=cli_targets, extras=extras,
                 recorder=recorder, watcher=MappingWatcher(config.mapping), preview=preview,
                 control_address=control_address, control_allow=control_allow, make_osc=make_osc,
                 profile_path=profile_path)


def source_opener(config: RunConfig) -> Callable[[], FrameSource]:
    """What opens the configured camera, file or folder (again, after it was lost)."""
    from ..perception.sources import open_source

    camera = None if (config.video or config.images) else config.camera
    return functools.partial(open_source, camera=camera, video=config.video, images=config.images,
                             loop=config.loop, fps=config.fps, size=config.size)


def _open_preview() -> Any:
    from .preview import PreviewWindow

    window = PreviewWindow()
    window.open()
    return window


def _open_port(config: RunConfig) -> tuple[MidiPort, Any]:
    from ..outputs.midi import MidiOut

    midi = MidiOut(config.midi_port, config.midi_backend, config.midi_connect)
    if not config.record:
        return midi, None
    from ..outputs.ports import Tee
    from ..outputs.record import Recorder

    try:
        recorder = Recorder(config.record)
    except Exception:
        midi.close()
        raise
    return Tee(midi, recorder), recorder


def _open_link() -> Any:
    from ..outputs.link import LinkTempo

    return LinkTempo()
