"""Bar-by-bar generation for a live session: the plan of bars to play and the composer that writes it.

The composer's jobs run one after another off the timing path (the bridge's worker thread);
the plan is what the timing side reads.
"""
import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.grid import STEPS_PER_BAR, DrumGrid

STEPS_PER_CHUNK = 4  # a bar is published a beat at a time, so its first step waits for 4 samples, not 16
KEPT_BARS = 64  # bars of plan and model snapshots kept behind the newest; enough for any loop


class Plan:
    """Generated bars by bar number: the grid and, per step, the (drum, velocity) hits.

    A bar may be put again as it grows (its first beat, then more). Written by one thread,
    read by another: each bar is put and read as one dict entry, which is atomic in CPython.
    """

    def __init__(self):
        self._bars = {}

    def put(self, bar, grid):
        hits = tuple(tuple((int(d), int(row[d])) for d in np.flatnonzero(row)) for row in grid.velocities)
        self._bars[bar] = (grid, hits)
        for old in [b for b in self._bars if b < bar - KEPT_BARS]:
            del self._bars[old]

    def drop(self, bar):
        self._bars.pop(bar, None)

    def grid(self, bar):
        entry = self._bars.get(bar)
        return entry[0] if entry else None

    def hits(self, bar):
        """Per step generated so far, the (drum, velocity) pairs to play; None while nothing is."""
        entry = self._bars.get(bar)
        return entry[1] if entry else None


class Composer:
    """Writes bars into the plan with a DrumSampler (num_outputs=1).

    Before sampling each bar it keeps a snapshot of the model state, so that a bar the
    user played over can be fed again and the bars after it re-sampled. Every job is told
    the Steering to sample with.
    """

    def __init__(self, sampler, plan):
        self.sampler = sampler
        self.plan = plan
        self._snapshots = {}  # bar -> sampler state before that bar was sampled

    def answer(self, heard, first_bar, last_bar, steering):
        """Prime with the heard bars (ending just before first_bar), sample first_bar..last_bar."""
        self.sampler.prime(heard, steering, first_position=first_bar * STEPS_PER_BAR - heard.num_steps)
        self._sample(first_bar, last_bar, steering)

    def extend(self, first_bar, last_bar, bpm, steering):
        """Sample first_bar..last_bar with the model state carried on."""
        self.sampler.bpm = bpm
        self._sample(first_bar, last_bar, steering)

    def reprime(self, bar, source_bar, user, last_bar, bpm, steering):
        """Feed bar `bar` as it sounded (the plan's `source_bar` plus the user's hits `user`,
        [16, 9] velocities or None) in place of what was sampled, then sample bar+1..last_bar."""
        played = self.plan.grid(source_bar)
        velocities = np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.uint8) if played is None else played.velocities
        if user is not None:
            velocities = np.maximum(velocities, user)
        grid = DrumGrid(velocities, bpm=bpm)
        snapshot = self._snapshots.get(bar)
        if snapshot is None:
            self.sampler.prime(grid, steering, first_position=bar * STEPS_PER_BAR)
        else:
            self.sampler.restore(snapshot)
            self.sampler.feed(grid, steering)
        self._sample(bar + 1, last_bar, steering)

    def _sample(self, first_bar, last_bar, steering):
        for bar in range(first_bar, last_bar + 1):
            self._snapshots[bar] = self.sampler.snapshot()
            grid = self.sampler.sample(STEPS_PER_CHUNK, steering)[0]
            self.plan.put(bar, grid)
            while grid.num_steps < STEPS_PER_BAR:
                grid = grid.concat(self.sampler.sample(STEPS_PER_CHUNK, steering)[0])
                self.plan.put(bar, grid)
        for old in [b for b in self._snapshots if b < last_bar - KEPT_BARS]:
            del self._snapshots[old]
