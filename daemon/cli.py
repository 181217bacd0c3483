"""The ``emobridge`` command."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .labels import EMOTIONS, FOLLOW_MODES
from .errors import EmobridgeError, UserError
from .tools.bench import add_arguments as add_bench_arguments, run as run_bench
from .train.__main__ import add_arguments as add_train_arguments

# Each command loads what it needs (OpenCV, onnxruntime, numpy, torch) when it runs, so that
# `emobridge --help` and argparse's errors come at once.
if TYPE_CHECKING:
    from .live.wiring import RunConfig

log = logging.getLogger("emobridge")


# --- run / demo --------------------------------------------------------------
def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", help="YAML mapping file or preset name (default, ambient, driving, …); hot-reloaded when saved")
    p.add_argument("--model", help="ONNX emotion model (default: the bundled model)")
    add_profile_option(p)
    p.add_argument("--midi-backend", default="auto",
                   help="alsa, jack, coremidi or winmm (default: auto); jack-native: a JACK port that places every "
                        "message at its exact frame (pip install 'emobridge[jack]')")
    p.add_argument("--midi-port", default="emobridge", help="name of the virtual MIDI port to create (default: %(default)s)")
    p.add_argument("--midi-connect", metavar="NAME", help="open this existing MIDI output port instead (e.g. loopMIDI on Windows)")
    p.add_argument("--osc", action="append", default=[], metavar="HOST:PORT[=PRESET]",
                   help="send OSC here (repeatable); presets: emobridge (default), abletonosc, reaper")
    p.add_argument("--osc-prefix", default="/emobridge", help="OSC address prefix (default: %(default)s)")
    p.add_argument("--control", metavar="[HOST:]PORT", help="listen for OSC remote control here (default: off; host 127.0.0.1)")
    p.add_argument("--control-allow", action="append", default=[], metavar="HOST[,HOST...]",
                   help="only these hosts (and this machine) may send control commands; use it with a --control "
                        "address beyond 127.0.0.1")
    p.add_argument("--link", action="store_true", help="share the tempo with Ableton Link peers (pip install 'emobridge[link]')")
    p.add_argument("--seed", type=int, default=0, help="seed for the composer's choices (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="process a file as fast as possible instead of at its frame rate")
    p.add_argument("--midi-clock", action="store_true", help="send MIDI clock (24 ppqn), Start/Stop and Song Position for DAW sync")
    p.add_argument("--follow", choices=("midi", "link", "link-transport", "abletonosc"),
                   help="tempo: follow: the DAW leads and emobridge plays on its beats (midi: its MIDI clock on "
                        "--clock-in; link: an Ableton Link session's bars; link-transport: and its start/stop; "
                        "abletonosc: Live's beat listener, coarser); default: the mapping's tempo key, lead")
    p.add_argument("--clock-in", metavar="PORT",
                   help="the DAW's MIDI output that sends clock (24 ppqn, Start/Stop/Continue, Song Position); "
                        "implies --follow midi")
    p.add_argument("--record", metavar="DIR", help="write the session to DIR: a MIDI file and a JSON-lines emotion log")
    p.add_argument("--speed", type=float, default=1.0, help="play the music this many times faster (soak tests; default 1)")
    p.add_argument("--faces", choices=FOLLOW_MODES,
                   help="which faces the music follows: the largest, the average of all, or each its own voice "
                        "(default: the mapping's faces.follow, largest)")
    p.add_argument("--preview", action="store_true",
                   help="open a window with the picture, face boxes, emotion and tempo/mode (default: headless)")


def add_profile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", metavar="FILE",
                   help="resting-face profile from 'emobridge calibrate': corrects the model's bias for this face")


def load_classifier(args: argparse.Namespace):  # -> EmotionClassifier (imported late: --help stays quick)
    """The emotion model of --model, with the --profile correction if one was given."""
    from .perception.calibration import load_profile
    from .perception.emotion import EmotionClassifier

    classifier = EmotionClassifier(args.model)
    if getattr(args, "profile", None):
        classifier.use_profile(load_profile(args.profile, classifier.identity))
    return classifier


def parse_camera(text: str) -> int | str:
    """An index stays a number; a path or a camera name stays text (sources.py tells them apart)."""
    return int(text) if text.isdigit() else text


SIZE_FORM = re.compile(r"(\d+)[xX](\d+)")
MAX_SIDE = 16384  # pixels: beyond any camera, so a typo like 12800x720 is caught here
MIN_FPS, MAX_FPS = 0.5, 1000.0  # the range sources.py accepts for files and folders


def parse_size(text: str) -> tuple[int, int]:
    """--size 1280x720 → (1280, 720); anything else is an argparse error naming the option."""
    match = SIZE_FORM.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 1280x720; got {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"width and height must be 1 to {MAX_SIDE} pixels, e.g. 1280x720; got {text!r}")
    return width, height


def parse_fps(text: str) -> float:
    """--fps 30 or 12.5, checked here so a typo fails before a model loads or a port opens."""
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not MIN_FPS <= fps <= MAX_FPS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected frames per second from {MIN_FPS:g} to {MAX_FPS:g}, e.g. 30; got {text!r}")
    return fps


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig that ``run`` (and ``demo``) parsed options describe."""
    from .live.wiring import RunConfig

    return RunConfig(camera=args.camera, video=args.video, images=args.images, loop=args.loop, fast=args.fast,
                     size=args.size, fps=args.fps,
                     mapping=args.mapping, model=args.model, midi_backend=args.midi_backend, midi_port=args.midi_port,
                     midi_connect=args.midi_connect, osc=args.osc, osc_prefix=args.osc_prefix, control=args.control,
                     control_allow=args.control_allow,
                     link=args.link, midi_clock=args.midi_clock, speed=args.speed, record=args.record,
                     follow=args.follow, clock_in=args.clock_in,
                     seed=args.seed, preview=args.preview, faces=args.faces, profile=args.profile,
                     stop_at_end=getattr(args, "stop_at_end", False))


