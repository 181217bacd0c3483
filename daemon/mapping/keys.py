"""Every key of the mapping language, declared once.

Each section of a mapping file (the top level, ``transition:``, ``humanize:``, an emotion, a
part, a ``cc:`` entry, ``smoothing:``, ``faces:``) is a :class:`Section`: a table of
:class:`Key` (the YAML name, the kind of value with its range or choices, one line of help)
bound to the dataclass of :mod:`.model` its values fill. Checking (:mod:`.parse`: the values,
the allowed and the required keys, every error message), :func:`.describe_mapping` and the
tests all read these tables, so each limit is stated here and nowhere else.

Defaults are the model's: a key left out of a file takes its dataclass field's default (a
part, its entry in :data:`.model.PART_DEFAULTS`); a key whose model field has none is required,
unless the key computes its default from the keys checked before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from ..labels import EMOTIONS, FOLLOW_MODES, NO_FACE_POLICIES
from ..perception.smoothing import SMOOTHING_LIMITS, SmoothingConfig
from ..theory import MODES
from .model import (ACCOMPANIMENTS, BASS_LINES, BLENDS, CC_SOURCES, CELLS, CHANGE_AT, CURVES, DAW_SOURCES,
                    DAW_TARGETS, DYNAMICS, FORMS, PART_DEFAULTS, PART_NAMES, RHYTHMS, TEMPO_MODES, ControlSpec,
                    DawConfig, DawParam, EmotionStyle, FacesConfig, Humanize, LaunchItem, Mapping, PartConfig,
                    Transition)

# --- kinds of value ---


@dataclass(frozen=True)
class Number:
    """An int or float from low to high; the model holds a float."""

    low: float
    high: float
    unit: str               # what it counts, for error messages: "seconds", "a factor"
    per_beat: bool = False  # high counts per beat of the bar: the limit is high x beats_per_bar

    def limits(self, beats_per_bar: int) -> tuple[float, float]:
        return self.low, self.high * beats_per_bar if self.per_beat else self.high


@dataclass(frozen=True)
class Integer:
    """A whole number from low to high, as the file writes it; the model holds it minus *offset*."""

    low: int
    high: int
    offset: int = 0  # 1 where the file counts from 1 as musicians do (channels 1-16, programs 1-128)


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]


@dataclass(frozen=True)
class Boolean:
    pass


@dataclass(frozen=True)
class Pair:
    """``[low, high]``, each from low to high; the model holds a tuple."""

    low: float
    high: float
    unit: str              # what one end is: "BPM", "MIDI note"
    whole: bool = True     # whole numbers only (the model holds ints), else any number (floats)
    ordered: bool = True   # low <= high; False: either order (high < low inverts a cc entry)
    min_span: float = 0    # the two ends at least this far apart
    distinct: bool = False  # the two ends must differ (a cc range: both ends equal would divide by zero)


@dataclass(frozen=True)
class Note:
    """A note name (C, F#, Bb) or a pitch class 0-11; the model holds the pitch class."""


@dataclass(frozen=True)
class FilePath:
    """A file named by a path (relative paths count from the mapping file's folder); the model keeps the text."""

    what: str  # the file, for error messages: "a profile file from 'emobridge calibrate'"
    longest: int = 4096


@dataclass(frozen=True)
class Numeral:
    """A roman numeral chord (theory.parse_roman); the model keeps the text."""


@dataclass(frozen=True)
class ListOf:
    """A list of *fewest* (1 unless said) to *most* items of one kind; the model holds a tuple."""

    item: Kind
    most: int
    what: str  # the items, for error messages: "chords", "channels"
    fewest: int = 1


@dataclass(frozen=True)
class Table:
    """A nested section (``transition:``); the model holds its dataclass."""

    section: Section


@dataclass(frozen=True)
class Named:
    """A table of sections by name (``emotions:``, ``parts:``)."""

    sections: dict[str, Section]            # name -> the section of its entry
    required: bool                          # every name must be given (else a left-out one is its base)
    bases: dict[str, Any] | None = None     # name -> the model value a file's entry is laid over
    keyed: bool = True                      # the model holds a dict by name; False: a tuple in name order


@dataclass(frozen=True)
class Entries:
    """A list of 0 to *most* sections (``cc:``); the model holds a tuple."""

    section: Section
    most: int  # entries at most: each one costs work on every frame, so a file cannot ask for thousands


@dataclass(frozen=True)
class OscTargets:
    """0 to *most* ``osc:`` entries, checked by :func:`.osc_targets.targets_from_yaml` (shared with ``--osc``)."""

    most: int


Kind = Union[Number, Integer, Choice, Boolean, Pair, Note, Numeral, FilePath, ListOf, Table, Named, Entries,
             OscTargets]


# --- keys and sections ---


@dataclass(frozen=True)
class Key:
    name: str                   # the YAML key
    kind: Kind
    help: str                   # one line: what the key does (an error adds it after what is allowed)
    attr: str = ""              # the model's field, when it is not named like the key
    nullable: bool = False      # null is allowed too: None in the model ("leave it as it is")
    # Where the model has no default: the model value of a left-out key, from the values checked before it.
    default: Callable[[dict[str, Any]], Any] | None = None
    stored: bool = True         # False: read before the section is built, and not kept in the model (extends)

    @property
    def field(self) -> str:
        return self.attr or self.name


@dataclass(frozen=True)
class Section:
    model: type                 # the dataclass the keys' values fill
    keys: tuple[Key, ...]

    def __post_init__(self) -> None:
        fields = {field.name for field in dataclasses.fields(self.model)}
        stray = [key.field for key in self.keys if key.stored and key.field not in fields]
        if stray:  # a slip in this file, found at import
            raise TypeError(f"{self.model.__name__} has no field {', '.join(stray)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    def key(self, name: str) -> Key:
        return next(key for key in self.keys if key.name == name)

    def model_default(self, key: Key) -> Any:
        """The model's value for a left-out *key*: its dataclass field's default, or MISSING."""
        field = next(field for field in dataclasses.fields(self.model) if field.name == key.field)
        return field.default

    @property
    def required(self) -> tuple[str, ...]:
        """Keys a file must give: those with no default of the model's or of their own."""
        return tuple(key.name for key in self.keys
                     if key.stored and key.default is None and self.model_default(key) is dataclasses.MISSING)


def _factor(name: str, low: float, high: float, help: str) -> Key:
    return Key(name, Number(low, high, "a factor"), help)


def _channel() -> Key:
    return Key("channel", Integer(1, 16, offset=1), "MIDI channel, as a DAW counts them")


def _program() -> Key:
    return Key("program", Integer(1, 128, offset=1), "General MIDI program sent at start; null: leave the sound",
               nullable=True)


TRANSITION = Section(Transition, (
    Key("tempo_glide_beats", Integer(0, 64), "beats a tempo change takes, one step a beat; 0: a jump at the bar line"),
    Key("change_at", Choice(CHANGE_AT), "when the leading emotion's mode, key and progression take over"),
    Key("blend", Choice(BLENDS), "numbers as the probability-weighted mean of the emotions, or the leader's alone"),
))

HUMANIZE = Section(Humanize, (
    Key("timing_ms", Number(0, 50, "milliseconds"), "standard deviation of onset shifts; 0: on the grid"),
    Key("velocity", Number(0, 30, "velocity steps"), "standard deviation of velocity changes; 0: as composed"),
))

EMOTION = Section(EmotionStyle, (
    Key("tempo", Pair(20, 300, "BPM", whole=False), "the face's arousal picks the tempo between low and high"),
    Key("mode", Choice(tuple(MODES)), "the scale the music plays in"),
    Key("progression", ListOf(Numeral(), 16, "chords"), "one chord per bar; the list is one phrase, repeated"),
    Key("pitch_range", Pair(0, 127, "MIDI note", min_span=12),
        "the melody's notes, at least an octave apart so every scale note fits"),
    Key("velocity", Pair(1, 127, "MIDI velocity"), "accents reach towards high; a wider range swings more"),
    Key("density", Number(1, 4, "melody notes per bar", per_beat=True), "up to one note per sixteenth"),
    Key("rhythm", Choice(RHYTHMS), "regular: notes on the beat grid; irregular: pushed off it"),
    Key("articulation", Number(0.05, 1.0, "sounding length over the gap to the next note"),
        "1 is legato, about 0.4 detached: staccato"),
    Key("leap", Number(0.0, 1.0, "a probability"), "chance that a melody move jumps a fourth or more"),
    Key("key", Note(), "this emotion's own tonic; null: the top-level key", attr="tonic", nullable=True),
    Key("progressions", ListOf(ListOf(Numeral(), 16, "chords"), 8, "progressions", fewest=0),
        "further phrases: the form's B and C sections play them, returns of A vary between them"),
    Key("form", Choice(FORMS), "the phrases of a section: A antecedent (open), A' consequent (closed), B/C contrasts"),
    Key("cells", ListOf(Choice(CELLS), 11, "rhythm cells"), "the rhythm vocabulary the melody's motifs are built from"),
    Key("accompaniment", ListOf(Choice(ACCOMPANIMENTS), 4, "patterns"),
        "chord patterns: the first for A sections, the next for B, ...; repeated sections rotate them"),
    Key("bass_line", ListOf(Choice(BASS_LINES), 4, "patterns"), "bass patterns, chosen like accompaniment"),
    Key("reharmonise", Number(0.0, 1.0, "a probability"),
        "chance an inner chord of a repeated section is replaced by a relative, secondary dominant or borrowed chord"),
    Key("extensions", Number(0.0, 1.0, "a probability"), "chance a chord carries a consonant added sixth or ninth"),
    Key("tension", Number(0.0, 1.0, "a probability"),
        "chance a chord carries a dissonant tone (a semitone clash or tritone): a valence cue beside mode"),
    Key("dynamics", Choice(DYNAMICS), "phrase loudness: arch (crescendo, then diminuendo) or terraced (sudden levels)"),
    Key("swell", Number(0.0, 1.0, "a share of the velocity range"), "how far the phrase's dynamics move"),
))

PART = Section(PartConfig, (
    _channel(),
    Key("enabled", Boolean(), "whether the part plays"),
    Key("octave", Integer(-4, 4), "octaves from the emotion's pitch_range the part plays at"),
    _factor("velocity_scale", 0.0, 2.0, "multiplies the emotion's velocities, to balance the parts"),
    _factor("articulation", 0.1, 4.0, "multiplies the emotion's articulation: above 1 more connected"),
    _program(),
    Key("bank", Integer(0, 16383), "bank selected before the program, by CC 0 and CC 32; null: none", nullable=True),
))
CHORDS = Section(PartConfig, PART.keys + (
    Key("pattern", Choice(ACCOMPANIMENTS), "one chord pattern for every emotion; null: each emotion's accompaniment",
        nullable=True),))
BASS = Section(PartConfig, PART.keys + (
    Key("pattern", Choice(BASS_LINES), "one bass pattern for every emotion; null: each emotion's bass_line",
        nullable=True),))
# Drum notes are fixed General MIDI sounds: no octave, and a hit has no length to shape.
DRUMS = Section(PartConfig, tuple(key for key in PART.keys if key.name not in ("octave", "articulation")) + (
    Key("fills", Boolean(), "a fill in the last beat of every phrase"),))
PART_SECTIONS = {"melody": PART, "chords": CHORDS, "bass": BASS, "drums": DRUMS, "counter": PART}


def _source_range(values: dict[str, Any]) -> tuple[float, float]:
    return CC_SOURCES[values["source"]]


CC = Section(ControlSpec, (
    Key("source", Choice(tuple(CC_SOURCES)), "the continuous value the controller follows"),
    Key("cc", Integer(0, 127), "controller number: 1 modulation, 7 volume, 74 cutoff..."),
    _channel(),
    Key("range", Pair(-1000, 1000, "source", whole=False, ordered=False, distinct=True),
        "source values mapped to the ends of out, clamped outside; default: the source's natural range",
        default=_source_range),
    Key("out", Pair(0, 127, "CC value", ordered=False), "CC values at range low and high; [127, 0] inverts"),
    Key("curve", Choice(CURVES), "how the source value bends on its way to the CC value"),
    Key("steps", Integer(2, 128), "levels of a step curve"),
    Key("rate", Number(0.1, 1000, "messages per second"), "at most this many messages a second"),
))


def _seconds(name: str, help: str) -> Key:
    return Key(name, Number(*SMOOTHING_LIMITS[name], "seconds"), help)


SMOOTHING = Section(SmoothingConfig, (
    _seconds("attack", "time for a rising emotion probability to cover 63% of its way"),
    _seconds("release", "the same for a falling probability"),
    Key("hysteresis", Number(*SMOOTHING_LIMITS["hysteresis"], "a probability margin"),
        "how far another emotion must lead before the reported one changes"),
    _seconds("confirm", "how long it must lead by that margin"),
    _seconds("min_hold", "how long a reported emotion is kept at least"),
    _seconds("no_face_fade", "how long the no_face policy takes"),
    Key("no_face", Choice(NO_FACE_POLICIES), "what the music does once no face is seen"),
))

FACES = Section(FacesConfig, (
    Key("follow", Choice(FOLLOW_MODES), "the largest face, the average of all, or a voice for each"),
    Key("max", Integer(1, 8), "faces followed at most, with average or each", attr="max_faces"),
    Key("channels", ListOf(Integer(1, 16, offset=1), 16, "channels"), "each: the channel of each face's voice"),
    Key("octave", Integer(-4, 4), "each: the voices' octave against the emotion's pitch_range"),
    _factor("velocity_scale", 0.0, 2.0, "each: the voices' loudness against the emotion's velocities"),
    _program(),
))

def _index(name: str, help: str, nullable: bool = False) -> Key:
    return Key(name, Integer(1, 1024, offset=1), help, nullable=nullable)


LAUNCH = Section(LaunchItem, (
    Key("emotion", Choice(EMOTIONS), "the emotion whose valence/arousal point the item stands for", nullable=True),
    Key("valence", Number(-1, 1, "valence"), "or a point of its own: valence, with arousal", nullable=True),
    Key("arousal", Number(-1, 1, "arousal"), "the point's arousal, with valence", nullable=True),
    _index("scene", "Live: the scene to fire (as Live numbers them, from 1)", nullable=True),
    _index("track", "Live: the track of the clip to fire, with clip", nullable=True),
    _index("clip", "Live: the clip slot to fire on track", nullable=True),
    Key("region", Integer(1, 100000), "Reaper: the region to jump to (its number in Reaper)", nullable=True),
))


def _daw_source_range(values: dict[str, Any]) -> tuple[float, float]:
    return DAW_SOURCES[values["source"]]


DAW_PARAM = Section(DawParam, (
    Key("source", Choice(tuple(DAW_SOURCES)), "the continuous value the parameter follows"),
    Key("target", Choice(DAW_TARGETS), "volume: a track's fader; send: one of its sends; device: a device (Reaper: "
        "FX) parameter"),
    _index("track", "the track, as the DAW numbers it (from 1)"),
    Key("range", Pair(-1000, 1000, "source", whole=False, ordered=False, distinct=True),
        "source values mapped to the ends of out, clamped outside; default: the source's natural range",
        default=_daw_source_range),
    Key("out", Pair(0, 1, "parameter value", whole=False, ordered=False), "the parameter's values (0..1) at range "
        "low and high"),
    _index("send", "target send: which send, from 1"),
    _index("device", "target device: which device (Reaper: FX) on the track, from 1"),
    _index("parameter", "target device: which of its parameters, from 1"),
    Key("rate", Number(0.1, 50, "messages per second"), "at most this many messages a second"),
))

DAW = Section(DawConfig, (
    Key("transport", Boolean(), "start the DAW's transport with the first bar and stop it at the end (tempo: lead)"),
    Key("key", Boolean(), "Live 12: the song's root note and scale follow the music's key and mode"),
    Key("markers", Boolean(), "Reaper: insert a marker where the music's emotion changes"),
    Key("launch_at", Choice(CHANGE_AT), "the lines where emotion-matched launching may fire"),
    Key("hysteresis", Number(0, 1, "a cosine similarity margin"),
        "how much closer another item must be than the one playing before it fires"),
    Key("launch", Entries(LAUNCH, most=64), "scenes, clips or regions tagged with an emotion or a valence/arousal "
        "point: at each line the nearest to the face fires"),
    Key("params", Entries(DAW_PARAM, most=32), "continuous sources moving track volumes, sends and device parameters"),
))

TOP = Section(Mapping, (
    Key("extends", Choice(("default", "none")), "default: laid over the packaged default; none: stands alone",
        stored=False),
    Key("key", Note(), "the tonic, unless an emotion sets its own", attr="tonic"),
    Key("beats_per_bar", Integer(2, 12), "quarter notes per bar"),
    Key("tempo", Choice(TEMPO_MODES), "lead: the arousal sets the BPM; follow: the DAW's clock (--clock-in) does, "
        "and the arousal moves density, register and loudness instead"),
    Key("transition", Table(TRANSITION), "how the music moves from one emotion to the next"),
    Key("humanize", Table(HUMANIZE), "small random deviations from the grid, as a player makes"),
    Key("emotions", Named({name: EMOTION for name in EMOTIONS}, required=True), "what each emotion sounds like"),
    Key("parts", Named({name: PART_SECTIONS[name] for name in PART_NAMES}, required=False,
                       bases=PART_DEFAULTS, keyed=False), "the instrument parts, each on its own channel"),
    # 128 cc entries: as many as there are controller numbers on a channel, far more than a DAW's macros
    # need; each entry is computed on every frame, and together they share controls.TOTAL_RATE (500
    # messages a second), so thousands would only starve one another and cost CPU.
    Key("cc", Entries(CC, most=128), "MIDI control changes that follow a continuous value", attr="controls"),
    Key("smoothing", Table(SMOOTHING), "how the face's emotion is steadied before the music follows it"),
    # 16 osc targets: a DAW, a lighting desk, a visualiser... Every target is looked up (DNS) when the file
    # is read, on the thread that reloads it, and gets a packet per message on every frame.
    Key("osc", OscTargets(most=16), "where to send OSC besides any --osc"),
    Key("faces", Table(FACES), "which faces the music follows, and with each, their voices"),
    Key("daw", Table(DAW), "what the abletonosc and reaper targets do beyond tempo: transport, key, launching, "
        "markers, mixer and device parameters"),
    # A performer's resting-face correction travels with their mapping; --profile FILE overrides it.
    Key("profile", FilePath("a profile file from 'emobridge calibrate'"),
        "the performer's resting-face profile; null: none (the model reads faces as it is)", nullable=True),
))


def sections() -> tuple[Section, ...]:
    """Every section of the language, the top level first, each once."""
    found = [TOP]
    for key in TOP.keys:
        match key.kind:
            case Table(section) | Entries(section):
                found.append(section)
            case Named(by_name):
                found += dict.fromkeys(by_name.values())  # each once, in order
    return tuple(found)
