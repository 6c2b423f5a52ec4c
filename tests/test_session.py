"""The bridge's session and timing, driven by an in-memory transport and a fake clock.

A deterministic echo generator stands in for the model: each step it samples repeats
the step one bar earlier, so an answer is the bar it heard and every expected message
and time can be written down.
"""
import io
import queue
import random
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepbeat.bridge.clock import InternalClock
from deepbeat.bridge.controls import DEFAULT_CCS, PRESET_ORDER, Control, ControlMap
from deepbeat.bridge.live import Bridge
from deepbeat.bridge.replay import InlineWorker, SimulatedClock, advance, replay
from deepbeat.bridge.scheduler import LATENCY_OFFSET_MS, WAKE, Scheduler
from deepbeat.bridge.session import Session
from deepbeat.bridge.tempofit import interval_of_bpm
from deepbeat.bridge.transport import MemoryTransport
from deepbeat.bridge.view import TerminalView, render
from deepbeat.bridge.worker import GenerationWorker
from deepbeat.errors import DeepBeatError
from deepbeat.grid import DrumGrid
from deepbeat.runtime.composer import Composer, Plan
from deepbeat.runtime.steering import (
    DENSITY, HUMANIZE, PRESETS, STYLE_STRENGTH, SWING, TEMPERATURE, VARIATION, Feel, FillPlan, Steering,
)

START, CONTINUE, STOP, TICK = [0xFA], [0xFB], [0xFC], [0xF8]
NOTE_ON, NOTE_OFF, ALL_OFF = 0x99, 0x89, (0xB9, 123, 0)  # channel 10
KICK, SNARE, HAT, CRASH = 36, 38, 42, 49
# one bar: kick on 1 and 3, snare on 2 and 4, closed hat on 8ths (GM notes, channel 10)
BEAT = {step: [] for step in range(0, 16, 2)}
for step in (0, 8):
    BEAT[step].append((KICK, 100))
for step in (4, 12):
    BEAT[step].append((SNARE, 90))
for step in range(0, 16, 2):
    BEAT[step].append((HAT, 60))


class EchoGenerator:
    """DrumSampler's protocol, deterministic: each sampled step repeats the step one bar earlier."""

    def __init__(self):
        self.bpm = 120.0
        self.history = []
        self.primed_at = []
        self.primers = []  # every grid primed with
        self.steerings = []  # the Steering of every call, newest last

    def prime(self, grid, steering, first_position=0):
        self.primed_at.append(first_position)
        self.primers.append(grid)
        self.steerings.append(steering)
        self.history = [row.copy() for row in grid.velocities]

    def feed(self, grid, steering):
        self.steerings.append(steering)
        self.history += [row.copy() for row in grid.velocities]

    def sample(self, num_steps, steering, bpm=None):
        self.steerings.append(steering)
        self.bpm = bpm or self.bpm
        rows = []
        for _ in range(num_steps):
            rows.append(self.history[-16].copy() if len(self.history) >= 16 else np.zeros(9, np.uint8))
            self.history.append(rows[-1])
        return [DrumGrid(np.array(rows), bpm=self.bpm)]

    def snapshot(self):
        return list(self.history)

    def restore(self, snapshot):
        self.history = list(snapshot)


class TimedEcho(EchoGenerator):
    """The echo generator with the model's timing: every sampled hit of a drum gets that drum's offset (steps)."""

    def __init__(self, offsets):
        super().__init__()
        self.offsets = np.zeros(9, np.float32)
        for drum, offset in offsets.items():
            self.offsets[drum] = offset

    def sample(self, num_steps, steering, bpm=None):
        grid = super().sample(num_steps, steering, bpm)[0]
        return [DrumGrid(grid.velocities, offsets=np.where(grid.velocities > 0, self.offsets, 0.0), bpm=grid.bpm)]


class DeferredWorker:
    """Queues jobs until `run_all`: generation that is late."""

    error = None

    def __init__(self):
        self.jobs = []

    def submit(self, job, *args):
        self.jobs.append((job, args))

    def run_all(self):
        while self.jobs:
            job, args = self.jobs.pop(0)
            job(*args)


class Rig:
    """A Scheduler with the echo generator and an in-memory transport, driven by a timeline of messages."""

    def __init__(self, worker=None, generator=None, **options):
        session_options = {k: options.pop(k) for k in ("mode", "listen_bars", "answer_bars", "on_silence", "feel",
                                                       "groove_heard")
                           if k in options}
        self.clock = SimulatedClock()
        self.transport = MemoryTransport(self.clock)
        self.generator = generator or EchoGenerator()
        self.plan = Plan()
        self.session = Session(worker or InlineWorker(), Composer(self.generator, self.plan), self.plan,
                               **session_options)
        self.scheduler = Scheduler(self.session, self.transport.send, clock=self.clock, **options)
        self.inbox = queue.Queue()
        self.transport.open(self.inbox)

    def advance(self, until):
        """Run every deadline up to `until`, as the loop's timed waits do."""
        advance(self.scheduler, self.clock, until)

    def play(self, timeline, until=None):
        """Deliver (time, bytes) events in time order (stable), then run the deadlines up to `until`."""
        replay(self.scheduler, self.clock, timeline, until)

    def sent(self, status):
        """(time, note, velocity) of the messages sent with one status byte."""
        return [(t, m[1], m[2]) for t, m in self.transport.sent if m[0] == status]

    def times_of(self, message):
        return [t for t, m in self.transport.sent if m == message]


def ticks_at(bpm, count, start=0.0, first=0, jitter=None):
    """(time, clock) for ticks first..first+count-1 at a tempo; jitter(i) adds seconds to tick i."""
    interval = interval_of_bpm(bpm)
    return [(start + (first + i) * interval + (jitter(i) if jitter else 0.0), TICK) for i in range(count)]


def hits(tick_times, pattern, bar=0, channel=9):
    """Note-ons on the ticks of `pattern` ({step: [(note, velocity)]}) in `bar`, each ended 1 ms later."""
    events = []
    for step, notes in pattern.items():
        when = tick_times[(bar * 16 + step) * 6]
        for note, velocity in notes:
            events += [(when, [0x90 | channel, note, velocity]), (when + 0.001, [0x80 | channel, note, 0])]
    return events


def expected_notes(tick_times, pattern, bar, offset=0.0, steps=range(16)):
    """The note-ons the bridge should send when it plays `pattern` in `bar` (drum order within a step)."""
    order = [KICK, SNARE, HAT, 46, 45, 48, 50, CRASH, 51]
    return [
        (tick_times[(bar * 16 + step) * 6] - offset, note, velocity)
        for step in sorted(pattern) if step in steps
        for note, velocity in sorted(pattern[step], key=lambda nv: order.index(nv[0]))
    ]


def assert_notes(actual, expected):
    assert [(n, v) for _, n, v in actual] == [(n, v) for _, n, v in expected]
    assert [t for t, _, _ in actual] == pytest.approx([t for t, _, _ in expected], abs=1e-9)


