"""The errors a user can fix: one base, one line each that names the thing and the fix.

The command line prints any :class:`EmobridgeError` as ``emobridge: error: <message>`` and exits
with status 2; anything else is a bug and keeps its traceback. Where a stdlib base says what kind
of thing went wrong (a mapping is a bad value, a recording folder an OS problem), it stays as a
second base so that callers may catch either.
"""

from __future__ import annotations


class EmobridgeError(Exception):
    """A problem the user can fix, described in one line."""


class UserError(EmobridgeError):
    """A bad option or argument of a command."""


class SourceError(EmobridgeError):
    """A camera, video or folder cannot give frames. The message names it and says what to do."""


class ModelError(EmobridgeError):
    """The emotion model is missing, corrupt or not one emobridge can use."""


class DatasetError(EmobridgeError):
    """A FER2013 copy (folder, CSV or image) that cannot be read as labelled faces; the message names the file."""


class FaceDetectorError(EmobridgeError):
    """The Haar cascade could not be found or loaded."""


class MappingError(EmobridgeError, ValueError):
    """A mapping file that cannot be played, as one line: ``<file>: <key.path>: <problem>; allowed: <...>``."""

    def __init__(self, source: str, path: str, problem: str, allowed: str):
        self.source, self.path, self.problem, self.allowed = source, path, problem, allowed
        super().__init__(f"{source}: {path}: {problem}; allowed: {allowed}")


class OscTargetError(EmobridgeError, ValueError):
    """An ``--osc`` target that cannot be used."""


class MidiPortError(EmobridgeError):
    """A MIDI backend or port could not be opened; the message lists what is available."""


class MidiBackendUnavailable(MidiPortError):
    """A backend that is built in but cannot open now (no JACK server, no ALSA sequencer)."""

    def __init__(self, backend: str, reason: str, hint: str):
        self.backend, self.reason = backend, reason
        super().__init__(f"MIDI backend {backend!r} is unavailable ({reason}): {hint}")


class LinkUnavailable(EmobridgeError):
    """Link was asked for but the aalink package is not installed."""


class RecorderError(EmobridgeError, OSError):
    """The recording folder cannot be created or written (a clear message for ``--record``)."""


class ControlAddressError(EmobridgeError, ValueError):
    """A ``--control`` value that is not PORT or HOST:PORT."""


class ControlServerError(EmobridgeError):
    """The control server could not bind its address."""


class PreviewError(EmobridgeError):
    """The preview window cannot open here (no display, or an OpenCV without GUI)."""


class LearnError(EmobridgeError, ValueError):
    """A learn request that cannot be sent; one line the user can act on."""


class ProfileError(EmobridgeError, ValueError):
    """A resting-face profile that cannot be used: unreadable, damaged, or made for another model."""
