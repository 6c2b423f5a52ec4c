"""DrumSampler: continues a drum grid by sampling a step model, several variations at once.

All variations advance together, one batched model call per step. Steps are drawn from
the class logits; each hit's velocity from the velocity head's bins and, with a timing head, its
offset from the offset head's bins, each placed at a random point inside its bin (dither) so
that velocities and timing take every value, not only bin centres; drawn steps are fed back.

How to sample (a Steering) is given with every call, so the caller alone owns it. Its controls
shape the step distribution in this order: style guidance (the same step run with the style and
with "any" in one batched call, logits mixed by the style strength), temperature, the style's time
keeping (when the figure heard keeps no time: no hats, no ride), density (a bias per hit), variation
(a mix with the steps one and two bars back), locked drums (steps whose locked drums differ from the
figure last heard are ruled out), then top-k / top-p. No TensorFlow here.
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import ANY_STYLE, BEAT, FILL, NUM_STEP_CLASSES, STEP_HITS, next_position, step_of
from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.musical import TIME_KEEPERS
from deepbeat.tempo import DEFAULT_BPM

from .steering import SettingError

_NOISE_BLOCK_STEPS = 16  # steps of random noise drawn per generator call: one bar
_HITS_PER_STEP = STEP_HITS.sum(axis=1).astype(np.float32)
# How far the style's time keeping (its log-odds against all styles) moves each step at style strength 1;
# 1 alone leaves a jazz ride at 9 % of the time keeping after a kick-and-snare skeleton (docs/BENCHMARKS.md).
TIME_KEEPING_WEIGHT = 2.0
DENSITY_BIAS = 0.6  # log-odds per hit at density 1 (docs/BENCHMARKS.md: onsets per bar against density)
COPY_AT_ZERO_VARIATION = 0.95  # at variation 0 the model keeps 5% of its say: small changes only
COPY_WEIGHTS = {STEPS_PER_BAR: 2 / 3, 2 * STEPS_PER_BAR: 1 / 3}  # one and two bars back
NO_STEP = -1
_COPY_COLUMNS = np.array([-distance for distance in COPY_WEIGHTS])  # where those steps sit in the history
# Which of those steps are known, as bits (bit i: the i-th distance), and each distance's share of the copy
# for every such combination: the known ones' weights, normalised (a row knowing none copies nothing).
_KNOWN_BITS = 1 << np.arange(len(COPY_WEIGHTS))
_COPY_SHARES = np.array([[weight * (combination >> i & 1) for i, weight in enumerate(COPY_WEIGHTS.values())]
                         for combination in range(2 ** len(COPY_WEIGHTS))])
_COPY_SHARES /= np.maximum(_COPY_SHARES.sum(axis=1, keepdims=True), 1e-300)


def _bits(drums):
    """The step bits of a set of drum class indices."""
    return int(step_of(np.isin(np.arange(NUM_DRUM_CLASSES), list(drums))))


_KEEPER_BITS = _bits(TIME_KEEPERS)
# every combination of the time keepers, as step bits: a step's variants that differ only in its time keeping
_KEEPER_VARIANTS = np.array([_bits(d for i, d in enumerate(TIME_KEEPERS) if k >> i & 1)
                             for k in range(2 ** len(TIME_KEEPERS))])


@dataclass(frozen=True)
class SamplerSnapshot:
    """An opaque copy of a sampler's progress: state, position, pending outputs, scores, random state."""

    state: tuple
    branched: bool
    position: int
    outputs: object
    history: np.ndarray
    heard: "Figure"
    scores: np.ndarray
    rng_state: dict


@dataclass(frozen=True)
class Draws:
    """Sampled steps of every row: velocities and offsets [rows, steps, 9]."""

    velocities: np.ndarray
    offsets: np.ndarray

    def rows(self, rows):
        return Draws(self.velocities[rows], self.offsets[rows])

    def then(self, later):
        """These steps followed by `later`'s."""
        return Draws(np.concatenate([self.velocities, later.velocities], 1),
                     np.concatenate([self.offsets, later.offsets], 1))

    def grids(self, bpm):
        return [DrumGrid(v, o, bpm=bpm) for v, o in zip(self.velocities, self.offsets)]