def assert_every_note_ends(sent, twice=False):
    """Each note-on is followed by its note-off (or an all-notes-off) before the next on of that note (unless
    `twice`: notes played thru may start again, as the player started them)."""
    sounding = set()
    for _, message in sent:
        status = message[0]
        if status == NOTE_ON and message[2] > 0:
            assert twice or message[1] not in sounding, f"note {message[1]} started twice without an end"
            sounding.add(message[1])
        elif status == NOTE_OFF:
            sounding.discard(message[1])
        elif message == ALL_OFF:
            sounding.clear()
    assert not sounding, f"notes left hanging: {sorted(sounding)}"


def one_bar_then_answer(bpm, bars=3, jitter=None):
    """Start, `bars` bars of clock with the beat played in bar 0, then Stop just after the last tick."""
    ticks = ticks_at(bpm, 96 * bars, start=0.1, jitter=jitter)
    times = [t for t, _ in ticks]
    return times, [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[-1] + 0.0005, STOP)]


# --- answering in time -----------------------------------------------------------------


@pytest.mark.parametrize("bpm", [60, 90, 120, 160, 200])
def test_the_answer_plays_the_heard_bar_on_its_ticks(bpm):
    rig = Rig()
    times, timeline = one_bar_then_answer(bpm)
    rig.play(timeline + [(times[-1] + 0.01, STOP)], until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))
    gate = 0.5 * 6 * interval_of_bpm(bpm)
    offs = rig.sent(NOTE_OFF)
    assert [t for t, _, _ in offs] == pytest.approx([t + gate for t, _, _ in rig.sent(NOTE_ON)], abs=1e-9)
    assert rig.scheduler.stats.steps_missed == 0
    assert rig.generator.primed_at == [0, 32]  # bar 0 heard; bar 2 (silent) closed just before the end
    assert_every_note_ends(rig.transport.sent)


def test_two_ms_jitter_moves_each_note_with_its_tick():
    rng = random.Random(7)
    jitter = [rng.uniform(-0.002, 0.002) for _ in range(96 * 3)]
    rig = Rig()
    times, timeline = one_bar_then_answer(120, jitter=jitter.__getitem__)
    rig.play(timeline, until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))
    assert rig.scheduler.follower.tempo.bpm == pytest.approx(120, rel=0.01)
    assert_every_note_ends(rig.transport.sent)


def test_a_tempo_jump_from_90_to_140_keeps_notes_on_the_new_ticks():
    slow = ticks_at(90, 96, start=0.1)
    fast = ticks_at(140, 96 * 2, start=slow[-1][0] + interval_of_bpm(140))
    times = [t for t, _ in slow + fast]
    rig = Rig()
    rig.play([(0.05, START)] + slow + fast + hits(times, BEAT, bar=0) + [(times[-1] + 0.001, STOP)],
             until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))
    # gates follow the new tempo once it is learned (within a beat)
    late_offs = [t for t, n, _ in rig.sent(NOTE_OFF)][-3:]
    late_ons = [t for t, n, _ in rig.sent(NOTE_ON)][-3:]
    gate = 0.5 * 6 * interval_of_bpm(140)
    assert [off - on for on, off in zip(late_ons, late_offs)] == pytest.approx([gate] * 3, rel=0.03)


def test_latency_offset_sends_each_step_early_by_the_tempo_estimate():
    rig = Rig(latency_offset_s=0.010)
    times, timeline = one_bar_then_answer(120)
    rig.play(timeline, until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1, offset=0.010))
    assert rig.scheduler.stats.steps_missed == 0


def test_covering_an_output_latency_sends_that_much_early_within_the_offset_range():
    """--latency-offset-ms auto: the transport's output latency becomes the offset, capped as a typed one is."""
    rig = Rig()
    rig.scheduler.cover(1.0)
    assert rig.scheduler.latency_offset_s == LATENCY_OFFSET_MS.high / 1000
    rig.scheduler.cover(0.0107)
    times, timeline = one_bar_then_answer(93)
    rig.play(timeline, until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1, offset=0.0107))


def test_steps_sent_early_are_timed_by_the_fits_line_not_by_the_newest_jittered_tick():
    """A clock with +-1 ms of jitter: notes sent ahead land within a fraction of it of the clean ticks."""
    rng = random.Random(5)
    jitters = [rng.uniform(-0.001, 0.001) for _ in range(96 * 3)]
    rig = Rig(latency_offset_s=0.0107)
    times, timeline = one_bar_then_answer(93, jitter=jitters.__getitem__)
    clean = [0.1 + k * interval_of_bpm(93) for k in range(len(times))]
    rig.play(timeline, until=times[-1] + 1)
    sent = rig.sent(NOTE_ON)
    assert [(n, v) for _, n, v in sent] == [(n, v) for _, n, v in expected_notes(clean, BEAT, bar=1)]
    errors = [abs(t - e) for (t, _, _), (e, _, _) in zip(sent, expected_notes(clean, BEAT, bar=1, offset=0.0107))]
    assert max(errors) < 0.0004


def test_a_bar_not_generated_in_time_is_counted_missed_and_the_rest_plays_when_ready():
    worker = DeferredWorker()
    rig = Rig(worker=worker)
    times, timeline = one_bar_then_answer(120, bars=2)
    ready = times[(16 + 6) * 6] + 0.001  # the generation lands just after answer step 6
    rig.play([e for e in timeline if e[0] < ready])
    worker.run_all()
    rig.play([e for e in timeline if e[0] >= ready], until=times[-1] + 1)
    assert list(rig.scheduler.stats.missed) == list(range(16, 23))  # steps 0-6 of the answer bar
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1, steps=range(7, 16)))


def test_the_composer_publishes_a_bar_a_beat_at_a_time_and_ready_steps_play():
    class RecordingPlan(Plan):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def put(self, bar, grid):
            self.sizes.append((bar, grid.num_steps))
            super().put(bar, grid)

    plan = RecordingPlan()
    Composer(EchoGenerator(), plan).answer(DrumGrid.from_steps([1] * 16), 1, 2, 120.0)
    assert plan.sizes == [(1, 4), (1, 8), (1, 12), (1, 16), (2, 4), (2, 8), (2, 12), (2, 16)]
    # a bar of which only the first beat is ready: those steps play, the later ones wait
    session = Session(InlineWorker(), Composer(EchoGenerator(), plan), plan)
    session.hear(0, 0, 100)
    session.close_bar(0, 120.0)
    plan.put(1, DrumGrid.from_steps([1, 0, 2, 0]))
    assert [session.hits_at(16 + k) for k in range(6)] == [((0, 100, 0.0),), (), ((1, 100, 0.0),), (), None, None]


# --- transport ---------------------------------------------------------------------------


