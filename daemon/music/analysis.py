"""Measure the music in a MIDI file the way a listener study would, and check it against the emotions.

The features come from the Standard MIDI File alone (what a DAW would record): tempo from the
tempo meta events, mode by correlation with the Krumhansl-Kessler key profiles, melody density,
loudness and its spread, register and its spread, melodic interval size, rhythmic regularity and
articulation. :func:`check_relations` holds the relations music psychology expects between the
seven emotions (Gabrielsson & Lindström; Juslin & Laukka), and :func:`distinctness` how far apart
the seven are.

``python -m emobridge.music.analysis [--mapping NAME_OR_FILE ...] [--bars 16] [--seed 1]`` prints a
Markdown table per mapping (default: every packaged preset), the relations that fail, and the
smallest distance between two emotions.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields

import mido
import numpy as np

from ..labels import EMOTIONS
from ..mapping import Mapping, list_presets, load_mapping, preset_is_faithful

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
DRUM_CHANNEL = 9
DEFAULT_BARS, DEFAULT_SEED = 16, 1
MIN_DISTANCE = 1.5  # smallest allowed distance between two emotions' z-scored feature vectors


@dataclass(frozen=True)
class Played:
    start: float      # beats from the start of the file
    duration: float   # beats
    channel: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Features:
    tempo: float            # BPM, averaged over beats
    major: float            # best major minus best minor key-profile correlation: > 0 major, < 0 minor
    density: float          # melody notes per beat
    velocity: float         # mean velocity of every pitched note
    velocity_spread: float  # standard deviation of the melody's velocities
    pitch: float            # mean melody pitch (MIDI)
    pitch_spread: float     # standard deviation of the melody's pitches
    interval: float         # mean melodic interval, semitones
    ioi_cv: float           # coefficient of variation of the melody's inter-onset intervals: 0 a steady grid
    articulation: float     # mean melody note duration over the gap to the next onset: 1 legato


COLUMNS = {  # header and format of each feature in the table
    "tempo": ("tempo BPM", "{:.0f}"), "major": ("major-minor r", "{:+.2f}"), "density": ("notes/beat", "{:.2f}"),
    "velocity": ("velocity", "{:.0f}"), "velocity_spread": ("vel. SD", "{:.1f}"), "pitch": ("pitch", "{:.1f}"),
    "pitch_spread": ("pitch SD", "{:.1f}"), "interval": ("interval st", "{:.2f}"), "ioi_cv": ("IOI CV", "{:.2f}"),
    "articulation": ("dur/gap", "{:.2f}"),
}


def notes_of(midi: mido.MidiFile) -> list[Played]:
    """Every note in the file, note-on paired with its note-off, in time order."""
    played = []
    for track in midi.tracks:
        tick, sounding = 0, {}
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = (tick, message.velocity)
            elif message.type in ("note_off", "note_on") and (message.channel, message.note) in sounding:
                start, velocity = sounding.pop((message.channel, message.note))
                played.append(Played(start / midi.ticks_per_beat, (tick - start) / midi.ticks_per_beat,
                                     message.channel, message.note, velocity))
    return sorted(played, key=lambda note: (note.start, note.channel, note.pitch))


def tempos_of(midi: mido.MidiFile) -> list[tuple[int, float]]:
    """``(tick, BPM)`` of every tempo event, in the first track (type-1 files keep them there)."""
    tick, tempos = 0, []
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempos.append((tick, mido.tempo2bpm(message.tempo)))
    return tempos


def mean_tempo(midi: mido.MidiFile) -> float:
    """Tempo averaged over the beats of the file (each tempo weighted by how many beats it lasts)."""
    tempos = tempos_of(midi) or [(0, 120.0)]
    end = max(sum(message.time for message in track) for track in midi.tracks)
    spans = [(next_tick if next_tick is not None else end) - tick
             for (tick, _), next_tick in zip(tempos, [t for t, _ in tempos[1:]] + [None])]
    if sum(spans) <= 0:
        return tempos[-1][1]
    return float(np.average([bpm for _, bpm in tempos], weights=spans))


def key_correlations(notes: list[Played]) -> tuple[float, float]:
    """Best correlation with any major key and with any minor key (duration-weighted pitch classes, no drums)."""
    histogram = np.zeros(12)
    for note in notes:
        if note.channel != DRUM_CHANNEL:
            histogram[note.pitch % 12] += note.duration
    best = {}
    for name, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        best[name] = max(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1] for tonic in range(12))
    return best["major"], best["minor"]


def features(midi: mido.MidiFile, melody_channel: int = 0) -> Features:
    """Measure a file; the melody is the notes on *melody_channel* (0-15)."""
    notes = notes_of(midi)
    pitched = [note for note in notes if note.channel != DRUM_CHANNEL]
    melody = [note for note in notes if note.channel == melody_channel]
    if len(melody) < 3:
        raise ValueError(f"need at least 3 melody notes on channel {melody_channel + 1}, found {len(melody)}")
    onsets = [note.start for note in melody]
    gaps = np.diff(onsets)
    major, minor = key_correlations(notes)
    length = max(sum(message.time for message in track) for track in midi.tracks) / midi.ticks_per_beat
    return Features(
        tempo=mean_tempo(midi),
        major=float(major - minor),
        density=len(melody) / length,
        velocity=statistics.mean(note.velocity for note in pitched),
        velocity_spread=statistics.pstdev(note.velocity for note in melody),
        pitch=statistics.mean(note.pitch for note in melody),
        pitch_spread=statistics.pstdev(note.pitch for note in melody),
        interval=float(np.mean(np.abs(np.diff([note.pitch for note in melody])))),
        ioi_cv=float(np.std(gaps) / np.mean(gaps)),
        articulation=statistics.mean(note.duration / gap for note, gap in zip(melody, gaps) if gap > 0),
    )


def measure_mapping(mapping: Mapping, bars: int = DEFAULT_BARS, seed: int = DEFAULT_SEED) -> dict[str, Features]:
    """Simulate each of the seven emotions with *mapping* and measure the file."""
    from .render import simulate

    channel = mapping.part("melody").channel
    return {emotion: features(simulate(emotion, bars, seed, mapping), channel) for emotion in EMOTIONS}


Relation = tuple[str, Callable[[dict[str, Features]], bool]]


def _others(m: dict[str, Features], emotion: str) -> list[Features]:
    return [m[name] for name in EMOTIONS if name != emotion]


def _moderate(m: dict[str, Features], field: str) -> bool:
    """Neutral lies strictly inside the other emotions' span of *field*: neither extreme."""
    values = [getattr(f, field) for f in _others(m, "neutral")]
    return min(values) < getattr(m["neutral"], field) < max(values)


