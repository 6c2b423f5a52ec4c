"""DrumSampler and beam search over the tiny fixture model (no TensorFlow)."""
from pathlib import Path

import numpy as np
import pytest

from deepbeat.bridge.sampler import DrumSampler, beam_search
from deepbeat.bridge.stepmodel import StepModel
from deepbeat.drums import NUM_DRUM_CLASSES, NUM_STEP_CLASSES
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import DrumGrid

TINY_MODEL = Path(__file__).parent / "fixtures" / "tiny_model.onnx"  # see fixtures/README-models.md
BACKBEAT = DrumGrid.from_steps([0b101, 0, 0b100, 0, 0b110, 0, 0b100, 0] * 2)  # kick/snare/hat, one bar


@pytest.fixture(scope="module")
def model():
    return StepModel.load(TINY_MODEL)


def velocities(grids):
    return np.stack([g.velocities for g in grids])


def log_likelihood(model, primer, continuation, style="any", qpm=120.0):
    """Sum of log p(step) of a continuation's steps, computed straight from the step model."""
    grid = primer.concat(continuation)
    inputs = model.encoding.inputs(grid.steps, grid.velocities, 0, model.encoding.style_id(style), qpm)
    state, total = model.initial_state(1), 0.0
    for t in range(grid.num_steps - 1):
        logits, _, state = model.step({k: v[t:t + 1] for k, v in inputs.items()}, state)
        if t + 1 >= primer.num_steps:
            logits = logits[0].astype(np.float64)
            total += logits[grid.steps[t + 1]] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    return total


def test_sample_shapes_tempo_and_velocities(model):
    sampler = DrumSampler(model, num_outputs=3, seed=1, qpm=93.0, style="hiphop")
    sampler.prime(BACKBEAT)
    grids = sampler.sample(32)
    assert len(grids) == 3 and all(g.num_steps == 32 and g.qpm == 93.0 for g in grids)
    hits = velocities(grids)
    allowed = set(model.encoding.bin_velocity(np.arange(model.encoding.velocity_bins)).tolist())
    assert hits.any() and set(hits[hits > 0].tolist()) <= allowed
    assert sampler.position == BACKBEAT.num_steps + 32


def test_seed_reproduces_and_outputs_vary(model):
    def run(seed):
        sampler = DrumSampler(model, num_outputs=4, seed=seed)
        sampler.prime(BACKBEAT)
        return velocities(sampler.sample(32))

    first = run(7)
    assert np.array_equal(first, run(7))
    assert not np.array_equal(first, run(8))
    assert len({row.tobytes() for row in first}) == 4  # the variations differ from each other


def test_seed_stream_does_not_depend_on_the_call_pattern(model):
    """Sampling 36 steps at once or in pieces (across the noise blocks of 16 steps) gives the same beats."""
    def run(*pieces):
        sampler = DrumSampler(model, num_outputs=2, seed=12)
        sampler.prime(BACKBEAT)
        return np.concatenate([velocities(sampler.sample(n)) for n in pieces], axis=1)

    assert np.array_equal(run(36), run(5, 11, 20))


class FixedLogits:
    """A step model (StepModel's interface) whose logits are always the given ones."""

    def __init__(self, encoding, class_probability, velocity_probability):
        self.encoding = encoding
        self.class_logits = np.log(np.maximum(class_probability, 1e-30)).astype(np.float32)
        self.velocity_logits = np.log(velocity_probability).astype(np.float32)

    def initial_state(self, batch=1):
        return (np.zeros((batch, 1), np.float32),)

    def step(self, inputs, state):
        rows = len(inputs["step_class"])
        return (np.tile(self.class_logits, (rows, 1)),
                np.tile(self.velocity_logits, (rows, NUM_DRUM_CLASSES, 1)), state)


def test_draws_follow_the_tempered_distribution(model):
    """4000 draws of one step pick each step class and each velocity bin about as often as
    p ** (1 / temperature), normalised, says (5 standard deviations of slack)."""
    draws, temperature = 4000, 0.5
    step_probability = np.zeros(NUM_STEP_CLASSES)
    step_probability[[1, 3, 6]] = 0.5, 0.3, 0.2  # kick, kick + snare, snare + closed hi-hat
    bins = model.encoding.velocity_bins
    velocity_probability = np.arange(1.0, bins + 1) / np.arange(1.0, bins + 1).sum()
    sampler = DrumSampler(FixedLogits(model.encoding, step_probability, velocity_probability), num_outputs=draws,
                          temperature=temperature, seed=2)
    sampler.prime(BACKBEAT)
    grids = sampler.sample(1)
    slack = 5 * 0.5 / np.sqrt(draws)

    def tempered(probability):
        weights = probability ** (1 / temperature)
        return weights / weights.sum()

    observed = np.bincount([g.steps[0] for g in grids], minlength=NUM_STEP_CLASSES) / draws
    np.testing.assert_allclose(observed, tempered(step_probability), atol=slack)
    kicks = velocities(grids)[:, 0, 0]
    kicks = kicks[kicks > 0]
    bin_velocities = model.encoding.bin_velocity(np.arange(bins))
    np.testing.assert_allclose((kicks[:, None] == bin_velocities).mean(axis=0), tempered(velocity_probability),
                               atol=slack * 1.5)  # kicks are 80% of the draws


