"""TimeKeeping: where each style's drummers play each time keeper (closed hat, open hat, ride) in the bar.

Counted over the beat bars of a model's training data and carried in its data summary. The sampler
turns it into the style's say over the time keeping: a producer who plays only kick and snare and
asks for jazz hears a ride, as GMD's jazz drummers keep time, where the network alone keeps the
figure it heard (docs/BENCHMARKS.md, style strength).
"""
from dataclasses import dataclass

import numpy as np

from .drums import DRUM_CLASSES
from .encoding import ANY_STYLE, BEAT, STEP_HITS
from .grid import STEPS_PER_BAR
from .musical import TIME_KEEPERS

# Bars of the data-wide rate a style's own rate is blended with: a style of few bars (GMD has one
# highlife file) leans on all the data instead of on a handful of hits.
PRIOR_BARS = 4
_DRUMS = [DRUM_CLASSES[drum] for drum in TIME_KEEPERS]


@dataclass(frozen=True)
class TimeKeeping:
    """Per style: beat bars counted, and hits of each time keeper at each 16th ([16, 3], TIME_KEEPERS order)."""

    bars: dict
    hits: dict

    @classmethod
    def of(cls, sequences):
        """Counted over the whole 16-step bars of the beat sequences (fills keep time differently)."""
        bars, hits = {}, {}
        for sequence in sequences:
            grid = sequence.grid
            if sequence.beat_type != BEAT or grid.steps_per_bar != STEPS_PER_BAR:
                continue
            whole = grid.num_steps // STEPS_PER_BAR * STEPS_PER_BAR
            played = grid.velocities[:whole, list(TIME_KEEPERS)].reshape(-1, STEPS_PER_BAR, len(TIME_KEEPERS)) > 0
            bars[sequence.style] = bars.get(sequence.style, 0) + len(played)
            hits[sequence.style] = hits.get(sequence.style, 0) + played.sum(axis=0)
        return cls(dict(sorted(bars.items())), {style: np.asarray(hits[style], np.int64) for style in sorted(hits)})

    def to_dict(self):
        return {"drums": _DRUMS, "bars": self.bars,
                "hits": {style: counts.tolist() for style, counts in self.hits.items()}}

    @classmethod
    def from_dict(cls, data):
        """From to_dict's form; ValueError when the counts are not whole bars of the three time keepers."""
        if list(data["drums"]) != _DRUMS:
            raise ValueError(f"time keeping counts {data['drums']}; expected {_DRUMS}")
        bars = {str(style): int(count) for style, count in data["bars"].items()}
        hits = {str(style): np.asarray(counts, np.int64) for style, counts in data["hits"].items()}
        shape = (STEPS_PER_BAR, len(TIME_KEEPERS))
        for style, counts in hits.items():
            if counts.shape != shape or style not in bars or not (0 <= counts.min() and counts.max() <= bars[style]):
                raise ValueError(f"time keeping of {style!r} is not {shape} hit counts of its {bars.get(style)} bars")
        return cls(bars, hits)

    @classmethod
    def in_summary(cls, data_summary):
        """The counts a model's data summary carries; None for a model trained before they were counted."""
        counts = data_summary.get("time_keeping")
        return None if counts is None else cls.from_dict(counts)

    def rates(self, style):
        """How often each time keeper hits at each 16th in the style's bars ([16, 3]), blended with all the data's."""
        total_bars = sum(self.bars.values())
        overall = (sum(self.hits.values()) + 0.5) / (total_bars + 1)
        if style == ANY_STYLE or style not in self.bars:
            return overall
        return (self.hits[style] + PRIOR_BARS * overall) / (self.bars[style] + PRIOR_BARS)

    def log_odds(self, style):
        """Per bar position, every step class's log-odds of its time keeping in the style against all styles:
        [16, 512]. Each time keeper adds log(p/q) where the step plays it and log((1-p)/(1-q)) where not."""
        style_rates, overall = self.rates(style), self.rates(ANY_STYLE)
        played = STEP_HITS[:, list(TIME_KEEPERS)].astype(np.float64)  # [512, 3]
        hit = np.log(style_rates / overall)
        miss = np.log((1 - style_rates) / (1 - overall))
        return (played @ hit.T + (1 - played) @ miss.T).T.astype(np.float32)
