"""MIDI clock: follow a DAW's clock (song position and tempo), or be the master clock.

Positions count clock ticks since song start. MIDI clock runs at 24 ticks per quarter
note, so a 16th-note step is 6 ticks and a Song Position Pointer "MIDI beat" (a 16th)
is 6 ticks too (MIDI 1.0 spec, System Real-Time and Song Position Pointer).

Clock messages get lost, duplicated and delayed on their way (USB, DIN, audio servers), so
the follower does not just count them: it reads how many ticks each arrival is past the
newest counted one from its arrival time and the tempo fit. An interval near twice the tick
interval is a lost tick (counted twice), one near zero a duplicate (ignored), ticks coming
back after a silence resume at the position the silence implies, and the count is checked
against the fit (an arrival a whole tick off the line, again and again, is a slipped count
and is put right). Every correction is counted in ClockCorrections.
"""
import math
from collections import deque
from dataclasses import dataclass, fields
from statistics import median

from deepbeat.tempo import check_bpm

from .tempofit import (SHORTEST_INTERVAL, TICKS_PER_QUARTER, TempoEstimator, bpm_of_interval, in_tempo_range,
                       interval_of_bpm)

TICKS_PER_STEP = TICKS_PER_QUARTER // 4  # a 16th note; also one SPP "MIDI beat"

JUMP_INTERVALS = 3  # this many raw intervals in a row agreeing (JUMP_AGREE) with each other and all off the
JUMP_AGREE = 0.15  # fit by more than JUMP_OFF (and two jitters): a tempo jump, not a lost or repeated tick
JUMP_OFF = 0.25
REPEAT_BELOW = 0.5  # an arrival under half an interval after the newest counted tick is a repeat
YOUNG_REPEAT, YOUNG_LOST = 0.3, 1.7  # before the fit is trusted: a repeat, a lost tick, in typical intervals
MAX_JITTER_SLOTS = 0.45  # whatever the jitter: an arrival further than this ahead of a slot came late for the last
STALL_BUNCH = 3  # the first arrivals bunched in threes or more: the clock's first ticks, held up (two may be a repeat)
LATE_BELOW = 0.75  # ...under 3/4 of one after a tick assumed in its absence: that tick, arriving late
DROPOUT_MIN_S = 0.25  # dropout: no tick for max(250 ms, 3 tick intervals)
DROPOUT_INTERVALS = 3


@dataclass
class ClockCorrections:
    """What the follower put right in the incoming clock, counted."""

    lost: int = 0  # ticks that never arrived, counted from the arrival times
    repeated: int = 0  # arrivals ignored as repeats of a tick already counted
    assumed: int = 0  # step ticks played at their expected time because they had not arrived
    slipped: int = 0  # times the count was put right by the tempo fit
    jumps: int = 0  # tempo jumps followed
    dropouts: int = 0  # silences long enough to end the notes
    resumed: int = 0  # clock coming back after a dropout, playing on where it implied

    def summary(self):
        """The non-zero counts in words, e.g. '3 lost ticks, 1 repeated'; '' when there are none."""
        words = {"lost": "lost ticks", "repeated": "repeated ticks",
                 "assumed": "late or lost step ticks played on time",
                 "slipped": "count slips", "jumps": "tempo jumps", "dropouts": "dropouts", "resumed": "resumed"}
        return ", ".join(f"{getattr(self, f.name)} {words[f.name]}" for f in fields(self) if getattr(self, f.name))


@dataclass(frozen=True)
class Correction:
    """The newest correction, for the view: what happened and at which song position (in ticks)."""

    what: str
    position: int


