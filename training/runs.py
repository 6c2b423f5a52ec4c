"""Run folders and trained-model files: where training writes, and how a trained model is loaded.

A run folder (``deepbeat train --run-dir RUN``) holds:
  RUN/config.json          hparams, encoding and data summary the run was started with
  RUN/train/               TensorFlow checkpoints (latest few) and TensorBoard train scalars
  RUN/validation/          TensorBoard validation scalars
  RUN/best.weights.h5      weights with the lowest validation loss so far
  RUN/best.json            the config beside them (a trained-model pair, see below)
  RUN/state.json           step, best validation loss, training time, throughput
  RUN/history.jsonl        one line of validation metrics per evaluation

A trained-model pair is ``NAME.weights.h5`` (Keras weights) with ``NAME.json`` beside it:
{"hparams": {...}, "encoding": {...}, "data_summary": {...}, "eval": {...}}. The shipped default
model is such a pair (deepbeat/models/default.weights.h5 + default.json).
"""
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from deepbeat.encoding import StepEncoding
from deepbeat.errors import ModelFileError
from deepbeat.userfiles import read_json as read_user_json

from .hparams import HParams

WEIGHTS_SUFFIX = ".weights.h5"  # Keras 3 insists on this suffix for save_weights
CONFIG_NAME = "config.json"
BEST_NAME = "best"
STATE_NAME = "state.json"
HISTORY_NAME = "history.jsonl"


@dataclass(frozen=True)
class RunDir:
    """The paths inside one run folder."""

    root: Path

    @property
    def config(self):
        return self.root / CONFIG_NAME

    @property
    def checkpoints(self):
        return self.root / "train"

    @property
    def validation_logs(self):
        return self.root / "validation"

    @property
    def best_weights(self):
        return self.root / (BEST_NAME + WEIGHTS_SUFFIX)

    @property
    def state(self):
        return self.root / STATE_NAME

    @property
    def history(self):
        return self.root / HISTORY_NAME


@dataclass(frozen=True)
class TrainedModel:
    """A built Keras model with its weights, and what it needs to be used."""

    model: object
    hparams: HParams
    encoding: StepEncoding
    info: dict = field(default_factory=dict)  # "data_summary", and "eval" when evaluated


def beside_weights(weights_path, suffix):
    """NAME<suffix> beside NAME.weights.h5 (e.g. the config NAME.json, the export NAME.onnx)."""
    weights_path = Path(weights_path)
    name = weights_path.name
    stem = name[: -len(WEIGHTS_SUFFIX)] if name.endswith(WEIGHTS_SUFFIX) else weights_path.stem
    return weights_path.with_name(stem + suffix)


def config_path(weights_path):
    """NAME.json beside NAME.weights.h5."""
    return beside_weights(weights_path, ".json")


def read_json(path, what):
    """A JSON file as a dict, or a one-line ModelFileError."""
    data = read_user_json(path, ModelFileError, what)
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a JSON object for the {what}")
    return data


def write_json(path, data):
    """Write JSON through a temporary file so a crash never leaves half a file."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def model_config(path):
    """(hparams, encoding, info) from a trained-model config JSON."""
    data = read_json(path, "trained-model config (hparams, encoding, data_summary)")
    try:
        hparams = HParams.from_dict(data["hparams"])
        encoding = StepEncoding.from_dict(data["encoding"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: missing or invalid 'hparams'/'encoding' ({error!r})") from None
    info = {key: value for key, value in data.items() if key not in ("hparams", "encoding")}
    info.setdefault("data_summary", {})
    return hparams, encoding, info


def load_trained(path):
    """A TrainedModel from a run folder (its best weights) or a NAME.weights.h5 file with NAME.json."""
    path = Path(path)
    if path.is_dir():
        weights = RunDir(path).best_weights
        if not weights.exists():
            raise ModelFileError(
                f"{path}: run folder has no {weights.name} yet; train it first with 'deepbeat train'"
            )
    elif path.name.endswith(WEIGHTS_SUFFIX):
        weights = path
        if not weights.exists():
            raise ModelFileError(f"{path}: not found; expected a run folder or a {WEIGHTS_SUFFIX} file")
    else:
        raise ModelFileError(f"{path}: expected a run folder or a {WEIGHTS_SUFFIX} file with its .json beside it")
    hparams, encoding, info = model_config(config_path(weights))
    from .model import build_model  # TensorFlow only once a model is really loaded

    model = build_model(hparams, len(encoding.styles))
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py/Keras raise many kinds for a foreign or truncated file
        raise ModelFileError(
            f"{weights}: weights do not fit the model in {config_path(weights).name} ({error})"
        ) from None
    return TrainedModel(model, hparams, encoding, info)


def _weights_target(weights_path):
    """A NAME.weights.h5 path to write, its folder made; other names are refused."""
    weights_path = Path(weights_path)
    if not weights_path.name.endswith(WEIGHTS_SUFFIX):
        raise ModelFileError(f"{weights_path}: the weights file name must end in {WEIGHTS_SUFFIX}")
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    return weights_path


def save_trained(model, hparams, encoding, info, weights_path):
    """Write a trained-model pair: weights to NAME.weights.h5 and config to NAME.json (both atomically)."""
    weights_path = _weights_target(weights_path)
    temporary = weights_path.with_name("tmp-" + weights_path.name)
    model.save_weights(temporary)
    os.replace(temporary, weights_path)
    write_json(config_path(weights_path), {"hparams": hparams.to_dict(), "encoding": encoding.to_dict(), **info})


def copy_trained(source, weights_path, extra_info=None):
    """Copy a trained-model pair (e.g. a run's best) to NAME.weights.h5 + NAME.json, merging extra info."""
    source = Path(source)
    if source.is_dir():
        source = RunDir(source).best_weights
    if not source.exists():
        raise ModelFileError(f"{source}: not found; nothing to export yet")
    config = read_json(config_path(source), "trained-model config")
    config.update(extra_info or {})
    weights_path = _weights_target(weights_path)
    if source.resolve() != weights_path.resolve():
        shutil.copyfile(source, weights_path)
    write_json(config_path(weights_path), config)
