"""DrumSampler and beam search over the tiny fixture model (no TensorFlow)."""
import dataclasses

import numpy as np
import pytest

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import NUM_STEP_CLASSES
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import DrumGrid
from deepbeat.runtime.beam import beam_search
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import FillPlan, Steering
from deepbeat.runtime.stepmodel import StepModel, StepOutputs

from conftest import TINY_MODEL, TINY_MODEL_V2

BACKBEAT = DrumGrid.from_steps([0b101, 0, 0b100, 0, 0b110, 0, 0b100, 0] * 2)  # kick/snare/hat, one bar
FREE = {"variation": 1.0}  # the model as it is, no mix with the bars before
PLAIN, GREEDY = Steering(**FREE), Steering(temperature=0, **FREE)


@pytest.fixture(scope="module")
def model():
    return StepModel.load(TINY_MODEL)


def velocities(grids):
    return np.stack([g.velocities for g in grids])


def log_likelihood(model, primer, continuation, style="any"):
    """Sum of log p(step) of a continuation's steps, computed straight from the step model."""
    grid = primer.concat(continuation)
    inputs = model.encoding.inputs(grid.steps, grid.velocities, 0, model.encoding.style_id(style), grid.bpm)
    state, total = model.initial_state(1), 0.0
    for t in range(grid.num_steps - 1):
        outputs, state = model.step({k: v[t:t + 1] for k, v in inputs.items()}, state)
        if t + 1 >= primer.num_steps:
            logits = outputs.class_logits[0].astype(np.float64)
            total += logits[grid.steps[t + 1]] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    return total


def test_sample_shapes_tempo_and_velocities(model):
    sampler = DrumSampler(model, num_outputs=3, seed=1)
    hiphop = Steering(style="hiphop", **FREE)
    sampler.prime(dataclasses.replace(BACKBEAT, bpm=93.0), hiphop)
    grids = sampler.sample(32, hiphop)
    assert len(grids) == 3 and all(g.num_steps == 32 and g.bpm == 93.0 for g in grids)
    hits = velocities(grids)
    assert hits.any() and hits.max() <= 127
    # each hit lands anywhere inside its drawn velocity bin (dither), not only on the bin centres
    assert len(np.unique(hits[hits > 0])) > 2 * model.encoding.velocity_bins
    assert sampler.position == BACKBEAT.num_steps + 32
    assert not np.stack([g.offsets for g in grids]).any()  # a format-1 model has no timing head: on the grid


def test_greedy_hits_sit_on_bin_centres(model):
    sampler = DrumSampler(model)
    sampler.prime(BACKBEAT, GREEDY)
    hits = velocities(sampler.sample(32, GREEDY))
    centres = set(model.encoding.bin_velocity(np.arange(model.encoding.velocity_bins)).tolist())
    assert hits.any() and set(hits[hits > 0].tolist()) <= centres


def test_a_timing_head_places_each_hit_inside_its_offset_bin():
    model = StepModel.load(TINY_MODEL_V2)
    sampler = DrumSampler(model, num_outputs=8, seed=3)
    primer = DrumGrid(BACKBEAT.velocities, np.where(BACKBEAT.velocities > 0, -0.2, 0.0))
    sampler.prime(primer, PLAIN)
    grids = sampler.sample(32, PLAIN)
    hits = velocities(grids) > 0
    offsets = np.stack([g.offsets for g in grids])
    assert hits.any() and not offsets[~hits].any()
    assert (offsets[hits] >= -0.5).all() and (offsets[hits] < 0.5).all()
    assert len(np.unique(offsets[hits])) > model.encoding.offset_bins  # dithered inside the bins
    greedy = DrumSampler(model)
    greedy.prime(primer, GREEDY)
    grid = greedy.sample(32, GREEDY)[0]
    centres = model.encoding.bin_offset(np.arange(model.encoding.offset_bins))
    assert np.isin(grid.offsets[grid.velocities > 0], centres).all()


def test_seed_reproduces_and_outputs_vary(model):
    def run(seed):
        sampler = DrumSampler(model, num_outputs=4, seed=seed)
        sampler.prime(BACKBEAT, PLAIN)
        return velocities(sampler.sample(32, PLAIN))

    first = run(7)
    assert np.array_equal(first, run(7))
    assert not np.array_equal(first, run(8))
    assert len({row.tobytes() for row in first}) == 4  # the variations differ from each other


def test_seed_stream_does_not_depend_on_the_call_pattern(model):
    """Sampling 36 steps at once or in pieces (across the noise blocks of 16 steps) gives the same beats."""
    def run(*pieces):
        sampler = DrumSampler(model, num_outputs=2, seed=12)
        sampler.prime(BACKBEAT, PLAIN)
        return np.concatenate([velocities(sampler.sample(n, PLAIN)) for n in pieces], axis=1)

    assert np.array_equal(run(36), run(5, 11, 20))