def test_stop_mid_bar_silences_at_once_and_continue_plays_on_from_the_kept_position():
    times, timeline = one_bar_then_answer(120, bars=2)
    stop_at = times[(16 + 6) * 6] + 0.001  # just after answer step 6 started its notes
    resume_at = stop_at + 1.0
    before = [e for e in timeline if e[0] < stop_at]
    resumed_ticks = ticks_at(120, 96 * 2 - (16 + 6) * 6 - 1, start=resume_at + 0.01)
    rig = Rig()
    rig.play(before + [(stop_at, STOP), (resume_at, CONTINUE)] + resumed_ticks, until=resume_at + 5)
    ons = rig.sent(NOTE_ON)
    assert_notes([n for n in ons if n[0] < stop_at], expected_notes(times, BEAT, bar=1, steps=range(7)))
    # the hat of answer step 6 was sounding: its note-off and All Notes Off go out at the stop
    assert (stop_at, HAT, 0) in rig.sent(NOTE_OFF)
    assert stop_at in rig.times_of(ALL_OFF)
    # after Continue the next tick is position 133: step 23 (answer step 7) plays on tick 138
    resumed_times = [t for t, _ in resumed_ticks]
    shifted = [None] * ((16 + 6) * 6 + 1) + resumed_times  # index by absolute tick position
    assert_notes([n for n in ons if n[0] > resume_at], expected_notes(shifted, BEAT, bar=1, steps=range(7, 16)))
    assert_every_note_ends(rig.transport.sent)


def test_a_clock_dropout_ends_the_notes_and_the_clock_coming_back_plays_on_where_it_implies():
    """Issue 14 item 11: a pause of 250 ms or more used to stop the bridge for good while the clock went on."""
    rig = Rig(mode="continuous")
    ticks = ticks_at(180, 96 * 6, start=0.1)
    times = [t for t, _ in ticks]
    hole = range((2 * 16 + 5) * 6 + 1, (2 * 16 + 5) * 6 + 1 + 23)  # 300 ms of clock lost after bar 2, step 5
    timeline = [(0.05, START)] + [tick for i, tick in enumerate(ticks) if i not in hole] + hits(times, BEAT, bar=0)
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    silent = {step for step in range(16 * 6) if hole.start <= (16 + step) * 6 < hole.stop + 1}
    expected = expected_notes(times, BEAT, 1) + expected_notes(times, BEAT, 2, steps=range(6))
    expected += expected_notes(times, BEAT, 2, steps=[s for s in range(6, 16) if s + 16 not in silent])
    expected += sum((expected_notes(times, BEAT, bar) for bar in (3, 4, 5)), [])
    assert_notes(rig.sent(NOTE_ON), expected)
    # 3 intervals at 180 BPM are 42 ms, so the 250 ms floor applies: the notes end then
    assert times[hole.start - 1] + 0.25 in rig.times_of(ALL_OFF)
    corrections = rig.scheduler.stats.clock
    assert (corrections.dropouts, corrections.resumed) == (1, 1)
    assert_every_note_ends(rig.transport.sent)


def test_a_clock_coming_back_many_bars_on_listens_again():
    rig = Rig()
    ticks = ticks_at(120, 96 * 12, start=0.1)
    times = [t for t, _ in ticks]
    kept = [tick for i, tick in enumerate(ticks) if not 100 <= i < 96 * 7 + 30]  # 6 bars of clock lost
    rig.play([(0.05, START)] + kept + hits(times, BEAT, bar=0) + hits(times, BEAT, bar=8) + [(times[-1], STOP)],
             until=times[-1] + 1)
    # the answer's first step, then bar 7 is under way when the clock comes back: bar 8 listens, bar 9 answers
    # (and bar 11 from the same primer, after a silent bar 10)
    expected = expected_notes(times, BEAT, 1, steps=[0]) + expected_notes(times, BEAT, 9)
    assert_notes(rig.sent(NOTE_ON), expected + expected_notes(times, BEAT, 11))
    assert "listening again" in rig.scheduler.follower.latest.what


def test_a_late_first_tick_after_start_still_plays():
    """Issue 14 item 11: a first tick 600 ms after Start was taken for a dropout and nothing ever played."""
    rig = Rig()
    ticks = ticks_at(120, 96 * 2, start=0.65)
    times = [t for t, _ in ticks]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0), until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))


def test_a_stalled_timing_loop_judges_queued_ticks_by_their_arrival():
    """Issue 14 item 11: ticks queued while the timing thread stalled were judged against the time the loop
    got to them, so the first of them looked like a dropout."""
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    stall_end = times[(16 + 8) * 6] + 0.001
    rig.play([e for e in timeline if e[0] < times[16 * 6 - 20]])  # up to the end of the heard bar
    queued = sorted((e for e in timeline if times[16 * 6 - 20] <= e[0] < stall_end), key=lambda e: e[0])
    for when, data in queued:
        rig.inbox.put((when, data))
    rig.clock.now = stall_end + 0.001  # the loop wakes as the last of them arrives, 1.4 s after the first
    stops = iter([False, True])
    rig.scheduler.run(rig.inbox, lambda: next(stops))
    assert rig.scheduler.stats.clock.dropouts == 0
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1, steps=range(9)))


def test_lost_and_repeated_ticks_keep_every_note_on_its_tick():
    """Issue 14 item 2: a lost or repeated clock message shifted all later answers by whole ticks."""
    rig = Rig(mode="continuous")
    ticks = ticks_at(93, 96 * 4, start=0.1)
    times = [t for t, _ in ticks]
    lost = {100, 101, 150, 156, 200, 255}  # 156 is the tick of a step with notes (bar 1, step 10)
    repeated = [(times[i] + 0.0004, TICK) for i in (120, 121, 300)]
    clock = [tick for i, tick in enumerate(ticks) if i not in lost] + repeated
    rig.play([(0.05, START)] + clock + hits(times, BEAT, bar=0) + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), sum((expected_notes(times, BEAT, bar) for bar in (1, 2, 3)), []))
    corrections = rig.scheduler.stats.clock
    assert (corrections.lost, corrections.repeated, corrections.assumed) == (5, 3, 1)


def test_ticks_bunched_after_a_stall_skip_the_stalled_steps_and_the_rest_play_on_their_ticks():
    """A clock sender stalled 100 ms, then sent the ticks it owed 20 us apart: taken for a tempo jump to
    180,000 BPM, they sent the count thousands of ticks ahead and the bridge never played again."""
    rig = Rig(mode="continuous")
    ticks = ticks_at(180, 96 * 4, start=0.1)
    times = [t for t, _ in ticks]
    first = (16 + 4) * 6 + 1  # just after bar 1, step 4's tick
    resume = times[first] + 0.1
    owed = [i for i in range(first, len(ticks)) if times[i] < resume]
    bunched = [(resume + k * 2e-5, TICK) for k in range(len(owed))]
    clock = [tick for i, tick in enumerate(ticks) if i not in owed] + bunched
    rig.play([(0.05, START)] + clock + hits(times, BEAT, bar=0) + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    stalled = range(5, -(-owed[-1] // 6) - 16)  # bar 1's steps whose ticks came bunched
    expected = expected_notes(times, BEAT, 1, steps=[s for s in range(16) if s not in stalled])
    assert_notes(rig.sent(NOTE_ON), expected + expected_notes(times, BEAT, 2) + expected_notes(times, BEAT, 3))
    assert rig.scheduler.stats.clock.jumps == 0


def test_a_clock_dying_without_stop_plays_at_most_one_step_on_then_ends_the_notes():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 + 16 * 6 + 1, start=0.1)  # the clock dies just after answer step 15's tick
    times = [t for t, _ in ticks] + [ticks[-1][0] + k * interval_of_bpm(120) for k in range(1, 7)]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0), until=times[-1] + 1)
    # bar 2's first step (kick and hat) was due 5 ticks after the last one: it plays when due, as if late
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, 1) + expected_notes(times, BEAT, 2, steps=[0]))
    assert rig.times_of(ALL_OFF)[1:] == [pytest.approx(ticks[-1][0] + 0.25)]  # after the one at Start
    assert_every_note_ends(rig.transport.sent)


