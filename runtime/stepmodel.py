"""StepModel: a DeepBeat ONNX step model run by onnxruntime alone (no TensorFlow).

One call advances every row of a batch by one drum step: features of the step just
played plus the streaming state in, next-step logits of each head plus the new state out.
The file's metadata is checked against its graph when it is loaded, so a damaged or edited
file is refused with one line naming the file and the field, before anything plays.
"""
import importlib.resources
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.encoding import FEATURES, NUM_STEP_CLASSES
from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.modelmeta import ModelMetadata

HEADS = ("class", "velocity", "offset")  # graph outputs <head>_logits; the timing head (offset) is format 2's


@dataclass(frozen=True)
class StepOutputs:
    """One step's logits: classes [B, 512], velocity bins [B, 9, bins], offset bins [B, 9, bins] or None."""

    class_logits: np.ndarray
    velocity_logits: np.ndarray
    offset_logits: np.ndarray = None

    def rows(self, rows):
        """The outputs of some rows (in the given order, repeats allowed)."""
        return StepOutputs(*(None if a is None else a[rows] for a in (getattr(self, f.name) for f in fields(self))))


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
        # An input the graph does not use (tempo when use_tempo is off) may be pruned by the converter.
        self._features = tuple(name for name in FEATURES if name in inputs)
        self._heads = tuple(head for head in HEADS if head != "offset" or metadata.encoding.offset_bins)
        self._outputs = [f"{head}_logits" for head in self._heads] + [s.output for s in metadata.states]
        self._check_graph(inputs, {o.name for o in session.get_outputs()})
        self._probe()

    def _refuse(self, field, problem):
        raise ModelFileError(f"{self.path}: metadata field '{field}' {problem}; re-export the model")

    def _check_graph(self, inputs, outputs):
        """The metadata's encoding and states against the graph's inputs and outputs."""
        encoding, states = self.metadata.encoding, self.metadata.states
        if not states:
            self._refuse("states", "lists no state tensors")
        for state in states:
            if state.name not in inputs or state.output not in outputs:
                self._refuse("states", f"names {state.name}/{state.output}, which the graph lacks")
            width = inputs[state.name].shape[-1]
            if width != state.size:
                self._refuse("states", f"makes {state.name} {state.size} wide; the graph's is {width}")
        missing = sorted({f"{head}_logits" for head in self._heads} - outputs)
        if missing or "step_class" not in inputs:
            self._refuse("encoding", f"asks for {', '.join(missing or ['step_class'])}, which the graph lacks")
        unknown = [name for name in self._features if name not in encoding.features]
        if unknown:
            self._refuse("encoding", f"lacks the graph's input {unknown[0]} (offset_bins/labels)")
        widths = {"position": encoding.counter_bits, "velocity": NUM_DRUM_CLASSES, "offset": NUM_DRUM_CLASSES}
        for name, width in widths.items():
            if name in inputs and inputs[name].shape[-1] != width:
                field = "counter_bits" if name == "position" else "encoding"
                self._refuse(field, f"gives {name} {width} values; the graph's input takes {inputs[name].shape[-1]}")

    def _probe(self):
        """One step at the highest style and label ids: the graph must run and give the metadata's bins."""
        encoding = self.encoding
        inputs = encoding.inputs([0], np.zeros((1, NUM_DRUM_CLASSES)), 0, len(encoding.styles) - 1, None, None,
                                 max(len(encoding.labels) - 1, 0))
        try:
            outputs, _ = self.step(inputs, self.initial_state(1))
        except Exception as error:  # ORT raises its own kinds; an id beyond a table is the usual cause
            detail = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
            self._refuse("styles" if len(encoding.styles) > 1 else "encoding",
                         f"does not fit the graph: a step fails ({detail})")
        expected = {"class": (1, NUM_STEP_CLASSES), "velocity": (1, NUM_DRUM_CLASSES, encoding.velocity_bins),
                    "offset": (1, NUM_DRUM_CLASSES, encoding.offset_bins)}
        for head in self._heads:
            shape = getattr(outputs, f"{head}_logits").shape
            if shape != expected[head]:
                field = {"class": "encoding", "velocity": "velocity_bins", "offset": "offset_bins"}[head]
                self._refuse(field, f"means {head} logits of shape {expected[head]}; the graph gives {shape}")

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
    def time_keeping(self):
        """Where the training data's styles keep time (a TimeKeeping), or None."""
        return self.metadata.time_keeping

    @property
    def info(self):
        """Where the model came from: hparams, eval metrics, data summary."""
        metadata = self.metadata
        return {"hparams": metadata.hparams, "eval": metadata.eval, "data_summary": metadata.data_summary}

    def initial_state(self, batch=1):
        """Zero recurrent state for `batch` rows, one array per state tensor."""
        return tuple(np.zeros((batch, s.size), np.float32) for s in self.metadata.states)

    def step(self, inputs, state):
        """One step: inputs are StepEncoding features with a batch dimension first (those the graph
        lacks are left out). Returns (StepOutputs, new state)."""
        feed = {name: inputs[name] for name in self._features}
        feed.update(zip((s.name for s in self.metadata.states), state))
        results = self.session.run(self._outputs, feed)
        heads = len(self._heads)
        return StepOutputs(*results[:heads]), tuple(results[heads:])
