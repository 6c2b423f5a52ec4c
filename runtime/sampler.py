"""DrumSampler: continues a drum grid by sampling a step model, several variations at once.

All variations advance together, one batched model call per step. Steps are drawn from
the class logits (temperature, optional top-k / top-p), the velocity of each hit from the
velocity head's bins; drawn steps are fed back. How to sample (a Steering) is given with
every call, so the caller alone owns it. No TensorFlow here.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import NUM_STEP_CLASSES, next_position
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import DrumGrid
from deepbeat.tempo import DEFAULT_BPM

from .steering import SettingError

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

    Positions count from the primer's first step, assumed on a bar line. The tempo is the
    primer's (or the one given to `sample`).
    """

    def __init__(self, model, *, num_outputs=1, seed=None):
        if num_outputs < 1:
            raise DeepBeatError(f"{num_outputs} outputs asked for; expected at least 1")
        self.model = model
        self.encoding = model.encoding
        self.num_outputs = num_outputs
        self.bpm = DEFAULT_BPM
        self.scores = np.zeros(num_outputs)  # log-likelihood of each output's sampled steps
        self._rng = np.random.default_rng(seed)
        self._constant_features = {}  # (rows, style id, bpm) -> the features that stay the same between steps
        # The counter keeps only the low bits, so positions repeat with this period.
        self._position_table = self.encoding.position_features(np.arange(self.encoding.position_period))
        self._state = None
        self._position = 0
        self._class_logits = self._velocity_logits = None

    @property
    def position(self):
        """The position of the next step, counted from the primer's first step."""
        return self._position

    def style_id(self, steering):
        """The model's index of the steering's style; SettingError when the model does not know it."""
        try:
            return self.encoding.style_id(steering.style)
        except ValueError as error:
            raise SettingError(str(error)) from None

    def prime(self, grid, steering, first_position=0):
        """Reset, then feed every step of `grid`; it starts at `first_position`."""
        if grid.num_steps == 0:
            raise PrimerError("the primer has no steps; expected at least one")
        self._state = self.model.initial_state(1)  # rows are identical until sampling: feed one, then copy
        self._position = first_position
        self._feed(grid, steering)
        self.reorder(np.zeros(self.num_outputs, np.int64))
        self.scores = np.zeros(self.num_outputs)

    def feed(self, grid, steering):
        """Feed more real steps (every output gets them), state carried."""
        if self._state is None:
            self._state = self.model.initial_state(self.num_outputs)
        self._feed(grid, steering)

    def sample(self, num_steps, steering, bpm=None):
        """One DrumGrid of `num_steps` sampled steps per output; the steps are fed back."""
        if bpm is not None:
            self.bpm = bpm
        return [DrumGrid(rows, bpm=self.bpm) for rows in self.sample_rows(num_steps, steering)]

    def snapshot(self):
        """An opaque copy of the progress so far, for `restore`."""
        return SamplerSnapshot(
            self._state, self._position, self._class_logits, self._velocity_logits,
            self.scores.copy(), self._rng.bit_generator.state,
        )

    def restore(self, snapshot):
        """Return to the progress saved in `snapshot`."""
        # Arrays are never changed in place (each step makes new ones), so sharing them is safe.
        self._state, self._position = snapshot.state, snapshot.position
        self._class_logits, self._velocity_logits = snapshot.class_logits, snapshot.velocity_logits
        self.scores = snapshot.scores.copy()
        self._rng.bit_generator.state = snapshot.rng_state

    def _feed(self, grid, steering):
        self.bpm = grid.bpm
        rows = len(self._state[0])
        for step, velocity in zip(grid.steps, grid.velocities):
            self._advance(np.full(rows, step, np.int32), np.broadcast_to(velocity, (rows, NUM_DRUM_CLASSES)), steering)

    def _advance(self, steps, velocities, steering):
        """Run the model on one step per row."""
        positions, tempo, style = self._features_for(len(steps), self.style_id(steering))
        inputs = {
            "step_class": steps,
            "velocity": self.encoding.velocity_features(velocities),
            "position": positions[next_position(self._position) % len(positions)],
            "tempo": tempo,
            "style": style,
        }
        self._class_logits, self._velocity_logits, self._state = self.model.step(inputs, self._state)
        self._position += 1

    def _features_for(self, rows, style_id):
        """Position features of every counter value, tempo and style, for `rows` rows.

        Made once per row count, style and tempo: a step then only indexes them (the model
        never writes to its inputs).
        """
        key = (rows, style_id, self.bpm)
        if key not in self._constant_features:
            self._constant_features[key] = (
                np.repeat(self._position_table[:, None], rows, axis=1),
                np.full((rows, 1), self.encoding.tempo_feature(self.bpm), np.float32),
                np.full(rows, style_id, np.int32),
            )
        return self._constant_features[key]

    def sample_rows(self, num_steps, steering):
        """Sample and feed back `num_steps` steps: velocities [rows, num_steps, 9]."""
        if self._class_logits is None:
            raise DeepBeatError("nothing to continue: prime or feed the sampler with at least one step first")
        rows = len(self._class_logits)
        velocities = np.zeros((rows, num_steps, NUM_DRUM_CLASSES), np.uint8)
        for t, noise in enumerate(self._gumbel_noise(num_steps, rows)):
            steps, velocities[:, t] = self._draw(steering, *noise)
            self._advance(steps, velocities[:, t], steering)
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

    def _draw(self, steering, class_noise, velocity_noise):
        """One step per row from the pending logits, with its velocities; adds to the scores.

        Gumbel-max: argmax(logits / temperature + Gumbel noise) is a draw from the
        softmax, without normalising it (temperature 0: the noise is left out).
        """
        temperature = steering.temperature
        greedy = temperature == 0
        shifted = self._class_logits - self._class_logits.max(axis=1, keepdims=True)
        velocity = self._velocity_logits
        if not greedy and temperature != 1:
            shifted *= 1.0 / temperature
            velocity = velocity * (1.0 / temperature)
        if greedy:
            steps, bins = shifted.argmax(axis=1), velocity.argmax(axis=-1)
        else:
            candidates = shifted
            if steering.top_k or steering.top_p < 1:
                kept = _top_p(_top_k(np.exp(shifted), steering.top_k), steering.top_p)
                candidates = np.where(kept > 0, shifted, -np.inf)
            steps, bins = (candidates + class_noise).argmax(axis=1), (velocity + velocity_noise).argmax(axis=-1)
        # log-softmax of the drawn step (the full tempered distribution, before top-k / top-p)
        self.scores = self.scores + shifted[np.arange(len(steps)), steps] - np.log(np.exp(shifted).sum(axis=1))
        return steps.astype(np.int32), self.encoding.hit_velocities(steps, bins)

    def reorder(self, rows):
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
