#!/usr/bin/env python3
"""Build daemon/demo/demo.mp4, the clip `emobridge demo` plays instead of a webcam.

No network is needed; the two source photographs are public-domain portraits
that ship inside Python packages (see daemon/demo/README.md for the full
provenance):

* Eileen Collins, official NASA astronaut portrait, shipped by scikit-image
  as ``skimage/data/astronaut.png``.
* Commodore (later Rear Admiral) Grace M. Hopper, official U.S. Navy
  portrait, shipped by Matplotlib as
  ``matplotlib/mpl-data/sample_data/grace_hopper.jpg``.

Collins smiles and Hopper looks neutral in the originals. The other
expressions (surprise, neutral, sad, angry) are made here by
warping the photos: eyebrows, eyelids, mouth corners and jaw are moved by
hand-placed landmarks, and an open mouth gets a painted dark interior. Small
head movements, lighting drift and sensor noise make it look like a webcam.

Usage (from the repository root):

    pip install scikit-image matplotlib      # or point --astronaut/--hopper at the files
    python scripts/make_demo_clip.py

The result is deterministic for a given OpenCV version (fixed random seed).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "daemon" / "demo" / "demo.mp4"

WIDTH, HEIGHT, FPS = 640, 480, 15
NOISE_SIGMA = 0.8  # webcam sensor noise, grey levels
# Webcam optics are soft; the photos are sharp studio portraits. Softening
# them looks more like a camera and keeps the clip small (fine wrinkle and
# JPEG detail is what costs the encoder most bits).
SOFTEN_SIGMA = 1.2
SEED = 2024


# ---------------------------------------------------------------- the photos

@dataclass(frozen=True)
class Portrait:
    """A source photo, the 4:3 region of it that fills the frame, and its landmarks.

    Landmarks are hand-placed pixel positions in the original photo. Each
    side of the face has brow_out/brow_mid/brow_in, an eye centre and an
    upper lid; the mouth has corners, the top of the upper lip, the line
    where the lips part (``lips``) and the bottom of the lower lip.
    """

    name: str
    package: str  # importable package that ships the file
    member: str  # path of the file inside that package
    crop: tuple[int, int, int, int]  # x, y, w, h in the photo (4:3)
    landmarks: dict[str, tuple[float, float]]
    credit: str = ""
    # How far (IOD) the lower lip must rise to close the mouth; 0 if it is closed.
    teeth_gap: float = 0.0

    @property
    def iod(self) -> float:
        """Inter-ocular distance: every expression offset is a multiple of it."""
        (lx, ly), (rx, ry) = self.landmarks["eye_l"], self.landmarks["eye_r"]
        return math.hypot(rx - lx, ry - ly)


COLLINS = Portrait(
    name="collins",
    package="skimage",
    member="data/astronaut.png",
    crop=(75, 10, 300, 225),
    landmarks={
        "brow_l_out": (190, 94), "brow_l_mid": (201, 90), "brow_l_in": (213, 92),
        "brow_r_in": (237, 92), "brow_r_mid": (248, 91), "brow_r_out": (260, 95),
        "eye_l": (202.4, 101.6), "eye_r": (246.4, 103.2),
        "lid_l": (202.4, 98.0), "lid_r": (246.4, 99.6),
        "cheek_l": (198, 128), "cheek_r": (251, 128),
        "mouth_l": (204.5, 142), "mouth_r": (243.5, 141),
        "lip_top": (224, 140), "teeth_top": (224, 142.5), "lips": (224, 149.5),
        "lip_bot": (224, 155),
        "chin": (224, 178), "nose": (225, 129),
    },
    credit="Eileen Collins, NASA (public domain), via scikit-image",
    teeth_gap=0.21,  # her smile shows the upper teeth, 142-150 px (and a margin)
)

HOPPER = Portrait(
    name="hopper",
    package="matplotlib",
    member="mpl-data/sample_data/grace_hopper.jpg",
    crop=(0, 64, 512, 384),
    landmarks={
        # Her brows sit behind the top rim of her glasses.
        "brow_l_out": (190, 182), "brow_l_mid": (215, 178), "brow_l_in": (245, 180),
        "brow_r_in": (280, 177), "brow_r_mid": (305, 173), "brow_r_out": (335, 176),
        "eye_l": (220, 190), "eye_r": (303, 185),
        "lid_l": (220, 184), "lid_r": (303, 179),
        "cheek_l": (210, 245), "cheek_r": (312, 242),
        "mouth_l": (232, 277), "mouth_r": (295, 276),
        "lip_top": (263, 270), "lips": (263, 277), "lip_bot": (263, 287),
        "chin": (266, 318), "nose": (267, 245),
    },
    credit="Grace M. Hopper, U.S. Navy (public domain), via Matplotlib",
)

PORTRAITS = {p.name: p for p in (COLLINS, HOPPER)}


def find_photo(portrait: Portrait, override: Path | None) -> Path:
    """The photo file: --astronaut/--hopper if given, else inside the installed package.

    find_spec locates the package without importing it, so neither
    scikit-image nor Matplotlib has to be importable, only present.
    """
    if override is not None:
        return override
    spec = importlib.util.find_spec(portrait.package)
    if spec is None or spec.origin is None:
        sys.exit(
            f"{portrait.package} is not installed: pip install "
            f"{'scikit-image' if portrait.package == 'skimage' else portrait.package}, "
            f"or pass --{'astronaut' if portrait.name == 'collins' else 'hopper'} PATH "
            f"to {portrait.member} unpacked from its wheel"
        )
    path = Path(spec.origin).parent / portrait.member
    if not path.is_file():
        sys.exit(f"{path} not found in the installed {portrait.package}")
    return path


# ---------------------------------------------------------- the expressions

# Landmark moves in units of inter-ocular distance: (towards the midline, down).
# A "_l"/"_r" suffix is added for both sides; "in" is mirrored so both
# sides move symmetrically. The numbers follow the Facial Action Coding
# System prototypes: sad = inner brow raise (AU1) + lip corner depressor
# (AU15); angry = brow lowerer (AU4) + lid tightener (AU7) + lip press (AU24);
# surprise = brow raise (AU1+2) + upper lid raise (AU5) + jaw drop (AU26);
# happy = lip corner puller (AU12) + cheek raise (AU6).
@dataclass(frozen=True)
class Expression:
    moves: dict[str, tuple[float, float]] = field(default_factory=dict)
    jaw: float = 0.0  # jaw drop, in IOD; opens the mouth and paints its inside
    close: float = 0.0  # 1 = close a smiling, open mouth over the teeth (lips together)


EXPRESSIONS: dict[str, Expression] = {
    "as_is": Expression(),
    # Relaxes a smile: lips closed, corners level, cheeks down.
    "neutral": Expression({
        "mouth": (0.05, 0.08), "cheek": (0.0, 0.04),
    }, close=1.0),
    "sad": Expression({
        "brow_in": (0.04, -0.13), "brow_mid": (0.0, -0.05), "brow_out": (0.0, 0.06),
        "lid": (0.0, 0.05), "mouth": (0.05, 0.24), "lip_bot": (0.0, -0.03), "cheek": (0.0, 0.05),
    }, close=1.0),
    "angry": Expression({
        "brow_in": (0.12, 0.22), "brow_mid": (0.06, 0.15), "brow_out": (0.0, 0.03),
        "lid": (0.0, 0.08), "mouth": (0.10, 0.20), "lip_top": (0.0, 0.03),
        "lip_bot": (0.0, -0.05), "cheek": (0.0, 0.06),
    }, close=1.0),
    "surprise": Expression({
        "brow_in": (0.0, -0.17), "brow_mid": (0.0, -0.19), "brow_out": (0.0, -0.14),
        "lid": (0.0, -0.05), "mouth": (0.06, 0.0),
    }, jaw=0.36),
    "smile": Expression({
        "mouth": (-0.10, -0.13), "cheek": (0.0, -0.06), "lid": (0.0, 0.02),
        "lip_bot": (0.0, -0.02),
    }),
}

# How far each landmark's move spreads (Gaussian sigma, in IOD).
SPREAD = {"brow": 0.20, "lid": 0.10, "cheek": 0.25, "mouth": 0.22, "lip": 0.16}


def _landmark_moves(portrait: Portrait, expr: Expression, amount: float):
    """(points, moves, sigmas) in photo pixels for the RBF warp."""
    iod = portrait.iod
    mid_x = (portrait.landmarks["eye_l"][0] + portrait.landmarks["eye_r"][0]) / 2
    points, moves, sigmas = [], [], []
    for key, (inward, down) in expr.moves.items():
        if key in portrait.landmarks:
            names = [key]
        else:  # "brow_in" -> brow_l_in, brow_r_in; "mouth" -> mouth_l, mouth_r
            part, _, sub = key.partition("_")
            names = [f"{part}_{side}" + (f"_{sub}" if sub else "") for side in "lr"]
        for name in names:
            x, y = portrait.landmarks[name]
            sign = 1.0 if x < mid_x else -1.0  # towards the midline
            if name in ("lip_top", "lip_bot"):
                sign = 0.0
            points.append((x, y))
            moves.append((sign * inward * iod * amount, down * iod * amount))
            sigmas.append(SPREAD[name.split("_")[0]] * iod)
    # Anchors that stay put, so a raised brow lifts the upper lid but does
    # not drag the whole eye (or the nose) along with it.
    for side in "lr":
        ex, ey = portrait.landmarks[f"eye_{side}"]
        for point, spread in (((ex, ey), 0.08), ((ex, ey + 0.2 * iod), 0.12)):
            points.append(point)
            moves.append((0.0, 0.0))
            sigmas.append(spread * iod)
    points.append(portrait.landmarks["nose"])
    moves.append((0.0, 0.0))
    sigmas.append(0.2 * iod)
    return np.array(points, float).reshape(-1, 2), np.array(moves, float).reshape(-1, 2), np.array(sigmas, float)


def warp_face(photo: np.ndarray, portrait: Portrait, expr: Expression, amount: float) -> np.ndarray:
    """The photo with ``amount`` (0..1) of an expression applied."""
    if amount <= 0 or (not expr.moves and not expr.jaw and not expr.close):
        return photo
    h, w = photo.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)

    # Smooth local moves: a Gaussian bump of displacement round each
    # landmark. The field is defined where pixels end up, and each output
    # pixel samples the photo at (p - d), so landmarks land where intended.
    # Where bumps overlap (three points along a brow) their moves are
    # averaged, not added, or the brow would travel three times as far.
    points, moves, sigmas = _landmark_moves(portrait, expr, amount)
    total = np.zeros((h, w), np.float32)
    for (px, py), (mx, my), s in zip(points, moves, sigmas):
        tx, ty = px + mx, py + my
        g = np.exp(-((xs - tx) ** 2 + (ys - ty) ** 2) / (2 * s * s))
        dx += g * mx
        dy += g * my
        total += g
    norm = np.maximum(total, 1.0)
    dx /= norm
    dy /= norm

    cavity = None
    iod = portrait.iod
    mouth_w = portrait.landmarks["mouth_r"][0] - portrait.landmarks["mouth_l"][0]
    mouth_w -= 2 * expr.moves.get("mouth", (0.0, 0.0))[0] * iod * amount
    half = 0.55 * mouth_w
    if expr.close and portrait.teeth_gap:
        # The lower lip and jaw rise to meet the upper lip, hiding the teeth
        # (the pixels between the two lines are skipped over).
        lift = expr.close * portrait.teeth_gap * iod * amount
        teeth_half = 0.6 * (portrait.landmarks["mouth_r"][0] - portrait.landmarks["mouth_l"][0])
        dy -= _jaw_field(portrait, "teeth_top", lift, teeth_half, xs, ys)
    if expr.jaw:
        # The band a jaw drop opens is filled with stretched lip pixels,
        # which the painted mouth interior then covers.
        drop = expr.jaw * iod * amount
        dy += _jaw_field(portrait, "lips", drop, half, xs, ys)
        lx, ly = portrait.landmarks["lips"]
        cavity = (lx, ly, drop, half)

    out = cv2.remap(photo, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    if cavity is not None:
        lx, ly, drop, mouth_w = cavity
        _paint_mouth(out, lx, ly, drop, mouth_w, amount)
    return out


def _jaw_field(portrait: Portrait, line: str, amount: float, half: float,
               xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Downward move of everything below a lip line: a jaw drop (or, negated, a jaw rise).

    Right at the line the move is shaped like an open mouth (full in the
    middle, nothing at the corners ``half`` px out), so it opens or closes a
    mouth-shaped gap; lower down the whole jaw moves, fading out sideways
    and below the chin, so cheeks stretch instead of tearing.
    """
    iod = portrait.iod
    lx, ly = portrait.landmarks[line]
    chin_y = portrait.landmarks["chin"][1]
    across = np.exp(-((xs - lx) ** 2) / (2 * (0.6 * iod) ** 2))
    profile = np.sqrt(np.clip(1 - ((xs - lx) / half) ** 2, 0, 1))
    lower = np.clip((ys - ly) / (0.3 * iod), 0, 1)
    shape = profile + (1 - profile) * lower * lower * (3 - 2 * lower)
    below = np.clip(1 - (ys - chin_y - max(amount, 0.0)) / (1.2 * iod), 0, 1)  # neck stays put
    return amount * across * (ys >= ly) * shape * below


