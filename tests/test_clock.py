"""MIDI clock following: tempo estimate under jitter and jumps, transport and position, dropout, master clock."""
import random

import pytest

from deepbeat.bridge.clock import (
    FIT_TICKS, ClockFollower, InternalClock, TempoEstimator, bpm_of_interval, interval_of_bpm,
)
from deepbeat.errors import DeepBeatError


def feed(estimator, bpm, count, start=0.0, jitter=0.0, rng=None):
    """Feed `count` ticks at a tempo, each moved by up to +-jitter seconds; returns the next tick's ideal time."""
    interval = interval_of_bpm(bpm)
    for i in range(count):
        estimator.add(start + i * interval + (rng.uniform(-jitter, jitter) if jitter else 0.0))
    return start + count * interval


def test_interval_and_bpm_are_inverse():
    assert interval_of_bpm(125) == pytest.approx(0.02)  # 60 / (24 * 125)
    assert bpm_of_interval(interval_of_bpm(97.3)) == pytest.approx(97.3)


@pytest.mark.parametrize("bpm", [60, 90, 120, 160, 200])
def test_steady_tempo_is_exact(bpm):
    estimator = TempoEstimator()
    assert estimator.bpm is None
    estimator.add(1.0)
    assert estimator.bpm is None  # one tick has no interval
    feed(estimator, bpm, 30, start=1.0 + interval_of_bpm(bpm))
    assert estimator.bpm == pytest.approx(bpm, rel=1e-9)


@pytest.mark.parametrize("bpm", [60, 120, 200])
def test_two_ms_jitter_is_averaged_out(bpm):
    rng = random.Random(bpm)
    estimator = TempoEstimator()
    feed(estimator, bpm, 4 * FIT_TICKS, jitter=0.002, rng=rng)
    assert estimator.bpm == pytest.approx(bpm, rel=0.01)
    # and the prediction of the next tick is within the jitter
    assert estimator.predict(1) == pytest.approx(4 * FIT_TICKS * interval_of_bpm(bpm), abs=0.002)


@pytest.mark.parametrize("before, after", [(90, 140), (140, 90), (120, 126)])
def test_tempo_change_is_followed_within_a_beat(before, after):
    rng = random.Random(before * after)
    estimator = TempoEstimator()
    start = feed(estimator, before, 96, jitter=0.002, rng=rng)
    feed(estimator, after, 24, start=start, jitter=0.002, rng=rng)  # one beat at the new tempo
    assert estimator.bpm == pytest.approx(after, rel=0.03)
    feed(estimator, after, 48, start=start + 24 * interval_of_bpm(after), jitter=0.002, rng=rng)
    assert estimator.bpm == pytest.approx(after, rel=0.01)


def test_one_late_tick_does_not_restart_the_fit():
    estimator = TempoEstimator()
    interval = interval_of_bpm(120)
    for i in range(FIT_TICKS):
        estimator.add(i * interval + (0.010 if i == 40 else 0.0))  # one tick 10 ms late
    # a restart would leave the few ticks after the late one, giving a tempo off by the late tick's share
    assert estimator.bpm == pytest.approx(120, rel=0.005)


def test_follower_counts_positions_from_start_and_keeps_them_over_stop():
    follower = ClockFollower()
    assert follower.tick(0.0) is None  # clock while stopped: tempo only
    follower.start(0.01)
    assert [follower.tick(0.02 * i) for i in range(1, 8)] == list(range(7))
    follower.stop()
    assert follower.tick(0.2) is None
    follower.resume(0.21)
    assert follower.tick(0.22) == 7


def test_song_position_pointer_counts_sixteenths():
    follower = ClockFollower()
    follower.locate(37)  # 37 sixteenths = 222 ticks
    follower.resume(0.0)
    assert follower.tick(0.01) == 222


def test_dropout_deadline_is_three_intervals_or_250_ms():
    follower = ClockFollower()
    assert follower.dropout_deadline() is None  # stopped: nothing to drop out of
    follower.start(10.0)
    assert follower.dropout_deadline() == pytest.approx(10.25)  # no tempo yet
    slow = interval_of_bpm(40)  # 62.5 ms per tick: 3 intervals = 187.5 ms, so 250 ms wins
    for i in range(10):
        follower.tick(10.0 + i * slow)
    assert follower.dropout_deadline() == pytest.approx(10.0 + 9 * slow + 0.25)
    follower = ClockFollower()
    follower.start(0.0)
    very_slow = 0.1  # 25 BPM: 3 intervals = 300 ms
    for i in range(10):
        follower.tick(i * very_slow)
    assert follower.dropout_deadline() == pytest.approx(0.9 + 0.3)


def test_ticks_after_a_gap_relearn_the_tempo():
    follower = ClockFollower()
    follower.start(0.0)
    for i in range(30):
        follower.tick(i * interval_of_bpm(90))
    restart = 5.0
    for i in range(3):
        follower.tick(restart + i * interval_of_bpm(150))
    assert follower.tempo.bpm == pytest.approx(150)


def test_note_positions_interpolate_between_ticks_and_stop_at_the_next():
    follower = ClockFollower()
    follower.start(0.0)
    for i in range(10):
        follower.tick(i * 0.02)
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
