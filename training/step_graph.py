"""The single-step graph: one drum step through the trained layers, streaming state in and out.

It is rebuilt from the weights of the layers `deepbeat.training.model.build_model` names
as a `tf.function` doing the same math one step at a time: the LSTM cells, the lookback over a
history of step ids and the attention over a window of keys and values are explicit state.
Export converts it to ONNX (`tf2onnx.convert.from_function` matches Keras to ~1e-7; converting
the Keras 3 model itself is fragile); evaluation samples from it through the runtime's sampler,
as `deepbeat generate` samples from the ONNX file.

Every embedded input is folded into the layer it feeds: embedding[s] @ kernel rows equals row s
of (embedding @ kernel rows), so it becomes one gathered row of a table; a batch-1 step is bound
by reading weights, and a gathered row reads far fewer bytes than a product with the rows.
"""
import numpy as np
import tensorflow as tf

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import FEATURES
from deepbeat.modelmeta import StateTensor
from deepbeat.timekeeping import TimeKeeping
from deepbeat.runtime.stepmodel import HEADS, StepOutputs

from .model import model_inputs

_SHAPES = {"step_class": ([None], tf.int32), "velocity": ([None, NUM_DRUM_CLASSES], tf.float32),
           "offset": ([None, NUM_DRUM_CLASSES], tf.float32), "tempo": ([None, 1], tf.float32),
           "style": ([None], tf.int32), "label": ([None], tf.int32)}


def state_tensors(hparams):
    """The streaming state in graph input order: h and c of every LSTM layer, the step-id history of the
    lookback (ids of the last max(distances) steps, 0 = none), the attention window's keys and values."""
    states = [StateTensor(f"lstm_{index}_{kind}", f"lstm_{index}_{kind}_next", size)
              for index, size in enumerate(hparams.rnn_layer_sizes) for kind in ("h", "c")]
    if hparams.lookback_distances:
        states.append(StateTensor("history", "history_next", max(hparams.lookback_distances)))
    if hparams.attn_length:
        for kind in ("keys", "values"):
            states.append(StateTensor(f"attention_{kind}", f"attention_{kind}_next",
                                      hparams.attn_length * hparams.attn_size))
    return tuple(states)


def _lstm_update(z, c):
    """Keras LSTM cell from its summed gate inputs: gates in Keras order i, f, c, o; sigmoid gates, tanh."""
    i, f, g, o = tf.split(z, 4, axis=-1)
    c_next = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c_next), c_next


def _split_rows(kernel, segments):
    """{name: kernel rows} of an input kernel whose rows follow `segments` [(name, width)] in order."""
    bounds = np.cumsum([0] + [width for _, width in segments])
    assert bounds[-1] == len(kernel), (bounds[-1], len(kernel))
    return {name: kernel[a:b] for (name, _), a, b in zip(segments, bounds, bounds[1:])}


def _fold(table, rows):
    """Rows of embedding `table` through kernel `rows`, folded in float64 and rounded once."""
    return (table.astype(np.float64) @ rows).astype(np.float32)


class _Layout:
    """Which segments feed each layer, in the order build_model concatenates them."""

    def __init__(self, hparams):
        e, se = hparams.embedding_size, hparams.style_embedding_size
        self.conditioning = [("style", se)] + [("tempo", 1)] * hparams.use_tempo + [("label", se)] * hparams.use_labels
        first = [("step_class", e), ("velocity", NUM_DRUM_CLASSES)]
        first += [("offset", NUM_DRUM_CLASSES)] * bool(hparams.offset_bins) + [("position", hparams.counter_bits)]
        for distance in hparams.lookback_distances:
            first += [(f"lookback_{distance}", e), (f"repeats_{distance}", 1)]
        self.layers = [first + self.conditioning]
        for size in hparams.rnn_layer_sizes[:-1]:
            self.layers.append([("x", size)] + self.conditioning * hparams.condition_every_layer)
        self.head = [("x", hparams.rnn_layer_sizes[-1])] + [("context", hparams.attn_size)] * bool(hparams.attn_length)
        self.head += self.conditioning * hparams.condition_every_layer


