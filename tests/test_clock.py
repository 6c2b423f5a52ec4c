"""MIDI clock following: tempo estimate under jitter and jumps, transport and position, lost, repeated and
late ticks, count slips, dropouts and gaps, master clock."""
import random

import pytest

from deepbeat.bridge.clock import ClockFollower, InternalClock
from deepbeat.bridge.tempofit import FIT_TICKS, TempoEstimator, bpm_of_interval, interval_of_bpm
from deepbeat.errors import DeepBeatError


def feed(estimator, bpm, count, start=0.0, jitter=0.0, rng=None, first=0):
    """Feed ticks first..first+count-1 at a tempo, each moved by up to +-jitter seconds; returns the next
    tick's ideal time."""
    interval = interval_of_bpm(bpm)
    for i in range(count):
        estimator.add(first + i, start + i * interval + (rng.uniform(-jitter, jitter) if jitter else 0.0))
    return start + count * interval


def play(follower, times):
    """Tick `follower` at each time; the song positions each arrival made current, flattened."""
    return [position for time in times for position in follower.tick(time)]


def steady(bpm, count, start=0.0, jitter=0.0, seed=0):
    rng = random.Random(seed)
    interval = interval_of_bpm(bpm)
    return [start + i * interval + (rng.uniform(-jitter, jitter) if jitter else 0.0) for i in range(count)]


def test_interval_and_bpm_are_inverse():
    assert interval_of_bpm(125) == pytest.approx(0.02)  # 60 / (24 * 125)
    assert bpm_of_interval(interval_of_bpm(97.3)) == pytest.approx(97.3)


@pytest.mark.parametrize("bpm", [30, 60, 90, 120, 160, 200, 300])
def test_steady_tempo_is_exact(bpm):
    estimator = TempoEstimator()
    assert estimator.bpm is None
    estimator.add(0, 1.0)
    assert estimator.bpm is None  # one tick has no interval
    feed(estimator, bpm, 30, start=1.0 + interval_of_bpm(bpm), first=1)
    assert estimator.bpm == pytest.approx(bpm, rel=1e-9)


@pytest.mark.parametrize("bpm", [60, 120, 200])
def test_two_ms_jitter_is_averaged_out(bpm):
    rng = random.Random(bpm)
    estimator = TempoEstimator()
    feed(estimator, bpm, 4 * FIT_TICKS, jitter=0.002, rng=rng)
    assert estimator.bpm == pytest.approx(bpm, rel=0.01)
    # and the fitted time of the next tick is within the jitter
    assert estimator.time_of(4 * FIT_TICKS) == pytest.approx(4 * FIT_TICKS * interval_of_bpm(bpm), abs=0.002)


def test_five_ms_jitter_moves_the_reading_by_under_one_percent_at_any_moment():
    """Issue 14 item 19: the old fit restarted whenever a few ticks fell on one side by 3.5 ms, reading
    109-127 BPM at 120; the jitter is now measured and a miss is judged against it."""
    estimator = TempoEstimator()
    rng = random.Random(19)
    interval = interval_of_bpm(120)
    readings = []
    for i in range(24 * 4 * 40):  # 40 bars
        estimator.add(i, i * interval + rng.uniform(-0.005, 0.005))
        if i >= 2 * 24:  # from the third beat on
            readings.append(estimator.bpm)
    assert min(readings) > 120 * 0.99 and max(readings) < 120 * 1.01


@pytest.mark.parametrize("before, after, jitter", [(90, 140, 0.002), (140, 90, 0.002), (120, 126, 0.002),
                                                   (120, 132, 0.005), (120, 108, 0.005)])