def test_five_ms_jitter_keeps_tempo_and_gates_within_one_percent():
    """Issue 14 item 19: with +-5 ms of jitter the estimate swung 109-127 BPM at 120 and gates 54-80 ms."""
    rng = random.Random(19)
    jitter = [rng.uniform(-0.005, 0.005) for _ in range(96 * 8)]
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 8, start=0.1, jitter=jitter.__getitem__)
    times = [t for t, _ in ticks]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    offs = rig.sent(NOTE_OFF)
    gates = [min(t for t, n, _ in offs if n == note and t > on) - on for on, note, _ in rig.sent(NOTE_ON)]
    assert len(gates) == 7 * 12  # the beat answered in bars 1-7
    assert min(gates) > 0.0625 * 0.99 and max(gates) < 0.0625 * 1.01
    assert rig.scheduler.follower.tempo.bpm == pytest.approx(120, rel=0.01)


def test_song_position_pointer_then_continue_listens_from_the_next_whole_bar():
    rig = Rig()
    located = 20  # bar 1, step 4: the rest of bar 1 is skipped, bar 2 is heard, bar 3 answers
    ticks = ticks_at(100, 96 * 4 - located * 6, start=0.2 - located * 6 * interval_of_bpm(100), first=located * 6)
    times = [None] * (located * 6) + [t for t, _ in ticks]
    spp = [0xF2, located & 0x7F, located >> 7]
    rig.play([(0.1, spp), (0.15, CONTINUE)] + ticks + hits(times, BEAT, bar=2), until=times[-1] + 1)
    assert rig.generator.primed_at == [32]
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=3))


def test_start_again_restarts_from_bar_one():
    times, timeline = one_bar_then_answer(120, bars=2)
    rig = Rig()
    rig.play(timeline, until=times[-1] + 0.01)
    first_run = len(rig.sent(NOTE_ON))
    again = times[-1] + 1
    ticks = ticks_at(120, 96 * 2, start=again + 0.05)
    times2 = [t for t, _ in ticks]
    rig.play([(again, START)] + ticks + hits(times2, {0: [(CRASH, 127)]}, bar=0), until=times2[-1] + 1)
    assert_notes(rig.sent(NOTE_ON)[first_run:], expected_notes(times2, {0: [(CRASH, 127)]}, bar=1))


# --- modes and controls ------------------------------------------------------------------


def test_call_response_listens_n_bars_and_answers_m_bars_then_listens_again():
    other = {0: [(CRASH, 120)], 6: [(KICK, 80)]}
    rig = Rig(listen_bars=2, answer_bars=2)
    ticks = ticks_at(120, 96 * 8, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + hits(times, other, bar=1)
    timeline += hits(times, other, bar=2)  # played during the answer: not heard in call-response
    timeline += hits(times, BEAT, bar=5)  # heard by the second cycle
    rig.play(timeline, until=times[-1] + 1)
    expected = []
    for bar in (2, 3):  # the echo repeats the last heard bar
        expected += expected_notes(times, other, bar)
    for bar in (6, 7):
        expected += expected_notes(times, BEAT, bar)
    assert_notes(rig.sent(NOTE_ON), expected)
    assert rig.generator.primed_at == [0, 64]  # primed with bars 0-1, then bars 4-5
    assert_every_note_ends(rig.transport.sent)


def test_continuous_keeps_playing_and_what_you_play_reprimes_the_next_bar():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 5, start=0.1)
    times = [t for t, _ in ticks]
    extra = {0: [(CRASH, 120)]}
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0) + hits(times, extra, bar=2)
             + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    with_crash = {step: list(notes) for step, notes in BEAT.items()}
    with_crash[0] = with_crash[0] + [(CRASH, 120)]
    expected = expected_notes(times, BEAT, 1) + expected_notes(times, BEAT, 2)
    expected += expected_notes(times, with_crash, 3) + expected_notes(times, with_crash, 4)
    assert_notes(rig.sent(NOTE_ON), expected)
    assert_every_note_ends(rig.transport.sent)


def test_a_bar_generated_as_the_bar_before_it_closes_plays_its_first_step_on_the_tick_others_keep_theirs():
    """Continuous, the kick 1/4 step early: bar 1 (generated as the listening bar closed) and bar 3 (re-primed by
    what was played in bar 2) start on their ticks; bar 2 and bar 4, generated a bar ahead, send it early."""
    rig = Rig(generator=TimedEcho({0: -0.25}), mode="continuous")
    ticks = ticks_at(120, 96 * 5, start=0.1)
    times = [t for t, _ in ticks]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0) + hits(times, {8: [(CRASH, 120)]}, bar=2)
             + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    kicks = [t for t, n, _ in rig.sent(NOTE_ON) if n == KICK]
    early = 0.25 * step_seconds(120)

    def kick_at(moment):
        return any(abs(t - moment) < 1e-9 for t in kicks)

    for bar, fresh in ((1, True), (2, False), (3, True), (4, False)):
        downbeat = times[bar * 96]
        assert kick_at(downbeat if fresh else downbeat - early), bar
        assert kick_at(times[bar * 96 + 48] - early)  # the kick on step 8 is early in every bar


def test_panic_silences_everything_at_once():
    times, timeline = one_bar_then_answer(120, bars=2)
    panic_at = times[(16 + 4) * 6] + 0.002
    rig = Rig()
    rig.play(timeline + [(panic_at, [0xB0, 24, 127])], until=times[-1] + 1)
    assert {(t, n) for t, n, _ in rig.sent(NOTE_OFF) if t == panic_at} == {(panic_at, SNARE), (panic_at, HAT)}
    assert panic_at in rig.times_of(ALL_OFF)
    assert_every_note_ends(rig.transport.sent)


def test_temperature_control_spreads_0_127_over_its_range_and_steers_the_next_answer():
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    rig.play([(0.0, [0xB3, 20, 127])] + timeline, until=times[-1] + 0.1)
    assert rig.session.view().steering.temperature == pytest.approx(TEMPERATURE.high)
    assert rig.generator.steerings and {s.temperature for s in rig.generator.steerings} == {TEMPERATURE.high}
    rig.play([(times[-1] + 0.2, [0xB3, 20, 0])])
    assert rig.session.view().steering.temperature == pytest.approx(TEMPERATURE.low)


