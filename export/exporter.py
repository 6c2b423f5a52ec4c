"""Export: a trained Keras model -> one verified ONNX step-model file with its metadata."""
import os
import tempfile
from pathlib import Path

from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.modelmeta import ModelMetadata
from deepbeat.runtime.stepmodel import StepModel
from deepbeat.training.step_graph import state_tensors, step_function

from .onnx_graph import convert_to_onnx
from .parity import PARITY_TOLERANCE, compare


def onnx_proto(trained):
    """The checked ONNX ModelProto of a TrainedModel's single-step graph, metadata attached."""
    import onnx

    proto = convert_to_onnx(step_function(trained.model, trained.hparams))
    metadata = ModelMetadata(
        encoding=trained.encoding,
        states=state_tensors(trained.hparams),
        hparams=trained.hparams.to_dict(),
        data_summary=trained.info.get("data_summary", {}),
        eval=trained.info.get("eval", {}),
    )
    onnx.helper.set_model_props(proto, metadata.to_props())
    proto.doc_string = "DeepBeat drum step model: one 16th-note step per call, LSTM state in and out"
    onnx.checker.check_model(proto)
    return proto


def verify(trained, path, data_dir=None):
    """Check an ONNX file (graph, metadata, parity with the Keras model); the ParityReport."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as error:  # onnx raises ValidationError, DecodeError, ...: all mean "not a valid model"
        raise ModelFileError(f"{path}: fails onnx.checker ({str(error).strip().splitlines()[0][:160]})") from None
    step_model = StepModel.load(path)
    if step_model.encoding != trained.encoding:
        raise ModelFileError(f"{path}: its encoding {step_model.encoding} differs from the trained model's")
    return compare(trained, step_model, data_dir)


def export(trained, output, data_dir=None):
    """Write the step model to `output` only if it passes parity; the ParityReport.

    The file is written to a temporary name beside `output` first, so a failed check
    leaves nothing behind and an existing file untouched.
    """
    output = Path(output)
    proto = onnx_proto(trained)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".onnx", prefix=".export-", dir=output.parent)
    except OSError as error:
        raise DeepBeatError(f"{output}: cannot write there ({error.strerror})") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(proto.SerializeToString())
        step_model = StepModel.load(temporary)
        report = compare(trained, step_model, data_dir)
        if not report.passed:
            raise DeepBeatError(
                f"{output}: not written: ONNX and Keras logits differ by up to {report.max_diff:.3g} "
                f"(limit {PARITY_TOLERANCE:g}) over {report.sequences} sequences"
            )
        os.chmod(temporary, 0o644)  # mkstemp makes files private; a model is meant to be shared
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return report
