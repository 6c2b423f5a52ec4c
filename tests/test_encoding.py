"""StepEncoding: step integers, input features and velocity bins."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepbeat.drums import class_index
from deepbeat.encoding import (
    FEATURES,
    NUM_STEP_CLASSES,
    StepEncoding,
    hits_of,
    next_position,
    step_of,
)


def test_step_bits_follow_class_order():
    hits = np.zeros((4, 9), bool)
    hits[1, class_index("kick")] = True
    hits[2, [class_index("snare"), class_index("closed_hihat")]] = True
    hits[3] = True
    assert NUM_STEP_CLASSES == 512
    assert step_of(hits).tolist() == [0, 1, 0b110, 511]
    assert np.flatnonzero(hits_of(0b100000101)).tolist() == [0, 2, 8]


@given(st.lists(st.integers(0, NUM_STEP_CLASSES - 1), max_size=64))
def test_steps_and_hits_are_inverse(steps):
    assert step_of(hits_of(steps)).tolist() == steps


def test_velocities_count_as_hits_where_above_zero():
    assert step_of(np.array([[100, 0, 1, 0, 0, 0, 0, 0, 0]], np.uint8)).tolist() == [0b101]


@pytest.mark.parametrize("bad", [-1, 512])
def test_hits_of_refuses_steps_outside_the_vocabulary(bad):
    with pytest.raises(ValueError, match="0-511"):
        hits_of([3, bad])


def test_inputs_describe_the_next_steps_position():
    encoding = StepEncoding(counter_bits=4)
    inputs = encoding.inputs([1, 0, 2], np.zeros((3, 9)), first_position=5, bpm=60.0)
    assert tuple(inputs) == FEATURES
    assert next_position(5) == 6
    np.testing.assert_array_equal(inputs["position"], encoding.position_features([6, 7, 8]))
    assert encoding.position_features(6).tolist() == [-1, 1, 1, -1]  # 6 = 0b0110, lowest bit first
    assert encoding.position_period == 16
    assert inputs["tempo"][0, 0] == pytest.approx(-1.0)  # log2(60 / 120)


def test_hit_velocities_put_bin_centres_where_the_step_hits():
    encoding = StepEncoding(velocity_bins=8)
    velocities = encoding.hit_velocities(np.array([0b11]), np.full((1, 9), 7))
    assert velocities.tolist() == [[encoding.bin_velocity(7)] * 2 + [0] * 7]
