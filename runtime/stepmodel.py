"""StepModel: a DeepBeat ONNX step model run by onnxruntime alone (no TensorFlow).

One call advances every row of a batch by one drum step: features of the step just
played plus the recurrent state in, next-step logits plus the new state out.
"""
import importlib.resources
from pathlib import Path

import numpy as np

from deepbeat.encoding import FEATURES
from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.modelmeta import ModelMetadata

LOGITS = ("class_logits", "velocity_logits")


def default_model_path():
    """The model shipped inside the package."""
    return Path(str(importlib.resources.files("deepbeat") / "models" / "default.onnx"))


def run_model_path(run_dir):
    """Where `deepbeat export --run-dir RUN` writes its model, and where `deepbeat generate --run-dir` looks."""
    return Path(run_dir) / "model.onnx"


def session_options(threads=1):
    """Options for batch-1 latency on `threads` cores (one intra-op pool, sequential graph).

    One thread suits a real-time caller that shares the CPU: no worker threads to wake
    or to compete with its timing thread. Two more than halve the step time (each core
    streams half of every weight matrix, and the halves stay in the cores' L2 caches)
    only while ORT's workers spin between runs, its default: with sleeping workers two
    threads are slower than one (docs/benchmarks/generate.json).
    """
    import onnxruntime as ort

    if threads < 1:
        raise DeepBeatError(f"{threads} model threads asked for; expected at least 1")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers otherwise
    return options


class StepModel:
    """A step model on one onnxruntime InferenceSession; stateless, the caller carries the state."""

    def __init__(self, session, metadata, path):
        self.session = session
        self.metadata = metadata
        self.path = path
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        self._check_graph(inputs, outputs)
        # An input the graph does not use (tempo when use_tempo is off) may be pruned by the converter.
        self._features = tuple(name for name in FEATURES if name in inputs)
        self._outputs = list(LOGITS) + [s.output for s in metadata.states]

    def _check_graph(self, inputs, outputs):
        expected_outputs = set(LOGITS) | {s.output for s in self.metadata.states}
        missing = [s.name for s in self.metadata.states if s.name not in inputs] + sorted(expected_outputs - outputs)
        if missing or "step_class" not in inputs:
            raise ModelFileError(
                f"{self.path}: graph lacks {', '.join(missing or ['step_class'])} named in its metadata; re-export it"
            )
        for state in self.metadata.states:
            width = inputs[state.name].shape[-1]
            if width != state.size:
                raise ModelFileError(
                    f"{self.path}: state {state.name} is {width} wide in the graph, {state.size} in the metadata"
                )

    @classmethod
    def load(cls, path=None, threads=1):
        """The model at `path` (default: the shipped model) on `threads` cores (see session_options);
        ModelFileError when it is not a DeepBeat model."""
        import onnxruntime as ort

        options = session_options(threads)
        shipped = path is None
        path = Path(default_model_path() if shipped else path)
        if not path.is_file():
            hint = "the shipped model is missing from this install; name a model file" if shipped else "no such file"
            raise ModelFileError(f"{path}: {hint}")
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT raises its own exception kinds for unreadable or invalid graphs
            detail = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            raise ModelFileError(f"{path}: not a loadable ONNX model ({detail})") from None
        metadata = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, path)
        return cls(session, metadata, path)

    @property
    def encoding(self):
        """The StepEncoding the model was trained with."""
        return self.metadata.encoding

    @property
    def info(self):
        """Where the model came from: hparams, eval metrics, data summary."""
        metadata = self.metadata
        return {"hparams": metadata.hparams, "eval": metadata.eval, "data_summary": metadata.data_summary}

    def initial_state(self, batch=1):
        """Zero recurrent state for `batch` rows, one array per state tensor."""
        return tuple(np.zeros((batch, s.size), np.float32) for s in self.metadata.states)

    def step(self, inputs, state):
        """One step: inputs are StepEncoding features with a batch dimension first.

        Returns (class_logits [B, 512], velocity_logits [B, 9, bins], new state).
        """
        feed = {name: inputs[name] for name in self._features}
        feed.update(zip((s.name for s in self.metadata.states), state))
        class_logits, velocity_logits, *new_state = self.session.run(self._outputs, feed)
        return class_logits, velocity_logits, tuple(new_state)
