"""Musical figures of drum bars, as a producer would hear them: how close a bar stays to another, how
syncopated it is, whether it keeps the backbeat or turns into a fill, and its timing and dynamics.

Every figure takes 16-step bars of 4/4 (DrumGrid velocities or onset masks [16, 9]).
"""
import numpy as np

from .drums import class_index

KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH = (class_index(name) for name in (
    "kick", "snare", "closed_hihat", "open_hihat", "ride", "crash"))
TOMS = tuple(class_index(name) for name in ("low_tom", "mid_tom", "high_tom"))
TIME_KEEPERS = (CLOSED_HAT, OPEN_HAT, RIDE)
BACKBEAT_STEPS = (4, 12)  # beats 2 and 4 of a 16-step bar
# Longuet-Higgins & Lee (1984) metrical weights of the 16ths of a 4/4 bar: bar 0, half -1, beat -2, 8th -3, 16th -4.
LHL_WEIGHTS = np.array([0, -4, -3, -4, -2, -4, -3, -4, -1, -4, -3, -4, -2, -4, -3, -4])
# A fill-like bar: at least this many snares, or this many toms (the rule the musical goals were set with).
FILL_SNARES, FILL_TOMS = 5, 2
MANY_CRASHES = 4


def onsets(bar):
    """The onset mask [16, 9] of a bar's velocities (or of a mask)."""
    return np.asarray(bar) > 0


def jaccard(a, b):
    """Shared onsets over all onsets of two bars (1.0 when both are silent)."""
    a, b = onsets(a), onsets(b)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def syncopation(bar, drums=(KICK, SNARE)):
    """Longuet-Higgins & Lee syncopation of the onsets of `drums` in a bar: for each onset followed by a
    silence on a heavier metrical position before the next onset, the weight difference, summed. The
    bar is taken as looping, so its last onset is followed by its first."""
    hits = np.flatnonzero(onsets(bar)[:, list(drums)].any(axis=1))
    total = 0
    for index, step in enumerate(hits):
        following = hits[(index + 1) % len(hits)] + (len(LHL_WEIGHTS) if index + 1 == len(hits) else 0)
        silent = [LHL_WEIGHTS[position % len(LHL_WEIGHTS)] for position in range(step + 1, following)]
        if silent and max(silent) > LHL_WEIGHTS[step]:
            total += max(silent) - LHL_WEIGHTS[step]
    return int(total)


def has_backbeat(bar):
    """Whether the snare plays beat 2 or beat 4."""
    return bool(onsets(bar)[list(BACKBEAT_STEPS), SNARE].any())


def is_fill_like(bar):
    """At least FILL_SNARES snares or FILL_TOMS toms in the bar."""
    hits = onsets(bar)
    return bool(hits[:, SNARE].sum() >= FILL_SNARES or hits[:, list(TOMS)].sum() >= FILL_TOMS)


def failure(bar):
    """What is wrong with a bar, or None: "empty", "no backbeat" or "crashes" (MANY_CRASHES or more)."""
    hits = onsets(bar)
    if not hits.any():
        return "empty"
    if not has_backbeat(bar):
        return "no backbeat"
    if hits[:, CRASH].sum() >= MANY_CRASHES:
        return "crashes"
    return None


def ride_share(bars):
    """Rides among the time-keeping hits (closed and open hat, ride) of some bars; None without any."""
    hits = np.concatenate([onsets(bar) for bar in bars])[:, list(TIME_KEEPERS)].sum(axis=0)
    return float(hits[-1] / hits.sum()) if hits.sum() else None


def offsets_ms(grid):
    """{drum: its hits' offsets in milliseconds} of a DrumGrid (negative: ahead of the grid)."""
    step_ms = 60_000 / grid.bpm / grid.steps_per_quarter
    hit = grid.velocities > 0
    return {drum: grid.offsets[hit[:, drum], drum] * step_ms for drum in range(hit.shape[1])}