class ClockFollower:
    """Transport state, song position and tempo from incoming MIDI clock messages.

    `position` is the song position (in ticks) of the next tick to be played. `tick`
    returns the positions an arrival makes current: usually one, none for a repeat or
    while stopped, several when ticks were lost. While running, a silence longer than
    the dropout gap is a dropout (`drop_out`, the notes end); ticks that come back play
    on from the position their arrival time implies.
    """

    def __init__(self):
        self.tempo = TempoEstimator()
        self.running = False
        self.dropped = False  # running, but the clock went silent
        self.position = 0
        self.corrections = ClockCorrections()
        self.latest = None  # the newest Correction
        self._index = None  # clock index of the newest counted tick (lost ticks included)
        self._counted_at = None  # time of the newest counted tick (arrived or assumed)
        self._assumed = False  # whether that tick was assumed (it had not arrived)
        self._heard_at = None  # the newest arrival while running; dropouts count from it
        self._first = False  # the next tick is the first after Start, Continue or a locate
        self._arrivals = deque(maxlen=JUMP_INTERVALS + 1)  # (time, ticks counted) of the newest arrivals
        self._young = []  # (index, time) of every arrival since the fit's segment began (a repeat: the index it
        # repeated), until the fit is trusted and they are recounted

    def start(self):
        """MIDI Start: play from position 0 at the next tick, however late it comes."""
        self.position = 0
        self._go()

    def stop(self):
        """MIDI Stop: the position is kept for Continue."""
        self.running = self.dropped = False

    def resume(self):
        """MIDI Continue: play on from the kept position at the next tick."""
        self._go()

    def locate(self, sixteenths):
        """Song Position Pointer, in 16ths (MIDI beats) since song start."""
        self.position = sixteenths * TICKS_PER_STEP
        self._first = True

    def _go(self):
        self.running, self.dropped = True, False
        self._heard_at = None  # a late first tick is not a dropout
        self._first = True

    def tick(self, time):
        """A clock tick arrived at `time`: the range of song positions it makes current (empty when it is a
        repeat, or while stopped)."""
        counted, silence = self._count(time)
        late = not counted and self._assumed  # the tick assumed in its absence, arriving late: it keeps its place
        self._arrivals.append((time, counted or int(late)))
        jump = None if silence else self._jump(counted)
        if jump is not None:
            counted += jump
        elif counted > 1 and not silence:
            self.corrections.lost += counted - 1
            self.report(f"{counted - 1} lost tick{'s' * (counted > 2)} counted")
        elif not counted and not late:
            self.corrections.repeated += 1
            self.report("repeated tick ignored")
            if self._young is not None:  # judged on little: recounted with the rest once the fit is trusted
                self._young.append((self._index, time))
            return range(0)
        self._index = 0 if self._index is None else self._index + counted
        self._counted_at, self._assumed = time, False
        if silence and (not self.running or self._first):  # a clock started afresh: a new segment of the fit
            self.tempo.restart([(self._index, time)], keep_interval=True)
            self._young = [(self._index, time)]
        elif jump is None:
            if self._young is not None:
                self._young.append((self._index, time))
            slip = self.tempo.add(self._index, time)
            if not slip and self._young is not None and self.tempo.trusted:
                slip = self._settle_young()
            if slip:
                self._index += slip
                counted += slip
                self.corrections.slipped += 1
                self.report(f"count put right by {slip:+d} tick{'s' * (abs(slip) > 1)}")
        if not self.running:
            return range(0)
        self._heard_at = time
        if self.dropped:
            self.dropped = False
            self.corrections.resumed += 1
            self.report("clock back: playing on where it implies")
        first = self.position
        self.position += 1 if self._first else counted
        self._first = False
        return range(first, self.position)

    def own_tick(self, time):
        """A tick of the bridge's own master clock at `time`: exactly one, never judged (it is not lost,
        repeated or late, and its tempo may change at any tick, as a Link session's does: the fit starts
        afresh when it no longer fits). The positions it makes current, as `tick` returns them."""
        self._index = 0 if self._index is None else self._index + 1
        if self._first or self.tempo.add(self._index, time):
            self.tempo.restart([(self._index, time)], keep_interval=True)
        self._counted_at, self._assumed, self._heard_at = time, False, time
        if not self.running:
            return range(0)
        first = self.position
        self.position += 1
        self._first = False
        return range(first, self.position)

    def _count(self, time):
        """(ticks since the newest counted one, judged by the arrival time against the tempo; whether the
        arrival ends a silence longer than the dropout gap)."""
        interval = self.tempo.interval
        if self._index is None or interval is None:
            return 1, False
        since = time - self._counted_at
        if since > self.dropout_gap():
            return (max(1, round(since / interval)) if self.running and not self._first else 1), True
        if not self.tempo.trusted:  # a young fit: judged by the median raw interval, with wide margins
            times = [t for _, t in self._young] if self._young else [t for t, _ in self._arrivals]
            gaps = [b - a for a, b in zip(times, times[1:]) if b - a >= SHORTEST_INTERVAL]
            typical = median(gaps) if len(gaps) >= 2 else interval
            if since < YOUNG_REPEAT * typical:
                return 0, False
            return (round(since / typical) if since > YOUNG_LOST * typical else 1), False
        below = LATE_BELOW if self._assumed else REPEAT_BELOW
        return max(0, math.floor(since / interval + 1 - below)), False

    def _settle_young(self):
        """The fit has just become trusted: recount every arrival since its segment began (the first were
        judged with little to go on). Returns the ticks to add to the count; the segment is refitted from
        the arrivals that sit on its line, recounted.

        Each arrival gets its slot on the line of the arrivals that came on time (_TickLine). One further
        ahead of a slot than jitter takes an arrival came late for the slot before (a stall, a buffer
        flushed), and distinct arrivals hold distinct slots. Arrivals in a bunch were held up together:
        when the first arrivals came in a bunch of STALL_BUNCH or more, they are the first ticks, one each
        (two may be a tick and its repeat).
        """
        points, self._young = self._young, None
        times = [time for _, time in points]
        gaps = [b - a for a, b in zip(times, times[1:])]
        usable = [gap for gap in gaps if gap >= SHORTEST_INTERVAL]
        if len(usable) < 2:
            return 0
        typical = median(usable)
        within = min(MAX_JITTER_SLOTS, max(_TickLine.ON_LINE, self.tempo.threshold() / typical))
        held = _TickLine.held(times)
        line = _TickLine.through(times, typical, within, held)
        slots = [line.slot(time, within) for time in times]
        for i in reversed(range(len(times) - 1)):  # distinct arrivals are distinct ticks
            if gaps[i] >= SHORTEST_INTERVAL:
                slots[i] = min(slots[i], slots[i + 1] - 1)
        bunched = next((i for i, gap in enumerate(gaps) if gap >= SHORTEST_INTERVAL), len(gaps))  # after the first
        first = slots[bunched] - (bunched if bunched >= STALL_BUNCH - 1 else 0)
        start = points[0][0]
        shift = start + slots[-1] - first - self._index
        if abs(line.place(times[-1]) - slots[-1]) > within:  # the newest came late: the next is judged
            self._counted_at = line.time(slots[-1])  # from where it was due
        self.tempo.restart([(start + slot - first, time) for i, (slot, time) in enumerate(zip(slots, times))
                            if i not in held and abs(line.place(time) - slot) <= within], trusted=True)
        return shift

    def _jump(self, counted):
        """A tempo jump shows as JUMP_INTERVALS raw intervals that agree with each other and not with the
        fit. Then those arrivals are recounted as one tick each and the fit restarts from them; returns
        the ticks to add to the newest arrival's count (negative when the count ran ahead), or None
        when the tempo did not jump."""
        interval = self.tempo.interval
        if len(self._arrivals) <= JUMP_INTERVALS or not self.tempo.trusted:
            return None
        times = [t for t, _ in self._arrivals]
        gaps = [b - a for a, b in zip(times, times[1:])]
        middle = median(gaps)
        # ticks bunched together (a sender catching up after a stall, a buffer flushed) agree too, on no tempo
        if not in_tempo_range(middle) or abs(middle - interval) <= JUMP_OFF * interval + 2 * self.tempo.jitter:
            return None
        if any(abs(gap / middle - 1) > JUMP_AGREE for gap in gaps):
            return None
        counts = [c for _, c in self._arrivals][1:]
        oldest = self._index + counted - sum(counts)  # the index of the arrival before the jump
        self.tempo.restart([(oldest + k, t) for k, t in enumerate(times)])
        self._young = [(oldest + k, t) for k, t in enumerate(times)]
        self._arrivals.clear()
        self.corrections.lost -= min(self.corrections.lost, sum(c - 1 for c in counts if c > 1))  # they were not lost
        self.corrections.jumps += 1
        self.report(f"tempo jump to {bpm_of_interval(middle):.1f} BPM followed")
        return len(counts) - sum(counts)

    def report(self, what):
        """Record `what` was put right, at the current position, as the newest Correction."""
        self.latest = Correction(what, self.position)

    def expected_time(self, position):
        """When the tick at song position `position` is due by the tempo fit (None before a tempo is known)."""
        interval = self.tempo.interval
        if self._counted_at is None or interval is None:
            return None
        return self._counted_at + (position - (self.position - 1)) * interval

    def line_time(self, position):
        """When the tick at song position `position` is due by the fit's line, free of the newest arrival's
        jitter (expected_time until the fit is trusted)."""
        if self._index is None or not self.tempo.trusted:
            return self.expected_time(position)
        return self.tempo.time_of(self._index + position - (self.position - 1))

    def next_tick_time(self):
        """When the next tick is expected, if it may be assumed in its absence: None unless running on
        a trusted fit with the newest counted tick an arrival (never two assumed in a row)."""
        if not self.running or self.dropped or self._assumed or self._first or not self.tempo.trusted:
            return None
        return self.expected_time(self.position)

    def assume_tick(self):
        """Count the expected next tick as played though it has not arrived (it is late or lost):
        returns its position. A late arrival of it then keeps its place (see `tick`)."""
        self._counted_at = self.next_tick_time()
        self._index += 1
        self._assumed = True
        self.corrections.assumed += 1
        self.position += 1
        return self.position - 1

    def dropout_gap(self):
        interval = self.tempo.interval
        return max(DROPOUT_MIN_S, DROPOUT_INTERVALS * interval) if interval else DROPOUT_MIN_S

    def dropout_deadline(self):
        """When silence from the clock becomes a dropout (None unless running and ticking)."""
        if not self.running or self.dropped or self._heard_at is None:
            return None
        return self._heard_at + self.dropout_gap()

    def drop_out(self):
        """The clock went silent while running: the notes end, and playing resumes when it comes back."""
        self.dropped = True
        self.corrections.dropouts += 1
        self.report("clock lost: notes ended until it comes back")

    def tick_position_at(self, time):
        """Fractional tick position of a moment, for placing incoming notes on the grid.

        Between ticks it interpolates by the tempo estimate, capped at the next tick.
        """
        played = self.position - 1  # the newest tick's position
        interval = self.tempo.interval
        if self._counted_at is None or interval is None:
            return float(max(played, 0))
        fraction = (time - self._counted_at) / interval
        return played + min(max(fraction, 0.0), 1.0)