def cmd_run(args: argparse.Namespace) -> int:
    faulthandler.enable()  # a crash in a C library (a driver, a decoder) prints every thread's stack for the report
    from .live.daemon import Daemon

    code = Daemon(run_config_from_args(args)).run(restore_signals=False)
    # Everything is closed and written: leave without the interpreter's teardown, which would run while
    # threads that a forced stop did not wait for are still inside C libraries (a decoder, the model, JACK)
    # and can crash there after the show ended well.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_clip_path

    args.camera, args.images, args.loop, args.video = None, None, False, str(demo_clip_path())
    args.size, args.fps = None, None  # the clip plays at its own size and rate
    args.stop_at_end = True  # the demo is one pass of its clip
    return cmd_run(args)


# --- simulate ----------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from .mapping import load_mapping
    from .music.render import parse_trajectory, simulate, simulate_trajectory

    mapping = load_mapping(args.mapping)
    if args.trajectory:
        segments = parse_trajectory(args.trajectory)
        midi = simulate_trajectory(segments, args.seed, mapping)
    elif args.emotion in EMOTIONS:
        segments = [(args.emotion, args.bars)]
        midi = simulate(args.emotion, args.bars, args.seed, mapping)
    else:
        raise UserError(f"unknown emotion {args.emotion!r}: use one of {', '.join(EMOTIONS)}")
    try:
        midi.save(args.out)
    except OSError as error:  # a missing folder or no permission: the user's to fix
        raise UserError(f"cannot write {args.out}: {error.strerror or error}") from None
    what = ", ".join(f"{bars} bars of {emotion}" for emotion, bars in segments)
    print(f"wrote {args.out}: {what} (seed {args.seed})")
    return 0


# --- music-report --------------------------------------------------------------
def cmd_music_report(args: argparse.Namespace) -> int:
    import json

    import mido

    from .mapping import load_mapping
    from .music.render import simulate
    from .music.report import format_report, measure

    if args.file and args.emotion:
        raise UserError("give a MIDI file or --emotion, not both")
    if args.file:
        try:
            midi = mido.MidiFile(args.file)
        except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
            raise UserError(f"cannot read {args.file} as a Standard MIDI File: {error}") from None
        title = args.file
    elif args.emotion:
        if args.emotion not in EMOTIONS:
            raise UserError(f"unknown emotion {args.emotion!r}: use one of {', '.join(EMOTIONS)}")
        mapping = load_mapping(args.mapping)
        bars = args.bars
        if args.minutes is not None:  # a hold: as many bars as fill the minutes at the emotion's tempo
            from .music.composer import params_for
            from .state import EmotionState
            tempo = params_for(EmotionState.fixed(args.emotion), mapping).tempo
            bars = max(1, round(args.minutes * tempo / mapping.beats_per_bar))
        midi = simulate(args.emotion, bars, args.seed, mapping)
        title = f"{args.emotion}, {bars} bars, seed {args.seed}, mapping {args.mapping or 'default'}"
    else:
        raise UserError("give a MIDI file to measure, or --emotion E to measure what the composer plays for it")
    try:
        report = measure(midi)
    except ValueError as error:
        raise UserError(f"{title}: {error}") from None
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_report(report, title))
    return 0


