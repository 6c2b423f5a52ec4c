"""Training examples: prepared splits encoded with StepEncoding, cut into bar-aligned windows.

Every sequence is encoded once (inputs at t, targets at t+1, see StepEncoding); training
draws shuffled windows of `window_bars` bars that start on a bar line, and evaluation runs
over whole sequences so the model keeps its state across all the context.
"""
from dataclasses import dataclass

import numpy as np

from deepbeat.dataset import load_split
from deepbeat.encoding import ANY_STYLE, FEATURES, SECTION_LABELS, StepEncoding
from deepbeat.errors import DatasetError

TARGET_NAMES = ("next_class", "velocity_bin", "offset_bin", "velocity_mask")
SEQUENCES_PER_BATCH = 16  # whole sequences per evaluation batch


@dataclass(frozen=True)
class EncodedSplit:
    """All sequences of a split as concatenated rows (one row = one input step and its target)."""

    arrays: dict  # FEATURES + TARGET_NAMES -> [rows, ...]
    starts: np.ndarray  # row where each sequence starts; starts[-1] = rows
    styles: tuple  # style name of each sequence
    steps_per_bar: np.ndarray  # per sequence
    features: tuple  # the FEATURES the model takes

    @property
    def num_sequences(self):
        return len(self.styles)

    @property
    def num_rows(self):
        return int(self.starts[-1])

    def sequence(self, index):
        """Rows of one sequence: {name: array}."""
        start, stop = self.starts[index], self.starts[index + 1]
        return {name: values[start:stop] for name, values in self.arrays.items()}


def encoding_for(sequences, hparams):
    """The StepEncoding of a model trained on these sequences: "any" then their sorted styles."""
    return encoding_of(hparams, (ANY_STYLE, *sorted({s.style for s in sequences} - {ANY_STYLE})))


def encoding_of(hparams, styles):
    """The StepEncoding of a model of these hparams and styles."""
    return StepEncoding(
        counter_bits=hparams.counter_bits, velocity_bins=hparams.velocity_bins, styles=tuple(styles),
        offset_bins=hparams.offset_bins, labels=SECTION_LABELS if hparams.use_labels else (),
    )


def load_sequences(data_dir, split):
    """The sequences of one split, refusing an empty one."""
    sequences = list(load_split(data_dir, split))
    usable = [s for s in sequences if s.grid.num_steps >= 2]
    if not usable:
        raise DatasetError(f"{data_dir}: the {split} split has no sequences of 2 steps or more")
    return usable


def encode_sequences(sequences, encoding):
    """An EncodedSplit; styles the encoding does not know are encoded as "any"."""
    parts = {name: [] for name in FEATURES + TARGET_NAMES}
    lengths = []
    for sequence in sequences:
        grid = sequence.grid
        steps, velocities = grid.steps, grid.velocities
        style_id = encoding.style_id_or_any(sequence.style)
        label_id = encoding.label_id(sequence.beat_type) if sequence.beat_type in encoding.labels else 0
        rows = {
            **encoding.inputs(steps[:-1], velocities[:-1], 0, style_id, grid.bpm, grid.offsets[:-1], label_id),
            **encoding.targets(steps, velocities, grid.offsets),
        }
        for name, values in rows.items():
            parts[name].append(values)
        lengths.append(len(steps) - 1)
    return EncodedSplit(
        arrays={name: np.concatenate(values) for name, values in parts.items()},
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        styles=tuple(s.style for s in sequences),
        steps_per_bar=np.array([s.grid.steps_per_bar for s in sequences], np.int64),
        features=encoding.features,
    )


def window_rows(encoded, window_steps):
    """Row indices [windows, window_steps] of every window that starts on a bar line.

    Rows past the end of a sequence point at `encoded.num_rows`, the padding row.
    """
    windows = []
    offsets = np.arange(window_steps)
    for index in range(encoded.num_sequences):
        start, stop = encoded.starts[index], encoded.starts[index + 1]
        for first in range(start, stop, encoded.steps_per_bar[index]):
            rows = first + offsets
            windows.append(np.where(rows < stop, rows, encoded.num_rows))
    return np.array(windows, np.int32).reshape(-1, window_steps)


def padded_arrays(encoded):
    """The split's arrays with one all-zero padding row appended (its targets are masked)."""
    return {name: np.concatenate([values, np.zeros((1, *values.shape[1:]), values.dtype)])
            for name, values in encoded.arrays.items()}


def training_dataset(encoded, hparams, seed):
    """An endless tf.data pipeline of shuffled bar-aligned windows: (inputs, targets) batches.

    targets also hold "step_mask" (1 for real steps); a share `any_style_rate` of the windows
    get the style "any" so the model also learns to play without a style.
    """
    import tensorflow as tf

    window_steps = hparams.window_bars * int(encoded.steps_per_bar.max())
    windows = window_rows(encoded, window_steps)
    tables = {name: tf.constant(values) for name, values in padded_arrays(encoded).items()}
    padding_row = encoded.num_rows

    def gather(rows):
        inputs = {name: tf.gather(tables[name], rows) for name in encoded.features}
        hidden = tf.random.uniform([tf.shape(rows)[0], 1], seed=seed) < hparams.any_style_rate
        inputs["style"] = tf.where(hidden, tf.zeros_like(inputs["style"]), inputs["style"])
        targets = {name: tf.gather(tables[name], rows) for name in TARGET_NAMES}
        targets["step_mask"] = tf.cast(rows != padding_row, tf.float32)
        return inputs, targets

    return (
        tf.data.Dataset.from_tensor_slices(windows)
        .shuffle(len(windows), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(hparams.batch_size, drop_remainder=True)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def sequence_batches(encoded, batch_size=SEQUENCES_PER_BATCH):
    """Whole sequences, padded at the end and grouped by length: (indices, inputs, targets) numpy batches."""
    order = np.argsort(encoded.starts[1:] - encoded.starts[:-1], kind="stable")
    for first in range(0, len(order), batch_size):
        indices = order[first:first + batch_size]
        parts = [encoded.sequence(i) for i in indices]
        length = max(len(p["step_class"]) for p in parts)
        batch = {}
        for name in encoded.features + TARGET_NAMES:
            values = np.zeros((len(parts), length, *encoded.arrays[name].shape[1:]), encoded.arrays[name].dtype)
            for row, part in enumerate(parts):
                values[row, : len(part[name])] = part[name]
            batch[name] = values
        mask = np.zeros((len(parts), length), np.float32)
        for row, part in enumerate(parts):
            mask[row, : len(part["step_class"])] = 1
        targets = {name: batch.pop(name) for name in TARGET_NAMES}
        targets["step_mask"] = mask
        yield indices, batch, targets
