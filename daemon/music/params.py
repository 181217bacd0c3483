"""What one bar is: its parameters and its notes (shared by the composer, the parts and the player)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MusicParams:
    """Everything that shapes one bar."""

    tempo: float                    # BPM
    mode: str
    tonic: int                      # pitch class 0-11
    density: float                  # notes_per_bar over the sixteenths in a bar: 0..1 (sent over OSC)
    beats_per_bar: int
    emotion: str                    # the leading emotion, whose mode and progression play
    progression: tuple[str, ...]
    pitch_range: tuple[int, int]    # melody register; other parts are octaves away
    velocity: tuple[int, int]
    notes_per_bar: float            # melody notes per bar
    irregularity: float             # 0 all regular .. 1 all irregular rhythm
    articulation: float             # sounding length over the gap to the next note
    leap: float                     # chance of a melodic leap
    # The lead emotion's form and textures (chosen, not blended: a blend of two patterns is neither).
    progressions: tuple[tuple[str, ...], ...] = ()  # every phrase the form may play; () : progression alone
    form: str = "AA'BA'"
    cells: tuple[str, ...] = ("quarter", "eighths", "dotted")
    accompaniment: tuple[str, ...] = ("block",)
    bass_line: tuple[str, ...] = ("root",)
    reharmonise: float = 0.0        # chance an inner chord of a repeated section is replaced
    extensions: float = 0.0         # blended: chance of a consonant added tone
    tension: float = 0.0            # blended: chance of a dissonant added tone
    dynamics: str = "arch"
    swell: float = 0.0              # blended: share of the velocity range the phrase shape spans
    phrase: int = 0                 # which phrase of the music this bar belongs to (the composer counts them)


@dataclass(frozen=True)
class NoteEvent:
    beat: float       # offset from the start of the bar, in beats
    duration: float   # beats
    channel: int      # 0-15
    pitch: int
    velocity: int     # 1-127
    part: str


@dataclass(frozen=True)
class Bar:
    index: int
    params: MusicParams                # params.tempo is the target tempo the glide heads for
    events: tuple[NoteEvent, ...]
    beat_tempos: tuple[float, ...] = ()  # BPM of each beat of the bar (empty: params.tempo throughout)
    phrase_bar: int = 0                # position of the bar in its phrase (0: the phrase starts here)

    def tempo_at(self, beat: int) -> float:
        """The tempo from beat *beat* (0-based, within the bar) to the next beat."""
        return self.beat_tempos[beat] if self.beat_tempos else self.params.tempo
