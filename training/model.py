"""The drum language model: one short function of Keras layers.

Layer names are part of the export contract: export/ rebuilds a single-step graph from
the weights of the layers named here.
"""
import keras
from keras import layers

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import NUM_STEP_CLASSES

from .layers import Lookback, Repeats, WindowAttention


def model_inputs(hparams):
    """The Keras inputs of the features the model takes (see deepbeat.encoding.StepEncoding)."""
    shapes = {"step_class": ((None,), "int32"), "velocity": ((None, NUM_DRUM_CLASSES), "float32"),
              "offset": ((None, NUM_DRUM_CLASSES), "float32"), "position": ((None, hparams.counter_bits), "float32"),
              "tempo": ((None, 1), "float32"), "style": ((None,), "int32"), "label": ((None,), "int32")}
    names = ["step_class", "velocity", "position", "tempo", "style"]
    names += ["offset"] * bool(hparams.offset_bins) + ["label"] * hparams.use_labels
    return {name: keras.Input(shapes[name][0], dtype=shapes[name][1], name=name) for name in names}


def build_model(hparams, num_styles, num_labels=2):
    """Inputs per step -> class, velocity (and timing) logits of the next step."""
    inputs = model_inputs(hparams)
    step_class = inputs["step_class"]
    features = [layers.Embedding(NUM_STEP_CLASSES, hparams.embedding_size, name="step_embedding")(step_class),
                inputs["velocity"]]
    if hparams.offset_bins:
        features.append(inputs["offset"])
    features.append(inputs["position"])
    if hparams.lookback_distances:
        lookback = layers.Embedding(NUM_STEP_CLASSES + 1, hparams.embedding_size, name="lookback_embedding")
        for distance in hparams.lookback_distances:
            features += [lookback(Lookback(distance, name=f"lookback_{distance}")(step_class)),
                         Repeats(distance, name=f"repeats_{distance}")(step_class)]
    conditions = [layers.Embedding(num_styles, hparams.style_embedding_size, name="style_embedding")(inputs["style"])]
    if hparams.use_tempo:
        conditions.append(inputs["tempo"])
    if hparams.use_labels:
        conditions.append(layers.Embedding(num_labels, hparams.style_embedding_size, name="label_embedding")(
            inputs["label"]))
    conditioning = layers.Concatenate(name="conditioning")(conditions) if len(conditions) > 1 else conditions[0]
    x = layers.Concatenate(name="features")(features + [conditioning])
    for index, size in enumerate(hparams.rnn_layer_sizes):
        if index and hparams.condition_every_layer:
            x = layers.Concatenate(name=f"lstm_{index}_input")([x, conditioning])
        x = layers.LSTM(size, return_sequences=True, name=f"lstm_{index}")(x)
        x = layers.Dropout(hparams.dropout_rate, name=f"dropout_{index}")(x)
    if hparams.attn_length:
        x = layers.Concatenate(name="attended")([x, WindowAttention(hparams.attn_length, hparams.attn_size,
                                                                    name="attention")(x)])
    if hparams.condition_every_layer:
        x = layers.Concatenate(name="head_input")([x, conditioning])
    outputs = {"class_logits": layers.Dense(NUM_STEP_CLASSES, name="class_logits")(x)}
    heads = [("velocity", hparams.velocity_bins)] + [("offset", hparams.offset_bins)] * bool(hparams.offset_bins)
    for head, bins in heads:
        outputs[f"{head}_logits"] = layers.Reshape((-1, NUM_DRUM_CLASSES, bins), name=f"{head}_logits")(
            layers.Dense(NUM_DRUM_CLASSES * bins, name=f"{head}_dense")(x))
    return keras.Model(inputs=inputs, outputs=outputs, name="deepbeat_drums")
