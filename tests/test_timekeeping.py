"""TimeKeeping: where each style keeps time, counted from beat bars, carried in a model's metadata, and
the sampler's style prior when the figure heard keeps no time."""
import json

import numpy as np
import pytest

from deepbeat.dataset import Sequence
from deepbeat.drums import NUM_DRUM_CLASSES, class_index
from deepbeat.encoding import NUM_STEP_CLASSES, hits_of, step_of
from deepbeat.grid import DrumGrid
from deepbeat.modelmeta import PREFIX
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import Steering
from deepbeat.runtime.stepmodel import StepModel
from deepbeat.timekeeping import PRIOR_BARS, TimeKeeping

from conftest import TINY_MODEL_V2
from test_sampler import FixedLogits
from test_stepmodel import _expect_one_line_error, _with_props

KICK, SNARE, HAT, RIDE = (class_index(name) for name in ("kick", "snare", "closed_hihat", "ride"))


def bars(*figures):
    """A grid of one bar per figure: {drum: positions}."""
    velocities = np.zeros((16 * len(figures), NUM_DRUM_CLASSES), np.uint8)
    for bar, figure in enumerate(figures):
        for drum, positions in figure.items():
            velocities[[16 * bar + p for p in positions], drum] = 100
    return DrumGrid(velocities)


def sequence(grid, style, beat_type="beat"):
    return Sequence(grid, "source.mid", style, "drummer1", beat_type)


def test_counts_the_time_keepers_of_each_styles_beat_bars():
    ride_on_the_beat = {RIDE: [0, 4, 8, 12], KICK: [0]}
    hats_on_8ths = {HAT: list(range(0, 16, 2)), SNARE: [4, 12]}
    counted = TimeKeeping.of([
        sequence(bars(ride_on_the_beat, ride_on_the_beat), "jazz"),
        sequence(bars(hats_on_8ths), "rock"),
        sequence(bars({HAT: range(16)}), "rock", beat_type="fill"),  # fills keep time differently: left out
    ])
    assert counted.bars == {"jazz": 2, "rock": 1}
    assert counted.hits["jazz"][:, 2].tolist() == [2, 0, 0, 0] * 4 and not counted.hits["jazz"][:, :2].any()
    assert counted.hits["rock"][:, 0].tolist() == [1, 0] * 8
    assert TimeKeeping.from_dict(json.loads(json.dumps(counted.to_dict()))).to_dict() == counted.to_dict()
    # a style's rates lean on all the data's by PRIOR_BARS bars: a style of few bars is not taken at its word
    overall = (2 + 0.5) / (3 + 1)
    assert counted.rates("jazz")[0, 2] == pytest.approx((2 + PRIOR_BARS * overall) / (2 + PRIOR_BARS))
    assert counted.rates("funk")[0, 2] == pytest.approx(overall)  # a style without bars: all the data's


def test_log_odds_favour_the_styles_own_time_keeper_where_it_plays_it():
    counted = TimeKeeping.of([sequence(bars(*[{RIDE: [0, 4, 8, 12]}] * 8), "jazz"),
                              sequence(bars(*[{HAT: range(0, 16, 2)}] * 8), "rock")])
    odds = counted.log_odds("jazz")
    assert odds.shape == (16, NUM_STEP_CLASSES)
    ride, hat, kick = (int(step_of(np.eye(NUM_DRUM_CLASSES)[drum])) for drum in (RIDE, HAT, KICK))
    assert odds[0, ride] > 0 > odds[0, hat] and odds[0, ride] > odds[0, kick] > odds[0, hat]
    assert odds[1, ride] < odds[0, ride]  # jazz rides on the beat, not on the 16th after it
    assert np.allclose(odds[:, kick], odds[:, kick | 1 << SNARE])  # kick and snare are not the style's say here
    assert np.allclose(counted.log_odds("any"), 0)