def _paint_mouth(image: np.ndarray, cx: float, top: float, drop: float, half: float, amount: float) -> None:
    """Paint a dark mouth interior into the gap the jaw drop opened.

    The gap runs from the lip line down to ``drop * profile`` below it
    (see warp_face), so painting exactly that region, with a soft edge,
    covers the stretched lip-line pixels and leaves both lips showing.
    """
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    profile = np.sqrt(np.clip(1 - ((xs - cx) / half) ** 2, 0, 1))
    depth = drop * profile
    inside = np.minimum(ys - top + 0.5, top + depth - ys - 0.5)  # px from the nearer lip
    # A softer top edge: the upper lip's shadow, not a cut.
    edge = np.minimum((ys - top + 0.5) / 2.5, (top + depth - ys - 0.5) / 1.5)
    alpha = np.clip(edge, 0, 1) * (depth > 1) * min(1.0, amount * 1.5)
    # Darker deep inside, a little red near the lips like a real mouth.
    shade = np.clip(inside / max(drop * 0.35, 1.0), 0, 1)[..., None]
    inner = np.array([45, 45, 100], np.float32) * (1 - shade) + np.array([20, 16, 38], np.float32) * shade
    blended = image.astype(np.float32) * (1 - alpha[..., None]) + inner * alpha[..., None]
    image[:] = np.clip(blended, 0, 255).astype(np.uint8)