def test_hold_loops_the_answer_until_released():
    rig = Rig(controls=ControlMap.of(hold=40))
    ticks = ticks_at(120, 96 * 6, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0)
    timeline += [(times[96 + 10], [0xB9, 40, 127])]  # hold on during the answer (bar 1)
    timeline += hits(times, {0: [(CRASH, 127)]}, bar=2)  # ignored while holding
    timeline += [(times[3 * 96 + 10], [0xB9, 40, 0])]  # released in bar 3: bar 4 listens, bar 5 answers
    timeline += hits(times, {2: [(CRASH, 127)]}, bar=4)
    rig.play(timeline, until=times[-1] + 1)
    expected = sum((expected_notes(times, BEAT, bar) for bar in (1, 2, 3)), [])
    expected += expected_notes(times, {2: [(CRASH, 127)]}, 5)
    assert_notes(rig.sent(NOTE_ON), expected)
    assert [rig.session.role(b) for b in range(6)] == ["listening", "answering", "holding", "holding",
                                                      "listening", "answering"]


def test_hold_in_continuous_loops_the_bar_playing_and_ignores_what_is_played_over_it():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 6, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0)
    timeline += hits(times, {0: [(CRASH, 127)]}, bar=2)  # would re-prime bar 3 with a crash, but...
    timeline += [(times[2 * 96 + 10], [0xB9, 23, 127])]  # ...hold is pressed in bar 2
    timeline += [(times[4 * 96 + 10], [0xB9, 23, 0])]  # released in bar 4: bar 5 carries on from it
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    assert [rig.session.role(b) for b in range(6)] == ["listening", "answering", "answering", "holding",
                                                      "holding", "answering"]
    assert_notes(rig.sent(NOTE_ON), sum((expected_notes(times, BEAT, bar) for bar in range(1, 6)), []))


def test_mode_control_switches_to_continuous_at_the_next_bar():
    rig = Rig()
    ticks = ticks_at(120, 96 * 4, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[96 + 3], [0xB9, 21, 100])]
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    assert rig.session.mode == "continuous"
    assert_notes(rig.sent(NOTE_ON), sum((expected_notes(times, BEAT, bar) for bar in (1, 2, 3)), []))


def test_reprime_control_listens_again_from_the_next_bar():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 4, start=0.1)
    times = [t for t, _ in ticks]
    fill = {4: [(SNARE, 70)], 5: [(SNARE, 80)]}
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[96 + 3], [0xB9, 22, 127])]
    timeline += hits(times, fill, bar=2)
    rig.play(timeline, until=times[-1] + 1)
    assert [rig.session.role(b) for b in range(4)] == ["listening", "answering", "listening", "answering"]
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, 1) + expected_notes(times, fill, 3))


def silent_second_cycle(**options):
    """Bar 0 heard (the beat), bar 1 answered, bar 2 listened to in silence, bar 3 answered: the notes sent."""
    rig = Rig(**options)
    ticks = ticks_at(120, 96 * 4, start=0.1)
    times = [t for t, _ in ticks]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    return rig, times


def test_a_silent_listening_bar_answers_from_the_previous_primer():
    """Issue 14 item 3: a silent listening bar primed the model with silence (scattered toms and crashes)."""
    rig, times = silent_second_cycle()
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, 1) + expected_notes(times, BEAT, 3))
    assert all(primer.velocities.any() for primer in rig.generator.primers)
    assert rig.generator.primed_at == [0, 32]  # the previous primer, placed before bar 3
    assert rig.session.view().notice == "bar 3 was silent: answering the previous primer again"


def test_a_silent_listening_bar_can_repeat_the_previous_answer_instead():
    rig, times = silent_second_cycle(on_silence="repeat-answer")
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, 1) + expected_notes(times, BEAT, 3))
    assert rig.generator.primed_at == [0]  # no new generation: bar 1 plays again
    assert rig.session.view().notice == "bar 3 was silent: the previous answer again"


@pytest.mark.parametrize("on_silence", ["reuse-primer", "repeat-answer"])
def test_silence_before_anything_was_heard_listens_again(on_silence):
    rig = Rig(on_silence=on_silence)
    ticks = ticks_at(120, 96 * 3, start=0.1)
    times = [t for t, _ in ticks]
    rig.play([(0.05, START)] + ticks + hits(times, BEAT, bar=1), until=times[-1] + 1)
    assert rig.generator.primed_at == [16]  # bar 0 was silent: bar 1 listened, bar 2 answers
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, 2))


def test_a_silent_reprime_in_continuous_mode_carries_the_answer_on():
    rig = Rig(mode="continuous", on_silence="repeat-answer")
    ticks = ticks_at(120, 96 * 5, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + [(times[96 + 3], [0xB9, 22, 127])]
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    assert [rig.session.role(b) for b in range(5)] == ["listening", "answering", "listening", "answering",
                                                      "answering"]
    assert rig.generator.primed_at == [0]
    assert_notes(rig.sent(NOTE_ON), sum((expected_notes(times, BEAT, bar) for bar in (1, 3, 4)), []))


# --- input -------------------------------------------------------------------------------


def test_input_map_channel_filter_velocity_and_thru():
    # mpc-chromatic: pad 36 + class index; channel 1 only; thru copies to channel 10
    from deepbeat.notemaps import load_note_map

    rig = Rig(input_map=load_note_map("mpc-chromatic"), input_channel=0, thru=True)
    ticks = ticks_at(120, 96 * 2, start=0.1)
    times = [t for t, _ in ticks]
    played = {0: [(36, 33)], 4: [(37, 77)], 8: [(44, 127)]}  # kick, snare, ride
    ignored = {12: [(36, 100)]}  # channel 2: filtered out
    rig.play([(0.05, START)] + ticks + hits(times, played, channel=0) + hits(times, ignored, channel=1),
             until=times[-1] + 1)
    thru = [(t, n, v) for t, n, v in rig.sent(NOTE_ON) if t < times[96]]
    assert thru == [(times[0], 36, 33), (times[24], 37, 77), (times[48], 44, 127)]
    answer = [(t, n, v) for t, n, v in rig.sent(NOTE_ON) if t >= times[96]]
    assert_notes(answer, expected_notes(times, {0: [(KICK, 33)], 4: [(SNARE, 77)], 8: [(51, 127)]}, 1))


def test_hits_slightly_early_or_late_land_on_the_nearest_step():
    rig = Rig()
    ticks = ticks_at(120, 96 * 2, start=0.1)
    times = [t for t, _ in ticks]
    interval = interval_of_bpm(120)
    early = times[4 * 6] - 2.9 * interval  # under half a step before step 4
    late = times[8 * 6] + 2.9 * interval  # under half a step after step 8
    late_in_bar = times[15 * 6] + 2.9 * interval  # still the last step of bar 0
    rig.play([(0.05, START)] + ticks + [(early, [0x99, SNARE, 90]), (late, [0x99, KICK, 100]),
                                        (late_in_bar, [0x99, HAT, 50])], until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, {4: [(SNARE, 90)], 8: [(KICK, 100)], 15: [(HAT, 50)]}, 1))


