"""Tempo in BPM (quarter notes per minute): the one word for tempo, its default and its range."""
import math

from .errors import DeepBeatError

# Standard MIDI Files 1.0: without a Set Tempo event a file plays at 500,000 us per quarter, 120 BPM.
DEFAULT_BPM = 120.0
# What DeepBeat reads, plays and follows: GMD spans 50-290 BPM; a file outside this range is corrupt.
MIN_BPM, MAX_BPM = 20.0, 400.0


def check_bpm(bpm, what="tempo"):
    """`bpm` as a float, or DeepBeatError naming `what` when it is not a tempo of MIN_BPM-MAX_BPM."""
    try:
        value = float(bpm)
    except (TypeError, ValueError):
        raise DeepBeatError(f"{what} {bpm!r} is not a number; expected {MIN_BPM:g}-{MAX_BPM:g} BPM") from None
    if not (math.isfinite(value) and MIN_BPM <= value <= MAX_BPM):
        raise DeepBeatError(f"{what} {value:g} BPM is outside {MIN_BPM:g}-{MAX_BPM:g} BPM")
    return value
