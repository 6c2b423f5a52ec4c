"""The model's own Keras layers: lookback over the step stream and attention over a window of outputs.

Each has a streaming twin in training/step_graph.py (history and attention window as explicit
state); the two must compute the same numbers, which export's parity check verifies.
"""
import keras
from keras import layers, ops

NO_STEP = 0  # lookback id of a step before the stream's start; step s has id s + 1


class Lookback(layers.Layer):
    """Lookback ids of step classes [B, T]: for each t, the id of the step at t + 1 - distance
    (the step that far back from the *next* position), NO_STEP before the start."""

    def __init__(self, distance, **kwargs):
        super().__init__(**kwargs)
        self.distance = distance

    def call(self, steps):
        ids = steps + 1
        shift = self.distance - 1
        padded = ops.pad(ids, [[0, 0], [shift, 0]], constant_values=NO_STEP)
        return padded[:, : ops.shape(steps)[1]]


class Repeats(layers.Layer):
    """1.0 where the step at t equals the step `distance` steps before it (0 before the start), [B, T, 1]."""

    def __init__(self, distance, **kwargs):
        super().__init__(**kwargs)
        self.distance = distance

    def call(self, steps):
        ids = steps + 1
        earlier = ops.pad(ids, [[0, 0], [self.distance, 0]], constant_values=NO_STEP)[:, : ops.shape(steps)[1]]
        return ops.expand_dims(ops.cast(ops.equal(ids, earlier), "float32"), -1)


class WindowAttention(layers.Layer):
    """Dot-product attention of each step over the last `length` outputs (itself included).

    Keys and values are projections of the outputs to `size`; the slots before the stream's start
    hold zero keys and values, as the streaming state starts with zeros. Returns the context [B, T, size].
    """

    def __init__(self, length, size, **kwargs):
        super().__init__(**kwargs)
        self.length, self.size = length, size

    def build(self, input_shape):
        width = input_shape[-1]
        for name in ("query", "key", "value"):
            setattr(self, name, self.add_weight(shape=(width, self.size), initializer="glorot_uniform", name=name))

    def call(self, x):
        time = ops.shape(x)[1]
        query, keys, values = (ops.matmul(x, w) for w in (self.query, self.key, self.value))
        scores = ops.einsum("btk,bsk->bts", query, keys) / float(self.size) ** 0.5
        step, source = ops.arange(time)[:, None], ops.arange(time)[None, :]
        window = ops.logical_and(source <= step, source > step - self.length)
        # slots before the stream's start: a zero key (score 0) and a zero value each
        empty = ops.cast(ops.maximum(self.length - 1 - ops.arange(time), 0), x.dtype)
        top = ops.max(ops.where(window, scores, -1e9), axis=-1)
        top = ops.maximum(top, ops.where(empty > 0, 0.0, -1e9))
        weights = ops.where(window, ops.exp(scores - top[..., None]), 0.0)
        total = ops.sum(weights, axis=-1) + empty * ops.exp(-top)
        return ops.einsum("bts,bsv->btv", weights, values) / total[..., None]


def attention_weights(layer):
    """(query, key, value) kernels of a WindowAttention, as numpy arrays."""
    return tuple(keras.ops.convert_to_numpy(w) for w in (layer.query, layer.key, layer.value))