class InternalClock:
    """The bridge as clock master: tick times at a fixed tempo from a start time.

    What the scheduler asks of a master clock (LinkClock answers the same): `playing()` (whether to play
    now; checked every `check_period_s` when that is not None), `start(time)`, `next_tick_time()`,
    `advance()`, `close()`; and for the view and the page `source`, `bpm` and `peers`.
    """

    source = "internal"
    peers = None  # no one else shares this clock
    check_period_s = None  # it plays from start to exit

    def __init__(self, bpm):
        self.bpm = check_bpm(bpm, "clock tempo")
        self.interval = interval_of_bpm(bpm)
        self.start_time = None
        self.next_tick = 0

    def playing(self):
        return True

    def start(self, time):
        self.start_time = time
        self.next_tick = 0

    def next_tick_time(self):
        return self.start_time + self.next_tick * self.interval

    def advance(self):
        self.next_tick += 1

    def close(self):
        pass


class _TickLine:
    """Tick slots on a line through clock arrivals that came on time: slot 0 at `origin`, `interval` apart."""

    ON_LINE = 0.25  # of an interval: arrivals this near one interval apart are consecutive ticks on time

    def __init__(self, origin, interval):
        self.origin, self.interval = origin, interval

    @classmethod
    def through(cls, times, interval, within, held):
        """The line of `times` (arrival times, oldest first) from a guess of the interval. Arrivals one
        interval apart (to `within` of one) form runs of consecutive ticks; the runs share one interval
        (fitted within each), and each run's first slot follows from the gap between its fitted start and
        the run before's. The `held` arrivals (indices) are left out."""
        runs, previous = [], None
        for i, time in enumerate(times):
            if i in held:
                previous = None
                continue
            if previous is not None and abs(time - previous - interval) <= within * interval:
                runs[-1].append(time)
            else:
                runs.append([time])
            previous = time
        centred = [[(k - (len(run) - 1) / 2, time - sum(run) / len(run)) for k, time in enumerate(run)] for run in runs]
        spread = sum(k * k for run in centred for k, _ in run)
        if spread:
            interval = sum(k * time for run in centred for k, time in run) / spread
        runs = [run for run in runs if len(run) > 1] or runs  # a lone arrival may have come late
        taken, slot, start = [], 0, None
        for run in runs:
            run_start = sum(run) / len(run) - interval * (len(run) - 1) / 2  # the fitted time of its first tick
            if start is not None:
                slot += round((run_start - start) / interval)
            start = run_start
            taken += [(slot + k, time) for k, time in enumerate(run)]
        return (cls.fitted(taken) if taken else None) or cls(times[-1], interval)

    @staticmethod
    def held(times):
        """Indices of the arrivals in a bunch and of the one just before each bunch (held up with it, or repeated)."""
        return {i for i, (a, b) in enumerate(zip(times, times[1:])) if b - a < SHORTEST_INTERVAL for i in (i, i + 1)}

    @classmethod
    def fitted(cls, taken):
        """The least-squares line through (slot, time) pairs; None while they hold fewer than two slots (or
        give no forward line)."""
        slots = [slot for slot, _ in taken]
        mean_slot, mean_time = sum(slots) / len(slots), sum(time for _, time in taken) / len(taken)
        spread = sum((slot - mean_slot) ** 2 for slot in slots)
        if not spread:
            return None
        interval = sum((slot - mean_slot) * (time - mean_time) for slot, time in taken) / spread
        return cls(mean_time - mean_slot * interval, interval) if interval > 0 else None

    def time(self, slot):
        return self.origin + slot * self.interval

    def place(self, time):
        return (time - self.origin) / self.interval

    def slot(self, time, early=ON_LINE):
        """The slot of an arrival: the nearest, unless the arrival is more than `early` (of an interval, the
        most jitter can take it ahead) before it: then it came late, after the slot before."""
        place = self.place(time)
        nearest = round(place)
        return nearest if place >= nearest - early else nearest - 1
