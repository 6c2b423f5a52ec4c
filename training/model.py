"""The drum language model: one short function of Keras layers.

Layer names are part of the export contract: export/ rebuilds a single-step graph from
the weights of the layers named here.
"""
import keras
from keras import layers

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import NUM_STEP_CLASSES


def build_model(hparams, num_styles):
    """Inputs per step (see deepbeat.encoding.StepEncoding) -> class and velocity logits."""
    step_class = keras.Input((None,), dtype="int32", name="step_class")
    velocity = keras.Input((None, NUM_DRUM_CLASSES), name="velocity")
    position = keras.Input((None, hparams.counter_bits), name="position")
    tempo = keras.Input((None, 1), name="tempo")
    style = keras.Input((None,), dtype="int32", name="style")

    features = [
        layers.Embedding(NUM_STEP_CLASSES, hparams.embedding_size, name="step_embedding")(step_class),
        velocity,
        position,
        layers.Embedding(num_styles, hparams.style_embedding_size, name="style_embedding")(style),
    ]
    if hparams.use_tempo:
        features.append(tempo)
    x = layers.Concatenate(name="features")(features)
    for index, size in enumerate(hparams.rnn_layer_sizes):
        x = layers.LSTM(size, return_sequences=True, name=f"lstm_{index}")(x)
        x = layers.Dropout(hparams.dropout_rate, name=f"dropout_{index}")(x)
    class_logits = layers.Dense(NUM_STEP_CLASSES, name="class_logits")(x)
    velocity_logits = layers.Reshape((-1, NUM_DRUM_CLASSES, hparams.velocity_bins), name="velocity_logits")(
        layers.Dense(NUM_DRUM_CLASSES * hparams.velocity_bins, name="velocity_dense")(x)
    )
    return keras.Model(
        inputs={"step_class": step_class, "velocity": velocity, "position": position, "tempo": tempo, "style": style},
        outputs={"class_logits": class_logits, "velocity_logits": velocity_logits},
        name="deepbeat_drums",
    )
