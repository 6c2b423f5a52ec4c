"""DrumSampler: continues a drum grid by sampling a step model, several variations at once.

All variations advance together, one batched model call per step. Steps are drawn from
the class logits (temperature, optional top-k / top-p), the velocity of each hit from the
velocity head's bins; drawn steps are fed back. No TensorFlow here.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import DEFAULT_QPM, DrumGrid

_CLASS_BITS = (1 << np.arange(NUM_DRUM_CLASSES)).astype(np.int32)


@dataclass(frozen=True)
class SamplerSnapshot:
    """An opaque copy of a sampler's progress: state, position, pending logits, scores, random state."""

    state: tuple
    position: int
    class_logits: np.ndarray
    velocity_logits: np.ndarray
    scores: np.ndarray
    rng_state: dict


class DrumSampler:
    """Samples `num_outputs` continuations of a primer from a step model (see StepModel).

    `temperature` (0 = always the likeliest step), `style` and `qpm` may be changed
    between calls. Positions count from the primer's first step, assumed on a bar line.
    """

    def __init__(self, model, *, num_outputs=1, temperature=1.0, top_k=0, top_p=1.0, seed=None,
                 style=None, qpm=DEFAULT_QPM):
        if num_outputs < 1:
            raise DeepBeatError(f"num_outputs is {num_outputs}; expected at least 1")
        if top_k < 0:
            raise DeepBeatError(f"top_k is {top_k}; expected 0 (off) or a positive count")
        if not 0 < top_p <= 1:
            raise DeepBeatError(f"top_p is {top_p}; expected a probability in (0, 1]")
        self.model = model
        self.encoding = model.encoding
        self.num_outputs = num_outputs
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.style = style
        self.qpm = qpm
        self.scores = np.zeros(num_outputs)  # log-likelihood of each output's sampled steps
        self._rng = np.random.default_rng(seed)
        # The counter keeps only the low bits, so positions repeat with this period.
        self._position_table = self.encoding.position_features(np.arange(2 ** self.encoding.counter_bits))
        self._bin_velocities = self.encoding.bin_velocity(np.arange(self.encoding.velocity_bins))
        self._state = None
        self._position = 0
        self._class_logits = self._velocity_logits = None

    @property
    def temperature(self):
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        if not value >= 0:
            raise DeepBeatError(f"temperature is {value}; expected 0 (greedy) or more")
        self._temperature = float(value)

    @property
    def style(self):
        return self._style

    @style.setter
    def style(self, name):
        try:
            self._style_id = self.encoding.style_id(name)
        except ValueError as error:
            raise DeepBeatError(str(error)) from None
        self._style = name

    @property
    def qpm(self):
        return self._qpm

    @qpm.setter
    def qpm(self, value):
        if not value > 0:
            raise DeepBeatError(f"qpm is {value}; expected a tempo above 0")
        self._qpm = float(value)

    @property
    def position(self):
        """The position of the next step, counted from the primer's first step."""
        return self._position

    def prime(self, grid, first_position=0):
        """Reset, then feed every step of `grid`; it starts at `first_position`."""
        if grid.num_steps == 0:
            raise PrimerError("the primer has no steps; expected at least one")
        self._state = self.model.initial_state(1)  # rows are identical until sampling: feed one, then copy
        self._position = first_position
        self._feed(grid)
        self._reorder(np.zeros(self.num_outputs, np.int64))
        self.scores = np.zeros(self.num_outputs)

    def feed(self, grid):
        """Feed more real steps (every output gets them), state carried."""
        if self._state is None:
            self._state = self.model.initial_state(self.num_outputs)
        self._feed(grid)

    def sample(self, num_steps):
        """One DrumGrid of `num_steps` sampled steps per output; the steps are fed back."""
        velocities = self._sample_velocities(num_steps)
        return [DrumGrid(rows, qpm=self.qpm) for rows in velocities]

    def snapshot(self):
        """An opaque copy of the progress so far, for `restore`."""
        return SamplerSnapshot(
            self._state, self._position, self._class_logits, self._velocity_logits,
            self.scores.copy(), self._rng.bit_generator.state,
        )

    def restore(self, snapshot):
        """Return to the progress saved in `snapshot` (live controls keep their current values)."""
        # Arrays are never changed in place (each step makes new ones), so sharing them is safe.
        self._state, self._position = snapshot.state, snapshot.position
        self._class_logits, self._velocity_logits = snapshot.class_logits, snapshot.velocity_logits
        self.scores = snapshot.scores.copy()
        self._rng.bit_generator.state = snapshot.rng_state

    def _feed(self, grid):
        rows = len(self._state[0])
        for step, velocity in zip(grid.steps, grid.velocities):
            self._advance(np.full(rows, step, np.int32), np.broadcast_to(velocity, (rows, NUM_DRUM_CLASSES)))

    def _advance(self, steps, velocities):
        """Run the model on one step per row."""
        rows = len(steps)
        position = self._position_table[(self._position + 1) % len(self._position_table)]
        inputs = {
            "step_class": steps,
            "velocity": self.encoding.velocity_features(velocities),
            "position": np.repeat(position[None], rows, axis=0),
            "tempo": np.full((rows, 1), self.encoding.tempo_feature(self._qpm), np.float32),
            "style": np.full(rows, self._style_id, np.int32),
        }
        self._class_logits, self._velocity_logits, self._state = self.model.step(inputs, self._state)
        self._position += 1

    def _sample_velocities(self, num_steps):
        """Sample and feed back `num_steps` steps: velocities [outputs, num_steps, 9]."""
        if self._class_logits is None:
            raise DeepBeatError("nothing to continue: prime or feed the sampler with at least one step first")
        velocities = np.zeros((len(self._class_logits), num_steps, NUM_DRUM_CLASSES), np.uint8)
        for t in range(num_steps):
            steps, velocities[:, t] = self._draw()
            self._advance(steps, velocities[:, t])
        return velocities

    def _draw(self):
        """One step per row from the pending logits, with its velocities; adds to the scores."""
        rows = len(self._class_logits)
        uniform = self._rng.random((rows, 1 + NUM_DRUM_CLASSES))  # one draw per step keeps seeds stable
        greedy = self._temperature == 0
        scale = 1.0 if greedy else 1.0 / self._temperature
        shifted = self._class_logits * scale
        shifted -= shifted.max(axis=1, keepdims=True)
        weights = np.exp(shifted)  # unnormalised probabilities
        if greedy:
            steps = shifted.argmax(axis=1)
        else:
            steps = _inverse_cdf(_top_p(_top_k(weights, self.top_k), self.top_p), uniform[:, 0])
        chosen = np.arange(rows), steps
        self.scores = self.scores + shifted[chosen] - np.log(weights.sum(axis=1))
        velocity = self._velocity_logits * scale
        bins = velocity.argmax(axis=-1) if greedy else _inverse_cdf(
            np.exp(velocity - velocity.max(axis=-1, keepdims=True)), uniform[:, 1:])
        hits = (steps[:, None] & _CLASS_BITS) != 0
        return steps.astype(np.int32), self._bin_velocities[bins] * hits

    def _reorder(self, rows):
        """Row i continues as old row rows[i] (copies rows for priming and beam search)."""
        self._state = tuple(s[rows] for s in self._state)
        self._class_logits, self._velocity_logits = self._class_logits[rows], self._velocity_logits[rows]
        self.scores = self.scores[rows]


