"""DrumGrid: drum hits on a 16th-note grid, with velocity and micro-timing per hit."""
from dataclasses import dataclass, field, replace

import numpy as np

from .drums import DRUM_CLASSES, NUM_DRUM_CLASSES
from .encoding import hits_of, step_of
from .tempo import DEFAULT_BPM

STEPS_PER_QUARTER = 4
DEFAULT_VELOCITY = 100  # Magenta's drum models write every hit at velocity 100


def steps_per_bar(numerator, denominator, steps_per_quarter=STEPS_PER_QUARTER):
    """Grid steps in one bar of a time signature, or None if a bar is not whole steps."""
    steps = numerator * steps_per_quarter * 4 / denominator
    return int(steps) if steps == int(steps) and steps > 0 else None


STEPS_PER_BAR = steps_per_bar(4, 4)  # the bar DeepBeat generates and plays live: 4/4 in 16ths


@dataclass(frozen=True, eq=False)
class DrumGrid:
    """A bar-aligned run of 16th-note steps.

    velocities[t, d] is the MIDI velocity (1-127) of drum class d at step t, 0 for no hit;
    offsets[t, d] is that hit's onset relative to the step, in steps (-0.5 to 0.5).
    """

    velocities: np.ndarray
    offsets: np.ndarray = None
    bpm: float = DEFAULT_BPM
    time_signature: tuple = (4, 4)
    steps_per_quarter: int = field(default=STEPS_PER_QUARTER)

    def __post_init__(self):
        velocities = np.asarray(self.velocities, dtype=np.uint8).reshape(-1, NUM_DRUM_CLASSES)
        offsets = (
            np.zeros(velocities.shape, np.float32)
            if self.offsets is None
            else np.asarray(self.offsets, dtype=np.float32).reshape(velocities.shape)
        )
        object.__setattr__(self, "velocities", velocities)
        object.__setattr__(self, "offsets", offsets)

    @classmethod
    def from_steps(cls, steps, velocity=DEFAULT_VELOCITY, **kwargs):
        """A grid from step integers 0-511, every hit at one velocity."""
        return cls(hits_of(np.asarray(steps).reshape(-1)) * np.uint8(velocity), **kwargs)

    @classmethod
    def silent(cls, num_steps, **kwargs):
        return cls(np.zeros((num_steps, NUM_DRUM_CLASSES), np.uint8), **kwargs)

    @property
    def steps(self):
        """Step integers 0-511 (bit d set when drum class d is hit)."""
        return step_of(self.velocities)

    @property
    def num_steps(self):
        return len(self.velocities)

    @property
    def steps_per_bar(self):
        return steps_per_bar(*self.time_signature, self.steps_per_quarter)

    @property
    def num_bars(self):
        return -(-self.num_steps // self.steps_per_bar)

    def __len__(self):
        return self.num_steps

    def __eq__(self, other):
        return (
            isinstance(other, DrumGrid)
            and np.array_equal(self.velocities, other.velocities)
            and np.allclose(self.offsets, other.offsets, atol=1e-6)
            and (self.bpm, self.time_signature, self.steps_per_quarter)
            == (other.bpm, other.time_signature, other.steps_per_quarter)
        )

    def slice(self, start, stop):
        """The steps start..stop-1 as a grid with the same tempo and meter."""
        return replace(self, velocities=self.velocities[start:stop], offsets=self.offsets[start:stop])

    def padded_to_bars(self):
        """This grid with silent steps appended up to a whole number of bars."""
        extra = self.num_bars * self.steps_per_bar - self.num_steps
        if extra == 0:
            return self
        return self.concat(DrumGrid.silent(extra))

    def concat(self, other):
        """This grid followed by another grid's steps (tempo and meter of this one)."""
        return replace(
            self,
            velocities=np.concatenate([self.velocities, other.velocities]),
            offsets=np.concatenate([self.offsets, other.offsets]),
        )

    def to_text(self, bars_per_line=4):
        """A drum-machine view: a row per drum, X accent / x hit / o ghost, '|' between bars.

        Long grids wrap every `bars_per_line` bars into blocks headed '# bar N'; the whole
        text parses back with `deepbeat.primer.parse_step_text`.
        """
        width = max(len(name) for name in DRUM_CLASSES)
        # A beat is one note of the meter's denominator; 1/32 and shorter fall below a step.
        per_bar, per_beat = self.steps_per_bar, max(1, self.steps_per_quarter * 4 // self.time_signature[1])
        per_line = per_bar * bars_per_line
        blocks = []
        for first in range(0, max(self.num_steps, 1), per_line):
            span = range(first, min(first + per_line, self.num_steps))
            beats = "".join(("|" if t % per_bar == 0 else "") + _beat_mark(t % per_bar, per_beat) for t in span)
            lines = [f"# bar {first // per_bar + 1:<{width - 5}}{beats}|"]
            for drum, name in enumerate(DRUM_CLASSES):
                cells = "".join(
                    ("|" if t % per_bar == 0 else "") + velocity_symbol(self.velocities[t, drum]) for t in span
                )
                lines.append(f"{name:<{width}}:{cells}|")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def to_json_dict(self):
        """The grid as plain data: per step the drum classes hit (indices into "drums", and their names)
        and their velocities, in the same order."""
        hits = [np.flatnonzero(row).tolist() for row in self.velocities]
        return {
            "steps_per_quarter": self.steps_per_quarter,
            "steps_per_bar": self.steps_per_bar,
            "bpm": self.bpm,
            "time_signature": list(self.time_signature),
            "drums": list(DRUM_CLASSES),
            "steps": hits,
            "step_drums": [[DRUM_CLASSES[drum] for drum in step] for step in hits],
            "velocities": [row[row > 0].tolist() for row in self.velocities],
        }


def _beat_mark(position, per_beat):
    """The header character at a bar position: the beat number (last digit, to keep one column) or a space."""
    return str((position // per_beat + 1) % 10) if position % per_beat == 0 else " "


def velocity_symbol(velocity):
    """One character for a hit: '.' none, 'o' ghost (<50), 'x' hit, 'X' accent (>=100)."""
    if velocity == 0:
        return "."
    if velocity < 50:
        return "o"
    return "X" if velocity >= 100 else "x"


SYMBOL_VELOCITIES = {"o": 40, "x": 80, "X": 110}