RELATIONS: tuple[Relation, ...] = (
    ("happy is major", lambda m: m["happy"].major > 0),
    ("happy is faster than neutral", lambda m: m["happy"].tempo > m["neutral"].tempo),
    ("happy is denser than neutral", lambda m: m["happy"].density > m["neutral"].density),
    ("happy is louder than sad", lambda m: m["happy"].velocity > m["sad"].velocity),
    ("happy is higher than sad", lambda m: m["happy"].pitch > m["sad"].pitch),
    ("happy is more staccato than sad", lambda m: m["happy"].articulation < m["sad"].articulation),
    ("sad is minor", lambda m: m["sad"].major < 0),
    ("sad is the slowest", lambda m: all(m["sad"].tempo < o.tempo for o in _others(m, "sad"))),
    ("sad is the softest", lambda m: all(m["sad"].velocity < o.velocity for o in _others(m, "sad"))),
    ("sad is the lowest", lambda m: all(m["sad"].pitch < o.pitch for o in _others(m, "sad"))),
    ("sad is the most legato", lambda m: all(m["sad"].articulation > o.articulation for o in _others(m, "sad"))),
    ("sad is legato (dur/gap > 0.85)", lambda m: m["sad"].articulation > 0.85),
    ("angry is minor", lambda m: m["angry"].major < 0),
    ("angry is faster than neutral", lambda m: m["angry"].tempo > m["neutral"].tempo),
    ("angry is the loudest", lambda m: all(m["angry"].velocity > o.velocity for o in _others(m, "angry"))),
    ("angry is denser than neutral", lambda m: m["angry"].density > m["neutral"].density),
    ("fear is minor", lambda m: m["fear"].major < 0),
    ("fear is faster than neutral", lambda m: m["fear"].tempo > m["neutral"].tempo),
    ("fear is the most irregular", lambda m: all(m["fear"].ioi_cv > o.ioi_cv for o in _others(m, "fear"))),
    ("fear swings most in loudness",
     lambda m: all(m["fear"].velocity_spread > o.velocity_spread for o in _others(m, "fear"))),
    ("surprise is not minor", lambda m: m["surprise"].major > 0),
    ("surprise is faster than neutral", lambda m: m["surprise"].tempo > m["neutral"].tempo),
    ("surprise has the widest leaps",
     lambda m: all(m["surprise"].interval > o.interval for o in _others(m, "surprise"))),
    ("surprise has the widest pitch spread",
     lambda m: all(m["surprise"].pitch_spread > o.pitch_spread for o in _others(m, "surprise"))),
    ("disgust is minor", lambda m: m["disgust"].major < 0),
    ("disgust is not faster than neutral", lambda m: m["disgust"].tempo <= m["neutral"].tempo),
    ("neutral is moderate in tempo", lambda m: _moderate(m, "tempo")),
    ("neutral is moderate in density", lambda m: _moderate(m, "density")),
    ("neutral is moderate in loudness", lambda m: _moderate(m, "velocity")),
    ("neutral is moderate in register", lambda m: _moderate(m, "pitch")),
    ("neutral is moderate in articulation", lambda m: _moderate(m, "articulation")),
)


