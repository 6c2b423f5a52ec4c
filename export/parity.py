"""Parity: the Keras model and the ONNX step model must give the same logits, step by step.

Keras runs whole sequences at once; the step model runs them one step at a time with its
state carried, so a wrong gate order, weight or state hand-over shows up as a difference.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.dataset import load_split
from deepbeat.errors import DatasetError
from deepbeat.grid import DrumGrid
from deepbeat.paths import portable
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import Steering

PARITY_TOLERANCE = 1e-4  # issue 4: largest allowed |logit difference|
PARITY_SEQUENCES = 32  # issue 4: at least this many held-out sequences
PARITY_STEPS = 256  # 16 bars per sequence; longer ones are cut, shorter ones padded with silence


@dataclass(frozen=True)
class ParitySequence:
    grid: DrumGrid
    style: str


@dataclass(frozen=True)
class ParitySet:
    """Sequences to compare on, and a phrase saying where they came from."""

    sequences: tuple
    source: str


@dataclass(frozen=True)
class ParityReport:
    sequences: int
    steps: int
    source: str
    max_class_diff: float
    max_velocity_diff: float

    @property
    def max_diff(self):
        return max(self.max_class_diff, self.max_velocity_diff)

    @property
    def passed(self):
        return self.max_diff <= PARITY_TOLERANCE

    def summary(self):
        return (
            f"parity over {self.sequences} sequences x {self.steps} steps ({self.source}): "
            f"max |class logit diff| {self.max_class_diff:.2e}, max |velocity logit diff| "
            f"{self.max_velocity_diff:.2e} (limit {PARITY_TOLERANCE:g})"
        )

    def to_dict(self):
        return {
            "sequences": self.sequences, "steps": self.steps, "source": self.source,
            "max_class_logit_diff": self.max_class_diff, "max_velocity_logit_diff": self.max_velocity_diff,
            "tolerance": PARITY_TOLERANCE,
        }


def held_out_windows(data_dir, count=PARITY_SEQUENCES, num_steps=PARITY_STEPS):
    """Up to `count` bar-aligned windows of `num_steps`, spread over the test split of a prepared
    folder (then validation, when test has too few), and the splits used."""
    windows, splits = [], []
    for split in ("test", "validation"):
        try:
            sequences = load_split(data_dir, split)
        except DatasetError:
            continue
        splits.append(split)
        for sequence in sequences:
            for start in range(0, sequence.grid.num_steps, num_steps):
                windows.append(ParitySequence(sequence.grid.slice(start, start + num_steps), sequence.style))
        if len(windows) >= count:
            picks = np.linspace(0, len(windows) - 1, count).round().astype(int)
            return [windows[i] for i in picks], splits
    return windows, splits


def sampled_sequences(step_model, count=PARITY_SEQUENCES, num_steps=PARITY_STEPS, seed=0):
    """`count` sequences sampled from the step model itself, where held-out data is short or absent."""
    sampler = DrumSampler(step_model, num_outputs=count, seed=seed)
    primer = DrumGrid.from_steps([1])  # one kick
    sampler.prime(primer, Steering())
    return [ParitySequence(primer.concat(g), "any") for g in sampler.sample(num_steps - 1, Steering())]


def parity_sequences(step_model, data_dir=None, count=PARITY_SEQUENCES, num_steps=PARITY_STEPS):
    """`count` sequences to compare on: held-out windows of `data_dir`, topped up with sampled ones."""
    held, splits = held_out_windows(data_dir, count, num_steps) if data_dir else ([], [])
    sampled = sampled_sequences(step_model, count - len(held), num_steps) if len(held) < count else []
    parts = []
    if held:
        parts.append(f"{len(held)} windows of the {' and '.join(splits)} split of {portable(data_dir)}")
    if sampled:
        parts.append(f"{len(sampled)} sequences sampled from the model"
                     + ("" if data_dir else ", no prepared data given"))
    return ParitySet(tuple(held + sampled), " + ".join(parts))


def _batch(encoding, sequences, num_steps):
    """StepEncoding inputs of every sequence cut or padded to num_steps, stacked: {name: [N, T, ...]}."""
    features = []
    for sequence in sequences:
        grid = sequence.grid.slice(0, num_steps)  # windows from data are cut already; sampled ones fit
        grid = grid.concat(DrumGrid.silent(num_steps - grid.num_steps))
        style = encoding.style_id_or_any(sequence.style)
        features.append(encoding.inputs(grid.steps, grid.velocities, 0, style, grid.bpm))
    return {name: np.stack([f[name] for f in features]) for name in features[0]}


def compare(trained, step_model, data_dir=None):
    """The ParityReport of a TrainedModel against its step model, on parity_sequences."""
    return check_parity(trained.model, step_model, parity_sequences(step_model, data_dir))


def check_parity(keras_model, step_model, parity_set, num_steps=PARITY_STEPS):
    """Largest logit differences between Keras (whole sequences) and the step model (state carried)."""
    inputs = _batch(step_model.encoding, parity_set.sequences, num_steps)
    expected = keras_model(inputs, training=False)
    expected_class = np.asarray(expected["class_logits"])
    expected_velocity = np.asarray(expected["velocity_logits"])
    state = step_model.initial_state(len(parity_set.sequences))
    class_diff = velocity_diff = 0.0
    for t in range(num_steps):
        step_inputs = {name: np.ascontiguousarray(value[:, t]) for name, value in inputs.items()}
        class_logits, velocity_logits, state = step_model.step(step_inputs, state)
        # np.maximum, unlike max(), carries a NaN through so that it fails the check
        class_diff = float(np.maximum(class_diff, np.abs(class_logits - expected_class[:, t]).max()))
        velocity_diff = float(np.maximum(velocity_diff, np.abs(velocity_logits - expected_velocity[:, t]).max()))
    return ParityReport(len(parity_set.sequences), num_steps, parity_set.source, class_diff, velocity_diff)
