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
from ..errors import UserError
from .clock import SYSTEM_CLOCK, Clock, MasterClock
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
    follow: str | None = None  # tempo: follow from this source ("midi"); None: the mapping's tempo key decides
    clock_in: str | None = None  # the DAW's MIDI output port its clock comes from (tempo: follow)
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
    master: MasterClock | None = None         # tempo: follow: the DAW's beat grid the player plays on
    clock_in: Any = None                      # outputs.clock_in.MidiClockIn feeding it (closed at the end)
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
    follow = follow_source(config, mapping)
    # A follower never sets the DAW's tempo: the presets that would (abletonosc, reaper) hear none from it.
    make_osc = functools.partial(OscSender, prefix=config.osc_prefix, drive_tempo=follow is None)
    control_address = parse_control_address(config.control) if config.control else None
    control_allow = parse_allow_list(config.control_allow) if config.control_allow else None
    reopen = source_opener(config)
    source = reopen()
    preview = _open_preview() if config.preview else None  # before the port: no display fails the start
    live = next((t for t in cli_targets + list(mapping.osc) if t.preset == "abletonosc"), None)
    master, clock_in = _open_leader(config, follow, mapping.beats_per_bar, live) if follow else (None, None)
    try:
        port, recorder = _open_port(config)
    except Exception:
        if clock_in is not None:
            clock_in.close()
        raise
    extras = [_open_link()] if config.link else []
    return Parts(mapping=mapping, perception=perception, source=source, open_source=reopen, port=port,
                 osc=make_osc(cli_targets + list(mapping.osc), daw=mapping.daw), cli_targets=cli_targets, extras=extras,
                 recorder=recorder, watcher=MappingWatcher(config.mapping), preview=preview,
                 control_address=control_address, control_allow=control_allow, make_osc=make_osc,
                 master=master, clock_in=clock_in, profile_path=profile_path)


FOLLOW_SOURCES = ("midi", "link", "link-transport", "abletonosc")  # where tempo: follow takes the leader's beat from


def follow_source(config: RunConfig, mapping: Mapping) -> str | None:
    """The source a follower takes its beat from, or None when emobridge leads; a contradiction is a UserError."""
    follow = config.follow or ("midi" if config.clock_in or mapping.tempo == "follow" else None)
    if follow is None:
        return None
    if follow not in FOLLOW_SOURCES:
        raise UserError(f"--follow {follow!r}: the sources are {', '.join(FOLLOW_SOURCES)}")
    if follow != "midi":
        if config.link:
            raise UserError(f"--link leads the Link session's tempo, but --follow {follow} follows it: use one of them")
        if config.clock_in:
            raise UserError(f"--clock-in reads a MIDI clock, but --follow {follow} follows another source: "
                            "use one of them")
    elif not config.clock_in:
        raise UserError("tempo: follow needs the leader's beat: add --clock-in PORT (a MIDI output of the DAW that "
                        "sends clock; 'emobridge ports' lists them) or --follow link (an Ableton Link session)")
    if config.midi_clock:
        raise UserError("--midi-clock sends emobridge's own clock, but tempo: follow plays to the DAW's: use one of them")
    return follow


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
    if config.midi_backend == "jack-native":
        from ..outputs.jack_out import JackMidiOut

        midi: MidiPort = JackMidiOut(config.midi_port, config.midi_connect)
    else:
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


def _open_leader(config: RunConfig, follow: str, beats_per_bar: int,
                 live: OscTargetSpec | None) -> tuple[MasterClock, Any]:
    """The grid the player follows and what feeds it (closed at the end): a MIDI clock input, a Link peer, or
    AbletonOSC's beat listener (at the first abletonosc target, else Live on this computer)."""
    master = MasterClock()
    if follow == "midi":
        from ..outputs.clock_in import MidiClockIn

        assert config.clock_in is not None
        return master, MidiClockIn(config.clock_in, master, config.midi_backend)
    if follow == "abletonosc":
        from ..outputs.abletonosc_in import LIVE_PORT, AbletonOscBeats

        host, port = (live.host, live.port) if live is not None else ("127.0.0.1", LIVE_PORT)
        return master, AbletonOscBeats(master, host, port)
    from ..outputs.link import LinkFollower

    return master, LinkFollower(master, beats_per_bar, transport=follow == "link-transport")


def _open_link() -> Any:
    from ..outputs.link import LinkTempo

    return LinkTempo()
