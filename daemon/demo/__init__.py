"""The demo clip that `emobridge demo` plays on a machine without a camera.

Two public-domain portraits with changing expressions; see README.md here
for where each face comes from, and scripts/make_demo_clip.py for how the
clip is built.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib.resources import files
from pathlib import Path

__all__ = ["CLIP_NAME", "demo_clip_path"]

CLIP_NAME = "demo.mp4"


def demo_clip_path() -> Path:
    """A real file path to the demo clip, for cv2.VideoCapture.

    Installed normally the clip is already a file inside the package. From a
    zipped install it is copied out once to the temp folder, since OpenCV can
    only open files on disk.
    """
    resource = files(__name__) / CLIP_NAME
    if not resource.is_file():
        raise FileNotFoundError(
            f"the demo clip {CLIP_NAME} is missing from the emobridge.demo package: "
            "reinstall emobridge, or rebuild it with python scripts/make_demo_clip.py"
        )
    if isinstance(resource, Path):
        return resource
    target = Path(tempfile.gettempdir()) / "emobridge" / CLIP_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with resource.open("rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target