MALFORMED = [
    [], [0x00], [0x45, 0x12], [0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7], [0xF0], [0xF7], [0xF2, 0x10], [0xF2, 0x80, 0x01],
    [0x99], [0x99, 36], [0x99, 200, 100], [0x99, 36, 128], [0x99, -1, 5], [0xB9, 20], [0xB9, 130, 5],
    [0xF1, 0x10], [0xF3, 0x01], [0xF4], [0xF5], [0xF6], [0xF9], [0xFD], [0xFE], [0xFF], [0x300, 1, 2],
    [0x99, 36.5, 100], ["x"], [None], b"\x99\x24", bytes(range(256)),
]


def test_malformed_messages_change_nothing():
    times, timeline = one_bar_then_answer(120, bars=2)
    rng = random.Random(3)
    noise = [(rng.uniform(0.1, times[-1]), message) for message in MALFORMED for _ in range(3)]
    rig = Rig()
    rig.play(timeline + noise, until=times[-1] + 1)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))


@given(st.lists(st.lists(st.integers(-5, 300), max_size=8), max_size=60))
def test_no_message_ever_raises(messages):
    rig = Rig(mode="continuous", thru=True)
    times, timeline = one_bar_then_answer(200, bars=2)
    spread = [(0.1 + i * times[-1] / max(len(messages), 1), m) for i, m in enumerate(messages)]
    rig.play(timeline + spread, until=times[-1] + 1)
    assert_every_note_ends(rig.transport.sent, twice=True)


CHANNEL_MESSAGE = st.lists(st.integers(-5, 300), max_size=3).flatmap(
    lambda rest: st.integers(0x80, 0xEF).map(lambda status: [status] + rest))  # no clock, Start or Stop among them


@given(st.lists(CHANNEL_MESSAGE, max_size=40), st.sampled_from([bar * 16 + step for bar in (1, 2) for step in BEAT]),
       st.floats(0.0, 1.0))
def test_no_note_hangs_when_a_run_ends_with_the_clock_alive(messages, cut_step, within_gate):
    """The run is cut just after an answer step has started its notes, the clock still running and nothing
    stopped: by the end of that step's gate every note the bridge started has ended, with no All Notes Off
    to hide a stuck one."""
    rig = Rig(mode="continuous")
    times, timeline = one_bar_then_answer(200, bars=3)
    cut = times[cut_step * 6] + 1e-4
    spread = [(0.1 + i * (cut - 0.1) / max(len(messages), 1), m) for i, m in enumerate(messages)]
    rig.play([event for event in timeline if event[0] <= cut] + spread, until=cut)
    sounding = dict(rig.scheduler._sounding)
    assert sounding, "the cut should fall while notes sound"
    gate = 0.5 * 6 * interval_of_bpm(200)
    rig.advance(cut + gate * (1 + within_gate * 0.5))
    assert rig.scheduler.follower.running  # not a dropout: the clock is alive
    sent = [(t, m) for t, m in rig.transport.sent if m != ALL_OFF]  # only the panic CC could send one
    assert_every_note_ends(sent)


# --- master clock, loop and threads ------------------------------------------------------


def test_internal_clock_sends_start_clock_and_stop_and_answers_on_its_ticks():
    rig = Rig(master=InternalClock(150))
    rig.clock.now = 1.0
    rig.scheduler.start_master(1.0)
    interval = interval_of_bpm(150)
    times = [1.0 + i * interval for i in range(96 * 2)]
    rig.play(hits(times, BEAT, bar=0), until=times[-1] + interval / 2)
    rig.scheduler.shutdown()
    assert rig.times_of((0xFA,)) == [1.0]
    assert rig.times_of((0xF8,)) == pytest.approx(times, abs=1e-9)
    assert rig.transport.sent[-1][1] == (0xFC,)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))
    # clock messages coming in are ignored while the bridge is the master
    ticks_before = rig.scheduler.stats.ticks
    rig.play([(times[-1] + 1, TICK), (times[-1] + 1.1, START)])
    assert rig.scheduler.stats.ticks == ticks_before


def test_generation_worker_runs_jobs_in_order_and_reports_the_first_error():
    errors = []
    worker = GenerationWorker(on_error=errors.append)
    done = []
    worker.submit(done.append, 1)
    worker.submit(lambda: 1 / 0)
    worker.submit(done.append, 2)  # skipped: the worker stopped at the error
    worker.close()
    assert done == [1]
    assert isinstance(worker.error, ZeroDivisionError) and errors == [worker.error]


def real_bridge(generator, **options):
    """A Bridge on a MemoryTransport with real threads and the perf_counter clock."""
    transport = MemoryTransport()
    inbox = queue.Queue()
    plan = Plan()
    worker = GenerationWorker(on_error=lambda error: inbox.put_nowait(WAKE))
    session = Session(worker, Composer(generator, plan), plan)
    scheduler = Scheduler(session, transport.send, **options)
    return Bridge(transport, scheduler, worker, inbox, None), transport


def daw(transport, bpm, bars, pattern):
    """Plays Start, `bars` bars of clock and `pattern` in the first bar, in real time."""
    interval = interval_of_bpm(bpm)
    start = time.perf_counter() + 0.05
    transport.inject(START)
    for tick in range(96 * bars):
        if transport.closed:
            return
        time.sleep(max(0.0, start + tick * interval - time.perf_counter()))
        transport.inject(TICK)
        for note, velocity in pattern.get(tick // 6, []) if tick < 96 and tick % 6 == 0 else []:
            transport.inject([0x99, note, velocity])
    transport.inject(STOP)


def run_in_real_time(bridge, transport):
    """Run `bridge` on a thread while `daw` plays two bars at 240 BPM, then stop it; what run() returned."""
    stop = threading.Event()
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(bridge.run(stop)))
    runner.start()
    while not transport.opened:
        time.sleep(0.01)
    daw(transport, 240, 2, BEAT)
    time.sleep(0.1)
    stop.set()
    runner.join(5)
    return outcome


def test_bridge_threads_answer_in_real_time_and_stop_clean():
    bridge, transport = real_bridge(EchoGenerator())
    assert run_in_real_time(bridge, transport) == [0]
    played = [m for _, m in transport.sent if m[0] == NOTE_ON]
    assert played == [(NOTE_ON, n, v) for _, n, v in expected_notes([0] * 200, BEAT, bar=1)]
    assert bridge.scheduler.stats.steps_missed == 0
    assert transport.sent[-1][1] == ALL_OFF
    assert_every_note_ends(transport.sent)


def test_what_start_up_made_is_left_out_of_collections_while_the_bridge_runs():
    """A full collection of a started bridge's objects took 7-9 ms holding the GIL, longer than a JACK period,
    while JACK's process callback waited for it. They are frozen while it runs, and thawed after."""
    import gc

    bridge, transport = real_bridge(EchoGenerator())
    stop = threading.Event()
    runner = threading.Thread(target=bridge.run, args=(stop,))
    runner.start()
    while not transport.opened:
        time.sleep(0.01)
    frozen = gc.get_freeze_count()
    stop.set()
    runner.join(5)
    assert frozen > 0 and gc.get_freeze_count() == 0