class FixedLogits:
    """A step model (StepModel's interface) whose logits are always the given ones; it keeps the inputs it saw."""

    def __init__(self, encoding, class_probability, velocity_probability, time_keeping=None):
        self.encoding = encoding
        self.time_keeping = time_keeping
        self.class_logits = np.log(np.maximum(class_probability, 1e-30)).astype(np.float32)
        self.velocity_logits = np.log(velocity_probability).astype(np.float32)
        self.seen = []

    def initial_state(self, batch=1):
        return (np.zeros((batch, 1), np.float32),)

    def step(self, inputs, state):
        self.seen.append(inputs)
        rows = len(inputs["step_class"])
        timing = np.zeros((rows, NUM_DRUM_CLASSES, self.encoding.offset_bins), np.float32)
        return StepOutputs(np.tile(self.class_logits, (rows, 1)),
                           np.tile(self.velocity_logits, (rows, NUM_DRUM_CLASSES, 1)),
                           timing if self.encoding.offset_bins else None), state


def test_draws_follow_the_tempered_distribution(model):
    """4000 draws of one step pick each step class and each velocity bin about as often as
    p ** (1 / temperature), normalised, says (5 standard deviations of slack)."""
    draws, temperature = 4000, 0.5
    step_probability = np.zeros(NUM_STEP_CLASSES)
    step_probability[[1, 3, 6]] = 0.5, 0.3, 0.2  # kick, kick + snare, snare + closed hi-hat
    bins = model.encoding.velocity_bins
    velocity_probability = np.arange(1.0, bins + 1) / np.arange(1.0, bins + 1).sum()
    sampler = DrumSampler(FixedLogits(model.encoding, step_probability, velocity_probability), num_outputs=draws,
                          seed=2)
    steering = Steering(temperature=temperature, **FREE)
    sampler.prime(BACKBEAT, steering)
    grids = sampler.sample(1, steering)
    slack = 5 * 0.5 / np.sqrt(draws)

    def tempered(probability):
        weights = probability ** (1 / temperature)
        return weights / weights.sum()

    observed = np.bincount([g.steps[0] for g in grids], minlength=NUM_STEP_CLASSES) / draws
    np.testing.assert_allclose(observed, tempered(step_probability), atol=slack)
    kicks = velocities(grids)[:, 0, 0]
    kicks = kicks[kicks > 0]
    drawn_bins = model.encoding.velocity_bin(kicks)  # dither keeps each velocity inside its bin
    np.testing.assert_allclose(np.bincount(drawn_bins, minlength=bins) / len(kicks), tempered(velocity_probability),
                               atol=slack * 1.5)  # kicks are 80% of the draws