def test_tempo_change_is_followed_within_a_beat(before, after, jitter):
    rng = random.Random(before * after)
    estimator = TempoEstimator()
    start = feed(estimator, before, 96, jitter=jitter, rng=rng)
    start = feed(estimator, after, 24, start=start, jitter=jitter, rng=rng, first=96)  # one beat at the new tempo
    assert estimator.bpm == pytest.approx(after, rel=0.03)
    feed(estimator, after, 48, start=start, jitter=jitter, rng=rng, first=120)
    assert estimator.bpm == pytest.approx(after, rel=0.01)


def test_one_late_tick_does_not_restart_the_fit():
    estimator = TempoEstimator()
    interval = interval_of_bpm(120)
    for i in range(FIT_TICKS):
        estimator.add(i, i * interval + (0.010 if i == 40 else 0.0))  # one tick 10 ms late
    # a restart would leave the few ticks after the late one, giving a tempo off by the late tick's share
    assert estimator.bpm == pytest.approx(120, rel=0.005)


@pytest.mark.parametrize("period_ms", [2.5, 5.33])
def test_a_run_of_ticks_a_jack_period_late_keeps_the_reading_within_one_percent(period_ms):
    """JACK running a cycle late delivers a run of ticks a period late, all on one side of the line: a fit restarted
    from the held arrivals, late ones and on-time ones together, read 166-185 BPM at 180 (175.5 in the fault
    suite's soak). It now restarts from the late ones alone, which lie on one line."""
    estimator = TempoEstimator()
    interval = interval_of_bpm(180)
    readings = []
    for i in range(24 * 16):
        late = period_ms / 1000 if 100 <= i < 106 or 200 <= i < 212 else 0.0
        estimator.add(i, i * interval + late)
        if i >= 24:
            readings.append(estimator.bpm)
    assert min(readings) > 180 * 0.99 and max(readings) < 180 * 1.01


def test_follower_counts_positions_from_start_and_keeps_them_over_stop():
    follower = ClockFollower()
    assert list(follower.tick(0.0)) == []  # clock while stopped: tempo only
    follower.start()
    assert play(follower, [0.02 * i for i in range(1, 8)]) == list(range(7))
    follower.stop()
    assert list(follower.tick(0.16)) == []
    follower.resume()
    assert list(follower.tick(0.18)) == [7]


def test_song_position_pointer_counts_sixteenths():
    follower = ClockFollower()
    follower.locate(37)  # 37 sixteenths = 222 ticks
    follower.resume()
    assert list(follower.tick(0.01)) == [222]


# --- issue 14 item 2: lost, repeated and late ticks -------------------------------------


def test_a_lost_tick_is_counted_from_the_interval_and_the_position_holds():
    follower = ClockFollower()
    follower.start()
    times = steady(93, 100, start=0.05, jitter=0.001)
    lost = {30, 61, 62}  # one alone, then two in a row
    positions = play(follower, [t for i, t in enumerate(times) if i not in lost])
    assert positions == list(range(100))  # every position is reached, the lost ones with the next arrival
    assert follower.position == 100
    assert follower.corrections.lost == 3 and follower.tempo.bpm == pytest.approx(93, rel=0.01)


def test_a_repeated_tick_is_ignored():
    follower = ClockFollower()
    follower.start()
    times = steady(93, 100, start=0.05, jitter=0.001)
    arrivals = sorted(times + [times[20] + 0.0005, times[70], times[71] + 0.001])
    ranges = [list(follower.tick(t)) for t in arrivals]
    assert sum(ranges, []) == list(range(100))
    assert sum(1 for r in ranges if not r) == 3 and follower.corrections.repeated == 3


def test_lossy_clock_keeps_every_position_for_minutes():
    rng = random.Random(2)
    follower = ClockFollower()
    follower.start()
    arrivals = []
    for i, t in enumerate(steady(180, 180 * 24 * 3, start=0.01, jitter=0.001, seed=2)):  # 3 minutes
        if rng.random() < 0.01:
            continue
        arrivals.append((i, t))
        if rng.random() < 0.005:
            arrivals.append((None, t + rng.uniform(0, 0.002)))
    for index, time in arrivals:
        reached = follower.tick(time)
        if index is not None:
            assert reached and reached[-1] == index
    assert follower.corrections.slipped == 0 and follower.corrections.jumps == 0


