"""`deepbeat export`: single-step ONNX graph, metadata, parity with Keras, refusal, --verify."""
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
onnx = pytest.importorskip("onnx")

from deepbeat.cli import main  # noqa: E402
from deepbeat.dataset import Sequence, save_split  # noqa: E402
from deepbeat.errors import DeepBeatError  # noqa: E402
from deepbeat.export import exporter  # noqa: E402
from deepbeat.export.parity import PARITY_SEQUENCES, PARITY_TOLERANCE  # noqa: E402
from deepbeat.grid import DrumGrid  # noqa: E402
from deepbeat.runtime.stepmodel import StepModel  # noqa: E402
from deepbeat.training.examples import encoding_of  # noqa: E402
from deepbeat.training.hparams import HParams  # noqa: E402
from deepbeat.training.runs import load_trained, save_trained  # noqa: E402

STYLES = ("any", "funk", "hiphop")
SUMMARY = {"splits": {"train": {"sequences": 3}}, "styles": {"funk": 2, "hiphop": 1}}
EVAL = {"test": {"class_accuracy": 0.5}}


def make_trained(folder, name, seed):
    """A tiny random-weight model saved as a trained-model pair; returns the weights path."""
    import keras

    from deepbeat.training.model import build_model

    keras.utils.set_random_seed(seed)
    hparams = HParams().parse("rnn_layer_sizes=[16,16],embedding_size=8")
    model = build_model(hparams, len(STYLES))
    # 1.5 times the initial weights: livelier logits, while the recurrence stays stable (with model 2's
    # attention and lookback, x2 is at the edge of chaos: float32 rounding grows to 1.15e-4 over 256 steps).
    model.set_weights([w * 1.5 for w in model.get_weights()])
    path = folder / f"{name}.weights.h5"
    save_trained(model, hparams, encoding_of(hparams, STYLES), {"data_summary": SUMMARY, "eval": EVAL}, path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return make_trained(tmp_path_factory.mktemp("model"), "tiny", seed=1)


@pytest.fixture(scope="module")
def exported(weights):
    """(exit code, stdout) of exporting the tiny model without data, and the file."""
    import io
    from contextlib import redirect_stdout

    output = weights.parent / "tiny.onnx"
    with redirect_stdout(io.StringIO()) as out:
        code = main(["export", "--weights", str(weights), "--output", str(output)])
    return code, out.getvalue(), output


def test_export_writes_a_checked_single_step_graph(exported):
    code, out, path = exported
    assert code == 0 and path.is_file()
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    inputs = {i.name: i for i in proto.graph.input}
    features = {"step_class", "velocity", "offset", "position", "tempo", "style", "label"}
    states = {"lstm_0_h", "lstm_0_c", "lstm_1_h", "lstm_1_c", "history", "attention_keys", "attention_values"}
    assert set(inputs) == features | states
    assert {o.name for o in proto.graph.output} == {"class_logits", "velocity_logits", "offset_logits"} | {
        f"{state}_next" for state in states}
    batch = inputs["lstm_0_h"].type.tensor_type.shape.dim[0]
    assert not batch.HasField("dim_value")  # dynamic batch dimension


def test_export_reports_parity_on_sampled_sequences_without_data(exported):
    _, out, _ = exported
    assert f"parity over {PARITY_SEQUENCES} sequences" in out and "sampled from the model" in out


def test_metadata_round_trip(exported, weights):
    model = StepModel.load(exported[2])
    trained = load_trained(weights)
    assert model.encoding == trained.encoding
    assert model.info["hparams"] == trained.hparams.to_dict()
    assert model.info["data_summary"] == SUMMARY and model.info["eval"] == EVAL
    assert [(s.name, s.size) for s in model.metadata.states] == [
        ("lstm_0_h", 16), ("lstm_0_c", 16), ("lstm_1_h", 16), ("lstm_1_c", 16), ("history", 32),
        ("attention_keys", 32 * 64), ("attention_values", 32 * 64)]
    assert model.metadata.format_version == 2 and model.encoding.offset_bins == 16
    assert model.encoding.labels == ("beat", "fill")
    props = {p.key for p in onnx.load(exported[2]).metadata_props}
    assert {"deepbeat.format_version", "deepbeat.drum_classes", "deepbeat.pitch_tables", "deepbeat.steps_per_quarter",
            "deepbeat.counter_bits", "deepbeat.styles", "deepbeat.states"} <= props


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared data folder of random grids (test split: 6 sequences of 96 bars, 36 parity windows)."""
    folder = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("validation", 2), ("test", 6)):
        sequences = [
            Sequence(DrumGrid((rng.random((1536, 9)) < 0.2) * rng.integers(1, 128, (1536, 9)), bpm=100.0),
                     f"file{i}.mid", STYLES[i % 3], "drummer1", "beat")
            for i in range(count)
        ]
        save_split(folder / f"{split}.npz", sequences)
    return folder


def test_parity_on_held_out_data_within_tolerance(weights, prepared):
    trained = load_trained(weights)
    report = exporter.export(trained, prepared / "model.onnx", data_dir=prepared)
    assert report.sequences >= PARITY_SEQUENCES and report.passed
    assert 0 < report.max_diff <= PARITY_TOLERANCE
    assert "test split" in report.source


def test_parity_tops_up_a_small_held_out_split_with_sampled_sequences(weights, tmp_path, gmd_fixture_dir):
    from deepbeat.prepare import prepare

    prepare(gmd_fixture_dir, tmp_path / "small", log=lambda text: None)  # 1 test + 1 validation window
    trained = load_trained(weights)
    report = exporter.export(trained, tmp_path / "small.onnx", data_dir=tmp_path / "small")
    assert report.sequences == PARITY_SEQUENCES and report.passed
    assert report.source.startswith("2 windows of the test and validation split")
    assert f"{PARITY_SEQUENCES - 2} sequences sampled from the model" in report.source


def test_deeper_model_without_tempo(tmp_path):
    """Three layers, tempo off: the layer-0 kernel is split by feature right, parity still holds."""
    import keras

    from deepbeat.training.model import build_model
    from deepbeat.training.runs import TrainedModel

    keras.utils.set_random_seed(3)
    hparams = HParams().parse("rnn_layer_sizes=[8,12,16],embedding_size=4,style_embedding_size=3,use_tempo=false")
    trained = TrainedModel(build_model(hparams, 2), hparams, encoding_of(hparams, ("any", "rock")), {})
    report = exporter.export(trained, tmp_path / "deep.onnx")
    assert report.passed and report.max_diff > 0
    states = StepModel.load(tmp_path / "deep.onnx").metadata.states
    assert [(s.name, s.size) for s in states] == [
        ("lstm_0_h", 8), ("lstm_0_c", 8), ("lstm_1_h", 12), ("lstm_1_c", 12), ("lstm_2_h", 16), ("lstm_2_c", 16),
        ("history", 32), ("attention_keys", 32 * 64), ("attention_values", 32 * 64)]


@pytest.mark.parametrize("parts", ["attn_length=0", "lookback_distances=[]", "lookback_distances=[4,16,48]",
                                   "offset_bins=0,use_labels=false", "condition_every_layer=false",
                                   "attn_length=0,lookback_distances=[],offset_bins=0,use_labels=false,"
                                   "condition_every_layer=false"])
def test_each_model_part_streams_with_parity(tmp_path, parts):
    """Each part of model 2 on and off, down to the format-1 layout: the streaming graph matches Keras."""
    import keras

    from deepbeat.training.model import build_model
    from deepbeat.training.runs import TrainedModel

    keras.utils.set_random_seed(5)
    hparams = HParams().parse(f"rnn_layer_sizes=[12,8],embedding_size=6,attn_size=8,{parts}")
    trained = TrainedModel(build_model(hparams, 3), hparams, encoding_of(hparams, STYLES), {})
    report = exporter.export(trained, tmp_path / "part.onnx")
    assert report.passed and report.max_diff > 0


def test_unwritable_output_is_one_line(weights, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["export", "--weights", str(weights), "--output", str(blocker / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert "cannot write there" in err and err.count("\n") == 1


def test_refuses_to_write_when_parity_fails(weights, tmp_path, monkeypatch):
    """A graph built from tampered weights is caught, and neither a new nor a partial file is left."""
    build = exporter.step_function

    def tampered(model, hparams):
        layer = model.get_layer("lstm_1")
        original = layer.get_weights()
        layer.set_weights([original[0] + 1e-2, *original[1:]])
        try:
            return build(model, hparams)
        finally:
            layer.set_weights(original)

    monkeypatch.setattr(exporter, "step_function", tampered)
    output = tmp_path / "model.onnx"
    output.write_bytes(b"previous export")
    with pytest.raises(DeepBeatError, match="not written: ONNX and Keras logits differ"):
        exporter.export(load_trained(weights), output)
    assert output.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_verify_accepts_its_own_export_and_rejects_another_model(exported, weights, tmp_path, capsys):
    assert main(["export", "--weights", str(weights), "--verify", str(exported[2])]) == 0
    assert "OK" in capsys.readouterr().out
    other = make_trained(tmp_path, "other", seed=2)
    assert main(["export", "--weights", str(other), "--verify", str(exported[2])]) == 2
    assert "fails parity" in capsys.readouterr().err


def test_verify_rejects_a_file_that_is_not_onnx(weights, tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_text("hello")
    assert main(["export", "--weights", str(weights), "--verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepbeat export: error: ") and err.count("\n") == 1


def test_export_default_output_is_beside_the_weights(weights, capsys):
    assert main(["export", "--weights", str(weights)]) == 0
    assert (weights.parent / "tiny.onnx").is_file()
    assert "wrote" in capsys.readouterr().out


def test_missing_weights_is_one_line(tmp_path, capsys):
    assert main(["export", "--weights", str(tmp_path / "absent.weights.h5")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_bench_generate_times_both_runtimes_and_writes_its_goals(weights, tmp_path, capsys):
    import json

    out = tmp_path / "generate.json"
    assert main(["bench", "generate", "--weights", str(weights), "--repeats", "80", "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["parity"]["sequences"] == PARITY_SEQUENCES
    step = results["step_latency_us"]
    assert step["ort_1_thread"]["wall"]["median"] > 0 and step["tf"]["wall"]["median"] > 0
    assert set(results["goals"]) >= {"step_speedup", "bar_ms"}
    assert f"wrote {out}" in capsys.readouterr().out
