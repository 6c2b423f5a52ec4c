"""Drum grids as the pages' JSON: per step, each drum's velocity and where its hit sounds.

{"bpm": 90.0, "steps_per_bar": 16, "velocities": [[9 ints 0-127] per step], "offsets": [[9 floats] per step]}:
offsets are in steps from the step's own line (negative: early), 0 where there is no hit.
"""
import math

import numpy as np

from deepbeat.drums import DRUM_CLASSES, NUM_DRUM_CLASSES
from deepbeat.errors import DeepBeatError
from deepbeat.grid import DrumGrid
from deepbeat.primer import MAX_PRIMER_STEPS
from deepbeat.tempo import check_bpm

OFFSET_DECIMALS = 3  # a thousandth of a step: under 0.2 ms at 400 BPM
MAX_OFFSET = 0.5  # a played hit further than half a step from its line belongs to the next step
# Placed hits go further: swing at 75% on 8ths moves a hit a whole step, and humanize adds up to half.
MAX_PLACED_OFFSET = 2.0


class GridJsonError(DeepBeatError):
    """A grid sent by a page is malformed."""


def grid_json(grid, first=0, feel=None):
    """The page's JSON of a DrumGrid; with a Feel, the steps from `first` on as the Feel places and accents
    them (swing, humanize, groove), the steps before it as played."""
    steps = np.arange(grid.num_steps)[:, None]
    velocities = grid.velocities if feel is None else feel.velocities(grid, first)
    offsets = grid.offsets if feel is None else feel.onsets(grid, first) - steps
    # rounded as float64, so that JSON says 0.12 rather than float32's 0.11999999731779099; + 0.0: no -0.0
    offsets = np.where(velocities > 0, np.round(offsets.astype(np.float64), OFFSET_DECIMALS), 0.0) + 0.0
    return {"bpm": float(grid.bpm), "steps_per_bar": grid.steps_per_bar,
            "velocities": velocities.astype(int).tolist(), "offsets": offsets.tolist()}


def grid_from_json(data, what="grid", max_steps=MAX_PRIMER_STEPS, max_offset=MAX_OFFSET):
    """A DrumGrid of 4/4 16ths from the page's JSON (offsets and bpm optional), or GridJsonError naming `what`."""
    if not isinstance(data, dict):
        raise GridJsonError(f"{what}: expected an object with velocities per step")
    velocities = _rows(data.get("velocities"), what, "velocities", max_steps)
    for step, row in enumerate(velocities):
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 127 for v in row):
            raise GridJsonError(f"{what}: step {step + 1} has a velocity that is not a whole number 0-127")
    offsets = None
    if data.get("offsets") is not None:
        offsets = _rows(data["offsets"], what, "offsets", max_steps)
        if len(offsets) != len(velocities):
            raise GridJsonError(f"{what}: {len(offsets)} steps of offsets for {len(velocities)} of velocities")
        for step, row in enumerate(offsets):
            if any(isinstance(o, bool) or not isinstance(o, (int, float)) or not math.isfinite(o)
                   or abs(o) > max_offset for o in row):
                raise GridJsonError(f"{what}: step {step + 1} has an offset that is not a number of steps "
                                    f"within ±{max_offset:g}")
    options = {} if data.get("bpm") is None else {"bpm": check_bpm(data["bpm"], f"{what} tempo")}
    return DrumGrid(np.array(velocities, np.uint8).reshape(-1, NUM_DRUM_CLASSES),
                    None if offsets is None else np.array(offsets, np.float32), **options)


def _rows(rows, what, name, max_steps):
    """`rows` checked to be 1-max_steps lists of one entry per drum class."""
    if not isinstance(rows, list) or not 1 <= len(rows) <= max_steps:
        raise GridJsonError(f"{what}: {name} must be a list of 1-{max_steps} steps")
    for step, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != NUM_DRUM_CLASSES:
            raise GridJsonError(f"{what}: step {step + 1} of {name} must list {NUM_DRUM_CLASSES} drums "
                                f"({', '.join(DRUM_CLASSES)})")
    return rows
