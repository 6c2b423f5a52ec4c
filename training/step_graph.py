"""The single-step graph: one drum step through the trained layers, recurrent state in and out.

It is rebuilt from the weights of the layers `deepbeat.training.model.build_model` names
as a `tf.function` doing the Keras LSTM cell math. Export converts it to ONNX
(`tf2onnx.convert.from_function` matches Keras to ~1e-7; converting the Keras 3 model
itself is fragile); evaluation samples from it through the runtime's sampler, as
`deepbeat generate` samples from the ONNX file.
"""
import numpy as np
import tensorflow as tf

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import FEATURES
from deepbeat.modelmeta import StateTensor


def state_tensors(hparams):
    """h and c of every LSTM layer, in graph input order."""
    return tuple(
        StateTensor(f"lstm_{index}_{kind}", f"lstm_{index}_{kind}_next", size)
        for index, size in enumerate(hparams.rnn_layer_sizes)
        for kind in ("h", "c")
    )


def _lstm_update(z, c):
    """Keras LSTM cell from its summed gate inputs: gates in Keras order i, f, c, o; sigmoid gates, tanh."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    c_next = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c_next), c_next


def _first_layer_tables(weights, hparams):
    """Layer 0's gate inputs split by feature, the embeddings folded in.

    Keras feeds concat(step embedding, velocity, position, style embedding, [tempo]) to
    layer 0. embedding[s] @ kernel rows equals row s of (embedding @ kernel rows), so each
    embedded input becomes one gathered row of a gate table; per step that reads far fewer
    weight bytes than multiplying by the embedding's kernel rows (batch-1 steps are bound
    by memory traffic). Returns (step gate table with the bias added, style gate table,
    kernel for concat(velocity, position, [tempo], h)).
    """
    kernel, recurrent_kernel, bias = weights("lstm_0")
    step_table, = weights("step_embedding")
    style_table, = weights("style_embedding")
    rows = np.cumsum([0, hparams.embedding_size, NUM_DRUM_CLASSES, hparams.counter_bits, hparams.style_embedding_size])
    step_rows, velocity_rows, position_rows, style_rows = (kernel[a:b] for a, b in zip(rows, rows[1:]))
    dense = [velocity_rows, position_rows, kernel[rows[-1]:], recurrent_kernel]  # tempo rows are empty without tempo
    # Folded in float64 and rounded once, so the tables are as exact as float32 allows.
    step_gates = (step_table.astype(np.float64) @ step_rows + bias).astype(np.float32)
    style_gates = (style_table.astype(np.float64) @ style_rows).astype(np.float32)
    return step_gates, style_gates, np.concatenate(dense)


def step_function(model, hparams):
    """A tf.function (features..., states...) -> dict of class/velocity logits and next states.

    Feature inputs are one step of StepEncoding.inputs with a leading batch dimension.
    """
    def weights(name):
        # numpy arrays become constants of the traced graph (captured tensors would become inputs)
        return [np.asarray(w, np.float32) for w in model.get_layer(name).get_weights()]

    step_gates, style_gates, first_kernel = _first_layer_tables(weights, hparams)
    # Layers above the first: [x, h] @ [kernel; recurrent kernel] is one product instead of two.
    upper = [weights(f"lstm_{index}") for index in range(1, len(hparams.rnn_layer_sizes))]
    upper = [(np.concatenate([kernel, recurrent_kernel]), bias) for kernel, recurrent_kernel, bias in upper]
    class_kernel, class_bias = weights("class_logits")
    velocity_kernel, velocity_bias = weights("velocity_dense")
    states = state_tensors(hparams)

    shapes = {"step_class": ([None], tf.int32), "velocity": ([None, NUM_DRUM_CLASSES], tf.float32),
              "position": ([None, hparams.counter_bits], tf.float32), "tempo": ([None, 1], tf.float32),
              "style": ([None], tf.int32)}
    signature = [tf.TensorSpec(*shapes[name], name) for name in FEATURES]
    signature += [tf.TensorSpec([None, s.size], tf.float32, s.name) for s in states]

    @tf.function(input_signature=signature)
    def step(step_class, velocity, position, tempo, style, *state):
        dense = [velocity, position] + ([tempo] if hparams.use_tempo else []) + [state[0]]
        gates = tf.gather(step_gates, step_class) + tf.gather(style_gates, style)
        x, c = _lstm_update(gates + tf.matmul(tf.concat(dense, -1), first_kernel), state[1])
        outputs = {states[0].output: tf.identity(x), states[1].output: c}
        for index, (kernel, bias) in enumerate(upper, start=1):
            h, c = state[2 * index], state[2 * index + 1]
            x, c = _lstm_update(tf.matmul(tf.concat([x, h], -1), kernel) + bias, c)
            outputs[states[2 * index].output] = tf.identity(x)
            outputs[states[2 * index + 1].output] = c
        outputs["class_logits"] = tf.matmul(x, class_kernel) + class_bias
        velocity_logits = tf.matmul(x, velocity_kernel) + velocity_bias
        outputs["velocity_logits"] = tf.reshape(velocity_logits, [-1, NUM_DRUM_CLASSES, hparams.velocity_bins])
        return outputs

    return step


class KerasStepModel:
    """A trained model's single-step tf.function behind the runtime's StepModel interface."""

    def __init__(self, trained):
        self.encoding = trained.encoding
        self._step = step_function(trained.model, trained.hparams)
        self._states = state_tensors(trained.hparams)

    def initial_state(self, batch=1):
        return tuple(np.zeros((batch, s.size), np.float32) for s in self._states)

    def step(self, inputs, state):
        out = self._step(*(inputs[name] for name in FEATURES), *state)
        return (
            out["class_logits"].numpy(), out["velocity_logits"].numpy(),
            tuple(out[s.output].numpy() for s in self._states),
        )
