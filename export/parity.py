"""Parity: the Keras model and the ONNX step model must give the same logits, step by step.

Keras runs whole sequences at once; the step model runs them one step at a time with its
state carried, so a wrong gate order, weight or state hand-over shows up as a difference.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.dataset import load_split
from deepbeat.encoding import BEAT
from deepbeat.errors import DatasetError
from deepbeat.grid import DrumGrid
from deepbeat.paths import portable
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import Steering
from deepbeat.runtime.stepmodel import HEADS

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
    max_diffs: dict  # head -> largest |logit difference| (class, velocity, offset)

    @property
    def max_diff(self):
        return max(self.max_diffs.values())

    @property
    def passed(self):
        return self.max_diff <= PARITY_TOLERANCE

    def summary(self):
        diffs = ", ".join(f"max |{head} logit diff| {diff:.2e}" for head, diff in self.max_diffs.items())
        return (f"parity over {self.sequences} sequences x {self.steps} steps ({self.source}): {diffs} "
                f"(limit {PARITY_TOLERANCE:g})")

    def to_dict(self):
        return {"sequences": self.sequences, "steps": self.steps, "source": self.source,
                **{f"max_{head}_logit_diff": diff for head, diff in self.max_diffs.items()},
                "tolerance": PARITY_TOLERANCE}


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
        features.append(encoding.inputs(grid.steps, grid.velocities, 0, style, grid.bpm, grid.offsets,
                                        encoding.label_id(BEAT)))
    return {name: np.stack([f[name] for f in features]) for name in encoding.features}


def compare(trained, step_model, data_dir=None):
    """The ParityReport of a TrainedModel against its step model, on parity_sequences."""
    return check_parity(trained.model, step_model, parity_sequences(step_model, data_dir))


def check_parity(keras_model, step_model, parity_set, num_steps=PARITY_STEPS):
    """Largest logit differences of each head between Keras (whole sequences) and the step model (state carried)."""
    inputs = _batch(step_model.encoding, parity_set.sequences, num_steps)
    expected = {name: np.asarray(values) for name, values in keras_model(inputs, training=False).items()}
    state = step_model.initial_state(len(parity_set.sequences))
    diffs = {}
    for t in range(num_steps):
        step_inputs = {name: np.ascontiguousarray(value[:, t]) for name, value in inputs.items()}
        outputs, state = step_model.step(step_inputs, state)
        for head in HEADS:
            logits = getattr(outputs, f"{head}_logits")
            if logits is not None:
                # np.maximum, unlike max(), carries a NaN through so that it fails the check
                diff = np.abs(logits - expected[f"{head}_logits"][:, t]).max()
                diffs[head] = float(np.maximum(diffs.get(head, 0.0), diff))
    return ParityReport(len(parity_set.sequences), num_steps, parity_set.source, diffs)
