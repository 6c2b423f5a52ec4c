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
from deepbeat.runtime.stepmodel import HEADS, StepOutputs
from deepbeat.timekeeping import TimeKeeping

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
    batch dimension. The graph is kept to few nodes, since a batch-1 step pays a few microseconds for
    every node it runs: each layer's bias, style and label rows are one row of a table indexed by
    style and label together, and all layers' tables are read by one gather; the step's own and its
    lookback steps' embedding rows by another; the attention's query, key and value by one product,
    the scale folded into the query. The attention window's keys are kept feature by feature (each
    key component over the window), so that scores and context are two plain batched products.
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
    styles, labels = len(tables["style"]), len(tables.get("label", [None]))

    def conditioned(rows, bias):
        """Bias plus folded style and label rows of one layer: a table indexed by style * labels + label."""
        table = bias + _fold(tables["style"], rows["style"])[:, None, :]
        if "label" in rows:
            table = table + _fold(tables["label"], rows["label"])[None, :, :]
        return np.broadcast_to(table, (styles, labels, len(bias))).reshape(styles * labels, len(bias))

    def split(kernel, segments, bias):
        """(conditioning table, or the bias when the layer has no conditioning; names of the dense inputs and
        their kernel rows; the other embedded inputs' folded tables {name: table})."""
        rows = _split_rows(kernel, segments)
        condition = conditioned(rows, bias) if "style" in rows else bias
        dense = [name for name, _ in segments if name not in tables]
        embedded = {name: _fold(tables[name], rows[name]) for name, _ in segments
                    if name in tables and name not in ("style", "label")}
        return condition, dense, np.concatenate([rows[name] for name in dense]), embedded

    cells = []
    for index, segments in enumerate(layout.layers):
        kernel, recurrent_kernel, bias = weights(f"lstm_{index}")
        condition, dense, dense_kernel, embedded = split(kernel, segments, bias)
        cells.append((condition, dense, np.concatenate([dense_kernel, recurrent_kernel]), embedded))
    head_names = ["class_logits"] + [f"{head}_dense" for head in HEADS[1:] if _has_head(hparams, head)]
    head_kernels = [weights(name) for name in head_names]
    widths = [kernel.shape[1] for kernel, _ in head_kernels]
    head_condition, head_dense, head_kernel, _ = split(
        np.concatenate([k for k, _ in head_kernels], 1), layout.head, np.concatenate([b for _, b in head_kernels]))
    # each layer's conditioning (the head's last): a table, or its bias where it has none
    layer_tables = [cell[0] for cell in cells] + [head_condition]
    # the tables of every conditioned layer side by side: one gather, then a split
    conditions = [c for c in layer_tables if c.ndim == 2]
    condition_table = np.concatenate(conditions, 1) if conditions else None
    # the first layer's embedded inputs (the step, and the steps one and two bars back) stacked: one gather
    first = cells[0][3]
    sequence_names = list(first)
    sequence_starts = np.cumsum([0] + [len(first[name]) for name in sequence_names])[:-1].astype(np.int32)
    sequence_table = np.concatenate([first[name] for name in sequence_names])
    if hparams.attn_length:
        query, key, value = (np.asarray(w, np.float32) for w in model.get_layer("attention").get_weights())
        projections = np.concatenate([query / np.float32(hparams.attn_size) ** 0.5, key, value], 1)
    distances = list(hparams.lookback_distances)
    repeats = [index for index, name in enumerate(cells[0][1]) if name.startswith("repeats_")]
    assert repeats == list(range(repeats[0], repeats[0] + len(distances))) if distances else not repeats, cells[0][1]
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
        sequence_ids = [tf.expand_dims(inputs["step_class"], 1)]
        if distances:
            ids = tf.expand_dims(tf.cast(inputs["step_class"] + 1, tf.float32), 1)
            history = state["history"]
            length = history.shape[1]
            new_history = tf.concat([history[:, 1:], ids], 1)
            outputs["history_next"] = new_history
            columns = [length - distance for distance in distances]
            sequence_ids.append(tf.cast(tf.gather(new_history, columns, axis=1), tf.int32))
            inputs["repeats"] = tf.cast(tf.equal(tf.gather(history, columns, axis=1), ids), tf.float32)
        rows = tf.gather(sequence_table, tf.concat(sequence_ids, 1) + sequence_starts)
        first_rows = tf.reduce_sum(rows, 1) if len(sequence_names) > 1 else rows[:, 0]
        if condition_table is not None:
            chosen = inputs["style"] * labels + inputs["label"] if "label" in tables else inputs["style"]
            parts = iter(tf.split(tf.gather(condition_table, chosen), [len(c[0]) for c in conditions], axis=-1))
        layer_conditions = [next(parts) if c.ndim == 2 else c for c in layer_tables]

        def dense_input(dense):
            """The layer's dense inputs side by side (the repeat flags of every distance are one input)."""
            flags = f"repeats_{distances[0]}" if distances else None
            return [inputs["repeats"] if name == flags else inputs[name]
                    for name in dense if not name.startswith("repeats_") or name == flags]

        x = None
        for index, (_, dense, kernel, _) in enumerate(cells):
            inputs["x"] = x
            h, c = state[f"lstm_{index}_h"], state[f"lstm_{index}_c"]
            total = layer_conditions[index] + tf.matmul(tf.concat(dense_input(dense) + [h], -1), kernel)
            x, c = _lstm_update(total + first_rows if index == 0 else total, c)
            outputs[f"lstm_{index}_h_next"], outputs[f"lstm_{index}_c_next"] = tf.identity(x), c
        inputs["x"] = x
        if hparams.attn_length:
            size, length = hparams.attn_size, hparams.attn_length
            query_now, key_now, value_now = tf.split(tf.matmul(x, projections), 3, axis=-1)
            keys = tf.concat([tf.reshape(state["attention_keys"], [-1, size, length])[:, :, 1:],
                              tf.expand_dims(key_now, 2)], 2)  # [B, size, window]
            values = tf.concat([tf.reshape(state["attention_values"], [-1, length, size])[:, 1:],
                                tf.expand_dims(value_now, 1)], 1)  # [B, window, size]
            outputs["attention_keys_next"] = tf.reshape(keys, [-1, size * length])
            outputs["attention_values_next"] = tf.reshape(values, [-1, length * size])
            scores = tf.nn.softmax(tf.matmul(tf.expand_dims(query_now, 1), keys), -1)  # [B, 1, window]
            inputs["context"] = tf.reshape(tf.matmul(scores, values), [-1, size])
        total = layer_conditions[-1] + tf.matmul(tf.concat(dense_input(head_dense), -1), head_kernel)
        logits = tf.split(total, widths, axis=-1)
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
