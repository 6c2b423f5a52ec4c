"""Model and training hyperparameters, with the seed's `--hparams "k=v,k=[a,b]"` syntax."""
import re
from dataclasses import asdict, dataclass, fields, replace

from deepbeat.errors import DeepBeatError

# The model-2 parts, as they are in a run or model file written before they existed: off.
FORMAT_1 = {"attn_length": 0, "lookback_distances": (), "offset_bins": 0, "use_labels": False,
            "condition_every_layer": False}
MAY_BE_EMPTY = {"lookback_distances"}


@dataclass(frozen=True)
class HParams:
    """The seed's drum_kit settings (2 x 256 LSTM, dropout 0.5, Adam 1e-3, clip 3, batch 64), with the
    model-2 parts on by default: attention over the last 32 steps and the lookback inputs of Magenta's
    drum_kit / lookback encoder, a timing head, beat/fill labels, conditioning into every layer."""

    batch_size: int = 64
    rnn_layer_sizes: tuple = (256, 256)
    dropout_rate: float = 0.5
    learning_rate: float = 0.001
    clip_norm: float = 3.0
    embedding_size: int = 64  # step-class embedding instead of a 512-wide one-hot
    style_embedding_size: int = 8
    use_tempo: bool = True
    any_style_rate: float = 0.2  # share of training windows whose style is hidden as "any"
    velocity_bins: int = 8
    velocity_loss_weight: float = 0.5
    counter_bits: int = 6
    window_bars: int = 8  # training windows: this many bars, starting on a bar line
    attn_length: int = 32  # attention over the top layer's last N outputs (Magenta drum_kit: 32); 0: none
    attn_size: int = 64  # width of the attention's keys and values
    lookback_distances: tuple = (16, 32)  # the steps one and two bars back, fed with "repeats" flags; (): none
    offset_bins: int = 16  # timing head bins over a step; 0: no timing head (and no offset inputs)
    offset_loss_weight: float = 0.5
    use_labels: bool = True  # beat/fill label input
    condition_every_layer: bool = True  # style, tempo and label into every LSTM layer and the heads

    def to_dict(self):
        data = asdict(self)
        data["rnn_layer_sizes"] = list(self.rnn_layer_sizes)
        data["lookback_distances"] = list(self.lookback_distances)
        return data

    @classmethod
    def from_dict(cls, data):
        """HParams from to_dict's data; a part a stored run lacks is off, as in the model it trained."""
        known = {f.name for f in fields(cls)}
        values = {**FORMAT_1, **{k: v for k, v in data.items() if k in known}}
        for name in ("rnn_layer_sizes", "lookback_distances"):
            values[name] = tuple(values[name])
        return cls(**values)

    def parse(self, text):
        """A copy with overrides from "name=value,name=[1,2]" (bad names and values raise)."""
        updates = {}
        types = {f.name: f.type for f in fields(self)}
        for item in _split_top_level(text or ""):
            name, equals, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if name == "dropout_keep_prob":  # Magenta's name: keep probability = 1 - dropout rate
                name, value = "dropout_rate", _keep_to_rate(value)
            if not equals or name not in types:
                raise DeepBeatError(
                    f"hparams: {item.strip()!r} is not name=value with a known name; known: {', '.join(types)}"
                )
            updates[name] = _parse_value(name, value, getattr(self, name))
        return replace(self, **updates)


def _keep_to_rate(value):
    try:
        return str(1.0 - float(value))
    except ValueError:
        raise DeepBeatError(f"hparams: dropout_keep_prob={value!r} is not a number") from None


def _split_top_level(text):
    """Split on commas that are not inside [...]."""
    return [part for part in re.split(r",(?![^\[]*\])", text) if part.strip()]


def _parse_value(name, value, default):
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return value.lower() in ("true", "1")
        if isinstance(default, tuple):
            items = value.strip("[]() ").split(",")
            parsed = tuple(int(v) for v in items if v.strip())
            if (not parsed and name not in MAY_BE_EMPTY) or min(parsed, default=1) <= 0:
                raise ValueError
            return parsed
        parsed = type(default)(value)
        if parsed < 0:
            raise ValueError
        return parsed
    except ValueError:
        kind = (
            "true/false" if isinstance(default, bool)
            else "a list like [256,256]" if isinstance(default, tuple)
            else f"a non-negative {type(default).__name__}"
        )
        raise DeepBeatError(f"hparams: {name}={value!r} is not {kind}") from None
