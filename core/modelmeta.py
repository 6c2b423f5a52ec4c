"""What a DeepBeat ONNX file says about itself (the model bundle's metadata_props).

TF-free and ONNX-free: export writes these properties, and the runtime
(deepbeat.runtime.stepmodel) reads them through onnxruntime alone. Each property is a JSON value under a "deepbeat."
key, so tools such as Netron show them readably.
"""
import json
from dataclasses import dataclass, field
from functools import cached_property

from .drums import DRUM_CLASSES, PITCH_TABLES
from .encoding import StepEncoding
from .errors import ModelFileError
from .grid import STEPS_PER_QUARTER
from .timekeeping import TimeKeeping
from .userfiles import parse_json

# Bump when a reader of the old format would misread a new file. 2: timing head, offset and label inputs,
# lookback history and attention window in the state. This reader reads 1 and 2.
FORMAT_VERSION = 2
PREFIX = "deepbeat."


@dataclass(frozen=True)
class StateTensor:
    """One recurrent state tensor: its graph input, the output carrying its next value, its width."""

    name: str
    output: str
    size: int

    def to_dict(self):
        return {"name": self.name, "output": self.output, "size": self.size}

    @classmethod
    def from_dict(cls, data):
        return cls(str(data["name"]), str(data["output"]), int(data["size"]))


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to run a step model: encoding, state layout, and where the model came from."""

    encoding: StepEncoding
    states: tuple  # StateTensor, in graph input order
    hparams: dict
    data_summary: dict = field(default_factory=dict)
    eval: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @cached_property
    def time_keeping(self):
        """The training data's TimeKeeping (None for a model exported without it); read once."""
        return TimeKeeping.in_summary(self.data_summary)

    def to_props(self):
        """metadata_props as {key: JSON text}."""
        values = {
            "format_version": self.format_version,
            "drum_classes": list(DRUM_CLASSES),
            "pitch_tables": {name: [list(p) for p in table.pitches] for name, table in PITCH_TABLES.items()},
            "steps_per_quarter": STEPS_PER_QUARTER,
            "counter_bits": self.encoding.counter_bits,
            "encoding": self.encoding.to_dict(),
            "styles": list(self.encoding.styles),
            "states": [s.to_dict() for s in self.states],
            "hparams": self.hparams,
            "data_summary": self.data_summary,
            "eval": self.eval,
        }
        return {PREFIX + key: json.dumps(value, sort_keys=True) for key, value in values.items()}

    @classmethod
    def from_props(cls, props, source):
        """Metadata from {key: JSON text}; ModelFileError (naming `source`) when it is not ours or too new."""
        key = PREFIX + "format_version"
        if key not in props:
            raise ModelFileError(
                f"{source}: an ONNX file without DeepBeat metadata; expected a file made by 'deepbeat export'"
            )
        try:
            values = {k[len(PREFIX):]: parse_json(v, source, ModelFileError, f"model metadata {k}")
                      for k, v in props.items() if k.startswith(PREFIX)}
            version = int(values["format_version"])
            if version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{source}: model format version {version} is newer than this deepbeat reads "
                    f"({FORMAT_VERSION}); upgrade deepbeat"
                )
            if tuple(values["drum_classes"]) != DRUM_CLASSES:
                raise ModelFileError(
                    f"{source}: drum classes {values['drum_classes']} differ from {list(DRUM_CLASSES)}"
                )
            if int(values["steps_per_quarter"]) != STEPS_PER_QUARTER:
                raise ModelFileError(
                    f"{source}: {values['steps_per_quarter']} steps per quarter; expected {STEPS_PER_QUARTER}"
                )
            encoding = StepEncoding.from_dict(values["encoding"])
            # the top-level copies (for tools like Netron) must say what the encoding says
            for name, value in (("counter_bits", encoding.counter_bits), ("styles", list(encoding.styles))):
                if name in values and values[name] != value:
                    raise ModelFileError(f"{source}: metadata field '{name}' is {values[name]!r}, its encoding says "
                                         f"{value!r}; re-export the model")
            metadata = cls(
                encoding=encoding,
                states=tuple(StateTensor.from_dict(s) for s in values["states"]),
                hparams=dict(values["hparams"]),
                data_summary=dict(values.get("data_summary") or {}),
                eval=dict(values.get("eval") or {}),
                format_version=version,
            )
            metadata.time_keeping  # refuse damaged counts now, not when a style is first asked for
            return metadata
        except (KeyError, TypeError, ValueError) as error:  # json.JSONDecodeError is a ValueError
            raise ModelFileError(f"{source}: damaged DeepBeat metadata ({type(error).__name__}: {error})") from None
