"""The tempo of a MIDI clock: a least-squares line through its ticks' arrival times, and the jitter around it.

Clock ticks come 24 to a quarter note; tempo is in BPM (quarter notes per minute).
"""
import math
from collections import deque
from statistics import median

from deepbeat.tempo import MAX_BPM, MIN_BPM

TICKS_PER_QUARTER = 24  # MIDI 1.0: timing clock is sent 24 times per quarter note
FIT_TICKS = 96  # four beats in the tempo fit: +-5 ms of jitter moves the reading by under 0.2%
TRUSTED_FIT_TICKS = 6  # a fit of fewer ticks (or of too few for its jitter) reads the tempo but judges no arrival
TRUSTED_SPREAD = 0.01
MIN_MISS_S = 0.002  # an arrival off the fit by more than this (and JITTER_MISSES jitters) is a miss
JITTER_MISSES = 3.0
CONFIRM_MISSES = 4  # this many misses in a row on one side: the tempo changed, or the count slipped...
SLIP_MISSES = 3  # ...slipped when the newest this many sit a whole number of intervals off, not drifting
JITTER_GAIN = 1 / 16  # weight of each new jitter sample in the running jitter scale
JITTER_SETTLE = 16  # jitter samples before misses are judged


def bpm_of_interval(interval):
    """Quarter notes per minute of a tick interval in seconds."""
    return 60.0 / (TICKS_PER_QUARTER * interval)


def interval_of_bpm(bpm):
    """Seconds between clock ticks at a tempo."""
    return 60.0 / (TICKS_PER_QUARTER * bpm)


SHORTEST_INTERVAL = interval_of_bpm(MAX_BPM)  # ticks closer together than this keep no tempo: they came bunched


def in_tempo_range(interval):
    """Whether a tick interval is one of a tempo DeepBeat follows (MIN_BPM-MAX_BPM)."""
    return SHORTEST_INTERVAL <= interval <= interval_of_bpm(MIN_BPM)


