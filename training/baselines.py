"""Count-based baselines the LSTM is measured against (numpy only).

Each baseline is fit on the training sequences and gives, for every step t >= 1 of a
sequence, a distribution over the 512 step classes from the steps before t: exactly the
targets the model predicts (the model never predicts a sequence's first step either).
"""
import numpy as np

from deepbeat.encoding import NUM_STEP_CLASSES

NO_STEP = NUM_STEP_CLASSES  # context value before the sequence starts
ADD_K = 0.5  # unigram add-k smoothing (Jeffreys prior): keeps unseen classes finite


def _targets(steps):
    return np.asarray(steps, np.int64)[1:]


class Uniform:
    """Every class equally likely: perplexity 512."""

    name = "uniform"

    def fit(self, sequences):
        return self

    def probabilities(self, steps, steps_per_bar):
        return np.full((len(steps) - 1, NUM_STEP_CLASSES), 1.0 / NUM_STEP_CLASSES)


class Unigram:
    """Class frequencies of the training targets, add-k smoothed."""

    name = "unigram"

    def __init__(self, k=ADD_K):
        self.k = k
        self.distribution = np.full(NUM_STEP_CLASSES, 1.0 / NUM_STEP_CLASSES)

    def fit(self, sequences):
        counts = np.zeros(NUM_STEP_CLASSES)
        for steps, _ in sequences:
            np.add.at(counts, _targets(steps), 1)
        self.distribution = (counts + self.k) / (counts.sum() + self.k * NUM_STEP_CLASSES)
        return self

    def probabilities(self, steps, steps_per_bar):
        return np.tile(self.distribution, (len(steps) - 1, 1))


def context_features(steps, steps_per_bar):
    """Per target t = 1..T-1: position in bar, the 3 previous steps, the step one bar earlier."""
    steps = np.asarray(steps, np.int64)
    t = np.arange(1, len(steps))

    def back(distance):
        return np.where(t >= distance, steps[np.maximum(t - distance, 0)], NO_STEP)

    return {"position": t % steps_per_bar, "previous": back(1), "previous_2": back(2), "previous_3": back(3),
            "bar_before": back(steps_per_bar)}


class InterpolatedNGram:
    """Witten-Bell interpolated back-off over nested contexts, down to an add-k unigram.

    `levels` lists context feature names from the shortest to the longest context; level i
    conditions on the first i+1 names. p(c|h) = (n(h,c) + T(h) p_lower(c)) / (n(h) + T(h)),
    T(h) = distinct classes seen after h (Witten & Bell 1991), so no weight needs tuning.
    """

    def __init__(self, name, levels):
        self.name = name
        self.levels = tuple(levels)
        self.unigram = Unigram()
        self.tables = []

    def _keys(self, features, depth):
        key = np.zeros(len(features["position"]), np.int64)
        for name in self.levels[: depth + 1]:
            key = key * (NUM_STEP_CLASSES + 1) + features[name]
        return key

    def fit(self, sequences):
        sequences = list(sequences)
        self.unigram.fit(sequences)
        features = [context_features(steps, bar) for steps, bar in sequences]
        targets = np.concatenate([_targets(steps) for steps, _ in sequences])
        self.tables = []
        for depth in range(len(self.levels)):
            keys = np.concatenate([self._keys(f, depth) for f in features])
            pairs, counts = np.unique(np.stack([keys, targets], 1), axis=0, return_counts=True)
            table = {}
            boundaries = np.flatnonzero(np.diff(pairs[:, 0])) + 1
            for group_pairs, group_counts in zip(np.split(pairs, boundaries), np.split(counts, boundaries)):
                table[int(group_pairs[0, 0])] = (group_pairs[:, 1], group_counts.astype(np.float64))
            self.tables.append(table)
        return self

    def probabilities(self, steps, steps_per_bar):
        features = context_features(steps, steps_per_bar)
        keys = [self._keys(features, depth) for depth in range(len(self.levels))]
        result = np.empty((len(steps) - 1, NUM_STEP_CLASSES))
        for row in range(len(result)):
            p = self.unigram.distribution
            for depth, table in enumerate(self.tables):
                seen = table.get(int(keys[depth][row]))
                if seen is None:
                    break  # a longer context is unseen too
                classes, counts = seen
                total, types = counts.sum(), len(classes)
                p = p * (types / (total + types))
                p[classes] += counts / (total + types)
            result[row] = p
        return result


class RepeatPreviousBar:
    """The step one bar earlier, mixed with the unigram so every class keeps some probability.

    The unigram share is the training rate of steps that differ from one bar earlier.
    """

    name = "repeat previous bar"

    def __init__(self):
        self.unigram = Unigram()
        self.change_rate = 1.0

    def fit(self, sequences):
        sequences = list(sequences)
        self.unigram.fit(sequences)
        changed = total = 0
        for steps, bar in sequences:
            before = context_features(steps, bar)["bar_before"]
            known = before != NO_STEP
            changed += int(np.sum(_targets(steps)[known] != before[known]))
            total += int(np.sum(known))
        self.change_rate = min(max(changed / max(total, 1), 1e-3), 1.0)
        return self

    def probabilities(self, steps, steps_per_bar):
        before = context_features(steps, steps_per_bar)["bar_before"]
        result = self.unigram.probabilities(steps, steps_per_bar)
        known = np.flatnonzero(before != NO_STEP)
        result[known] *= self.change_rate
        result[known, before[known]] += 1.0 - self.change_rate
        return result


def all_baselines(order=3):
    """The baselines of the eval report; `order` counts the target, so order 3 = two previous steps.

    The position in the bar is the longest context's last condition: backing off from it
    first scored better on the GMD validation split than conditioning on it first (Witten-Bell
    spreads thin over 16 positions).
    """
    previous = ("previous", "previous_2", "previous_3")[: order - 1]
    return (
        Uniform(),
        Unigram(),
        InterpolatedNGram(f"position {order}-gram", (*previous, "position")),
        InterpolatedNGram("bar-aware n-gram", ("bar_before", "previous", "position")),
        InterpolatedNGram("bar n-gram, no position", ("bar_before", "previous")),
        RepeatPreviousBar(),
    )


def baseline_sums(baseline, sequences):
    """Summed NLL, accuracy and event counts over every target step (same sums as the model's)."""
    sums = dict.fromkeys(("steps", "class_nll", "correct", "events", "event_correct", "no_event_correct"), 0.0)
    for steps, bar in sequences:
        if len(steps) < 2:
            continue
        probabilities = baseline.probabilities(steps, bar)
        targets = _targets(steps)
        rows = np.arange(len(targets))
        correct = probabilities.argmax(1) == targets
        event = targets != 0
        sums["steps"] += len(targets)
        sums["class_nll"] -= float(np.sum(np.log(probabilities[rows, targets])))
        sums["correct"] += float(np.sum(correct))
        sums["events"] += float(np.sum(event))
        sums["event_correct"] += float(np.sum(correct & event))
        sums["no_event_correct"] += float(np.sum(correct & ~event))
    return sums


def step_sequences(sequences):
    """(steps, steps_per_bar) pairs of prepared Sequences, the baselines' input."""
    return [(np.asarray(s.grid.steps, np.int64), s.grid.steps_per_bar) for s in sequences]

