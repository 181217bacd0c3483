"""The mapping language's model: the frozen dataclasses a mapping file is read into, and their vocabularies.

A field's default is what a stand-alone file (``extends: none``) gets when it leaves the key
out; the keys, their limits and their help are declared in :mod:`.keys`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..labels import EMOTIONS
from .osc_targets import OscTargetSpec
from ..perception.smoothing import SmoothingConfig

PART_NAMES: tuple[str, ...] = ("melody", "chords", "bass", "drums", "counter")
RHYTHMS: tuple[str, ...] = ("regular", "irregular")
# Rhythm cells a melody's motifs are built from (music.parts.CELLS gives their note lengths).
CELLS: tuple[str, ...] = ("quarter", "eighths", "sixteenths", "dotted", "snap", "syncopated", "triplet", "half",
                          "long_short", "gallop", "rest")
ACCOMPANIMENTS: tuple[str, ...] = ("block", "arpeggio", "broken", "comping")
BASS_LINES: tuple[str, ...] = ("root", "pedal", "octave", "walking", "syncopated")
FORMS: tuple[str, ...] = ("AA'BA'", "AA'BB'", "ABAB'", "AA'", "AA'BA'CA'")
DYNAMICS: tuple[str, ...] = ("arch", "terraced")
CHANGE_AT: tuple[str, ...] = ("bar", "phrase")
BLENDS: tuple[str, ...] = ("probabilities", "argmax")
CURVES: tuple[str, ...] = ("linear", "exponential", "step")
TEMPO_MODES: tuple[str, ...] = ("lead", "follow")  # emobridge sets the tempo, or the DAW's clock does
DEFAULT_SOURCE = "default"
# Where each control source lives and its natural range (the default of a cc entry's "range").
CC_SOURCES: dict[str, tuple[float, float]] = {
    "valence": (-1.0, 1.0), "arousal": (-1.0, 1.0), "confidence": (0.0, 1.0),
    **{name: (0.0, 1.0) for name in EMOTIONS},
    "tempo": (40.0, 200.0), "density": (0.0, 1.0),
}
DAW_TARGETS: tuple[str, ...] = ("volume", "send", "device")  # what a daw.params entry moves
DAW_SOURCES: dict[str, tuple[float, float]] = {name: CC_SOURCES[name] for name in
                                               ("valence", "arousal", "confidence", *EMOTIONS)}


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
    progressions: tuple[tuple[str, ...], ...] = ()  # further phrases the form chooses from (B, C sections)
    form: str = "AA'BA'"            # phrases of a section: A antecedent, A' its consequent, B/C contrasts
    cells: tuple[str, ...] = ("quarter", "eighths", "dotted")  # rhythm cells the motifs are made of
    accompaniment: tuple[str, ...] = ("block",)  # chord patterns: the first for A, the next for B, ...
    bass_line: tuple[str, ...] = ("root",)       # bass patterns, likewise
    reharmonise: float = 0.3        # chance an inner chord of a repeated section is replaced (relative, V/x, borrowed)
    extensions: float = 0.0         # chance a chord carries a consonant added sixth, ninth or seventh
    tension: float = 0.0            # chance a chord carries a dissonant tone (a semitone clash or tritone)
    dynamics: str = "arch"          # arch: crescendo to 2/3 of the phrase, then diminuendo; terraced: sudden levels
    swell: float = 0.5              # how much of the velocity range the phrase shape spans, 0..1


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
    pattern: str | None = None  # chords/bass: a pattern family for every emotion; None: each emotion's own
    fills: bool = True          # drums: a fill in the last beat of each phrase


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
    PartConfig("counter", channel=3, enabled=False, octave=-1, velocity_scale=0.7, program=None),
)}


@dataclass(frozen=True)
class LaunchItem:
    """A scene, clip or region tagged with an emotion or a valence/arousal point, for emotion-matched launching.

    Indices are the DAW's own, from 0 here (the file counts from 1, as Live and Reaper show them).
    """

    emotion: str | None = None      # a name in labels.EMOTIONS: its valence/arousal point
    valence: float | None = None    # or a point of one's own, -1..1 each
    arousal: float | None = None
    scene: int | None = None        # Live (AbletonOSC): /live/scene/fire
    track: int | None = None        # Live: with clip, /live/clip_slot/fire track clip
    clip: int | None = None
    region: int | None = None       # Reaper: /region (its region number, as Reaper shows it)


@dataclass(frozen=True)
class DawParam:
    """A ``daw.params`` entry: a continuous source moving a DAW's mixer or device parameter (0..1)."""

    source: str                     # a key of DAW_SOURCES
    target: str                     # a name in DAW_TARGETS
    track: int                      # 0-based (the file counts from 1)
    range: tuple[float, float]      # source values mapped to the ends of out, clamped outside
    out: tuple[float, float] = (0.0, 1.0)  # the parameter's normalised value at range low and high
    send: int = 0                   # target send: which send (0-based)
    device: int = 0                 # target device: which device (Reaper: which FX) on the track (0-based)
    parameter: int = 0              # target device: which of its parameters (0-based)
    rate: float = 10.0              # messages per second at most


@dataclass(frozen=True)
class DawConfig:
    """``daw:``: what emobridge does in the DAW beyond tempo, through the abletonosc and reaper OSC targets."""

    transport: bool = False         # start the DAW's transport with the first bar and stop it at the end
    key: bool = False               # Live 12: the song's root note and scale follow the music's key and mode
    markers: bool = False           # Reaper: a marker where the music's emotion changes
    launch_at: str = "bar"          # "bar" or "phrase": the lines at which emotion-matched launching may fire
    hysteresis: float = 0.1         # cosine similarity a new item must lead the one playing by to take over
    launch: tuple[LaunchItem, ...] = ()
    params: tuple[DawParam, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.transport or self.key or self.markers or self.launch or self.params)


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
    daw: DawConfig = DawConfig()  # scenes, clips, regions, markers, key and parameters in Live or Reaper
    tempo: str = "lead"  # a name in TEMPO_MODES: lead (arousal sets the BPM) or follow (the DAW's clock does)
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