def test_a_generation_error_stops_the_bridge_with_every_note_off():
    class Broken(EchoGenerator):
        def sample(self, num_steps, steering, bpm=None):
            raise RuntimeError("model exploded")

    bridge, transport = real_bridge(Broken())
    stop = threading.Event()
    failure = []

    def run():
        try:
            bridge.run(stop)
        except DeepBeatError as error:
            failure.append(str(error))

    runner = threading.Thread(target=run)
    runner.start()
    while not transport.opened:
        time.sleep(0.01)
    daw(transport, 300, 2, BEAT)
    runner.join(5)
    assert not runner.is_alive()
    assert failure and "model exploded" in failure[0]
    assert transport.sent[-1][1] == ALL_OFF


def test_the_view_shows_tempo_state_bar_and_grids():
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    rig.play([event for event in timeline if event[0] < times[96 + 40]])  # into the answer bar
    lines = render(rig.session.view(), rig.scheduler.follower.tempo.bpm, "memory")
    text = "\n".join(lines)
    assert "120.0 BPM" in text and "bar 2" in text and "answering" in text
    assert "kick        :|X.......X.......|" in text  # primer and answer both show the beat
    assert text.count("snare       :|....x.......x...|") == 2
    assert lines[-1] == " " * len("kick        :|") + " " * 6 + "^"  # tick 136 is step 6 of bar 2



class Terminal(io.StringIO):
    """A terminal of COLUMNS x LINES (from the environment) that records what is written to it."""

    def isatty(self):
        return True


def test_terminal_view_redraws_in_place_on_a_terminal_and_prints_a_line_per_bar_elsewhere(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("LINES", "40")
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    terminal, log = Terminal(), io.StringIO()
    views = [TerminalView(terminal), TerminalView(log)]
    for moment in (25, 30, 100):  # two moments in bar 1 with no hit between them, one in bar 2
        rig.play([event for event in timeline if event[0] < times[moment]])
        timeline = [event for event in timeline if event[0] >= times[moment]]
        for view in views:
            view.update(rig.session.view(), rig.scheduler.follower.tempo.bpm, "memory")
    drawn = terminal.getvalue()
    height = len(render(rig.session.view(), 120.0, "memory"))
    assert not drawn.startswith("\x1b[")  # the first drawing starts where the cursor is
    assert drawn.count(f"\x1b[{height}F") == 1  # bar 1 unchanged between 20 and 30: one redraw, for bar 2
    assert drawn.count("\x1b[K\n") == 2 * height  # every line cleared to its end as it is written
    assert log.getvalue().splitlines() == ["bar 1 listening (120.0 BPM)", "bar 2 answering (120.0 BPM)"]


def test_the_view_fits_the_terminal_and_never_clears_it_whole(monkeypatch):
    """Issue 14 item 4: a block taller or wider than the terminal scrolled on every redraw, and clearing the
    screen from its top left corner pushes it into tmux's scrollback."""
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "12")
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    terminal = Terminal()
    view = TerminalView(terminal)
    for moment in range(10, 190, 6):
        rig.play([event for event in timeline if event[0] < times[moment]])
        timeline = [event for event in timeline if event[0] >= times[moment]]
        view.update(rig.session.view(), rig.scheduler.follower.tempo.bpm, "a long description of the ports")
    frames = terminal.getvalue().split("\x1b[11F")
    assert len(frames) > 5
    for frame in frames:
        lines = frame.replace("\x1b[J", "").split("\x1b[K\n")[:-1]
        assert len(lines) == 11 and max(len(line) for line in lines) <= 39
    assert "\x1b[H" not in terminal.getvalue() and "\x1b[2J" not in terminal.getvalue()
    monkeypatch.setenv("LINES", "30")  # resized: drawn again from the top left, the screen not cleared whole
    view.update(rig.session.view(), 120.0, "memory")
    assert terminal.getvalue().endswith("\x1b[J") and "\x1b[H" in terminal.getvalue()


def test_a_closed_output_stops_the_view_and_not_the_music():
    """Issue 14 item 17: `deepbeat bridge | tee log` with tee gone ended the session with BrokenPipeError."""

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    bridge, transport = real_bridge(EchoGenerator())
    bridge.view = TerminalView(ClosedPipe())
    assert run_in_real_time(bridge, transport) == [0] and bridge.view.closed
    assert [m for _, m in transport.sent if m[0] == NOTE_ON]  # the answer played on


# --- steering and feel, live ------------------------------------------------------------


def step_seconds(bpm):
    return 6 * interval_of_bpm(bpm)


def test_the_models_timing_places_notes_off_their_ticks_early_ones_sent_ahead_by_the_tempo_fit():
    """Kick 0.25 of a 16th early, snare 0.2 late, hats on the tick (humanize 1): each note at its tick plus its
    offset; the early kicks go out before their ticks arrive (the tempo fit predicts them)."""
    rig = Rig(generator=TimedEcho({0: -0.25, 1: 0.2}))
    times, timeline = one_bar_then_answer(120)
    rig.play(timeline, until=times[-1] + 1)
    step = step_seconds(120)
    shift = {KICK: -0.25 * step, SNARE: 0.2 * step, HAT: 0.0}
    first = times[96]  # the answer's first step, generated as the listening bar closed: on its tick (hits_at)
    expected = sorted((t + (shift[n] if t != first or shift[n] > 0 else 0.0), n, v)
                      for t, n, v in expected_notes(times, BEAT, bar=1))
    # bar 3 answers the primer again (bar 2 was silent): its first kick is not sent ahead of its tick, after the Stop
    assert_notes(sorted(rig.sent(NOTE_ON)), expected)
    assert_every_note_ends(rig.transport.sent)


def test_a_tick_stamped_ahead_of_the_clock_leaves_the_notes_due_before_it_at_their_moment():
    """JACK stamps a cycle's events with their frames' times, up to a period ahead of the moment they are heard:
    a tick heard 4 ms before its stamp, with a kick due 2.5 ms before that tick, still sends the kick at its
    moment, not at the tick (the fault suite saw such notes land 3-4 ms late)."""
    early = 0.02  # of a 16th: 2.5 ms at 120 BPM
    rig = Rig(generator=TimedEcho({0: -early}))
    times, timeline = one_bar_then_answer(120)
    heard_ahead = 0.004
    for stamp, data in sorted(timeline, key=lambda event: event[0]):
        rig.advance(stamp - heard_ahead)
        rig.scheduler.on_message(stamp, list(data))
        rig.scheduler.on_deadlines(rig.clock.now)
    rig.advance(times[-1] + 1)
    kicks = [t for t, n, _ in rig.sent(NOTE_ON) if n == KICK and times[96] - 0.01 <= t < times[2 * 96] - 0.01]
    expected = [t - early * step_seconds(120) * (t != times[96])  # the answer's first step plays on its tick
                for t, n, _ in expected_notes(times, BEAT, bar=1) if n == KICK]
    assert kicks == pytest.approx(expected, abs=1e-9) and len(kicks) == 2


