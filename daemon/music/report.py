"""How a piece is built, measured from its MIDI file: repetition, harmony, rhythm, dynamics and texture.

These are the measures symbolic-music studies use to tell composed music from a random walk or a
loop (bar and pattern repetition, chord vocabulary, groove consistency, pitch-class entropy and
scale consistency as in MusDr / the Jazz Transformer evaluation, C-RNN-GAN's scale consistency),
each over the whole file, computed from the notes alone. Every definition is in
:func:`measure` and in the README ("music-report"). The module is pure: a file in, numbers out.

The *texture* is every pitched note (drums, channel 10, left out); the *top line* is the melody
track when the file has a track named ``melody``, else the highest note of each onset (skyline);
the *accompaniment* is every pitched note outside the top line's channel.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from collections.abc import Sequence

import mido
import numpy as np

from .analysis import DRUM_CHANNEL, Played, notes_of, tempos_of

GRID = 4               # onset positions per beat for rhythm and groove (a sixteenth-note grid)
FINE = 12              # positions per beat for bar identity (sixteenths and triplets both land exactly)
WINDOW_S = 5.0         # seconds per window for the dynamics and density contours
BLOCK_BARS = 8         # bars per block for the block density change
TRIAD_QUALITIES = {"": (0, 4, 7), "m": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8)}
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
DISSONANT = {1, 6, 11}  # interval classes heard as tension: minor second / major seventh, tritone


@dataclass(frozen=True)
class MusicReport:
    bars: int                   # whole bars with notes in the file
    seconds: float
    bar_repetition: float       # bars identical (onsets + pitches) to an earlier bar, over the bars
    pattern_recurrence: float   # 2-bar windows identical to an earlier 2-bar window, over the windows
    rhythm_recurrence: float    # bars whose onset pattern equals an earlier bar's, over the bars
    distinct_triads: int        # different triads (root + quality) recognised in the half bars
    chord_recurrence: float     # 4-bar chord sequences that occurred earlier, over the sequences
    ioi_cv: float               # SD over mean of the top line's inter-onset intervals (seconds)
    groove: float               # mean over bar pairs of 1 - Hamming distance / grid size of onset patterns
    velocity_sd: float          # SD of the mean velocity of each 5-s window
    density_cv: float           # CV of the onsets per 5-s window
    velocity_lag1: float        # lag-1 autocorrelation of the top line's velocities
    pitch_class_entropy: float  # bits, of the pitch-class histogram (notes counted); 0..log2(12)
    scale_consistency: float    # share of notes inside the best-fitting major or natural minor scale
    dissonance: float           # share of onsets whose sounding notes hold a minor 2nd, tritone or major 7th
    accompaniment_bars: int     # distinct bars of the accompaniment (onsets + pitches)
    block_density_change: float  # mean |change| of notes between consecutive 8-bar blocks, over the mean

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


LABELS: dict[str, tuple[str, str]] = {  # field -> (what the table calls it, format)
    "bars": ("bars", "{}"), "seconds": ("seconds", "{:.0f}"),
    "bar_repetition": ("bars that repeat an earlier bar", "{:.2f}"),
    "pattern_recurrence": ("2-bar patterns that recur", "{:.2f}"),
    "rhythm_recurrence": ("bar rhythms that recur", "{:.2f}"),
    "distinct_triads": ("distinct triads", "{}"),
    "chord_recurrence": ("4-chord sequences that recur", "{:.2f}"),
    "ioi_cv": ("inter-onset CV (top line)", "{:.2f}"),
    "groove": ("groove consistency", "{:.2f}"),
    "velocity_sd": ("velocity SD across 5-s windows", "{:.1f}"),
    "density_cv": ("note-density CV across 5-s windows", "{:.2f}"),
    "velocity_lag1": ("velocity lag-1 autocorrelation (top line)", "{:+.2f}"),
    "pitch_class_entropy": ("pitch-class entropy (bits)", "{:.2f}"),
    "scale_consistency": ("scale consistency", "{:.2f}"),
    "dissonance": ("dissonant onsets", "{:.2f}"),
    "accompaniment_bars": ("distinct accompaniment bars", "{}"),
    "block_density_change": ("density change between 8-bar blocks", "{:.2f}"),
}


def beats_per_bar(midi: mido.MidiFile) -> float:
    """Quarter-note beats per bar from the first time signature (4 when there is none)."""
    for track in midi.tracks:
        for message in track:
            if message.type == "time_signature":
                return message.numerator * 4 / message.denominator
    return 4.0


def seconds_at(midi: mido.MidiFile) -> "np.vectorize":
    """A function from beats to seconds that follows the file's tempo events."""
    changes = [(tick / midi.ticks_per_beat, bpm) for tick, bpm in tempos_of(midi)] or [(0.0, 120.0)]
    if changes[0][0] > 0:
        changes.insert(0, (0.0, 120.0))
    starts = np.array([beat for beat, _ in changes])
    spb = np.array([60.0 / bpm for _, bpm in changes])
    offsets = np.concatenate(([0.0], np.cumsum(np.diff(starts) * spb[:-1])))

    def convert(beat: float) -> float:
        index = int(np.searchsorted(starts, beat, side="right")) - 1
        return float(offsets[index] + (beat - starts[index]) * spb[index])

    return convert