def check_relations(measured: dict[str, Features]) -> list[str]:
    """The names of the relations in :data:`RELATIONS` that *measured* breaks (empty: all hold)."""
    return [name for name, holds in RELATIONS if not holds(measured)]


def distances(measured: dict[str, Features]) -> dict[tuple[str, str], float]:
    """Euclidean distance between every two emotions' feature vectors, each feature z-scored over the seven."""
    matrix = np.array([astuple(measured[name]) for name in EMOTIONS], dtype=np.float64)
    spread = matrix.std(axis=0)
    z = (matrix - matrix.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return {(a, b): float(np.linalg.norm(z[i] - z[j]))
            for (i, a), (j, b) in itertools.combinations(enumerate(EMOTIONS), 2)}


def distinctness(measured: dict[str, Features]) -> tuple[float, tuple[str, str]]:
    """The smallest distance between two emotions, and which two."""
    pair, distance = min(distances(measured).items(), key=lambda item: item[1])
    return distance, pair


def format_table(measured: dict[str, Features]) -> str:
    """A Markdown table: one row per emotion, one column per feature."""
    names = [field.name for field in fields(Features)]
    lines = ["| emotion | " + " | ".join(COLUMNS[name][0] for name in names) + " |",
             "|---|" + "---:|" * len(names)]
    for emotion, measured_features in measured.items():
        cells = [COLUMNS[name][1].format(getattr(measured_features, name)) for name in names]
        lines.append(f"| {emotion} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(spec: str, bars: int = DEFAULT_BARS, seed: int = DEFAULT_SEED) -> tuple[str, bool]:
    """The table and checks for one mapping spec (preset name or file); True when everything it claims holds."""
    mapping = load_mapping(spec)
    faithful = spec in list_presets() and preset_is_faithful(spec)
    measured = measure_mapping(mapping, bars, seed)
    failed = check_relations(measured)
    distance, pair = distinctness(measured)
    claim = "claims emotion-faithful" if faithful else "no emotion-faithful claim"
    lines = [f"### {spec} ({claim}; {bars} bars per emotion, seed {seed})", "", format_table(measured), ""]
    lines.append(f"relations: {len(RELATIONS) - len(failed)}/{len(RELATIONS)} hold"
                 + (f"; failing: {'; '.join(failed)}" if failed else ""))
    lines.append(f"closest pair: {pair[0]}-{pair[1]} at {distance:.2f} (z-scored features; required > {MIN_DISTANCE})")
    ok = not faithful or (not failed and distance > MIN_DISTANCE)
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emobridge.music.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--mapping", action="append", help="preset name or YAML file (repeatable; default: all presets)")
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    all_ok = True
    for spec in args.mapping or list(list_presets()):
        text, ok = report(spec, args.bars, args.seed)
        all_ok &= ok
        print(text + "\n")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
