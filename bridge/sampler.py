"""DrumSampler: continues a drum grid by sampling a step model, several variations at once.

All variations advance together, one batched model call per step. Steps are drawn from
the class logits (temperature, optional top-k / top-p), the velocity of each hit from the
velocity head's bins; drawn steps are fed back. No TensorFlow here.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES, NUM_STEP_CLASSES
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import DEFAULT_QPM, DrumGrid

# Row s: which drum classes step class s hits (bit d of s is class d).
_STEP_HITS = (np.arange(NUM_STEP_CLASSES)[:, None] >> np.arange(NUM_DRUM_CLASSES) & 1).astype(bool)
_NOISE_BLOCK_STEPS = 16  # steps of random noise drawn per generator call: one bar


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
        self._constant_features = {}  # rows -> the features that stay the same from step to step
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
        self._constant_features.clear()

    @property
    def qpm(self):
        return self._qpm

    @qpm.setter
    def qpm(self, value):
        if not value > 0:
            raise DeepBeatError(f"qpm is {value}; expected a tempo above 0")
        self._qpm = float(value)
        self._constant_features.clear()

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
        positions, tempo, style = self._features_for(len(steps))
        inputs = {
            "step_class": steps,
            "velocity": self.encoding.velocity_features(velocities),
            "position": positions[(self._position + 1) % len(positions)],
            "tempo": tempo,
            "style": style,
        }
        self._class_logits, self._velocity_logits, self._state = self.model.step(inputs, self._state)
        self._position += 1

    def _features_for(self, rows):
        """Position features of every counter value, tempo and style, for `rows` rows.

        Made once per row count and kept until the style or tempo changes: a step then
        only indexes them (the model never writes to its inputs).
        """
        if rows not in self._constant_features:
            self._constant_features[rows] = (
                np.repeat(self._position_table[:, None], rows, axis=1),
                np.full((rows, 1), self.encoding.tempo_feature(self._qpm), np.float32),
                np.full(rows, self._style_id, np.int32),
            )
        return self._constant_features[rows]

    def _sample_velocities(self, num_steps):
        """Sample and feed back `num_steps` steps: velocities [outputs, num_steps, 9]."""
        if self._class_logits is None:
            raise DeepBeatError("nothing to continue: prime or feed the sampler with at least one step first")
        rows = len(self._class_logits)
        velocities = np.zeros((rows, num_steps, NUM_DRUM_CLASSES), np.uint8)
        for t, noise in enumerate(self._gumbel_noise(num_steps, rows)):
            steps, velocities[:, t] = self._draw(*noise)
            self._advance(steps, velocities[:, t])
        return velocities

    def _gumbel_noise(self, num_steps, rows):
        """Per step, Gumbel noise for the class logits [rows, 512] and the velocity logits [rows, 9, bins].

        Drawn a block of steps at a time: one generator call instead of one per step.
        The stream does not depend on how steps are split between calls (draws run
        step-major), so a seed gives the same beat whatever the call pattern.
        """
        bins = self.encoding.velocity_bins
        for start in range(0, num_steps, _NOISE_BLOCK_STEPS):
            uniform = self._rng.random((min(_NOISE_BLOCK_STEPS, num_steps - start), rows,
                                        NUM_STEP_CLASSES + NUM_DRUM_CLASSES * bins), np.float32)
            # float32 is plenty: its noise lies in [-2.8, 16.6], which only rules out values e^-19
            # less likely than the likeliest; u = 0 (p = 2^-24) gives -inf, a value not drawn.
            with np.errstate(divide="ignore"):
                gumbel = -np.log(-np.log(uniform))
            yield from zip(gumbel[..., :NUM_STEP_CLASSES],
                           gumbel[..., NUM_STEP_CLASSES:].reshape(len(gumbel), rows, NUM_DRUM_CLASSES, bins))

    def _draw(self, class_noise, velocity_noise):
        """One step per row from the pending logits, with its velocities; adds to the scores.

        Gumbel-max: argmax(logits / temperature + Gumbel noise) is a draw from the
        softmax, without normalising it (temperature 0: the noise is left out).
        """
        greedy = self._temperature == 0
        shifted = self._class_logits - self._class_logits.max(axis=1, keepdims=True)
        velocity = self._velocity_logits
        if not greedy and self._temperature != 1:
            shifted *= 1.0 / self._temperature
            velocity = velocity * (1.0 / self._temperature)
        if greedy:
            steps, bins = shifted.argmax(axis=1), velocity.argmax(axis=-1)
        else:
            candidates = shifted
            if self.top_k or self.top_p < 1:
                kept = _top_p(_top_k(np.exp(shifted), self.top_k), self.top_p)
                candidates = np.where(kept > 0, shifted, -np.inf)
            steps, bins = (candidates + class_noise).argmax(axis=1), (velocity + velocity_noise).argmax(axis=-1)
        # log-softmax of the drawn step (the full tempered distribution, before top-k / top-p)
        self.scores = self.scores + shifted[np.arange(len(steps)), steps] - np.log(np.exp(shifted).sum(axis=1))
        return steps.astype(np.int32), np.where(_STEP_HITS[steps], self._bin_velocities[bins], 0)

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
