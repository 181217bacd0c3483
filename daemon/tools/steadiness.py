"""How steady and how quick the reported emotion is, measured on clips built from FER2013 faces.

A clip holds one face of class A for ``hold`` seconds, then switches to a face of class B
for ``hold`` seconds. Each face is a validation image the model classifies confidently as
its class, upscaled from 48×48 to a face-sized 192×192 region (borders reflected, as a
head and shoulders would continue) in the middle of a 640×480 grey frame. "Held" means
the *same* crop every frame, with what a camera adds: sensor noise (σ 3 grey levels),
a drift of a few pixels, a few percent of exposure change. The frames go through the real
chain: :class:`~emobridge.perception.chain.Perception` with the face tracker, the classifier and
the smoother, so Haar box jitter reaches the classifier as it would live.

Two figures come out, over many A→B pairs across the classes:

- spurious label changes per minute while an expression holds: every change of the
  reported label inside a segment, except the one change that brings it to the segment's
  class (the first segment starts from the smoother's neutral);
- latency: seconds from the switch to the first frame whose reported label is B.

Nothing is written to disk; the val images are read only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from ..perception.emotion import EmotionClassifier
from ..perception.faces import FaceDetector, FaceTracker, crop_face
from ..labels import EMOTIONS
from ..perception.chain import Perception
from ..perception.smoothing import EmotionSmoother, SmoothingConfig

FRAME_SIZE = (640, 480)  # width, height
FACE_SIDE = 192          # the 48 px face upscaled 4×: a performer about a metre from a webcam
NOISE_SIGMA = 3.0        # grey levels of per-frame sensor noise
DRIFT_PX = 3             # the face wanders at most this far from its place
TARGET_SPURIOUS_PER_MIN = 2.0
TARGET_LATENCY_S = 0.5


@dataclass(frozen=True)
class SteadinessResult:
    fps: float
    hold_s: float
    pairs: int                        # A→B clips measured
    classes: tuple[str, ...]          # classes that had usable faces
    spurious_changes: int             # label changes that were not the response to a change of face
    hold_minutes: float               # minutes of held expression they were counted over
    spurious_per_minute: float
    followed: float                   # share of switches after which the label reached B at all
    latency_median_s: float           # switch → reported label B (followed switches only)
    latency_p95_s: float
    latency_max_s: float
    face_found: float                 # share of frames with a face box

    @property
    def meets_targets(self) -> bool:
        """At most 2 spurious changes a minute, every switch followed, 95% of them within 0.5 s."""
        return (self.spurious_per_minute <= TARGET_SPURIOUS_PER_MIN and self.followed == 1.0
                and self.latency_p95_s <= TARGET_LATENCY_S)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        data["meets_targets"] = self.meets_targets
        return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v) for k, v in data.items()}


def place_face(face48: np.ndarray, side: int = FACE_SIDE, size: tuple[int, int] = FRAME_SIZE,
               offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A grey frame with the face upscaled to *side* px at its centre (+ *offset*), borders reflected."""
    width, height = size
    face = cv2.resize(face48, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = side // 2
    big = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    frame = np.full((height, width), int(np.median(face48)), np.uint8)
    h, w = big.shape
    y0, x0 = (height - h) // 2 + offset[1], (width - w) // 2 + offset[0]
    fy0, fx0 = max(0, y0), max(0, x0)
    fy1, fx1 = min(height, y0 + h), min(width, x0 + w)
    frame[fy0:fy1, fx0:fx1] = big[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    return frame


class _Camera:
    """Adds what a camera adds to a held face: noise, a slow drift, exposure flicker."""

    def __init__(self, seed: int, size: tuple[int, int] = FRAME_SIZE):
        self.rng = np.random.default_rng(seed)
        width, height = size
        # A handful of noise fields, cycled: fresh noise per frame would cost more than the chain.
        self.noise = [self.rng.normal(0.0, NOISE_SIGMA, (height, width)).astype(np.float32) for _ in range(7)]
        self.offset = np.zeros(2)
        self.frame = 0

    def shoot(self, face48: np.ndarray) -> np.ndarray:
        self.offset = np.clip(self.offset + self.rng.normal(0.0, 0.7, 2), -DRIFT_PX, DRIFT_PX)
        grey = place_face(face48, offset=(int(round(self.offset[0])), int(round(self.offset[1]))))
        gain = 1.0 + self.rng.uniform(-0.03, 0.03)
        noisy = grey.astype(np.float32) * gain + self.noise[self.frame % len(self.noise)]
        self.frame += 1
        return cv2.cvtColor(np.clip(noisy, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def load_val_faces(val_dir: str | Path, per_class_scan: int = 300) -> dict[str, list[np.ndarray]]:
    """Up to *per_class_scan* 48×48 grey faces of each class in ``val_dir/<class>/``, in name order."""
    root = Path(val_dir)
    faces: dict[str, list[np.ndarray]] = {}
    for name in EMOTIONS:
        files = sorted((root / name).glob("*.jpg"))[:per_class_scan] if (root / name).is_dir() else []
        images = [img for img in (cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files)
                  if img is not None and img.shape == (48, 48)]
        faces[name] = images
    return faces


def pick_faces(classifier: EmotionClassifier, faces: dict[str, list[np.ndarray]], per_class: int = 3,
               min_confidence: float = 0.5) -> dict[str, list[np.ndarray]]:
    """Faces of each class that the chain sees as that class, confidently.

    A face qualifies when, in four camera shots of it (noise, drift), the Haar cascade finds
    it each time and the model, given the crops the chain would cut, puts its own class on
    top each time with a mean probability of at least *min_confidence*. The most confident
    come first. Classes with none are left out.
    """
    detector = FaceDetector()
    size = classifier.input_size
    picked: dict[str, list[np.ndarray]] = {}
    for name, images in faces.items():
        if not images:
            continue
        k = EMOTIONS.index(name)
        direct = classifier.probabilities(np.stack(images))[:, k]
        candidates = []
        for index in np.argsort(-direct)[: per_class * 8]:
            if direct[index] < min_confidence:
                break
            # Judged on what the chain would see: a few camera shots (noise, drift), Haar crops.
            camera = _Camera(int(index))
            crops = []
            for _ in range(4):
                frame = camera.shoot(images[index])
                box = detector.detect_largest(frame)
                if box is None:
                    break
                crops.append(crop_face(frame, box, size))
            if len(crops) < 4:
                continue
            probs = classifier.probabilities(np.stack(crops))
            if (probs.argmax(1) == k).all() and probs[:, k].mean() >= min_confidence:
                candidates.append((float(probs[:, k].mean()), int(index)))
        if candidates:
            picked[name] = [images[i] for _, i in sorted(candidates, reverse=True)[:per_class]]
    return picked


def pairs_of(classes: list[str], limit: int | None = None) -> list[tuple[str, str]]:
    """Ordered A→B pairs of different classes, spread so a limit still covers every class."""
    pairs = list(itertools.permutations(classes, 2))
    # Interleave by "distance" in the class list, so the first few cover every class as A and B.
    pairs.sort(key=lambda ab: ((classes.index(ab[1]) - classes.index(ab[0])) % len(classes), classes.index(ab[0])))
    return pairs if limit is None else pairs[:limit]


def clip(face_a: np.ndarray, face_b: np.ndarray, fps: float, hold: float, seed: int) -> Iterator[tuple[np.ndarray, float, int]]:
    """Frames (BGR image, time, segment 0 or 1) of A held for *hold* s, then B for *hold* s."""
    camera = _Camera(seed)
    n = int(round(hold * fps))
    for i in range(2 * n):
        yield camera.shoot(face_a if i < n else face_b), i / fps, int(i >= n)


@dataclass(frozen=True)
class RecordedClip:
    """What the chain's detector and classifier made of one A→B clip, before smoothing.

    Smoothing does not feed back into detection or classification, so one recording can be
    scored against many smoothing settings (:func:`score_clips`).
    """

    a: str
    b: str
    times: np.ndarray                   # frame times, seconds
    probs: list[np.ndarray | None]      # per frame: the classifier's probabilities, None without a face
    start_b: int                        # index of the first frame showing B


def record_clips(
    classifier: EmotionClassifier,
    faces: dict[str, list[np.ndarray]],
    *,
    fps: float = 15.0,
    hold: float = 5.0,
    pairs: int | None = 21,
    seed: int = 0,
) -> list[RecordedClip]:
    """Build the A→B clips and run each through the tracker and the classifier (via :class:`Perception`)."""
    classes = [name for name in EMOTIONS if faces.get(name)]
    if len(classes) < 2:
        raise DatasetError(f"the steadiness clips need confidently classified val faces of two classes at least, "
                           f"got {classes or 'none'}: give a FER2013 val folder with more faces")
    use = {name: 0 for name in classes}
    clips = []
    for number, (a, b) in enumerate(pairs_of(classes, pairs)):
        face_a = faces[a][use[a] % len(faces[a])]
        face_b = faces[b][use[b] % len(faces[b])]
        use[a] += 1
        use[b] += 1
        perception = Perception(classifier, FaceTracker())
        times, probs, start_b = [], [], None
        for image, now, segment in clip(face_a, face_b, fps, hold, seed + number):
            result = perception.process(image, now)
            times.append(now)
            probs.append(None if result.reading is None else result.reading.probs)
            if segment == 1 and start_b is None:
                start_b = len(times) - 1
        clips.append(RecordedClip(a, b, np.array(times), probs, int(start_b)))
    return clips


def score_clips(clips: list[RecordedClip], smoothing: SmoothingConfig | None = None, *,
                fps: float, hold: float) -> SteadinessResult:
    """Smooth each recorded clip afresh and count spurious changes and the latency of the switch."""
    spurious, hold_frames, frames, with_face = 0, 0, 0, 0
    latencies: list[float] = []
    for rec in clips:
        smoother = EmotionSmoother(smoothing)
        labels = [smoother.update(p, float(t)).label for p, t in zip(rec.probs, rec.times)]
        frames += len(labels)
        with_face += sum(p is not None for p in rec.probs)
        for segment, target, first in ((0, rec.a, 0), (1, rec.b, rec.start_b)):
            last = rec.start_b if segment == 0 else len(labels)
            previous = labels[first - 1] if first > 0 else "neutral"
            changes = [i for i in range(first, last) if labels[i] != (labels[i - 1] if i > first else previous)]
            reached = next((i for i in range(first, last) if labels[i] == target), None)
            # The change that brought the label to this segment's class is the response, not noise.
            response = 1 if reached is not None and reached in changes else 0
            spurious += len(changes) - response
            hold_frames += last - first
            if segment == 1 and reached is not None:
                latencies.append(float(rec.times[reached] - rec.times[rec.start_b]))
    minutes = hold_frames / fps / 60.0
    lat = np.array(latencies) if latencies else None
    classes = tuple(name for name in EMOTIONS if any(name in (c.a, c.b) for c in clips))
    return SteadinessResult(
        fps=fps, hold_s=hold, pairs=len(clips), classes=classes,
        spurious_changes=spurious, hold_minutes=minutes, spurious_per_minute=spurious / max(minutes, 1e-9),
        followed=len(latencies) / max(len(clips), 1),
        latency_median_s=math.inf if lat is None else float(np.median(lat)),
        latency_p95_s=math.inf if lat is None else float(np.percentile(lat, 95)),
        latency_max_s=math.inf if lat is None else float(lat.max()), face_found=with_face / max(frames, 1),
    )


def measure_steadiness(
    classifier: EmotionClassifier,
    val_dir: str | Path | None = None,
    *,
    faces: dict[str, list[np.ndarray]] | None = None,
    fps: float = 15.0,
    hold: float = 5.0,
    pairs: int | None = 21,
    smoothing: SmoothingConfig | None = None,
    seed: int = 0,
) -> SteadinessResult:
    """Run A→B clips through the real perception chain and count what the reported label does.

    faces: already-picked faces per class (from :func:`pick_faces`); otherwise they are picked
    from *val_dir*. pairs: how many A→B pairs (None: every ordered pair of usable classes).
    """
    if faces is None:
        if val_dir is None:
            raise ValueError("measure_steadiness needs val_dir or faces")
        faces = pick_faces(classifier, load_val_faces(val_dir))
    clips = record_clips(classifier, faces, fps=fps, hold=hold, pairs=pairs, seed=seed)
    return score_clips(clips, smoothing, fps=fps, hold=hold)


def format_steadiness(result: SteadinessResult) -> str:
    ok = "meets" if result.meets_targets else "MISSES"
    return (f"steadiness at {result.fps:g} fps, {result.pairs} A→B clips of {result.hold_s:g}+{result.hold_s:g} s "
            f"({', '.join(result.classes)}): {result.spurious_per_minute:.2f} spurious label changes/min "
            f"({result.spurious_changes} in {result.hold_minutes:.1f} min); label follows a change in "
            f"{result.latency_median_s:.2f} s median, {result.latency_p95_s:.2f} s p95, {result.latency_max_s:.2f} s max "
            f"({result.followed:.0%} followed); face found in {result.face_found:.0%} of frames; {ok} the targets "
            f"(≤ {TARGET_SPURIOUS_PER_MIN:g}/min, ≤ {TARGET_LATENCY_S:g} s p95)")