def test_the_loop_meets_what_falls_due_before_a_message_stamped_ahead_of_the_clock_before_handling_it():
    """Every message heard at once, before any of it is due (JACK hears a cycle's events ahead of their frames'
    moments): the loop plays what the replay does. In the fault suite a Stop heard ahead of its moment cut off
    the early kick due just before it."""
    reference = Rig(generator=TimedEcho({0: -0.25}), mode="continuous")
    times, timeline = one_bar_then_answer(120)
    reference.play(timeline, until=times[-1] + 1)
    rig = Rig(generator=TimedEcho({0: -0.25}), mode="continuous")
    for stamp, data in sorted(timeline, key=lambda event: event[0]):
        rig.inbox.put((stamp, list(data)))
    rig.scheduler.run(rig.inbox, should_stop=rig.inbox.empty)
    sent, expected = rig.sent(NOTE_ON), reference.sent(NOTE_ON)
    assert [(n, v) for _, n, v in sent] == [(n, v) for _, n, v in expected]
    assert [t for t, _, _ in sent] == pytest.approx([t for t, _, _ in expected], abs=1e-9)
    assert expected[-1][1] == KICK and expected[-1][0] < times[-1]  # the kick due before the Stop is among them


@pytest.mark.parametrize("humanize", [0.0, 0.5])
def test_humanize_scales_the_models_offsets_and_zero_puts_every_note_on_its_tick(humanize):
    rig = Rig(generator=TimedEcho({0: -0.25, 1: 0.2}), feel=Feel(humanize=humanize))
    times, timeline = one_bar_then_answer(120)
    rig.play(timeline, until=times[-1] + 1)
    step = step_seconds(120)
    shift = {KICK: -0.25 * step * humanize, SNARE: 0.2 * step * humanize, HAT: 0.0}
    expected = sorted((t + (shift[n] if t != times[96] or shift[n] > 0 else 0.0), n, v)
                      for t, n, v in expected_notes(times, BEAT, bar=1))
    assert_notes(sorted(n for n in rig.sent(NOTE_ON) if n[0] < times[2 * 96]), expected)


def test_swing_control_delays_the_offbeat_eighths_and_measures_as_set():
    """CC 28 sets swing (0-127 over 50-75 %); on 8ths the hats between the beats move to `swing` % of the pair."""
    rig = Rig(feel=Feel(swing_unit=8))
    times, timeline = one_bar_then_answer(120)
    value = 61
    rig.play([(0.0, [0xB9, DEFAULT_CCS["swing"], value])] + timeline, until=times[-1] + 1)
    swing = SWING.at(value / 127)
    hats = [t for t, n, _ in rig.sent(NOTE_ON) if n == HAT]  # steps 0, 2, 4, ... of bar 1
    measured = [(hats[k + 1] - hats[k]) / (hats[k + 2] - hats[k]) * 100 for k in range(0, len(hats) - 2, 2)]
    assert measured == pytest.approx([swing] * len(measured), abs=1e-6)
    assert rig.session.view().feel.swing == pytest.approx(swing)


def test_each_sweeping_cc_sets_its_control_over_its_whole_range_and_the_next_answer_uses_it():
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    moves = [("style_strength", STYLE_STRENGTH, 127), ("variation", VARIATION, 0), ("density", DENSITY, 32),
             ("humanize", HUMANIZE, 64)]
    ccs = [(0.0, [0xB9, DEFAULT_CCS[name], value]) for name, _, value in moves]
    rig.play(ccs + timeline, until=times[-1] + 0.1)
    steering, feel = rig.session.steering, rig.session.feel
    for name, setting, value in moves:
        assert getattr(feel if name == "humanize" else steering, name) == pytest.approx(setting.at(value / 127))
    assert {(s.style_strength, s.variation, s.density) for s in rig.generator.steerings} == {
        (steering.style_strength, steering.variation, steering.density)}


def test_lock_ccs_switch_drum_groups_and_preset_and_fill_ccs_act_on_what_comes_next():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 3, start=0.1)
    times = [t for t, _ in ticks]
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0)
    timeline += [(0.06, [0xB9, DEFAULT_CCS["lock_kick"], 127]), (0.07, [0xB9, DEFAULT_CCS["lock_hats"], 127])]
    timeline += [(0.08, [0xB9, DEFAULT_CCS["lock_hats"], 0])]  # released again
    timeline += [(0.09, [0xB9, DEFAULT_CCS["preset"], 127])]  # the last preset
    timeline += [(times[96 + 20], [0xB9, DEFAULT_CCS["fill"], 127])]  # during bar 1 (an answer): bar 3 is next
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    steering = rig.session.steering
    assert steering.locks == frozenset({0})
    expected_steering, expected_feel = PRESETS[PRESET_ORDER[-1]].apply(Steering(locks=frozenset({0})), Feel())
    assert rig.session.feel == expected_feel
    assert steering.fills == FillPlan(expected_steering.fills.every, frozenset({3}))
    assert "fill asked for bar 4" in rig.session.view().notice
    assert rig.generator.steerings[-1].fills.is_fill(3)


def test_controls_from_the_page_arrive_on_the_inbox_and_a_loop_holds_an_earlier_bar():
    rig = Rig(mode="continuous")
    ticks = ticks_at(120, 96 * 5, start=0.1)
    times = [t for t, _ in ticks]
    extra = {2: [(CRASH, 127)]}
    timeline = [(0.05, START)] + ticks + hits(times, BEAT, bar=0) + hits(times, extra, bar=2)
    timeline += [(times[96 + 30], Control("variation", 0.2))]
    timeline += [(times[3 * 96 + 10], Control("loop", 1))]  # in bar 3: bar 4 plays bar 1 again
    rig.play(timeline + [(times[-1] + 0.001, STOP)], until=times[-1] + 1)
    assert rig.session.steering.variation == pytest.approx(0.2)
    assert rig.session.role(4) == "holding" and rig.session.view().looping == 1
    bar4 = [(n, v) for t, n, v in rig.sent(NOTE_ON) if times[4 * 96] - 1e-9 <= t]
    assert bar4 == [(n, v) for _, n, v in expected_notes(times, BEAT, bar=4)]


def test_a_loop_of_a_bar_no_longer_kept_is_said_and_changes_nothing():
    rig = Rig()
    times, timeline = one_bar_then_answer(120, bars=2)
    rig.play(timeline[:-1] + [(times[100], Control("loop", 999))], until=times[-1])
    assert "no longer kept" in rig.session.view().notice
    assert rig.session.view().looping is None and not rig.session.view().hold


def test_notes_waiting_for_their_offset_are_dropped_at_stop_and_nothing_hangs():
    rig = Rig(generator=TimedEcho({2: 0.45}))  # hats late by almost half a 16th
    times, timeline = one_bar_then_answer(120)
    stop_at = times[(16 + 4) * 6] + 0.001  # just after the tick of answer step 4: its hat is still waiting
    rig.play([e for e in timeline if e[1] != STOP] + [(stop_at, STOP)], until=times[-1] + 1)
    assert all(t <= stop_at for t, _, _ in rig.sent(NOTE_ON))
    assert [n for t, n, _ in rig.sent(NOTE_ON) if t > times[(16 + 4) * 6] - 1e-9] == [SNARE]
    assert_every_note_ends(rig.transport.sent)
