"""Count baselines: hand-computed probabilities on tiny sequences, normalisation, summed metrics."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepbeat.training.baselines import (
    InterpolatedNGram, RepeatPreviousBar, Unigram, Uniform, all_baselines, baseline_sums, context_features,
)

V = 512  # step classes


def nll(baseline, sequence, bar=16):
    return baseline_sums(baseline, [(np.array(sequence), bar)])["class_nll"]


def test_uniform_is_log_512_per_step():
    assert nll(Uniform().fit([]), [0, 5, 9]) == pytest.approx(2 * math.log(V))


def test_unigram_is_add_half_smoothed_target_frequencies():
    unigram = Unigram().fit([(np.array([0, 1, 1, 2]), 16)])  # targets 1, 1, 2
    assert unigram.distribution[1] == pytest.approx(2.5 / (3 + 0.5 * V))
    sums = baseline_sums(unigram, [(np.array([5, 1, 0]), 16)])  # targets 1 and 0
    assert sums["class_nll"] == pytest.approx(-math.log(2.5 / 259) - math.log(0.5 / 259))
    assert (sums["steps"], sums["correct"], sums["events"], sums["event_correct"], sums["no_event_correct"]) == (
        2, 1, 1, 1, 0)


def test_repeat_previous_bar_mixes_the_bar_before_with_the_unigram():
    # bar of 2 steps; targets 2 1 3 1 2, the step a bar earlier matches 2 of the 4 that have one
    model = RepeatPreviousBar().fit([(np.array([1, 2, 1, 3, 1, 2]), 2)])
    assert model.change_rate == pytest.approx(0.5)
    u = {1: 2.5 / 261, 2: 2.5 / 261}
    expected = -math.log(u[2]) - 2 * math.log(0.5 + 0.5 * u[1])
    assert nll(model, [1, 2, 1, 2], bar=2) == pytest.approx(expected)
    probabilities = model.probabilities(np.array([1, 2, 1, 2]), 2)
    assert list(probabilities.argmax(1)[1:]) == [1, 2]


def test_witten_bell_interpolates_seen_contexts_and_backs_off_for_unseen_ones():
    model = InterpolatedNGram("bigram", ("previous",)).fit([(np.array([0, 1, 0, 1, 0, 2]), 16)])
    u = lambda count: (count + 0.5) / 261  # noqa: E731  unigram of targets 1 0 1 0 2
    # after 0: targets 1, 1, 2 -> n = 3, T = 2 distinct
    assert nll(model, [0, 2]) == pytest.approx(-math.log((1 + 2 * u(1)) / (3 + 2)))
    assert nll(model, [0, 1]) == pytest.approx(-math.log((2 + 2 * u(2)) / (3 + 2)))
    # 3 was never a context: the unigram
    assert nll(model, [3, 1]) == pytest.approx(-math.log(u(2)))


def test_context_features_look_back_within_the_sequence_only():
    features = context_features(np.array([7, 8, 9, 10, 11]), 4)
    assert list(features["position"]) == [1, 2, 3, 0]
    assert list(features["previous"]) == [7, 8, 9, 10]
    assert list(features["previous_2"]) == [V, 7, 8, 9]
    assert list(features["bar_before"]) == [V, V, V, 7]


sequences = st.lists(st.lists(st.integers(0, V - 1), min_size=2, max_size=40), min_size=1, max_size=4)


@given(train=sequences, test=sequences)
def test_every_baseline_gives_a_distribution_for_every_target(train, test):
    for baseline in all_baselines():
        baseline.fit([(np.array(s), 4) for s in train])
        for sequence in test:
            probabilities = baseline.probabilities(np.array(sequence), 4)
            assert probabilities.shape == (len(sequence) - 1, V)
            np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-9)
            assert np.all(probabilities > 0)


def test_a_repeating_groove_is_learned_by_the_bar_aware_baselines():
    groove = np.tile([1, 0, 4, 0, 2, 0, 4, 0], 8)
    train = [(groove, 8)]
    scores = {b.name: nll(b.fit(train), groove, bar=8) / (len(groove) - 1) for b in all_baselines()}
    assert scores["bar-aware n-gram"] < scores["unigram"] < scores["uniform"]
    assert scores["repeat previous bar"] < scores["unigram"]
