"""``emobridge run --preview``: a window with what emobridge sees and plays.

The perception thread only stores a :class:`PreviewFrame` (an attribute assignment, no
lock); the main thread renders the latest one at about 30 Hz and shows it. So the player
thread never waits on drawing, and every GUI call stays on the main thread (macOS needs
that). :func:`render` is pure: it draws on a new canvas, never on the camera image, which
the perception thread owns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from ..perception.faces import FaceBox
from ..labels import EMOTIONS
from ..music.params import MusicParams
from ..state import EmotionState
from ..errors import PreviewError

__all__ = ["FaceView", "PreviewError", "PreviewFrame", "PreviewWindow", "WINDOW_TITLE", "render"]

WINDOW_TITLE = "emobridge preview"

# Layout, in pixels of the rendered image (module constants so tests can measure the bars).
DISPLAY_WIDTH = 640          # the camera picture is scaled to this width, aspect kept
PANEL_WIDTH = 300            # the side panel right of the picture
PAD = 12
HEADER_Y = 26                # baseline of the label/confidence line
BAR_TOP = 44                 # top of the first probability bar row
BAR_ROW = 24                 # height of one row
BAR_HEIGHT = 14
BAR_X = PAD + 72             # bars start right of the emotion names (offset within the panel)
BAR_MAX = 150                # length of a bar at probability 1
VA_TOP = BAR_TOP + len(EMOTIONS) * BAR_ROW + 22
VA_SIZE = 150                # side of the valence/arousal square
MUSIC_Y = VA_TOP + VA_SIZE + 50
PANEL_HEIGHT = MUSIC_Y + 34  # the least height the canvas needs for the panel

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = (32, 32, 32)
TEXT = (220, 220, 220)
DIM = (130, 130, 130)
BAR = (170, 140, 90)         # muted blue for the other classes
HIGHLIGHT = (60, 200, 255)   # amber for the current label
FACE = (80, 220, 80)
NO_FACE = (60, 60, 230)


@dataclass(frozen=True)
class FaceView:
    """One face in the picture: its box, its raw (unsmoothed) reading and, when each face drives a voice, its slot."""

    box: FaceBox
    probs: tuple[float, ...] | None
    label: str | None
    slot: int | None = None


@dataclass(frozen=True)
class PreviewFrame:
    """What the perception thread hands to the preview: the picture, its faces and the smoothed state."""

    image: np.ndarray
    faces: tuple[FaceView, ...]
    state: EmotionState


# --- rendering -----------------------------------------------------------------
def render(frame: PreviewFrame, music: MusicParams | None) -> np.ndarray:
    """A new BGR image: the scaled picture with face boxes, and a panel with emotion and music."""
    picture, scale = _scaled_picture(frame.image)
    height = max(picture.shape[0], PANEL_HEIGHT)
    canvas = np.full((height, picture.shape[1] + PANEL_WIDTH, 3), BACKGROUND, dtype=np.uint8)
    canvas[:picture.shape[0], :picture.shape[1]] = picture
    for face in frame.faces:
        _draw_face(canvas, face, scale)
    if not frame.state.face:
        _draw_no_face(canvas, picture.shape[1], picture.shape[0])
    panel_x = picture.shape[1]
    _draw_header(canvas, panel_x, frame.state)
    _draw_bars(canvas, panel_x, frame.state)
    _draw_valence_arousal(canvas, panel_x, frame.state)
    _draw_music(canvas, panel_x, music)
    return canvas


def _scaled_picture(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture at DISPLAY_WIDTH (a copy: resize never writes into its input), and the scale used."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = DISPLAY_WIDTH / image.shape[1]
    size = (DISPLAY_WIDTH, max(1, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR  # AREA avoids aliasing when shrinking
    return cv2.resize(image, size, interpolation=interpolation), scale


def _text(canvas: np.ndarray, text: str, x: int, y: int, color=TEXT, size: float = 0.5, thick: int = 1,
          outline: bool = False) -> None:
    if outline:  # a dark rim keeps text readable on any picture
        cv2.putText(canvas, text, (x, y), FONT, size, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, (x, y), FONT, size, color, thick, cv2.LINE_AA)


def _draw_face(canvas: np.ndarray, face: FaceView, scale: float) -> None:
    b = face.box
    x0, y0 = round(b.x * scale), round(b.y * scale)
    x1, y1 = round((b.x + b.w) * scale), round((b.y + b.h) * scale)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), FACE, 2)
    words = [f"voice {face.slot + 1}"] if face.slot is not None else []  # numbered as OSC /voice counts them
    if face.label:
        words.append(face.label + (f" {max(face.probs):.2f}" if face.probs else ""))
    if words:  # above the box, or inside its top when the box touches the top edge
        _text(canvas, " ".join(words), x0 + 2, y0 - 6 if y0 > 20 else y0 + 18, FACE, 0.55,
              outline=True)


def _draw_no_face(canvas: np.ndarray, width: int, height: int) -> None:
    cv2.rectangle(canvas, (1, 1), (width - 2, height - 2), NO_FACE, 3)
    _text(canvas, "no face", PAD, 30, NO_FACE, 0.8, 2, outline=True)


def _draw_header(canvas: np.ndarray, x: int, state: EmotionState) -> None:
    _text(canvas, f"{state.label} {state.confidence:.2f}", x + PAD, HEADER_Y, HIGHLIGHT, 0.65, 2)


def _draw_bars(canvas: np.ndarray, x: int, state: EmotionState) -> None:
    """One horizontal bar per class, length proportional to its smoothed probability."""
    for i, (name, p) in enumerate(zip(EMOTIONS, state.probs)):
        top = BAR_TOP + i * BAR_ROW
        current = name == state.label
        color = HIGHLIGHT if current else BAR
        _text(canvas, name, x + PAD, top + BAR_HEIGHT - 2, TEXT if current else DIM, 0.45)
        length = round(max(0.0, min(1.0, p)) * BAR_MAX)
        if length > 0:
            cv2.rectangle(canvas, (x + BAR_X, top), (x + BAR_X + length - 1, top + BAR_HEIGHT - 1), color, cv2.FILLED)
        _text(canvas, f"{p:.2f}", x + BAR_X + BAR_MAX + 6, top + BAR_HEIGHT - 2, DIM, 0.42)


def _draw_valence_arousal(canvas: np.ndarray, x: int, state: EmotionState) -> None:
    """The valence (left-right) / arousal (down-up) square, -1..1 on both axes."""
    left, top = x + PAD + 30, VA_TOP
    right, bottom = left + VA_SIZE, top + VA_SIZE
    mid_x, mid_y = (left + right) // 2, (top + bottom) // 2
    cv2.rectangle(canvas, (left, top), (right, bottom), DIM, 1)
    cv2.line(canvas, (mid_x, top), (mid_x, bottom), DIM, 1)
    cv2.line(canvas, (left, mid_y), (right, mid_y), DIM, 1)
    _text(canvas, "arousal", left - 30, top - 6, DIM, 0.4)
    _text(canvas, "valence", right + 4, mid_y + 4, DIM, 0.4)
    v = max(-1.0, min(1.0, state.valence))
    a = max(-1.0, min(1.0, state.arousal))
    point = (round(mid_x + v * VA_SIZE / 2), round(mid_y - a * VA_SIZE / 2))  # screen y grows downwards
    cv2.circle(canvas, point, 6, HIGHLIGHT, cv2.FILLED, cv2.LINE_AA)
    _text(canvas, f"v {state.valence:+.2f}  a {state.arousal:+.2f}", left - 30, bottom + 18, DIM, 0.42)


def _draw_music(canvas: np.ndarray, x: int, music: MusicParams | None) -> None:
    if music is None:  # the player has not started its first bar yet
        _text(canvas, "waiting for the first bar", x + PAD, MUSIC_Y, DIM, 0.5)
        return
    _text(canvas, f"{music.tempo:.0f} BPM  {music.mode}", x + PAD, MUSIC_Y, TEXT, 0.6, 2)
    _text(canvas, f"density {music.density:.2f}", x + PAD, MUSIC_Y + 24, TEXT, 0.5)


# --- the window ------------------------------------------------------------------
def gui_problem() -> str | None:
    """Why no window can open here, or None. Checked before any cv2 GUI call, because
    OpenCV's Qt build aborts the whole process (no exception) when it cannot reach a display."""
    if _gui_backend() == "NONE":
        return ("this OpenCV has no GUI (opencv-python-headless?): run without --preview, "
                "or pip uninstall opencv-python-headless && pip install opencv-python")
    if sys.platform in ("darwin", "win32"):
        return None
    display = os.environ.get("DISPLAY")
    # The opencv-python wheel's Qt speaks X11 only: on Wayland it needs XWayland's DISPLAY too.
    if not display and (not os.environ.get("WAYLAND_DISPLAY") or _gui_backend().startswith("QT")):
        return "no display (DISPLAY is not set): run without --preview, or set DISPLAY (a desktop session, ssh -X, Xvfb)"
    if display and not _x_display_reachable(display):
        return f"cannot connect to display {display!r}: run without --preview, or set DISPLAY to a running X server"
    return None