def _top_k(weights, k):
    """Weights outside each row's k largest set to 0 (k = 0: all kept)."""
    if not 0 < k < weights.shape[-1]:
        return weights
    kth = np.partition(weights, -k, axis=-1)[..., -k:-k + 1 or None]
    return np.where(weights >= kth, weights, 0.0)


def _top_p(weights, p):
    """Weights outside each row's smallest set holding share p of the total set to 0 (nucleus sampling)."""
    if p >= 1:
        return weights
    order = np.argsort(-weights, axis=-1)
    ranked = np.take_along_axis(weights, order, axis=-1)
    cumulative = np.cumsum(ranked, axis=-1)
    keep = np.empty_like(ranked, dtype=bool)
    np.put_along_axis(keep, order, cumulative - ranked < p * cumulative[..., -1:], axis=-1)
    return np.where(keep, weights, 0.0)


def _inverse_cdf(weights, uniform):
    """Index drawn from each row of unnormalised probabilities by a uniform number in [0, 1)."""
    cdf = np.cumsum(weights, axis=-1)
    index = (cdf < uniform[..., None] * cdf[..., -1:]).sum(axis=-1)
    return np.minimum(index, weights.shape[-1] - 1)


def beam_search(model, primer, num_steps, *, num_outputs=1, beam_size=1, branch_factor=1, steps_per_iteration=1,
                first_position=0, **sampling):
    """Continuations of `primer` by Magenta's beam search (magenta/common/beam_search.py).

    Per output, beam_size x branch_factor sampled branches run in one batch; every
    `steps_per_iteration` steps the beam_size likeliest are kept and each is copied
    branch_factor times; the likeliest at the end wins. `sampling` takes DrumSampler's
    keyword arguments. Returns one DrumGrid of `num_steps` steps per output.
    """
    for name, value in (("beam_size", beam_size), ("branch_factor", branch_factor),
                        ("steps_per_iteration", steps_per_iteration), ("num_steps", num_steps)):
        if value < 1:
            raise DeepBeatError(f"{name} is {value}; expected at least 1")
    width = beam_size * branch_factor
    sampler = DrumSampler(model, num_outputs=num_outputs * width, **sampling)
    sampler.prime(primer, first_position)
    # The first iteration takes the odd steps so that the later ones are all equal (as Magenta does).
    first = (num_steps - 1) % steps_per_iteration + 1
    history = sampler._sample_velocities(first)
    for _ in range((num_steps - first) // steps_per_iteration):
        groups = sampler.scores.reshape(num_outputs, width)
        best = np.argsort(-groups, axis=1, kind="stable")[:, :beam_size] + width * np.arange(num_outputs)[:, None]
        rows = np.tile(best, (1, branch_factor)).reshape(-1)
        sampler._reorder(rows)
        history = np.concatenate([history[rows], sampler._sample_velocities(steps_per_iteration)], axis=1)
    winners = sampler.scores.reshape(num_outputs, width).argmax(axis=1) + width * np.arange(num_outputs)
    return [DrumGrid(history[row], qpm=sampler.qpm) for row in winners]