# -------------------------------------------------------------- the timeline

# (portrait, expression, seconds). Expressions ease in and out over EASE s
# the way real faces do, rather than switching in one frame.
TIMELINE: list[tuple[str, str, float]] = [
    ("collins", "as_is", 3.5),      # happy: the original photo
    ("collins", "surprise", 3.5),
    ("collins", "neutral", 3.5),
    ("collins", "sad", 3.5),
    ("collins", "angry", 3.5),
    ("collins", "as_is", 2.5),
    ("hopper", "as_is", 3.5),       # neutral: the original photo
    ("hopper", "surprise", 3.5),
    ("hopper", "sad", 3.5),
]
EASE = 0.6  # seconds


def expression_plan(fps: float):
    """Per frame: (portrait name, [(expression, amount), ...])."""
    frames = []
    for seg_index, (who, expr, seconds) in enumerate(TIMELINE):
        n = round(seconds * fps)
        prev = TIMELINE[seg_index - 1] if seg_index else None
        for i in range(n):
            t = i / fps
            ease_in = min(1.0, t / EASE)
            ease_in = ease_in * ease_in * (3 - 2 * ease_in)  # smoothstep
            mix = [(expr, ease_in)]
            # The previous expression of the same person fades out as this one fades in.
            if prev and prev[0] == who and prev[1] != expr and ease_in < 1:
                mix.append((prev[1], 1 - ease_in))
            frames.append((who, mix))
    return frames