class DrumSampler:
    """Samples `num_outputs` continuations of a primer from a step model (see StepModel).

    Positions count from the primer's first step, assumed on a bar line; bar numbers (for
    fills) count from there too. The tempo is the primer's (or the one given to `sample`).
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
        self._time_keeping = model.time_keeping  # None: the model carries no time-keeping counts
        self._time_keeping_odds = {}  # style -> [16, 512] log-odds (TimeKeeping.log_odds)
        # State and pending outputs of every row; while style guidance is on (branched), the style's rows are
        # followed by as many of the any-style branch, and one model call runs both
        self._state = self._outputs = None
        self._branched = False
        self._position = 0
        self._history = np.full((num_outputs, 2 * STEPS_PER_BAR), NO_STEP, np.int32)  # last steps, newest last
        self._heard = Figure.silent()  # the figure last heard, by bar position
        self._shaping = None  # (steering key, figure heard, Shaping) of the last step drawn

    @property
    def position(self):
        """The position of the next step, counted from the primer's first step."""
        return self._position

    @property
    def timing(self):
        """Whether the model has a timing head (format 2): sampled steps carry offsets."""
        return bool(self.encoding.offset_bins)

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
        self._branched = steering.guided
        self._state = self.model.initial_state(1 + self._branched)  # rows are alike until sampling: feed one, then copy
        self._history = np.full((1, 2 * STEPS_PER_BAR), NO_STEP, np.int32)
        self._heard = Figure.silent()
        self._position = first_position
        self._feed(grid, steering)
        self.reorder(np.zeros(self.num_outputs, np.int64))
        self.scores = np.zeros(self.num_outputs)

    def feed(self, grid, steering):
        """Feed more real steps (every output gets them), state carried."""
        if self._state is None:
            self._state = self.model.initial_state(self.num_outputs)
            self._history = np.full((self.num_outputs, 2 * STEPS_PER_BAR), NO_STEP, np.int32)
        self._feed(grid, steering)

    def sample(self, num_steps, steering, bpm=None):
        """One DrumGrid of `num_steps` sampled steps per output; the steps are fed back."""
        if bpm is not None:
            self.bpm = bpm
        return self.sample_rows(num_steps, steering).grids(self.bpm)

    def snapshot(self):
        """An opaque copy of the progress so far, for `restore`."""
        return SamplerSnapshot(self._state, self._branched, self._position, self._outputs, self._history,
                               self._heard, self.scores.copy(), self._rng.bit_generator.state)

    def restore(self, snapshot):
        """Return to the progress saved in `snapshot`."""
        # Arrays are never changed in place (each step makes new ones), so sharing them is safe.
        self._state, self._branched, self._position = snapshot.state, snapshot.branched, snapshot.position
        self._outputs = snapshot.outputs
        self._history, self._heard = snapshot.history, snapshot.heard
        self.scores = snapshot.scores.copy()
        self._rng.bit_generator.state = snapshot.rng_state

    def _feed(self, grid, steering):
        """Feed real steps; the last bar of them becomes the figure locked drums keep."""
        self.bpm = grid.bpm
        rows = len(self._history)
        steps, velocities, offsets = (array.copy() for array in (self._heard.steps, self._heard.velocities,
                                                                   self._heard.offsets))
        for step, velocity, offset in zip(grid.steps, grid.velocities, grid.offsets):
            position = self._position % STEPS_PER_BAR
            steps[position], velocities[position], offsets[position] = step, velocity, offset
            self._advance(np.full(rows, step, np.int32), np.broadcast_to(velocity, (rows, NUM_DRUM_CLASSES)),
                          np.broadcast_to(offset, (rows, NUM_DRUM_CLASSES)), steering)
        self._heard = Figure(steps, velocities, offsets)

    def _advance(self, steps, velocities, offsets, steering):
        """Run the model on one step per row (and its any-style branch in the same call, while guidance is on)."""
        self._history = np.concatenate([self._history[:, 1:], steps[:, None]], axis=1)
        rows = len(steps)
        if steering.guided != self._branched:  # guidance turned on (branch from here) or off mid-stream
            kept = np.tile(np.arange(rows), 2) if steering.guided else np.arange(rows)
            self._state = tuple(s[kept] for s in self._state)
            self._outputs = None if self._outputs is None else self._outputs.rows(kept)
            self._branched = steering.guided
        upcoming = next_position(self._position)
        label = FILL if steering.fills.is_fill(upcoming // STEPS_PER_BAR) else BEAT
        positions, tempo, style, labels = self._features_for(rows, self.style_id(steering), self._branched)
        velocity = self.encoding.velocity_features(velocities)
        offset = self.encoding.offset_features(velocities, offsets)
        if self._branched:
            steps, velocity, offset = (np.concatenate([a, a]) for a in (steps, velocity, offset))
        inputs = {"step_class": steps, "velocity": velocity, "offset": offset,
                  "position": positions[upcoming % len(positions)], "tempo": tempo, "style": style,
                  "label": labels[label]}
        self._outputs, self._state = self.model.step(inputs, self._state)
        self._position += 1

    def _features_for(self, rows, style_id, guided):
        """Position features of every counter value, tempo, style and each bar label, for `rows` rows (twice as
        many while guided: the style's rows, then the any-style branch's).

        Made once per row count, style and tempo: a step then only indexes them (the model never writes
        to its inputs).
        """
        key = (rows, style_id, guided, self.bpm)
        if key not in self._constant_features:
            styles = [style_id] + [self.encoding.style_id(ANY_STYLE)] * guided
            count = rows * len(styles)
            self._constant_features[key] = (
                np.repeat(self._position_table[:, None], count, axis=1),
                np.full((count, 1), self.encoding.tempo_feature(self.bpm), np.float32),
                np.repeat(np.array(styles, np.int32), rows),
                {label: np.full(count, self.encoding.label_id(label), np.int32) for label in (BEAT, FILL)},
            )
        return self._constant_features[key]

    def sample_rows(self, num_steps, steering):
        """Sample and feed back `num_steps` steps of every row: Draws [rows, num_steps, 9]."""
        if self._outputs is None:
            raise DeepBeatError("nothing to continue: prime or feed the sampler with at least one step first")
        rows = len(self._history)
        velocities = np.zeros((rows, num_steps, NUM_DRUM_CLASSES), np.uint8)
        offsets = np.zeros((rows, num_steps, NUM_DRUM_CLASSES), np.float32)
        copy = COPY_AT_ZERO_VARIATION * (1.0 - steering.variation)
        # log 0 = -inf is meant throughout a draw (a class ruled out, a share of nothing): no warnings for it
        with np.errstate(divide="ignore", invalid="ignore"):
            for t, (noise, copies) in enumerate(zip(self._noise(num_steps, rows), self._copies(num_steps, copy))):
                steps, velocities[:, t], offsets[:, t] = self._draw(steering, noise, copies)
                self._advance(steps, velocities[:, t], offsets[:, t], steering)
        return Draws(velocities, offsets)

    def _noise(self, num_steps, rows):
        """Per step, the random numbers of one draw: Gumbel noise for the class logits [rows, 512] and
        for each per-hit head [rows, 9, bins], and where inside its bin each hit lands [rows, 9] per head.

        Drawn a block of steps at a time: one generator call instead of one per step. The stream
        does not depend on how steps are split between calls (draws run step-major), so a seed gives
        the same beat whatever the call pattern.
        """
        heads = [self.encoding.velocity_bins] + [self.encoding.offset_bins] * self.timing
        widths = [NUM_STEP_CLASSES] + [NUM_DRUM_CLASSES * bins for bins in heads] + [NUM_DRUM_CLASSES] * len(heads)
        bounds = np.cumsum([0] + widths)
        for start in range(0, num_steps, _NOISE_BLOCK_STEPS):
            count = min(_NOISE_BLOCK_STEPS, num_steps - start)
            uniform = self._rng.random((count, rows, bounds[-1]), np.float32)
            # float32 is plenty: its noise lies in [-2.8, 16.6], which only rules out values e^-19
            # less likely than the likeliest; u = 0 (p = 2^-24) gives -inf, a value not drawn.
            gumbel = -np.log(-np.log(uniform[..., : bounds[1 + len(heads)]]))
            parts = [gumbel[..., : bounds[1]]]
            parts += [gumbel[..., bounds[i + 1]: bounds[i + 2]].reshape(count, rows, NUM_DRUM_CLASSES, bins)
                      for i, bins in enumerate(heads)]
            parts += [uniform[..., bounds[i]: bounds[i + 1]] for i in range(1 + len(heads), len(widths))]
            for t in range(count):
                yield [part[t] for part in parts]

    def _copies(self, num_steps, copy):
        """Per step, what the variation mix (`copy` of the distribution) copies: whether any row knows a step
        one or two bars back, those steps [rows, 2] (each with its variants in hats and ride [rows, 2, 8]),
        their shares and log shares [rows, 2], and what every other class keeps, log(1 - copy) [rows, 1].

        Worked out a bar of steps at a time: the steps one and two bars back of each step of the coming
        bar are all in the history when it begins.
        """
        width = self._history.shape[1]
        for start in range(0, num_steps, STEPS_PER_BAR):
            count = min(STEPS_PER_BAR, num_steps - start)
            earlier = self._history[:, width + _COPY_COLUMNS + np.arange(count)[:, None]].transpose(1, 0, 2)
            known = (earlier != NO_STEP) @ _KNOWN_BITS  # [steps, rows]
            shares = copy * _COPY_SHARES[known]  # 0 where a step is not known: log 0 adds nothing
            kept = ((known > 0) * np.float32(np.log1p(-copy)))[..., None]  # a row knowing none keeps its own
            steps = np.maximum(earlier, 0)
            variants = (steps[..., None] & ~_KEEPER_BITS) | _KEEPER_VARIANTS
            parts = (known.any(axis=1), steps, variants, shares, np.log(shares), kept)
            for t in range(count):
                yield tuple(part[t] for part in parts)

    def _guided(self, name, steering):
        """A head's logits of the pending step, mixed with the any-style branch by the style strength."""
        logits = getattr(self._outputs, name)
        if not self._branched:
            return logits
        rows = len(logits) // 2
        plain = logits[rows:]
        return plain + steering.style_strength * (logits[:rows] - plain)

    def _class_log_weights(self, steering, shaping, copies):
        """Log-weights of every step class for the pending step, every control applied (`shaping`: the
        steering's Shaping now); and the tempered model's own log-softmax (the likelihood a beam search ranks by)."""
        temperature = steering.temperature or 1.0  # greedy: the argmax of the untempered weights
        logits = self._guided("class_logits", steering)
        shifted = logits * (1.0 / temperature)
        model = shifted - _logsumexp(shifted)
        position = self._position % STEPS_PER_BAR
        weights = model
        if shaping.bias is not None:
            weights = weights + shaping.bias[position]
            weights = weights - _logsumexp(weights)
        if steering.variation < 1:
            weights = self._mix_with_earlier_bars(weights, copies, shaping.keeping_open)
        if shaping.lock is not None:
            weights = weights + shaping.lock[position]
        return weights, model

    def _shaping_for(self, steering):
        """The steering's Shaping against the figure last heard: made again only when either changes."""
        key = (steering.style, steering.style_strength, steering.density, steering.locks)
        if self._shaping is None or self._shaping[0] != key or self._shaping[1] is not self._heard:
            self._shaping = (key, self._heard, Shaping.of(steering, self._heard, self._time_keeping_odds_of(steering)))
        return self._shaping[2]

    def _time_keeping_odds_of(self, steering):
        """The style's time-keeping log-odds [16, 512] (TimeKeeping.log_odds), or None when the model has no
        counts or no style is asked for."""
        if self._time_keeping is None or steering.style == ANY_STYLE:
            return None
        if steering.style not in self._time_keeping_odds:
            self._time_keeping_odds[steering.style] = self._time_keeping.log_odds(steering.style)
        return self._time_keeping_odds[steering.style]

    def _mix_with_earlier_bars(self, weights, copies, keeping_open=False):
        """(1 - copy) x the distribution + copy x the steps one and two bars back (where there are any; `copies`:
        what _copies gives for this step).

        With `keeping_open` only what those steps play besides the time keeping is copied: each one's share
        goes to its variants with every combination of hats and ride, as the distribution weighs them.
        Worked in log space on the few classes the copies reach; every other class only moves by log(1 - copy).
        """
        any_known, steps, variants, shares, log_shares, kept = copies
        if not any_known:
            return weights
        mixed = weights + kept
        rows = np.arange(len(weights))[:, None]
        for column in range(len(_COPY_COLUMNS)):  # one index per row (and variant), so each adds once
            if keeping_open:
                classes = variants[:, column]
                weighed = np.exp(weights[rows, classes])
                sums = weighed.sum(axis=1, keepdims=True)
                spread = np.where(sums > 0, weighed / np.where(sums > 0, sums, 1.0), 1.0 / len(_KEEPER_VARIANTS))
                added = np.log(shares[:, column, None] * spread)
            else:
                classes, added = steps[:, column, None], log_shares[:, column, None]
            mixed[rows, classes] = np.logaddexp(mixed[rows, classes], added)
        return mixed

    def _draw(self, steering, noise, copies):
        """One step per row from the pending outputs, with its velocities and offsets; adds to the scores.

        Gumbel-max: argmax(log-weights + Gumbel noise) is a draw from their softmax, without normalising
        it. Temperature 0 takes the likeliest of everything and each bin's centre.
        """
        temperature = steering.temperature
        greedy = temperature == 0
        shaping = self._shaping_for(steering)
        weights, model = self._class_log_weights(steering, shaping, copies)
        heads = [self._guided("velocity_logits", steering)]
        if self.timing:
            heads.append(self._guided("offset_logits", steering))
        if not greedy and temperature != 1:
            heads = [logits * (1.0 / temperature) for logits in heads]
        class_noise, head_noise, within = noise[0], noise[1:1 + len(heads)], noise[1 + len(heads):]
        if greedy:
            steps = weights.argmax(axis=1)
            bins = [logits.argmax(axis=-1) for logits in heads]
            within = [0.5] * len(heads)
        else:
            if steering.top_k or steering.top_p < 1:
                kept = _top_p(_top_k(np.exp(weights), steering.top_k), steering.top_p)
                weights = np.where(kept > 0, weights, -np.inf)
            steps = (weights + class_noise).argmax(axis=1)
            bins = [(logits + gumbel).argmax(axis=-1) for logits, gumbel in zip(heads, head_noise)]
        self.scores = self.scores + model[np.arange(len(steps)), steps]
        velocities = self.encoding.hit_velocities(steps, bins[0], within[0])
        offsets = (np.where(velocities > 0, self.encoding.bin_offset(bins[1], within[1]), 0.0) if self.timing
                   else np.zeros(velocities.shape, np.float32))
        if shaping.locked is not None:  # locked drums play as heard: their velocities and timing too
            position = self._position % STEPS_PER_BAR
            velocities = np.where(shaping.locked, self._heard.velocities[position], velocities).astype(np.uint8)
            offsets = np.where(shaping.locked, self._heard.offsets[position], offsets)
        return steps.astype(np.int32), velocities, offsets.astype(np.float32)

    def reorder(self, rows):
        """Row i continues as old row rows[i] (copies rows for priming and beam search)."""
        rows = np.asarray(rows)
        # while branched, each row's any-style branch row goes with it
        every = np.concatenate([rows, rows + len(self._history)]) if self._branched else rows
        self._state = tuple(s[every] for s in self._state)
        self._outputs = self._outputs.rows(every)
        self._history = self._history[rows]
        self.scores = self.scores[rows]


@dataclass(frozen=True)
class Figure:
    """The figure last heard, by bar position: steps [16], velocities and offsets [16, 9]."""

    steps: np.ndarray
    velocities: np.ndarray
    offsets: np.ndarray

    @classmethod
    def silent(cls):
        """A bar without hits."""
        return cls(np.zeros(STEPS_PER_BAR, np.int32), np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.uint8),
                   np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.float32))

    @cached_property
    def keeps_time(self):
        """Whether it plays a time keeper (a hat or the ride) anywhere."""
        return bool(self.velocities[:, list(TIME_KEEPERS)].any())


