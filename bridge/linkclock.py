"""Ableton Link as the bridge's master clock: its tick times read from a Link session's beat timeline.

The bridge makes its own 24 PPQN ticks, as with an internal clock, but tick k of a run is Link beat
`origin + k / 24`: each tick time is read afresh from the session (the beat now, read between two
perf_counter reads, and the tempo), so a tempo change by a peer moves the very next tick. Bars are
the session's (a quantum of 4 beats): a run starts on a bar line. Once a peer has been seen the
bridge plays while the session plays (Link's start/stop sync: a peer's Start starts it on the bar
line, Stop stops it, checked every few milliseconds); alone from the start it plays on its own
timeline at the tempo it proposed, and peers leaving leave it playing or stopped as it was.
Link comes from the aalink package (Python bindings of Ableton's Link library), imported only here.
"""
import asyncio
import math
import time
import warnings

from deepbeat.errors import DeepBeatError
from deepbeat.tempo import check_bpm

from .clock import TICKS_PER_STEP
from .tempofit import TICKS_PER_QUARTER

QUANTUM = 4  # beats to a Link bar: the bridge's bars line up with the session's
CHECK_PERIOD_S = 0.005  # how often the session's start/stop is read: well within a beat at any tempo
CATCH_UP_BEATS = TICKS_PER_STEP / TICKS_PER_QUARTER  # a timeline that jumped further on: play on from now
MINUTE_S = 60.0
BEAT_READS, TIGHT_READ_S = 5, 0.00005  # the beat is read again (at most 5 times) until a read takes under 50 us


def open_link(bpm):
    """An aalink Link proposing `bpm`; DeepBeatError saying what to install when aalink is missing."""
    try:
        import aalink
    except ImportError:
        raise DeepBeatError("joining an Ableton Link session needs the aalink package: "
                            "pip install 'deepbeat[link]'") from None
    with warnings.catch_warnings():  # its asyncio loop serves only callbacks and sync(), which are not used
        warnings.simplefilter("ignore", DeprecationWarning)
        return aalink.Link(bpm, asyncio.new_event_loop())


class LinkClock:
    """The bridge's ticks on a Link session's timeline; `link` is an aalink Link (or a stand-in with its
    attributes: beat, tempo, playing, num_peers, quantum, enabled, start_stop_sync_enabled, request_beat),
    `clock` the timing loop's (perf_counter)."""

    source = "link"
    check_period_s = CHECK_PERIOD_S

    def __init__(self, bpm, link=None, clock=time.perf_counter):
        bpm = check_bpm(bpm, "Link tempo")
        self.link = open_link(bpm) if link is None else link
        self.link.quantum = QUANTUM
        self.link.start_stop_sync_enabled = True
        self.link.enabled = True
        self.clock = clock
        self._seen_peers = False
        self.origin = None  # the Link beat of tick 0
        self.next_tick = 0

    @property
    def peers(self):
        return self.link.num_peers

    @property
    def bpm(self):
        return self.link.tempo

    def playing(self):
        """Whether the bridge should play now: as the session does, once a peer has been seen."""
        self._seen_peers = self._seen_peers or self.link.num_peers > 0
        return self.link.playing if self._seen_peers else True

    def start(self, time):
        """Tick 0 on the session's next bar line, where a DAW on Link starts playing; alone, on a bar line now."""
        if self.link.num_peers:
            beat, _ = self._beat_now()
            self.origin = math.ceil(beat / QUANTUM) * QUANTUM
        else:
            self.link.request_beat(0)  # alone: its own timeline's bar begins now
            self.origin = 0.0
        self.next_tick = 0

    def next_tick_time(self):
        """The perf_counter time of the next tick on the session's timeline as it is now."""
        beat, now = self._beat_now()
        target = self.origin + self.next_tick / TICKS_PER_QUARTER
        if beat - target > CATCH_UP_BEATS:  # the timeline jumped on (joining a session): no burst of old ticks
            self.next_tick = math.ceil((beat - self.origin) * TICKS_PER_QUARTER)
            target = self.origin + self.next_tick / TICKS_PER_QUARTER
        return now + (target - beat) * MINUTE_S / self.link.tempo

    def advance(self):
        self.next_tick += 1

    def close(self):
        """Leave the session."""
        self.link.enabled = False

    def _beat_now(self):
        """(Link beat, clock time) of one moment: the beat read between two reads of the clock, the tightest of
        a few tries (a thread preempted between them would blur the moment). Link's own clock (on Linux the raw
        monotonic one) drifts from perf_counter's, so no fixed offset between them is kept."""
        best = None
        for _ in range(BEAT_READS):
            before = self.clock()
            beat = self.link.beat
            after = self.clock()
            if best is None or after - before < best[0]:
                best = (after - before, beat, (before + after) / 2)
            if after - before <= TIGHT_READ_S:
                break
        return best[1], best[2]