def melody_channel(midi: mido.MidiFile) -> int | None:
    """The channel of a track named ``melody``, if the file has one with notes."""
    for track in midi.tracks:
        if any(m.type == "track_name" and m.name.strip().lower() == "melody" for m in track):
            channels = [m.channel for m in track if m.type == "note_on"]
            if channels:
                return channels[0]
    return None


def top_line(notes: Sequence[Played], channel: int | None) -> list[Played]:
    """The melody channel's notes, or the highest note at each onset (skyline)."""
    if channel is not None:
        return [note for note in notes if note.channel == channel]
    highest: dict[float, Played] = {}
    for note in notes:
        key = round(note.start * FINE) / FINE
        if key not in highest or note.pitch > highest[key].pitch:
            highest[key] = note
    return [highest[key] for key in sorted(highest)]


def _bar_contents(notes: Sequence[Played], bar_beats: float, bars: int) -> list[frozenset[tuple[int, int]]]:
    """Each bar as the set of (onset position on the fine grid, pitch) of the notes starting in it."""
    contents: list[set[tuple[int, int]]] = [set() for _ in range(bars)]
    for note in notes:
        bar = int(note.start // bar_beats + 1e-9)
        if bar < bars:
            contents[bar].add((round((note.start - bar * bar_beats) * FINE), note.pitch))
    return [frozenset(bar) for bar in contents]


def _recurrence(items: Sequence[object]) -> float:
    """Share of the items (empty ones left out) equal to an earlier item."""
    seen: set[object] = set()
    repeats = counted = 0
    for item in items:
        if not item:
            continue
        counted += 1
        repeats += item in seen
        seen.add(item)
    return repeats / counted if counted else 0.0


def _onset_patterns(notes: Sequence[Played], bar_beats: float, bars: int) -> list[frozenset[int]]:
    slots = round(bar_beats * GRID)
    patterns: list[set[int]] = [set() for _ in range(bars)]
    for note in notes:
        bar = int(note.start // bar_beats + 1e-9)
        if bar < bars:
            patterns[bar].add(min(slots - 1, round((note.start - bar * bar_beats) * GRID)))
    return [frozenset(p) for p in patterns]


def groove_consistency(patterns: Sequence[frozenset[int]], slots: int) -> float:
    """Mean over every pair of non-empty bars of 1 - (onsets in one bar only) / grid positions."""
    filled = [p for p in patterns if p]
    if len(filled) < 2:
        return 1.0
    vectors = np.zeros((len(filled), slots), dtype=np.int8)
    for row, pattern in enumerate(filled):
        vectors[row, list(pattern)] = 1
    counts = vectors.sum(axis=1)
    shared = vectors.astype(np.int32) @ vectors.T.astype(np.int32)
    hamming = counts[:, None] + counts[None, :] - 2 * shared
    upper = np.triu_indices(len(filled), k=1)
    return float(np.mean(1 - hamming[upper] / slots))


def triad_of(weights: np.ndarray) -> str | None:
    """The triad whose three pitch classes all sound and carry the most weight (None when no triad fits)."""
    best, label = 0.0, None
    for root in range(12):
        for quality, intervals in TRIAD_QUALITIES.items():
            classes = [(root + i) % 12 for i in intervals]
            if min(weights[c] for c in classes) <= 0:
                continue
            score = sum(weights[c] for c in classes) + 0.01 * weights[root]  # the root heard breaks ties
            if score > best + 1e-9:
                best, label = score, NAMES[root] + quality
    return label


def _chords(notes: Sequence[Played], start: float, span: float, count: int) -> list[str | None]:
    """The triad of each of *count* windows of *span* beats from *start* (duration-weighted pitch classes)."""
    weights = np.zeros((count, 12))
    for note in notes:
        first = max(0, int((note.start - start) // span))
        last = min(count - 1, int((note.start + note.duration - start - 1e-9) // span))
        for window in range(first, last + 1):
            low, high = start + window * span, start + (window + 1) * span
            overlap = min(high, note.start + note.duration) - max(low, note.start)
            if overlap > 0:
                weights[window, note.pitch % 12] += overlap
    return [triad_of(row) for row in weights]


def _autocorrelation(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=float)
    if len(x) < 3 or x.std() == 0:
        return 0.0
    x = x - x.mean()
    return float(np.dot(x[:-1], x[1:]) / np.dot(x, x))


def _entropy(counts: Counter) -> float:
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c) if total else 0.0


def scale_consistency(notes: Sequence[Played]) -> float:
    """Share of notes inside the best-fitting major or natural minor scale (any of the 24)."""
    if not notes:
        return 0.0
    counts = Counter(note.pitch % 12 for note in notes)
    best = max(sum(counts[(tonic + step) % 12] for step in scale)
               for tonic in range(12) for scale in (MAJOR_SCALE, MINOR_SCALE))
    return best / len(notes)


def dissonance(notes: Sequence[Played]) -> float:
    """Share of onsets at which the sounding notes hold a dissonant interval class (m2/M7, tritone)."""
    ordered = sorted(notes, key=lambda note: note.start)
    onsets = sorted({round(note.start * FINE) for note in ordered})
    sounding: list[Played] = []
    tense, next_note = 0, 0
    for position in onsets:
        at = position / FINE + 1e-6
        while next_note < len(ordered) and ordered[next_note].start <= at:
            sounding.append(ordered[next_note])
            next_note += 1
        sounding = [n for n in sounding if n.start + n.duration > at]
        classes = {n.pitch % 12 for n in sounding}
        tense += any((a - b) % 12 in DISSONANT for a in classes for b in classes)
    return tense / len(onsets) if onsets else 0.0


def _windows(times: Sequence[float], values: Sequence[float], end: float) -> tuple[list[int], list[float]]:
    """Onsets per whole 5-s window and their mean value (windows without onsets have no mean)."""
    count = int(end // WINDOW_S)
    counts, sums = [0] * count, [0.0] * count
    for time, value in zip(times, values):
        window = int(time // WINDOW_S)
        if window < count:
            counts[window] += 1
            sums[window] += value
    return counts, [s / c for s, c in zip(sums, counts) if c]


def measure(midi: mido.MidiFile, melody: int | None = None) -> MusicReport:
    """Every measure of the report, for a file; *melody* the top line's channel (0-15; default: found)."""
    notes = [note for note in notes_of(midi) if note.channel != DRUM_CHANNEL]
    if len(notes) < 3:
        raise ValueError(f"the file has {len(notes)} pitched notes; a report needs at least 3")
    bar_beats = beats_per_bar(midi)
    length = max(sum(message.time for message in track) for track in midi.tracks) / midi.ticks_per_beat
    length = max(length, max(note.start + note.duration for note in notes))
    bars = max(1, round(length / bar_beats))
    melody = melody if melody is not None else melody_channel(midi)
    top = top_line(notes, melody)
    to_seconds = seconds_at(midi)
    contents = _bar_contents(notes, bar_beats, bars)
    shift = round(bar_beats * FINE)
    pairs = [frozenset(a | {(p + shift, q) for p, q in b}) if a and b else frozenset()
             for a, b in zip(contents, contents[1:])]
    patterns = _onset_patterns(notes, bar_beats, bars)
    half_bars = _chords(notes, 0.0, bar_beats / 2, 2 * bars)
    bar_chords = _chords(notes, 0.0, bar_beats, bars)
    sequences = [tuple(bar_chords[i:i + 4]) for i in range(bars - 3) if None not in bar_chords[i:i + 4]]
    onsets = [to_seconds(note.start) for note in top]
    gaps = np.diff(onsets) if len(onsets) > 1 else np.array([0.0])
    times = [to_seconds(note.start) for note in notes]
    counts, velocities = _windows(times, [note.velocity for note in notes], to_seconds(length))
    accompaniment = [note for note in notes if melody is None or note.channel != melody]
    if melody is None:  # a skyline top line: the accompaniment is what it leaves
        chosen = {id(note) for note in top}
        accompaniment = [note for note in notes if id(note) not in chosen]
    blocks = [sum(1 for note in notes if b * BLOCK_BARS * bar_beats <= note.start < (b + 1) * BLOCK_BARS * bar_beats)
              for b in range(bars // BLOCK_BARS)]
    changes = [abs(b - a) for a, b in zip(blocks, blocks[1:])]
    return MusicReport(
        bars=bars,
        seconds=to_seconds(length),
        bar_repetition=_recurrence(contents),
        pattern_recurrence=_recurrence(pairs),
        rhythm_recurrence=_recurrence(patterns),
        distinct_triads=len({label for label in half_bars if label}),
        chord_recurrence=_recurrence(sequences),
        ioi_cv=float(np.std(gaps) / np.mean(gaps)) if np.mean(gaps) > 0 else 0.0,
        groove=groove_consistency(patterns, round(bar_beats * GRID)),
        velocity_sd=float(np.std(velocities)) if len(velocities) > 1 else 0.0,
        density_cv=float(np.std(counts) / np.mean(counts)) if len(counts) > 1 and np.mean(counts) > 0 else 0.0,
        velocity_lag1=_autocorrelation([note.velocity for note in top]),
        pitch_class_entropy=_entropy(Counter(note.pitch % 12 for note in notes)),
        scale_consistency=scale_consistency(notes),
        dissonance=dissonance(notes),
        accompaniment_bars=len({b for b in _bar_contents(accompaniment, bar_beats, bars) if b}),
        block_density_change=float(np.mean(changes) / np.mean(blocks)) if changes and np.mean(blocks) > 0 else 0.0,
    )


def format_report(report: MusicReport, title: str = "") -> str:
    """A two-column Markdown table."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| measure | value |", "|---|---:|"]
    for name, value in report.as_dict().items():
        label, form = LABELS[name]
        lines.append(f"| {label} | {form.format(value)} |")
    return "\n".join(lines)