@dataclass(frozen=True)
class Shaping:
    """What a steering does to the step classes at each bar position, against the figure last heard.

    bias [16, 512] or None: log-weights added to the model's (the style's time keeping, density);
    keeping_open: the time keeping is the style's to choose, not the figure's to copy;
    lock [16, 512] or None: 0 where a step keeps the locked drums as heard, -inf where it does not;
    locked [9] or None: which drum classes are locked.
    """

    bias: np.ndarray = None
    keeping_open: bool = False
    lock: np.ndarray = None
    locked: np.ndarray = None

    @classmethod
    def of(cls, steering, heard, time_keeping_odds=None):
        """The shaping of `steering` after `heard` (a Figure), given the style's time-keeping log-odds
        (TimeKeeping.log_odds; None: the model has no counts). The style takes the time keeping over only
        when the figure heard keeps no time (the player left the hats and ride to it)."""
        bias = None
        keeping_open = bool(time_keeping_odds is not None and steering.style_strength and not heard.keeps_time)
        if keeping_open:
            bias = (TIME_KEEPING_WEIGHT * steering.style_strength) * time_keeping_odds
        if steering.density:
            density = DENSITY_BIAS * steering.density * _HITS_PER_STEP
            bias = np.broadcast_to(density, (STEPS_PER_BAR, NUM_STEP_CLASSES)) if bias is None else bias + density
        lock = locked = None
        if steering.locks:
            mask = _bits(steering.locks)
            wanted = heard.steps[:, None].astype(np.int64) & mask
            lock = np.where((np.arange(NUM_STEP_CLASSES) & mask) == wanted, 0.0, -np.inf).astype(np.float32)
            locked = np.isin(np.arange(NUM_DRUM_CLASSES), list(steering.locks))
        return cls(bias, keeping_open, lock, locked)


def _logsumexp(values):
    top = values.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(values - top).sum(axis=-1, keepdims=True))


def _top_k(weights, k):
    """Weights outside each row's k largest set to 0 (k = 0: all kept)."""
    if not 0 < k < weights.shape[-1]:
        return weights
    kth = np.partition(weights, -k, axis=-1)[..., -k:-k + 1 or None]
    return np.where(weights >= kth, weights, 0.0)


def _top_p(weights, p):
    """Weights [rows, classes] outside each row's smallest set holding share p of the total set to 0 (nucleus
    sampling)."""
    if p >= 1:
        return weights
    order = np.argsort(-weights, axis=-1)
    rows = np.arange(len(weights))[:, None]
    ranked = weights[rows, order]
    cumulative = np.cumsum(ranked, axis=-1)
    keep = np.empty_like(ranked, dtype=bool)
    keep[rows, order] = cumulative - ranked < p * cumulative[:, -1:]
    return np.where(keep, weights, 0.0)