def combine(expressions: list[tuple[str, float]]) -> Expression:
    """Blend expressions by weight into one (moves add up linearly)."""
    moves: dict[str, tuple[float, float]] = {}
    jaw = close = 0.0
    for name, weight in expressions:
        e = EXPRESSIONS[name]
        for key, (a, b) in e.moves.items():
            ox, oy = moves.get(key, (0.0, 0.0))
            moves[key] = (ox + a * weight, oy + b * weight)
        jaw += e.jaw * weight
        close += e.close * weight
    return Expression(moves, jaw, close)


# -------------------------------------------------------- the webcam look

def head_motion(t: float) -> tuple[float, float, float, float]:
    """Slow, slightly irregular sway: (dx px, dy px, degrees, scale)."""
    dx = 7 * math.sin(0.9 * t) + 3 * math.sin(2.3 * t + 1.0)
    dy = 4 * math.sin(0.7 * t + 0.5) + 2 * math.sin(1.9 * t)
    angle = 2.0 * math.sin(0.6 * t + 2.0) + 0.8 * math.sin(1.7 * t)
    scale = 1.0 + 0.025 * math.sin(0.4 * t + 0.3)
    return dx, dy, angle, scale


def render(photo: np.ndarray, portrait: Portrait, t: float, rng: np.random.Generator) -> np.ndarray:
    x, y, w, h = portrait.crop
    # Move the frame, not the face: rotate/zoom about the crop centre and
    # sample the whole photo, so edges show real background, not padding.
    dx, dy, angle, scale = head_motion(t)
    sx = WIDTH / w
    centre = (x + w / 2, y + h / 2)
    m = cv2.getRotationMatrix2D(centre, angle, scale * sx)
    m[0, 2] += WIDTH / 2 - centre[0] + dx
    m[1, 2] += HEIGHT / 2 - centre[1] + dy
    frame = cv2.warpAffine(photo, m, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    if SOFTEN_SIGMA > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), SOFTEN_SIGMA)
    gain = 1.0 + 0.04 * math.sin(0.5 * t)  # auto-exposure drift
    noisy = frame.astype(np.float32) * gain + rng.normal(0, NOISE_SIGMA, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def build(out: Path, photos: dict[str, np.ndarray]) -> int:
    rng = np.random.default_rng(SEED)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        sys.exit(f"cannot write {out} with the mp4v codec: use the opencv-python pip wheel")
    count = 0
    for index, (who, mix) in enumerate(expression_plan(FPS)):
        portrait = PORTRAITS[who]
        expr = combine(mix)
        face = warp_face(photos[who], portrait, expr, 1.0)
        writer.write(render(face, portrait, index / FPS, rng))
        count += 1
    writer.release()
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--astronaut", type=Path, help="skimage/data/astronaut.png")
    parser.add_argument("--hopper", type=Path, help="matplotlib/mpl-data/sample_data/grace_hopper.jpg")
    parser.add_argument("--stills", type=Path, help="also write one PNG per expression here, to check them")
    args = parser.parse_args(argv)

    photos = {}
    for portrait, override in ((COLLINS, args.astronaut), (HOPPER, args.hopper)):
        path = find_photo(portrait, override)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f"cannot read {path}")
        photos[portrait.name] = image

    if args.stills:
        args.stills.mkdir(parents=True, exist_ok=True)
        for who in PORTRAITS:
            for name, expr in EXPRESSIONS.items():
                still = render(warp_face(photos[who], PORTRAITS[who], expr, 1.0), PORTRAITS[who], 0.0,
                               np.random.default_rng(0))
                cv2.imwrite(str(args.stills / f"{who}_{name}.png"), still)

    count = build(args.out, photos)
    print(f"wrote {args.out}: {count} frames, {count / FPS:.1f} s at {FPS} fps, "
          f"{args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