def _gui_backend() -> str:
    """The "GUI:" line of OpenCV's build information (QT5, GTK3, COCOA, WIN32UI, NONE…); "" if absent."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper()
    return ""


def _x_display_reachable(display: str) -> bool:
    """Connect to the X server with libxcb (as Qt would); True when libxcb is not there to ask."""
    path = ctypes.util.find_library("xcb")
    if path is None:
        return True
    try:
        xcb = ctypes.CDLL(path)
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error object on failure
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


class PreviewWindow:
    """The cv2 window. Every call must come from the main thread."""

    def __init__(self, title: str = WINDOW_TITLE):
        self.title = title
        self.is_open = False
        self._sized = False

    def open(self) -> None:
        problem = gui_problem()
        if problem:
            raise PreviewError(f"--preview: {problem}")
        try:
            # GUI_NORMAL: no Qt toolbar; NORMAL + KEEPRATIO: the user may resize it without distorting.
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as error:
            first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise PreviewError(f"--preview: OpenCV cannot open a window ({first}): run without --preview, "
                               "or install opencv-python rather than opencv-python-headless") from None
        self.is_open = True

    def show(self, image: np.ndarray) -> bool:
        """Show *image*; False once the user pressed q or Esc, or closed the window."""
        if not self.is_open:
            return False
        if not self._sized:  # WINDOW_NORMAL starts at an arbitrary size: fit the first image once
            cv2.resizeWindow(self.title, image.shape[1], image.shape[0])
            self._sized = True
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # some backends raise for a window the user destroyed
            return False

    def close(self) -> None:
        if not self.is_open:
            return
        self.is_open = False
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # let the GUI process the destroy, or the window lingers until exit
        except cv2.error:
            pass  # already gone (closed by the user)