def test_fills_ask_for_the_fill_label_on_their_bars():
    """With fills every 2 bars, the steps whose next position falls in bars 1, 3, ... carry the fill label."""
    encoding = StepModel.load(TINY_MODEL_V2).encoding
    fake = FixedLogits(encoding, np.full(NUM_STEP_CLASSES, 1.0 / NUM_STEP_CLASSES), np.ones(encoding.velocity_bins))
    sampler = DrumSampler(fake, seed=1)
    steering = Steering(fills=FillPlan.parse("every:2"))
    sampler.prime(BACKBEAT, steering)
    sampler.sample(48, steering)
    labels = [int(inputs["label"][0]) for inputs in fake.seen]
    fill = encoding.label_id("fill")
    expected = [fill if (position + 1) // 16 % 2 == 1 else encoding.label_id("beat") for position in range(64)]
    assert labels == expected and fill in labels


def test_greedy_batch_matches_single(model):
    """Temperature 0 is deterministic: every batched output equals a batch-of-one run."""
    single = DrumSampler(model)
    single.prime(BACKBEAT, GREEDY)
    batched = DrumSampler(model, num_outputs=3, seed=5)
    batched.prime(BACKBEAT, GREEDY)
    expected = single.sample(24, GREEDY)[0]
    assert all(grid == expected for grid in batched.sample(24, GREEDY))


def test_top_k_and_top_p_restrict_choices(model):
    def distinct(**options):
        sampler = DrumSampler(model, num_outputs=300, seed=3)
        sampler.prime(BACKBEAT, PLAIN)
        return {int(g.steps[0]) for g in sampler.sample(1, Steering(**options, **FREE))}

    greedy = DrumSampler(model)
    greedy.prime(BACKBEAT, GREEDY)
    likeliest = int(greedy.sample(1, GREEDY)[0].steps[0])
    assert len(distinct()) > 20
    assert distinct(top_k=1) == {likeliest}
    assert len(distinct(top_k=3)) <= 3
    assert distinct(top_p=1e-6) == {likeliest}
    assert 1 < len(distinct(top_p=0.5)) < len(distinct())


def test_temperature_changes_between_calls(model):
    """Turned down to 0 mid-run, the sampler continues as a greedy one primed with the same history."""
    sampler = DrumSampler(model, seed=11)
    sampler.prime(BACKBEAT, PLAIN)
    history = sampler.sample(8, PLAIN)[0]
    continued = sampler.sample(16, GREEDY)[0]
    greedy = DrumSampler(model)
    greedy.prime(BACKBEAT.concat(history), GREEDY)
    assert continued == greedy.sample(16, GREEDY)[0]


def test_snapshot_restore_replays_exactly(model):
    sampler = DrumSampler(model, num_outputs=2, seed=4)
    sampler.prime(BACKBEAT, PLAIN)
    sampler.sample(5, PLAIN)
    snapshot = sampler.snapshot()
    first = velocities(sampler.sample(20, PLAIN))
    sampler.sample(7, PLAIN)
    sampler.restore(snapshot)
    assert sampler.position == BACKBEAT.num_steps + 5
    assert np.array_equal(velocities(sampler.sample(20, PLAIN)), first)


def test_feed_carries_state_like_a_longer_primer(model):
    whole = DrumSampler(model, num_outputs=2, seed=9)
    whole.prime(BACKBEAT.concat(BACKBEAT), PLAIN)
    pieces = DrumSampler(model, num_outputs=2, seed=9)
    pieces.prime(BACKBEAT, PLAIN)
    pieces.feed(BACKBEAT, PLAIN)
    assert pieces.position == whole.position == 32
    assert np.array_equal(velocities(whole.sample(16, PLAIN)), velocities(pieces.sample(16, PLAIN)))


def test_first_position_shifts_the_bar(model):
    def greedy(first_position):
        sampler = DrumSampler(model)
        sampler.prime(BACKBEAT.slice(0, 4), GREEDY, first_position)
        return sampler.sample(16, GREEDY)[0]

    assert greedy(0) != greedy(6)


def test_style_and_tempo_change_between_calls(model):
    def greedy(style="any", bpm=None):
        sampler = DrumSampler(model)
        sampler.prime(BACKBEAT, GREEDY)
        return sampler.sample(16, Steering(temperature=0, style=style, **FREE), bpm=bpm)[0]

    plain = greedy()
    assert greedy(style="jazz") != plain
    assert greedy(bpm=60.0).velocities.tolist() != plain.velocities.tolist()
    assert greedy(bpm=60.0).bpm == 60.0


def test_bad_settings(model):
    sampler = DrumSampler(model)
    with pytest.raises(DeepBeatError, match="unknown style 'polka'"):
        sampler.prime(BACKBEAT, Steering(style="polka"))
    for options, fragment in [({"top_p": 0}, "top-p 0 is outside the range; expected above 0 and at most 1"),
                              ({"top_k": -1}, "top-k -1"), ({"temperature": -0.5}, "temperature -0.5"),
                              ({"temperature": float("inf")}, "temperature inf")]:
        with pytest.raises(DeepBeatError, match=fragment):
            Steering(**options)
    with pytest.raises(DeepBeatError, match="0 outputs"):
        DrumSampler(model, num_outputs=0)
    with pytest.raises(DeepBeatError, match="prime or feed"):
        sampler.sample(4, PLAIN)
    with pytest.raises(PrimerError, match="no steps"):
        sampler.prime(DrumGrid.silent(0), PLAIN)


def test_beam_of_one_is_plain_sampling(model):
    plain = DrumSampler(model, num_outputs=2, seed=21)
    plain.prime(BACKBEAT, PLAIN)
    beamed = beam_search(model, BACKBEAT, 24, PLAIN, num_outputs=2, seed=21, steps_per_iteration=4)
    assert np.array_equal(velocities(beamed), velocities(plain.sample(24, PLAIN)))


def test_beam_search_is_reproducible_and_finds_likelier_beats(model):
    options = dict(num_outputs=2, beam_size=4, branch_factor=4, steps_per_iteration=2, seed=13)
    beamed = beam_search(model, BACKBEAT, 16, PLAIN, **options)
    assert [g.num_steps for g in beamed] == [16, 16]
    assert np.array_equal(velocities(beamed), velocities(beam_search(model, BACKBEAT, 16, PLAIN, **options)))
    sampler = DrumSampler(model, num_outputs=8, seed=13)
    sampler.prime(BACKBEAT, PLAIN)
    sampled = [log_likelihood(model, BACKBEAT, g) for g in sampler.sample(16, PLAIN)]
    assert min(log_likelihood(model, BACKBEAT, g) for g in beamed) > np.mean(sampled)


def test_beam_search_bad_settings(model):
    with pytest.raises(DeepBeatError, match="beam size is 0"):
        beam_search(model, BACKBEAT, 16, PLAIN, beam_size=0)