def test_a_slipped_count_is_put_right_by_the_fit():
    follower = ClockFollower()
    follower.start()
    times = steady(120, 200, start=0.05)
    play(follower, times[:100])
    follower._index += 1  # as if one arrival had been counted twice
    follower.position += 1
    positions = play(follower, times[100:])
    assert follower.position == 200 and positions[-1] == 199  # back in step within a few ticks
    assert follower.corrections.slipped == 1


@pytest.mark.parametrize("before, after", [(140, 90), (120, 60), (60, 130)])
def test_a_tempo_jump_that_looks_like_lost_or_repeated_ticks_is_recounted(before, after):
    follower = ClockFollower()
    follower.start()
    slow = steady(before, 200, start=0.05)
    fast = steady(after, 200, start=slow[-1] + interval_of_bpm(after))
    play(follower, slow + fast[:10])
    assert follower.position == 210  # put right within a few ticks of the jump
    assert list(follower.tick(fast[10])) == [210]
    assert follower.tempo.bpm == pytest.approx(after, rel=0.01) and follower.corrections.jumps == 1


@pytest.mark.parametrize("spacing", [0.0, 1e-6, 2e-5, 5e-4])
@pytest.mark.parametrize("bpm", [93, 180])
def test_ticks_bunched_after_a_stall_are_no_tempo_jump(bpm, spacing):
    # the DAW (or the bridge's own input) stalls 100 ms, then sends the ticks it owes back to back: they agree
    # with each other on an interval of no tempo, and were once followed as a jump to it (the count then ran
    # thousands of ticks ahead and the bridge fell silent for good)
    follower = ClockFollower()
    follower.start()
    times = steady(bpm, 300, start=0.05, jitter=0.001)
    stalled_until = times[40] + 0.1
    arrivals = [max(t, stalled_until + (i - 40) * spacing) if i >= 40 else t for i, t in enumerate(times)]
    positions = play(follower, arrivals)
    assert follower.position == 300 and positions[-1] == 299
    assert follower.corrections.jumps == 0 and follower.tempo.bpm == pytest.approx(bpm, rel=0.01)


@pytest.mark.parametrize("bpm, stall_at, stall_s", [(120, 0, 0.1), (160, 0, 0.06), (60, 1, 0.1), (90, 2, 0.15),
                                                     (120, 4, 0.15), (60, 8, 0.15), (200, 6, 0.1), (90, 8, 0.15)])
def test_ticks_held_up_in_the_first_beat_after_start_keep_the_count(bpm, stall_at, stall_s):
    # the DAW (or the path to the bridge) stalls while the tempo is still young, then sends the ticks it owes
    # back to back: the first arrivals were judged with little to go on and once left the count 1 to 400+ ticks
    # off for good; once the fit is trusted they are recounted
    follower = ClockFollower()
    follower.start()
    times = steady(bpm, 300, start=0.05, jitter=0.001, seed=stall_at)
    resumed = times[stall_at] + stall_s
    held = [i for i, t in enumerate(times) if i >= stall_at and t < resumed]
    arrivals = [resumed + k * 0.00005 for k in range(len(held))] + times[held[-1] + 1:]
    positions = play(follower, times[:stall_at] + arrivals)
    assert follower.position == 300 and positions[-1] == 299
    assert follower.tempo.bpm == pytest.approx(bpm, rel=0.01)