def test_damaged_counts_are_refused_when_the_model_loads(tmp_path):
    def damage(props):
        summary = json.loads(props.get(PREFIX + "data_summary", "{}"))
        summary["time_keeping"] = {"drums": ["closed_hihat", "open_hihat", "ride"], "bars": {"jazz": 2},
                                   "hits": {"jazz": [[3, 0, 0]] * 16}}  # more hits than bars
        props[PREFIX + "data_summary"] = json.dumps(summary)

    _expect_one_line_error(_with_props(tmp_path, damage, TINY_MODEL_V2), "damaged DeepBeat metadata", "jazz")


def _ride_shares(time_keeping, heard, style, strength=1.0, rows=2000):
    """Which of `rows` single draws play the ride (the other choice is a hat), from a model that gives
    kick + hat and kick + ride the same chance whatever the style."""
    encoding = StepModel.load(TINY_MODEL_V2).encoding
    probability = np.zeros(NUM_STEP_CLASSES)
    probability[[1 | 1 << HAT, 1 | 1 << RIDE]] = 0.5
    sampler = DrumSampler(FixedLogits(encoding, probability, np.ones(encoding.velocity_bins), time_keeping),
                          num_outputs=rows, seed=3)
    steering = Steering(style=style, style_strength=strength, variation=1.0)
    sampler.prime(heard, steering)
    steps = np.array([grid.steps[0] for grid in sampler.sample(1, steering)])
    return hits_of(steps)[:, RIDE]


def test_the_style_keeps_time_when_the_figure_heard_keeps_none():
    counted = TimeKeeping.of([sequence(bars(*[{RIDE: range(16)}] * 20), "jazz"),
                              sequence(bars(*[{HAT: range(16)}] * 20), "rock")])
    skeleton = bars({KICK: [0, 8, 10], SNARE: [4, 12]})
    with_hats = bars({KICK: [0, 8], SNARE: [4, 12], HAT: range(0, 16, 2)})
    assert _ride_shares(counted, skeleton, "jazz").mean() > 0.95
    assert _ride_shares(counted, skeleton, "rock").mean() < 0.05
    assert abs(_ride_shares(counted, skeleton, "any").mean() - 0.5) < 0.05
    # what the player kept time with stays theirs: the style adds nothing, draw for draw
    assert np.array_equal(_ride_shares(counted, with_hats, "jazz"), _ride_shares(counted, with_hats, "any"))
    # at strength 0 the style is ignored, and a model without counts has no such prior
    assert np.array_equal(_ride_shares(counted, skeleton, "jazz", strength=0.0),
                          _ride_shares(counted, skeleton, "any", strength=0.0))
    assert np.array_equal(_ride_shares(None, skeleton, "jazz"), _ride_shares(None, skeleton, "any"))


def test_variation_copies_what_the_player_played_and_leaves_the_time_keeping_to_the_style():
    """At variation 0 the figure heard is copied. When it keeps no time and the style has its say, only what the
    player played is copied (the kick here); the copied step's hats and ride are the style's and the model's."""
    counted = TimeKeeping.of([sequence(bars(*[{RIDE: range(16)}] * 20), "jazz"),
                              sequence(bars(*[{HAT: range(16)}] * 20), "rock")])
    encoding = StepModel.load(TINY_MODEL_V2).encoding
    uniform = FixedLogits(encoding, np.full(NUM_STEP_CLASSES, 1.0 / NUM_STEP_CLASSES), np.ones(encoding.velocity_bins),
                          counted)

    def first_steps(style):
        sampler = DrumSampler(uniform, num_outputs=2000, seed=5)
        steering = Steering(style=style, variation=0.0)
        sampler.prime(bars({KICK: [0, 8, 10], SNARE: [4, 12]}), steering)  # the next step copies step 0: a kick
        return hits_of([grid.steps[0] for grid in sampler.sample(1, steering)])

    jazz, plain = first_steps("jazz"), first_steps("any")
    assert jazz[:, KICK].mean() > 0.9 and plain[:, KICK].mean() > 0.9  # the player's kick stays
    assert jazz[:, RIDE].mean() > 0.8 and not jazz[:, SNARE][jazz[:, RIDE]].mean() > 0.1
    assert plain[:, RIDE].mean() < 0.1  # no style: the whole step is copied, time keeping (none) and all