def cmd_check_mapping(args: argparse.Namespace) -> int:
    from .mapping import describe_mapping, list_presets, load_mapping

    if args.file is None:
        print("presets: " + ", ".join(list_presets()))
        return 0
    print(describe_mapping(load_mapping(args.file)), end="")
    return 0


# --- model tools ---------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from .train.__main__ import run

    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as error:
        raise UserError(f"training needs PyTorch and onnx ({error.name} is missing): pip install 'emobridge[train]'") from None
    return run(args)


def cmd_ensemble(args: argparse.Namespace) -> int:
    try:
        from .train import ensemble
    except ImportError as error:
        raise UserError(f"ensemble needs the onnx package ({error.name} is missing): pip install 'emobridge[train]'") from None
    return ensemble.run(args)


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .tools.datasets import load_split
    from .tools.metrics import evaluate

    classifier = load_classifier(args)
    faces = load_split(args.dir, "val")
    probs = np.concatenate([classifier.probabilities(faces.images[i:i + 256]) for i in range(0, len(faces), 256)])
    report = evaluate(faces.labels, probs.argmax(1))
    print(json.dumps(report.to_json()) if args.json else f"{faces.source} with {classifier.path.name}\n{report.to_text()}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    import cv2

    from .perception.faces import FaceDetector, crop_face

    classifier = load_classifier(args)
    detector = FaceDetector()
    size = classifier.input_size
    results = []
    for name in args.images:
        image = cv2.imread(name, cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read image {name}: the file is missing or not an image")
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if grey.shape == (size, size):
            face, how = grey, "crop"
        else:
            boxes = detector.detect(image)
            if not boxes:
                results.append({"image": name, "face": None})
                continue
            face, how = crop_face(grey, boxes[0], size), "detected"
        reading = classifier.classify(face)
        results.append({"image": name, "face": how, "label": reading.label,
                        "probs": {e: round(float(p), 4) for e, p in zip(EMOTIONS, reading.probs)}})
    for r in results:
        if args.json:
            print(json.dumps(r))
        elif r["face"] is None:
            print(f"{r['image']}: no face found")
        else:
            probs = "  ".join(f"{e} {p:.2f}" for e, p in r["probs"].items())
            print(f"{r['image']}: {r['label']}  ({probs})")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .perception.emotion import EmotionClassifier
    from .perception.sources import open_source
    from .tools.calibrate import calibrate, describe

    classifier = EmotionClassifier(args.model)
    camera = None if (args.video or args.images) else args.camera
    with open_source(camera=camera, video=args.video, images=args.images, fps=args.fps) as source:
        if camera is not None:
            print(f"look at the camera with a calm, resting face for {args.seconds:g} s...", file=sys.stderr)
        profile = calibrate(source, classifier, args.seconds)
    profile.save(args.out)
    print(f"wrote {args.out}: {describe(profile)}")
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    import time

    from .tools.learn import check_cc, check_channel, cc_note, sweep
    from .outputs.midi import MidiOut

    check_cc(args.cc), check_channel(args.channel)  # refuse before a port appears
    midi = MidiOut(args.midi_port, args.midi_backend, args.midi_connect)
    try:
        note = cc_note(args.cc)
        if note:
            log.warning("%s", note)
        log.info("on %s: put your DAW in MIDI-learn, click the control, then wait for CC %d on channel %d",
                 midi.description, args.cc, args.channel)
        time.sleep(args.wait)  # the DAW needs a moment to see a new virtual port
        sent = sweep(midi, args.cc, args.channel, seconds=args.seconds, repeats=args.repeats)
        log.info("sent %d values of CC %d on channel %d; done", sent, args.cc, args.channel)
    finally:
        midi.close()
    return 0


def cmd_cameras(args: argparse.Namespace) -> int:
    from .perception.sources import list_cameras

    found = list_cameras()
    for camera in found:
        print(camera.describe())
    if not found:
        print("no camera could be opened (plugged in? used by another app?); --video FILE or --images DIR work without one")
    return 0


def cmd_ports(args: argparse.Namespace) -> int:
    """The MIDI backends and ports, in a DAW's terms; exit 1 when no backend can be used now."""
    from .outputs.midi import backend_hint, compiled_backends, list_ports

    print(f"MIDI backends built in: {', '.join(compiled_backends())}")
    found, failed = list_ports()
    for backend, reason in failed.items():
        print(f"{backend}: cannot be used now ({reason})")
    for backend, ports in found.items():
        print(f"{backend}:")
        print(f"  emobridge can play into (--midi-connect NAME; MIDI inputs of other programs): "
              f"{', '.join(ports.destinations) or '(none)'}")
        print(f"  programs that send MIDI (their outputs): {', '.join(ports.sources) or '(none)'}")
    if not found:
        print(f"no MIDI backend can be used right now: {backend_hint()}")
        return 1
    print("emobridge's own port is not listed: while 'emobridge run' plays it is a MIDI input named "
          "'emobridge' (or --midi-port NAME) that your DAW or synth receives from")
    return 0


# --- parser ------------------------------------------------------------------
def add_log_options(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """-v/-q, set as ``log_level``. Each command takes them again after its name, with no default of its
    own (SUPPRESS), so that ``emobridge -v run`` stays verbose."""
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", dest="log_level", action="store_const", const=logging.DEBUG,
                       default=default, help="also log debug detail (by default the log says what changes)")
    level.add_argument("-q", "--quiet", dest="log_level", action="store_const", const=logging.WARNING,
                       default=default, help="log only warnings and errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emobridge", description="Facial emotion in, music out (MIDI + OSC).")
    parser.add_argument("--version", action="version", version=f"emobridge {__version__}")
    add_log_options(parser, default=logging.INFO)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="watch the camera (or a file) and play")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--camera", type=parse_camera, default=0, metavar="N|PATH|NAME",
                        help="camera index, device path, or (Linux) name or part of it, e.g. C920; "
                             "'emobridge cameras' lists them (default: 0)")
    source.add_argument("--video", help="a video file instead of the camera")
    source.add_argument("--images", help="a folder of images instead of the camera")
    run.add_argument("--loop", action="store_true", help="start a file again when it ends")
    run.add_argument("--stop-at-end", action="store_true",
                     help="stop when a file ends (default: the music goes on, as for a lost camera, and the file "
                          "is opened again with backoff)")
    run.add_argument("--size", type=parse_size, metavar="WxH",
                     help="ask the camera for this picture size, e.g. 1280x720 (it picks its nearest mode; "
                          "files keep their own size)")
    run.add_argument("--fps", type=parse_fps, metavar="N",
                     help="camera: ask for this frame rate; --video: play at this rate instead of the file's own; "
                          "--images: show this many images a second (default 10)")
    add_output_options(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="play the bundled demo clip through the whole chain")
    add_output_options(demo)
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="write what the composer plays for an emotion to a MIDI file")
    sim.add_argument("--emotion", default="happy", help=f"one of {', '.join(EMOTIONS)}")
    sim.add_argument("--trajectory", metavar="E:BARS,...", help="a sequence instead, e.g. sad:8,happy:8,angry:8")
    sim.add_argument("--bars", type=int, default=16)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--mapping", help="YAML mapping file or preset name (default: the bundled default)")
    sim.add_argument("--out", default="emobridge.mid", help="Standard MIDI File to write")
    sim.set_defaults(func=cmd_simulate)

    report = sub.add_parser("music-report", help="measure repetition, harmony, rhythm and dynamics of a MIDI file "
                                                 "(or of what the composer plays for an emotion)")
    report.add_argument("file", nargs="?", help="a Standard MIDI File")
    report.add_argument("--emotion", help=f"simulate this emotion instead: one of {', '.join(EMOTIONS)}")
    report.add_argument("--bars", type=int, default=64, help="bars to simulate (default 64)")
    report.add_argument("--minutes", type=float, help="simulate a hold of this many minutes instead of --bars")
    report.add_argument("--seed", type=int, default=1)
    report.add_argument("--mapping", help="YAML mapping file or preset name (default: the bundled default)")
    report.add_argument("--json", action="store_true", help="print the measures as JSON")
    report.set_defaults(func=cmd_music_report)

    check = sub.add_parser("check-mapping", help="validate a mapping and print it resolved (or the errors)")
    check.add_argument("file", nargs="?", help="a YAML file or a preset name (none: list the presets)")
    check.set_defaults(func=cmd_check_mapping)

    train = sub.add_parser("train", help="train the emotion model (needs emobridge[train])")
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)

    ens = sub.add_parser("ensemble", help="join trained models into one that averages them (needs emobridge[train])")
    ens.add_argument("models", nargs="+", type=Path, help="two or more ONNX emotion models (from emobridge train); one with --views")
    ens.add_argument("--out", type=Path, required=True, help="the ensemble ONNX file to write (with --split: a folder)")
    ens.add_argument("--val", type=Path,
                     help="FER2013 (a folder with val/ or test/, or fer2013.csv): the faces it is measured on")
    ens.add_argument("--weights", help="one weight per model, e.g. 2,1 (default: equal)")
    ens.add_argument("--views", help="test-time views: zoom factors each face is also classified at and averaged "
                                     "over, e.g. 1,0.93,1.12 (one model is then enough)")
    ens.add_argument("--mirror-views", action="store_true", help="each view also mirrored (twice the cost)")
    ens.add_argument("--split", action="store_true",
                     help="the other way round: write each member of one ensemble file to the folder --out names")
    ens.set_defaults(func=cmd_ensemble)

    ev = sub.add_parser("eval", help="accuracy and confusion of the model on a labelled folder")
    ev.add_argument("dir", help="DIR/<class>/*.jpg, DIR/val/<class>/*.jpg (or test/, PublicTest/), "
                                "or fer2013.csv (its PublicTest rows)")
    ev.add_argument("--model", help="ONNX model (default: the bundled one)")
    add_profile_option(ev)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_eval)

    cl = sub.add_parser("classify", help="the seven emotion probabilities of images")
    cl.add_argument("images", nargs="+")
    cl.add_argument("--model", help="ONNX model (default: the bundled one)")
    add_profile_option(cl)
    cl.add_argument("--json", action="store_true", help="one JSON object per image")
    cl.set_defaults(func=cmd_classify)

    cal = sub.add_parser("calibrate", help="record your resting face into a profile for --profile")
    cal_source = cal.add_mutually_exclusive_group()
    cal_source.add_argument("--camera", type=parse_camera, default=0, metavar="N|PATH|NAME",
                            help="camera index, device path or name (default: 0)")
    cal_source.add_argument("--video", help="a video of the resting face instead of the camera")
    cal_source.add_argument("--images", help="a folder of pictures of the resting face instead of the camera")
    cal.add_argument("--seconds", type=float, default=5.0, help="seconds recorded (default: %(default)s)")
    cal.add_argument("--fps", type=parse_fps, metavar="N", help="camera rate, or images a second of a folder "
                                                               "(default: the camera's, 10)")
    cal.add_argument("--model", help="ONNX emotion model the profile is for (default: the bundled one)")
    cal.add_argument("--out", default="emobridge-profile.json", help="profile file to write (default: %(default)s)")
    cal.set_defaults(func=cmd_calibrate)

    learn = sub.add_parser("learn", help="sweep one CC slowly so your DAW's MIDI-learn picks it up")
    learn.add_argument("--cc", type=int, required=True, help="controller number 0-119")
    learn.add_argument("--channel", type=int, default=1, help="MIDI channel 1-16 (default: 1)")
    learn.add_argument("--seconds", type=float, default=6.0, help="length of one up-and-down sweep (default: 6)")
    learn.add_argument("--repeats", type=int, default=2, help="sweeps to send (default: 2)")
    learn.add_argument("--wait", type=float, default=2.0, help="seconds to wait after opening the port (default: 2)")
    learn.add_argument("--midi-backend", default="auto")
    learn.add_argument("--midi-port", default="emobridge")
    learn.add_argument("--midi-connect", metavar="NAME")
    learn.set_defaults(func=cmd_learn)

    bench = sub.add_parser("bench", help="time the perception chain (and its steadiness on FER val clips)")
    add_bench_arguments(bench)
    bench.set_defaults(func=run_bench)

    cameras = sub.add_parser("cameras", help="list the cameras that can be opened")
    cameras.set_defaults(func=cmd_cameras)

    ports = sub.add_parser("ports", help="list the MIDI backends and the ports emobridge can play into")
    ports.set_defaults(func=cmd_ports)
    for command in sub.choices.values():
        add_log_options(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="emobridge: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except EmobridgeError as error:  # anything else is a bug: it keeps its traceback
        print(f"emobridge: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `emobridge eval … | head`: the reader has what it wanted
        # Python would print a traceback when it flushes stdout at exit: point stdout at nothing first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE (128 + 13)


if __name__ == "__main__":
    sys.exit(main())
