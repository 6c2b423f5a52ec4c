"""Generation off the tick path: the plan of bars to play, the composer that writes it,
and the worker thread that runs the composer's jobs in order."""
import queue
import threading

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.grid import DrumGrid

STEPS_PER_BAR = 16  # 4/4 in 16ths, the meter the bridge plays
STEPS_PER_CHUNK = 4  # a bar is published a beat at a time, so its first step waits for 4 samples, not 16
KEPT_BARS = 64  # bars of plan and model snapshots kept behind the newest; enough for any loop


class Plan:
    """Generated bars by bar number: the grid and, per step, the (drum, velocity) hits.

    A bar may be put again as it grows (its first beat, then more). Written by the worker
    thread, read by the timing thread: each bar is put and read as one dict entry, which
    is atomic in CPython.
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
    """Writes bars into the plan with a DrumSampler (num_outputs=1); runs on the worker thread.

    Before sampling each bar it keeps a snapshot of the model state, so that a bar the
    user played over can be fed again and the bars after it re-sampled.
    """

    def __init__(self, sampler, plan):
        self.sampler = sampler
        self.plan = plan
        self._snapshots = {}  # bar -> sampler state before that bar was sampled

    def set_temperature(self, value):
        self.sampler.temperature = value

    def answer(self, heard, first_bar, last_bar, qpm):
        """Prime with the heard bars (ending just before first_bar), sample first_bar..last_bar."""
        self.sampler.qpm = qpm
        self.sampler.prime(heard, first_position=first_bar * STEPS_PER_BAR - heard.num_steps)
        self._sample(first_bar, last_bar)

    def extend(self, first_bar, last_bar, qpm):
        """Sample first_bar..last_bar with the model state carried on."""
        self.sampler.qpm = qpm
        self._sample(first_bar, last_bar)

    def reprime(self, bar, source_bar, user, last_bar, qpm):
        """Feed bar `bar` as it sounded (the plan's `source_bar` plus the user's hits `user`,
        [16, 9] velocities or None) in place of what was sampled, then sample bar+1..last_bar."""
        self.sampler.qpm = qpm
        played = self.plan.grid(source_bar)
        velocities = np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.uint8) if played is None else played.velocities
        if user is not None:
            velocities = np.maximum(velocities, user)
        grid = DrumGrid(velocities, qpm=qpm)
        snapshot = self._snapshots.get(bar)
        if snapshot is None:
            self.sampler.prime(grid, first_position=bar * STEPS_PER_BAR)
        else:
            self.sampler.restore(snapshot)
            self.sampler.feed(grid)
        self._sample(bar + 1, last_bar)

    def _sample(self, first_bar, last_bar):
        for bar in range(first_bar, last_bar + 1):
            self._snapshots[bar] = self.sampler.snapshot()
            grid = self.sampler.sample(STEPS_PER_CHUNK)[0]
            self.plan.put(bar, grid)
            while grid.num_steps < STEPS_PER_BAR:
                grid = grid.concat(self.sampler.sample(STEPS_PER_CHUNK)[0])
                self.plan.put(bar, grid)
        for old in [b for b in self._snapshots if b < last_bar - KEPT_BARS]:
            del self._snapshots[old]


class GenerationWorker:
    """A daemon thread running submitted jobs one after another.

    The first job that raises stops the worker; `error` holds it and `on_error` is called
    (from the worker thread) so the bridge can stop cleanly.
    """

    def __init__(self, on_error=None):
        self.error = None
        self._on_error = on_error
        self._jobs = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="deepbeat-generation", daemon=True)
        self._thread.start()

    def submit(self, job, *args):
        self._jobs.put((job, args))

    def close(self, timeout=2.0):
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self):
        while True:
            item = self._jobs.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    job, args = item
                    job(*args)
            except Exception as error:  # reported to the bridge, which stops with a message
                self.error = error
                if self._on_error:
                    self._on_error(error)
            finally:
                self._jobs.task_done()