def step_function(model, hparams):
    """A tf.function (features..., states...) -> dict of logits of each head and next states.

    Feature inputs are one step of StepEncoding.inputs (the features the model takes) with a leading
    batch dimension.
    """
    def weights(name):
        # numpy arrays become constants of the traced graph (captured tensors would become inputs)
        return [np.asarray(w, np.float32) for w in model.get_layer(name).get_weights()]

    layout = _Layout(hparams)
    tables = {"step_class": weights("step_embedding")[0], "style": weights("style_embedding")[0]}
    if hparams.use_labels:
        tables["label"] = weights("label_embedding")[0]
    if hparams.lookback_distances:
        lookback, = weights("lookback_embedding")
        tables.update({f"lookback_{d}": lookback for d in hparams.lookback_distances})

    def folded(kernel, segments):
        """(gathered tables {input: table}, dense input names, dense kernel) of one layer's input kernel."""
        rows = _split_rows(kernel, segments)
        gathered = {name: _fold(tables[name], rows[name]) for name, _ in segments if name in tables}
        dense = [name for name, _ in segments if name not in tables]
        return gathered, dense, np.concatenate([rows[name] for name in dense])

    cells = []
    for index, segments in enumerate(layout.layers):
        kernel, recurrent_kernel, bias = weights(f"lstm_{index}")
        gathered, dense, dense_kernel = folded(kernel, segments)
        cells.append((gathered, dense, np.concatenate([dense_kernel, recurrent_kernel]), bias))
    head_names = ["class_logits"] + [f"{head}_dense" for head in HEADS[1:] if _has_head(hparams, head)]
    head_kernels = [weights(name) for name in head_names]
    widths = [kernel.shape[1] for kernel, _ in head_kernels]
    head = folded(np.concatenate([k for k, _ in head_kernels], 1), layout.head)
    head_bias = np.concatenate([b for _, b in head_kernels])
    if hparams.attn_length:
        query, key, value = (np.asarray(w, np.float32) for w in model.get_layer("attention").get_weights())
    states = state_tensors(hparams)
    names = [name for name in FEATURES if name in model_inputs(hparams)]
    shapes = dict(_SHAPES, position=([None, hparams.counter_bits], tf.float32))
    signature = [tf.TensorSpec(*shapes[name], name) for name in names]
    signature += [tf.TensorSpec([None, s.size], tf.float32, s.name) for s in states]

    @tf.function(input_signature=signature)
    def step(*arguments):
        inputs = dict(zip(names, arguments))
        state = dict(zip((s.name for s in states), arguments[len(names):]))
        outputs = {}
        if hparams.lookback_distances:
            ids = tf.cast(inputs["step_class"] + 1, tf.float32)
            history = state["history"]
            length = history.shape[1]
            new_history = tf.concat([history[:, 1:], ids[:, None]], 1)
            outputs["history_next"] = new_history
            for distance in hparams.lookback_distances:
                inputs[f"lookback_{distance}"] = tf.cast(new_history[:, length - distance], tf.int32)
                earlier = history[:, length - distance]
                inputs[f"repeats_{distance}"] = tf.cast(tf.equal(ids, earlier), tf.float32)[:, None]

        def layer_input(gathered, dense, bias):
            total = bias
            for name, table in gathered.items():
                total = total + tf.gather(table, inputs[name])
            return total, [inputs[name] for name in dense]

        x = None
        for index, (gathered, dense, kernel, bias) in enumerate(cells):
            inputs["x"] = x
            h, c = state[f"lstm_{index}_h"], state[f"lstm_{index}_c"]
            total, dense_inputs = layer_input(gathered, dense, bias)
            x, c = _lstm_update(total + tf.matmul(tf.concat(dense_inputs + [h], -1), kernel), c)
            outputs[f"lstm_{index}_h_next"], outputs[f"lstm_{index}_c_next"] = tf.identity(x), c
        inputs["x"] = x
        if hparams.attn_length:
            size = hparams.attn_size
            keys = tf.concat([state["attention_keys"][:, size:], tf.matmul(x, key)], 1)
            values = tf.concat([state["attention_values"][:, size:], tf.matmul(x, value)], 1)
            outputs["attention_keys_next"], outputs["attention_values_next"] = keys, values
            slots = [-1, hparams.attn_length, size]
            scores = tf.einsum("bk,bjk->bj", tf.matmul(x, query), tf.reshape(keys, slots)) / float(size) ** 0.5
            inputs["context"] = tf.einsum("bj,bjv->bv", tf.nn.softmax(scores, -1), tf.reshape(values, slots))
        gathered, dense, kernel = head
        total, dense_inputs = layer_input(gathered, dense, head_bias)
        logits = tf.split(total + tf.matmul(tf.concat(dense_inputs, -1), kernel), widths, axis=-1)
        outputs["class_logits"] = logits[0]
        for head_name, values in zip(head_names[1:], logits[1:]):
            name = head_name.replace("_dense", "_logits")
            outputs[name] = tf.reshape(values, [-1, NUM_DRUM_CLASSES, values.shape[-1] // NUM_DRUM_CLASSES])
        return outputs

    return step


def _has_head(hparams, head):
    return head == "velocity" or (head == "offset" and hparams.offset_bins > 0)


class KerasStepModel:
    """A trained model's single-step tf.function behind the runtime's StepModel interface."""

    def __init__(self, trained):
        self.encoding = trained.encoding
        self.time_keeping = TimeKeeping.in_summary(trained.info.get("data_summary", {}))
        self._step = step_function(trained.model, trained.hparams)
        self._states = state_tensors(trained.hparams)
        self._features = self.encoding.features

    def initial_state(self, batch=1):
        return tuple(np.zeros((batch, s.size), np.float32) for s in self._states)

    def step(self, inputs, state):
        out = self._step(*(inputs[name] for name in self._features), *state)
        heads = {f"{head}_logits": out[f"{head}_logits"].numpy() for head in HEADS if f"{head}_logits" in out}
        return StepOutputs(**heads), tuple(out[s.output].numpy() for s in self._states)
