"""Facial emotion from a 48×48 grey face, with the project's ONNX CNN on onnxruntime.

Everything the runtime needs to know about the model (class order, input size,
normalisation) is read from the model file's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..labels import EMOTIONS
from .calibration import Profile, model_identity
from .model_info import ModelInfo
from ..errors import ModelError

DEFAULT_MODEL = "emotion.onnx"


@dataclass(frozen=True)
class EmotionReading:
    """One face's class probabilities, in :data:`EMOTIONS` order."""

    probs: np.ndarray
    label: str
    confidence: float

    @classmethod
    def from_probs(cls, probs: np.ndarray) -> "EmotionReading":
        best = int(np.argmax(probs))
        return cls(probs, EMOTIONS[best], float(probs[best]))


def normalise(faces: np.ndarray, info: ModelInfo) -> np.ndarray:
    """uint8 N×S×S faces → a model's float N×1×S×S input, exactly as the daemon feeds it (training's export
    check uses this too: an int8 model can change its answer for a face on a last-bit difference)."""
    x = faces.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - np.float32(info.mean)) / np.float32(info.std)
    return x[:, None, :, :]


def default_model_path() -> Path:
    return Path(str(resources.files("emobridge.models") / DEFAULT_MODEL))


class EmotionClassifier:
    """Runs the emotion model on faces; one onnxruntime thread by default so the DAW keeps the rest.

    profile: a performer's resting-face correction (:mod:`.calibration`), applied to every
    reading; None reads the model as it is. Set it with :meth:`use_profile` from the thread that
    classifies (the perception thread owns the classifier).
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1, profile: Profile | None = None):
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise ModelError(f"emotion model {path} not found: reinstall emobridge or pass --model FILE.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.info = ModelInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map, source=str(path))
        except ModelError:
            raise
        except Exception as error:  # onnxruntime raises several types for a bad file
            raise ModelError(f"emotion model {path} could not be loaded ({str(error).splitlines()[0]}): "
                             "reinstall emobridge or retrain it with 'emobridge train'") from None
        unknown = [c for c in self.info.classes if c not in EMOTIONS]
        if unknown or len(self.info.classes) != len(EMOTIONS):
            raise ModelError(f"emotion model {path} has classes {list(self.info.classes)}; expected the 7 FER classes {list(EMOTIONS)}")
        self.path = path
        self.input_name = self.session.get_inputs()[0].name
        # model output column for each class in EMOTIONS order
        self.order = np.array([self.info.classes.index(name) for name in EMOTIONS])
        self._identity: str | None = None
        self.profile: Profile | None = None
        self.use_profile(profile)

    @property
    def identity(self) -> str:
        """The SHA-256 of the model file, which a profile must name."""
        if self._identity is None:
            self._identity = model_identity(self.path)
        return self._identity

    def use_profile(self, profile: Profile | None) -> None:
        """Correct readings with *profile* from now on (None: uncorrected); refuses another model's."""
        if profile is not None and profile.model != self.identity:
            from ..errors import ProfileError

            raise ProfileError(f"profile for model {profile.model[:12]}… does not fit the emotion model "
                               f"{self.path.name} ({self.identity[:12]}…): calibrate again with this model")
        self.profile = profile

    @property
    def input_size(self) -> int:
        return self.info.input_size

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        """uint8 N×S×S faces → the model's normalised float N×1×S×S input."""
        return normalise(faces, self.info)

    def raw_probabilities(self, faces: np.ndarray) -> np.ndarray:
        """The model's own probabilities (N×7, :data:`EMOTIONS` order) for a batch of uint8 faces: no profile."""
        out = self.session.run(None, {self.input_name: self.prepare(faces)})[0]
        return out[:, self.order]

    def corrected(self, probs: np.ndarray) -> np.ndarray:
        """Raw probabilities as the profile in use corrects them (unchanged without one)."""
        return probs if self.profile is None else self.profile.apply(probs)

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N×7, :data:`EMOTIONS` order) for a batch of uint8 faces, corrected by the profile."""
        return self.corrected(self.raw_probabilities(faces))

    def classify(self, face: np.ndarray) -> EmotionReading:
        """One uint8 face of the model's input size."""
        return EmotionReading.from_probs(self.probabilities(face[None])[0])