def test_a_tick_assumed_in_its_absence_keeps_its_place_when_it_arrives_late():
    follower = ClockFollower()
    follower.start()
    times = steady(120, 60, start=0.05)
    play(follower, times[:30])
    assert follower.next_tick_time() == pytest.approx(times[30])
    assert follower.assume_tick() == 30
    assert follower.next_tick_time() is None  # never two in a row
    assert list(follower.tick(times[30] + 0.006)) == []  # that tick, late: already played
    assert play(follower, times[31:]) == list(range(31, 60))
    follower.assume_tick()
    assert list(follower.tick(times[59] + 2 * interval_of_bpm(120))) == [61]  # tick 60 was lost after all
    assert follower.corrections.assumed == 2


# --- issue 14 item 11: dropouts and gaps ---------------------------------------------


def test_dropout_deadline_is_three_intervals_or_250_ms_after_the_newest_tick():
    follower = ClockFollower()
    assert follower.dropout_deadline() is None  # stopped: nothing to drop out of
    follower.start()
    assert follower.dropout_deadline() is None  # a late first tick after Start is not a dropout
    slow = interval_of_bpm(40)  # 62.5 ms per tick: 3 intervals = 187.5 ms, so 250 ms wins
    play(follower, [10.0 + i * slow for i in range(10)])
    assert follower.dropout_deadline() == pytest.approx(10.0 + 9 * slow + 0.25)
    follower = ClockFollower()
    follower.start()
    very_slow = 0.1  # 25 BPM: 3 intervals = 300 ms
    play(follower, [i * very_slow for i in range(10)])
    assert follower.dropout_deadline() == pytest.approx(0.9 + 0.3)


def test_the_first_tick_600_ms_after_start_is_position_zero():
    follower = ClockFollower()
    play(follower, steady(120, 48))  # clock while stopped
    follower.start()
    assert list(follower.tick(1.6)) == [0]
    assert play(follower, [1.6 + i * interval_of_bpm(120) for i in range(1, 5)]) == [1, 2, 3, 4]


def test_ticks_coming_back_after_a_dropout_play_on_where_they_imply():
    follower = ClockFollower()
    follower.start()
    times = steady(180, 400, start=0.05)
    play(follower, times[:100])
    follower.drop_out()
    assert follower.dropout_deadline() is None
    gap = int(0.3 / interval_of_bpm(180)) + 1  # a 300 ms hole in the clock
    assert list(follower.tick(times[100 + gap])) == list(range(100, 101 + gap))
    assert not follower.dropped and follower.corrections.resumed == 1
    assert play(follower, times[101 + gap:]) == list(range(101 + gap, 400))


def test_a_clock_started_afresh_after_a_silence_is_no_loss():
    follower = ClockFollower()
    play(follower, steady(120, 100))
    follower.start()
    assert play(follower, steady(90, 50, start=20.05)) == list(range(50))
    assert follower.corrections.lost == 0 and follower.tempo.bpm == pytest.approx(90)


def test_corrections_are_summed_up_in_words():
    follower = ClockFollower()
    follower.start()
    times = steady(120, 100, start=0.05)
    play(follower, [t for i, t in enumerate(times) if i != 50] + [times[-1] + 0.0001])
    assert follower.corrections.summary() == "1 lost ticks, 1 repeated ticks"
    assert follower.latest.what == "repeated tick ignored"


def test_note_positions_interpolate_between_ticks_and_stop_at_the_next():
    follower = ClockFollower()
    follower.start()
    play(follower, [i * 0.02 for i in range(10)])
    assert follower.tick_position_at(0.18) == pytest.approx(9.0)
    assert follower.tick_position_at(0.19) == pytest.approx(9.5)
    assert follower.tick_position_at(0.5) == pytest.approx(10.0)


def test_internal_clock_ticks_on_a_fixed_grid():
    clock = InternalClock(150)
    clock.start(2.0)
    times = []
    for _ in range(5):
        times.append(clock.next_tick_time())
        clock.advance()
    assert times == pytest.approx([2.0 + i * 60 / (24 * 150) for i in range(5)])
    with pytest.raises(DeepBeatError, match="clock tempo 5 BPM is outside 20-400"):
        InternalClock(5)