class TempoEstimator:
    """Tick interval and phase from a least-squares line through the last FIT_TICKS (tick index, time) pairs.

    Indices count clock ticks, lost ones included, so the line holds through gaps. The
    jitter is measured (the mean change of an arrival's distance from the line, which a
    steady drift does not inflate) and a miss is an arrival further off than a few jitters.
    CONFIRM_MISSES misses in a row either sit a whole number of intervals off the line
    (the count slipped: `add` returns the ticks to add to it) or drift away (the tempo
    changed: the fit restarts from the missed ticks, so a jump is followed within a beat).
    """

    def __init__(self):
        self._points = deque()  # (index, time) of the current segment, at most FIT_TICKS
        self._origin = None  # (index, time) the sums below are taken relative to
        self._sums = [0.0] * 5  # count, sum x, sum y, sum xx, sum xy
        self._line = None  # (index, time, interval): the fit at its newest index, and its slope
        self._spare = None  # the interval before the newest restart, until the new fit is trusted
        self._held = []  # (index, time, residual) of the newest arrivals on one side of the line, out of the fit
        self._residual = None  # the newest arrival's distance from the line
        self._samples = 0
        self._trusted = False
        self.jitter = 0.0  # seconds: the mean change of residual between arrivals

    @property
    def interval(self):
        """Seconds per tick, or None before two ticks (or while the ticks came bunched, faster than any tempo)."""
        if self._line and (self.trusted or self._spare is None):
            return self._line[2] if self._line[2] >= SHORTEST_INTERVAL else None
        return self._spare

    @property
    def trusted(self):
        """Whether the fit is long enough to judge arrivals by: TRUSTED_FIT_TICKS ticks, and enough more
        that the measured jitter moves its interval by under TRUSTED_SPREAD, on a tempo DeepBeat follows.
        Once trusted, it stays so until it restarts."""
        if (not self._trusted and self._line is not None and len(self._points) >= TRUSTED_FIT_TICKS
                and self._samples >= TRUSTED_FIT_TICKS and in_tempo_range(self._line[2])):
            n, sx, _, sxx, _ = self._sums
            self._trusted = self.jitter <= TRUSTED_SPREAD * self._line[2] * math.sqrt(sxx - sx * sx / n)
        return self._trusted

    @property
    def bpm(self):
        interval = self.interval
        return bpm_of_interval(interval) if interval else None

    def threshold(self):
        """How far off the line an arrival may be before it counts as a miss."""
        return max(MIN_MISS_S, JITTER_MISSES * self.jitter)

    def time_of(self, index):
        """The fitted time of tick `index` (None before two ticks)."""
        interval = self.interval
        if interval is None:
            return None
        newest, time = (self._line[0], self._line[1]) if self.trusted else self._points[-1]
        return time + (index - newest) * interval

    def add(self, index, time):
        """Take tick `index`'s arrival time; returns the ticks the count slipped by (to add to it), else 0.

        Arrivals on one side of the line are held out of the fit until the side changes (then they
        are fitted) or CONFIRM_MISSES of them are misses: then they are a slip or a tempo change.
        """
        if not self.trusted:
            predicted = self.time_of(index) if len(self._points) >= 2 else None
            if predicted is not None:  # a young line: its residuals overstate the jitter, which errs on the safe side
                self._measure_jitter(time - predicted)
            self._append(index, time)
            return 0
        residual = time - self.time_of(index)
        self._measure_jitter(residual)
        if self._held and (self._held[-1][2] > 0) != (residual > 0):
            self._flush_held()
        self._held.append((index, time, residual))
        misses = sum(abs(r) > self.threshold() for _, _, r in self._held)
        if misses >= CONFIRM_MISSES and self._samples >= JITTER_SETTLE:
            return self._resolve_held()
        if len(self._held) >= 2 * CONFIRM_MISSES and misses < CONFIRM_MISSES:
            # a run on one side with few misses: the line needs the arrivals, not a restart; the misses stay held
            self._flush_held(keep_misses=True)
        return 0

    def restart(self, points=(), keep_interval=False, trusted=False):
        """A new fit from `points` ((index, time) pairs). With `keep_interval` (a clock coming back after
        a silence) the old interval stands in until the new fit is trusted; `trusted`: the points were
        judged already (a young fit's arrivals, recounted), so the new fit is trusted at once."""
        old = self.interval
        self._spare = old if keep_interval else None
        self._points.clear()
        self._origin = None
        self._sums = [0.0] * 5
        self._line = None
        self._held = []
        self._residual = None
        for index, time in points:
            self._append(index, time)
        self._trusted = trusted and self._line is not None

    def _measure_jitter(self, residual):
        if self._residual is not None:
            change = min(abs(residual - self._residual), 4 * self.threshold())  # a slip or a jump is not jitter
            self._samples += 1
            self.jitter += max(JITTER_GAIN, 1 / self._samples) * (change - self.jitter)
        self._residual = residual

    def _flush_held(self, keep_misses=False):
        held, self._held = self._held, []
        threshold = self.threshold()
        for index, time, residual in held:
            if keep_misses and abs(residual) > threshold:
                self._held.append((index, time, residual))
            else:
                self._append(index, time)

    def _resolve_held(self):
        """Misses confirmed on one side. When the newest SLIP_MISSES sit a whole number of intervals off
        the line (their median within a quarter interval of it) without drifting further than the jitter
        explains, the count slipped: returns the shift, and the held arrivals that fit it are fitted where
        they belong (earlier ones, delivered late, are dropped). Otherwise the tempo (or the phase) changed:
        returns 0, and the fit restarts from the held misses."""
        held, interval, threshold = self._held, self.interval, self.threshold()
        misses = [(index, time, residual) for index, time, residual in held if abs(residual) > threshold]
        newest = [residual for _, _, residual in misses][-SLIP_MISSES:]
        middle = median(newest)
        shift = round(middle / interval)
        self._held = []
        if (shift and abs(middle - shift * interval) <= interval / 4
                and all(abs(r - shift * interval) < interval / 2 for r in newest)
                and abs(newest[-1] - newest[0]) <= 2 * threshold):
            for index, time, residual in held:
                if abs(residual - shift * interval) < interval / 2:
                    self._append(index + shift, time)
            self._residual = None
            return shift
        # from the misses alone: held arrivals within the threshold are still on the old line, and a slope through
        # both, some of them a JACK period late, read several percent off
        self.restart([(index, time) for index, time, _ in misses])
        return 0

    def _append(self, index, time):
        if self._origin is None:
            self._origin = (index, time)
        self._points.append((index, time))
        self._accumulate(index, time, 1)
        if len(self._points) > FIT_TICKS:
            self._accumulate(*self._points.popleft(), -1)
        self._line = self._fit()

    def _accumulate(self, index, time, sign):
        x, y = index - self._origin[0], time - self._origin[1]
        for k, value in enumerate((1.0, x, y, x * x, x * y)):
            self._sums[k] += sign * value

    def _fit(self):
        n, sx, sy, sxx, sxy = self._sums
        if n < 2:
            return None
        spread = sxx - sx * sx / n
        if spread <= 0:
            return None
        interval = (sxy - sx * sy / n) / spread
        if interval <= 0:
            return None
        newest = self._points[-1][0]
        x = newest - self._origin[0]
        return newest, self._origin[1] + sy / n + (x - sx / n) * interval, interval
