"""MIDI clock: follow a DAW's clock (position and tempo), or be the master clock.

Positions count clock ticks since song start. MIDI clock runs at 24 ticks per quarter
note, so a 16th-note step is 6 ticks and a Song Position Pointer "MIDI beat" (a 16th)
is 6 ticks too (MIDI 1.0 spec, System Real-Time and Song Position Pointer).
"""
from collections import deque

from deepbeat.tempo import check_bpm

TICKS_PER_QUARTER = 24  # MIDI 1.0: timing clock is sent 24 times per quarter note
TICKS_PER_STEP = TICKS_PER_QUARTER // 4  # a 16th note; also one SPP "MIDI beat"

FIT_TICKS = 48  # two beats: enough points to average out +-2 ms jitter to well under 1%
CHANGE_THRESHOLD_S = 0.0035  # above the +-2 ms jitter plus the fit's own error
CHANGE_CONFIRM_TICKS = 3  # consecutive same-sided misses before the tempo is re-learned
DROPOUT_MIN_S = 0.25  # dropout: no tick for max(250 ms, 3 tick intervals)
DROPOUT_INTERVALS = 3


def bpm_of_interval(interval):
    """Quarter notes per minute of a tick interval in seconds."""
    return 60.0 / (TICKS_PER_QUARTER * interval)


def interval_of_bpm(bpm):
    """Seconds between clock ticks at a tempo."""
    return 60.0 / (TICKS_PER_QUARTER * bpm)


class TempoEstimator:
    """Tick interval from a least-squares line through the last FIT_TICKS tick times.

    The fit smooths jitter; when several ticks in a row land on one side of the line by
    more than the jitter, the tempo has changed and the fit restarts from those ticks,
    so a jump is followed within about a beat.
    """

    def __init__(self):
        self._times = deque(maxlen=FIT_TICKS)
        self._misses = 0  # consecutive same-sided misses, signed
        self._line = None  # (time of the newest tick, interval) of the current fit

    def reset(self):
        self._times.clear()
        self._misses = 0
        self._line = None

    @property
    def interval(self):
        """Seconds per tick, or None before two ticks."""
        return self._line[1] if self._line else None

    @property
    def bpm(self):
        return bpm_of_interval(self._line[1]) if self._line else None

    def predict(self, ticks_ahead):
        """Expected time of the tick `ticks_ahead` after the newest one (None before two ticks)."""
        if not self._line:
            return None
        newest, interval = self._line
        return newest + ticks_ahead * interval

    def add(self, time):
        """Take one tick's arrival time."""
        expected = self.predict(1)
        if expected is not None:
            miss = time - expected
            if abs(miss) > CHANGE_THRESHOLD_S:
                side = 1 if miss > 0 else -1
                self._misses = self._misses + side if self._misses * side > 0 else side
            else:
                self._misses = 0
            if abs(self._misses) >= CHANGE_CONFIRM_TICKS:
                kept = list(self._times)[-CHANGE_CONFIRM_TICKS:]  # the newest ticks at the new tempo
                self._times.clear()
                self._times.extend(kept)
                self._misses = 0
        self._times.append(time)
        self._line = self._fit()

    def _fit(self):
        count = len(self._times)
        if count < 2:
            return None
        origin = self._times[0]
        mean_index = (count - 1) / 2
        mean_time = sum(self._times) / count - origin
        # slope of time over tick index; sum((i - mean)^2) for i = 0..n-1 is n(n^2-1)/12
        covariance = sum((i - mean_index) * (t - origin - mean_time) for i, t in enumerate(self._times))
        interval = covariance / (count * (count * count - 1) / 12)
        if interval <= 0:
            return None
        newest = origin + mean_time + (count - 1 - mean_index) * interval
        return newest, interval


class ClockFollower:
    """Transport state, song position and tempo from incoming MIDI clock messages.

    `position` is the index of the next tick to be played (ticks since song start).
    """

    def __init__(self):
        self.tempo = TempoEstimator()
        self.running = False
        self.position = 0
        self.last_tick_time = None
        self._heard_at = None  # the newest tick, Start or Continue: dropouts count from it

    def start(self, time):
        """MIDI Start at `time`: play from position 0 at the next tick."""
        self.position = 0
        self.running = True
        self._heard_at = time

    def stop(self):
        """MIDI Stop, or a dropout: the position is kept for Continue."""
        self.running = False

    def resume(self, time):
        """MIDI Continue at `time`: play on from the kept position at the next tick."""
        self.running = True
        self._heard_at = time

    def locate(self, sixteenths):
        """Song Position Pointer, in 16ths (MIDI beats) since song start."""
        self.position = sixteenths * TICKS_PER_STEP

    def tick(self, time):
        """A clock tick arrived; returns the tick's position while running, else None."""
        if self.last_tick_time is not None and time - self.last_tick_time > self._dropout_gap():
            self.tempo.reset()  # ticks resumed after a gap: the old line no longer applies
        self.tempo.add(time)
        self.last_tick_time = self._heard_at = time
        if not self.running:
            return None
        self.position += 1
        return self.position - 1

    def _dropout_gap(self):
        interval = self.tempo.interval
        return max(DROPOUT_MIN_S, DROPOUT_INTERVALS * interval) if interval else DROPOUT_MIN_S

    def dropout_deadline(self):
        """When silence from the clock becomes a dropout (None unless running)."""
        if not self.running:
            return None
        return self._heard_at + self._dropout_gap()

    def tick_position_at(self, time):
        """Fractional tick position of a moment, for placing incoming notes on the grid.

        Between ticks it interpolates by the tempo estimate, capped at the next tick.
        """
        played = self.position - 1  # the newest tick's position
        interval = self.tempo.interval
        if self.last_tick_time is None or interval is None:
            return float(max(played, 0))
        fraction = (time - self.last_tick_time) / interval
        return played + min(max(fraction, 0.0), 1.0)


class InternalClock:
    """The bridge as clock master: tick times at a fixed tempo from a start time."""

    def __init__(self, bpm):
        self.bpm = check_bpm(bpm, "clock tempo")
        self.interval = interval_of_bpm(bpm)
        self.start_time = None
        self.next_tick = 0

    def start(self, time):
        self.start_time = time
        self.next_tick = 0

    def next_tick_time(self):
        return self.start_time + self.next_tick * self.interval

    def advance(self):
        self.next_tick += 1
