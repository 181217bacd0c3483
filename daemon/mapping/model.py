"""The mapping language's model: the frozen dataclasses a mapping file is read into, and their vocabularies.

A field's default is what a stand-alone file (``extends: none``) gets when it leaves the key
out; the keys, their limits and their help are declared in :mod:`.keys`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..labels import EMOTIONS
from .osc_targets import OscTargetSpec
from ..perception.smoothing import SmoothingConfig

PART_NAMES: tuple[str, ...] = ("melody", "chords", "bass", "drums")
RHYTHMS: tuple[str, ...] = ("regular", "irregular")
CHANGE_AT: tuple[str, ...] = ("bar", "phrase")
BLENDS: tuple[str, ...] = ("probabilities", "argmax")
CURVES: tuple[str, ...] = ("linear", "exponential", "step")
DEFAULT_SOURCE = "default"
# Where each control source lives and its natural range (the default of a cc entry's "range").
CC_SOURCES: dict[str, tuple[float, float]] = {
    "valence": (-1.0, 1.0), "arousal": (-1.0, 1.0), "confidence": (0.0, 1.0),
    **{name: (0.0, 1.0) for name in EMOTIONS},
    "tempo": (40.0, 200.0), "density": (0.0, 1.0),
}


@dataclass(frozen=True)
class EmotionStyle:
    """How one emotion sounds."""

    tempo: tuple[float, float]      # BPM low..high; the arousal picks the point inside
    mode: str                       # a key of theory.MODES
    progression: tuple[str, ...]    # roman numerals, one chord per bar; its length is the phrase length
    pitch_range: tuple[int, int]    # melody MIDI notes low..high; the other parts sit octaves below
    velocity: tuple[int, int]       # MIDI velocity low..high; accents reach the top, the spread is the swing
    density: float                  # melody notes per bar
    rhythm: str                     # "regular" (metric grid) or "irregular" (displaced onsets)
    articulation: float = 0.8       # sounding length over the gap to the next note: 1 legato, ~0.4 staccato
    leap: float = 0.15              # chance that a melody move is a leap (a fourth or more) instead of a step
    tonic: int | None = None        # this emotion's own key (pitch class 0-11); None: the mapping's key


@dataclass(frozen=True)
class Transition:
    """How the music moves from one emotion to the next."""

    tempo_glide_beats: int = 4      # beats a tempo change takes (0: jump at the bar line)
    change_at: str = "bar"          # "bar" or "phrase": when mode, key and progression may switch
    blend: str = "probabilities"    # "probabilities" (weighted mean of the emotions) or "argmax" (the leader only)


@dataclass(frozen=True)
class Humanize:
    """Small random deviations from the grid; zero for both gives the exact grid."""

    timing_ms: float = 0.0          # standard deviation of onset shifts, milliseconds
    velocity: float = 0.0           # standard deviation of velocity changes, velocity steps

    @property
    def enabled(self) -> bool:
        return self.timing_ms > 0 or self.velocity > 0


@dataclass(frozen=True)
class ControlSpec:
    """One ``cc:`` entry: a continuous source sent as a MIDI control change."""

    source: str                     # a key of CC_SOURCES
    cc: int                         # controller number
    channel: int                    # 0-15 (the YAML counts 1-16)
    range: tuple[float, float]      # source values mapped to the ends of *out* (clamped outside)
    out: tuple[int, int] = (0, 127)  # CC values at range low and range high (high < low inverts)
    curve: str = "linear"           # a name in CURVES
    steps: int = 4                  # levels of a step curve
    rate: float = 20.0              # at most this many messages per second (Hz)


@dataclass(frozen=True)
class PartConfig:
    """One instrument part on its own MIDI channel."""

    name: str                 # melody, chords, bass or drums: picks the note generator
    channel: int              # 0-15 (the YAML counts 1-16)
    enabled: bool
    octave: int               # octaves below/above the emotion's pitch_range this part plays (drums: 0)
    velocity_scale: float     # multiplies the emotion's velocities, so parts sit in a balance
    program: int | None       # GM program 0-127 sent before the first note (the YAML counts 1-128); None: leave it
    articulation: float = 1.0  # multiplies the emotion's articulation (never past the next onset); drums: 1
    bank: int | None = None    # bank selected (CC 0 + CC 32) before the program; None: leave it


@dataclass(frozen=True)
class FacesConfig:
    """Which faces the music follows (``faces:``), and with ``each`` the voice each face plays."""

    follow: str = "largest"             # largest (the performer), average (an audience) or each (a voice per face)
    max_faces: int = 4                  # faces followed at most (average, each)
    channels: tuple[int, ...] = (4, 5, 6, 7)  # each: the channel (0-15) of the 1st, 2nd... face's voice
    octave: int = 0                     # each: voices' register against the emotion's pitch_range
    velocity_scale: float = 0.8         # each: voices' level against the emotion's velocities
    program: int | None = None          # each: GM program 0-127 for every voice channel; None: leave it

    def voice_parts(self) -> tuple[PartConfig, ...]:
        """One melody part per voice slot (empty unless ``each``)."""
        if self.follow != "each":
            return ()
        return tuple(PartConfig(name="melody", channel=channel, enabled=True, octave=self.octave,
                                velocity_scale=self.velocity_scale, program=self.program)
                     for channel in self.channels[:self.max_faces])


# What a part is when a stand-alone file leaves it out (drums have no octave or articulation of their own).
PART_DEFAULTS: dict[str, PartConfig] = {part.name: part for part in (
    PartConfig("melody", channel=0, enabled=True, octave=0, velocity_scale=1.0, program=None),
    PartConfig("chords", channel=1, enabled=True, octave=-1, velocity_scale=0.75, program=None),
    PartConfig("bass", channel=2, enabled=True, octave=-2, velocity_scale=0.9, program=None),
    PartConfig("drums", channel=9, enabled=False, octave=0, velocity_scale=0.85, program=None),
)}


@dataclass(frozen=True)
class Mapping:
    emotions: dict[str, EmotionStyle]   # all seven, keyed by the names in labels.EMOTIONS
    source: str                         # the file it came from, or "default"
    tonic: int = 0                      # pitch class 0-11 of the key
    beats_per_bar: int = 4
    parts: tuple[PartConfig, ...] = tuple(PART_DEFAULTS.values())  # in PART_NAMES order
    transition: Transition = Transition()
    humanize: Humanize = Humanize()
    controls: tuple[ControlSpec, ...] = ()  # the cc: entries, in file order
    smoothing: SmoothingConfig = SmoothingConfig()  # how the face's emotion is steadied before the music
    osc: tuple[OscTargetSpec, ...] = ()  # OSC targets with their presets, besides any --osc
    faces: FacesConfig = FacesConfig()  # which faces count, and their voices
    profile: str | None = None          # resting-face profile file, resolved from the mapping's folder; None: none

    def tonic_of(self, emotion: str) -> int:
        """The key an emotion plays in: its own ``key`` if it has one, else the mapping's."""
        own = self.emotions[emotion].tonic
        return self.tonic if own is None else own

    def channels(self) -> tuple[int, ...]:
        """Channels (0-15) of the enabled parts, and of the face voices with ``faces: each``."""
        return tuple(part.channel for part in self.enabled_parts() + self.faces.voice_parts())

    def enabled_parts(self) -> tuple[PartConfig, ...]:
        return tuple(part for part in self.parts if part.enabled)

    def part(self, name: str) -> PartConfig:
        return next(part for part in self.parts if part.name == name)