def test_greedy_batch_matches_single(model):
    """Temperature 0 is deterministic: every batched output equals a batch-of-one run."""
    single = DrumSampler(model, temperature=0)
    single.prime(BACKBEAT)
    batched = DrumSampler(model, num_outputs=3, temperature=0, seed=5)
    batched.prime(BACKBEAT)
    expected = single.sample(24)[0]
    assert all(grid == expected for grid in batched.sample(24))


def test_top_k_and_top_p_restrict_choices(model):
    def distinct(**options):
        sampler = DrumSampler(model, num_outputs=300, seed=3, **options)
        sampler.prime(BACKBEAT)
        return {int(g.steps[0]) for g in sampler.sample(1)}

    greedy = DrumSampler(model, temperature=0)
    greedy.prime(BACKBEAT)
    likeliest = int(greedy.sample(1)[0].steps[0])
    assert len(distinct()) > 20
    assert distinct(top_k=1) == {likeliest}
    assert len(distinct(top_k=3)) <= 3
    assert distinct(top_p=1e-6) == {likeliest}
    assert 1 < len(distinct(top_p=0.5)) < len(distinct())


def test_temperature_changes_between_calls(model):
    """Turned down to 0 mid-run, the sampler continues as a greedy one primed with the same history."""
    sampler = DrumSampler(model, seed=11)
    sampler.prime(BACKBEAT)
    history = sampler.sample(8)[0]
    sampler.temperature = 0
    continued = sampler.sample(16)[0]
    greedy = DrumSampler(model, temperature=0)
    greedy.prime(BACKBEAT.concat(history))
    assert continued == greedy.sample(16)[0]


def test_snapshot_restore_replays_exactly(model):
    sampler = DrumSampler(model, num_outputs=2, seed=4)
    sampler.prime(BACKBEAT)
    sampler.sample(5)
    snapshot = sampler.snapshot()
    first = velocities(sampler.sample(20))
    sampler.sample(7)
    sampler.restore(snapshot)
    assert sampler.position == BACKBEAT.num_steps + 5
    assert np.array_equal(velocities(sampler.sample(20)), first)


def test_feed_carries_state_like_a_longer_primer(model):
    whole = DrumSampler(model, num_outputs=2, seed=9)
    whole.prime(BACKBEAT.concat(BACKBEAT))
    pieces = DrumSampler(model, num_outputs=2, seed=9)
    pieces.prime(BACKBEAT)
    pieces.feed(BACKBEAT)
    assert pieces.position == whole.position == 32
    assert np.array_equal(velocities(whole.sample(16)), velocities(pieces.sample(16)))


def test_first_position_shifts_the_bar(model):
    def greedy(first_position):
        sampler = DrumSampler(model, temperature=0)
        sampler.prime(BACKBEAT.slice(0, 4), first_position)
        return sampler.sample(16)[0]

    assert greedy(0) != greedy(6)


def test_style_and_qpm_are_live_controls(model):
    def greedy(**controls):
        sampler = DrumSampler(model, temperature=0)
        sampler.prime(BACKBEAT)
        for name, value in controls.items():
            setattr(sampler, name, value)
        return sampler.sample(16)[0]

    plain = greedy()
    assert greedy(style="jazz") != plain
    assert greedy(qpm=60.0).velocities.tolist() != plain.velocities.tolist()
    assert greedy(qpm=60.0).qpm == 60.0


def test_bad_settings(model):
    with pytest.raises(DeepBeatError, match="unknown style 'polka'"):
        DrumSampler(model, style="polka")
    sampler = DrumSampler(model)
    with pytest.raises(DeepBeatError, match="unknown style"):
        sampler.style = "polka"
    for options, fragment in [({"top_p": 0}, "top_p"), ({"top_k": -1}, "top_k"), ({"num_outputs": 0}, "num_outputs"),
                              ({"temperature": -0.5}, "temperature"), ({"qpm": 0}, "qpm")]:
        with pytest.raises(DeepBeatError, match=fragment):
            DrumSampler(model, **options)
    with pytest.raises(DeepBeatError, match="prime or feed"):
        sampler.sample(4)
    with pytest.raises(PrimerError, match="no steps"):
        sampler.prime(DrumGrid.silent(0))


def test_beam_of_one_is_plain_sampling(model):
    plain = DrumSampler(model, num_outputs=2, seed=21)
    plain.prime(BACKBEAT)
    beamed = beam_search(model, BACKBEAT, 24, num_outputs=2, seed=21, steps_per_iteration=4)
    assert np.array_equal(velocities(beamed), velocities(plain.sample(24)))


def test_beam_search_is_reproducible_and_finds_likelier_beats(model):
    options = dict(num_outputs=2, beam_size=4, branch_factor=4, steps_per_iteration=2, seed=13)
    beamed = beam_search(model, BACKBEAT, 16, **options)
    assert [g.num_steps for g in beamed] == [16, 16]
    assert np.array_equal(velocities(beamed), velocities(beam_search(model, BACKBEAT, 16, **options)))
    sampler = DrumSampler(model, num_outputs=8, seed=13)
    sampler.prime(BACKBEAT)
    sampled = [log_likelihood(model, BACKBEAT, g) for g in sampler.sample(16)]
    assert min(log_likelihood(model, BACKBEAT, g) for g in beamed) > np.mean(sampled)


def test_beam_search_bad_settings(model):
    with pytest.raises(DeepBeatError, match="beam_size"):
        beam_search(model, BACKBEAT, 16, beam_size=0)
