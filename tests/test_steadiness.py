"""The steadiness measurement: clips built from faces, spurious label changes and latency."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from emobridge.labels import EMOTIONS
from emobridge.perception.smoothing import SmoothingConfig
from emobridge.tools.steadiness import (RecordedClip, clip, load_val_faces, measure_steadiness, pairs_of, pick_faces,
                                        place_face, score_clips)

FER_VAL = Path(os.environ.get("EMOBRIDGE_FER_VAL", "/tmp/fer2013/val"))  # CI unpacks ../shared/data there


def test_place_face_puts_an_upscaled_face_in_a_640x480_frame():
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    frame = place_face(face)
    assert frame.shape == (480, 640) and frame.dtype == np.uint8
    middle = frame[240 - 96:240 + 96, 320 - 96:320 + 96]
    assert abs(float(middle.mean()) - float(face.mean())) < 5


def test_clip_holds_a_then_b():
    a, b = np.full((48, 48), 40, np.uint8), np.full((48, 48), 200, np.uint8)
    frames = list(clip(a, b, fps=15, hold=1.0, seed=0))
    assert len(frames) == 30
    assert [s for _, _, s in frames] == [0] * 15 + [1] * 15
    assert frames[1][1] == pytest.approx(1 / 15)
    assert frames[0][0].shape == (480, 640, 3)
    assert frames[0][0].mean() < frames[-1][0].mean()


def test_pairs_cover_every_class_early():
    pairs = pairs_of(["happy", "sad", "fear"], 3)
    assert {a for a, _ in pairs} == {"happy", "sad", "fear"} and all(a != b for a, b in pairs)
    assert len(pairs_of(["happy", "sad", "fear"])) == 6


def noisy_clip(a: str, b: str, fps: float, hold: float, seed: int, level: float = 0.3) -> RecordedClip:
    """What a fair classifier gives for a held face: the true class on top on average, noisy per frame."""
    rng = np.random.default_rng(seed)
    n = int(hold * fps)
    probs = []
    for i in range(2 * n):
        p = rng.dirichlet(np.full(len(EMOTIONS), 1.0)) * (1 - level)
        p[EMOTIONS.index(a if i < n else b)] += level
        probs.append(p)
    return RecordedClip(a, b, np.arange(2 * n) / fps, probs, n)


@pytest.mark.parametrize("fps", [15.0, 30.0])
def test_default_smoothing_is_steady_and_quick_on_noisy_held_expressions(fps):
    clips = [noisy_clip(a, b, fps, 10.0, seed) for seed, (a, b) in enumerate(pairs_of(list(EMOTIONS), 14))]
    result = score_clips(clips, SmoothingConfig(), fps=fps, hold=10.0)
    assert result.pairs == 14 and result.hold_minutes == pytest.approx(14 * 20 / 60)
    assert result.spurious_per_minute <= 2.0
    assert result.followed == 1.0 and result.latency_p95_s <= 0.5
    assert result.meets_targets
    # Without smoothing the same frames flicker: the measurement does see noise.
    raw = score_clips(clips, SmoothingConfig(attack=0, release=0, hysteresis=0, confirm=0, min_hold=0),
                      fps=fps, hold=10.0)
    assert raw.spurious_per_minute > 10 * max(result.spurious_per_minute, 1.0)


def test_a_switch_never_followed_counts_as_not_followed():
    rec = noisy_clip("happy", "sad", 15.0, 3.0, 0)
    rec = RecordedClip("happy", "sad", rec.times, rec.probs[: rec.start_b] * 2, rec.start_b)  # B never shows
    result = score_clips([rec], fps=15.0, hold=3.0)
    assert result.followed == 0.0 and math.isinf(result.latency_max_s)
    assert not result.meets_targets
    assert result.to_json()["meets_targets"] is False


@pytest.mark.skipif(not FER_VAL.is_dir(), reason="needs FER2013 faces in class folders (val/ or the Kaggle test/): "
                    "EMOBRIDGE_FER_VAL=/path/to/fer2013/val ./scripts/test tests/test_steadiness.py "
                    "(default /tmp/fer2013/val; CI unpacks ../shared/data/fer2013-train-val.tar.gz)")
def test_real_chain_on_clips_from_fer_val_gives_finite_figures():
    from emobridge.perception.emotion import EmotionClassifier

    classifier = EmotionClassifier()
    faces = pick_faces(classifier, load_val_faces(FER_VAL), per_class=1)  # one face a class: a third of the screening
    result = measure_steadiness(classifier, faces=faces, fps=15.0, hold=3.0, pairs=2)
    assert result.pairs == 2 and result.face_found > 0.9
    assert math.isfinite(result.spurious_per_minute) and math.isfinite(result.latency_median_s)
    assert 0.0 <= result.latency_median_s <= 3.0
