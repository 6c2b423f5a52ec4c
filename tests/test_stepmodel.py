"""StepModel: loading an exported ONNX step model with onnxruntime, its metadata, one batched step."""
import json
import re

import numpy as np
import pytest

from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.modelmeta import FORMAT_VERSION, PREFIX, ModelMetadata
from deepbeat.runtime.stepmodel import StepModel, default_model_path

from conftest import REPO_ROOT, TINY_MODEL, TINY_MODEL_V2


@pytest.fixture(scope="module", params=[TINY_MODEL, TINY_MODEL_V2], ids=["format-1", "format-2"])
def model(request):
    return StepModel.load(request.param)


def step_inputs(model, steps, position=0, style="any", label=0):
    """One step's features for each row of `steps` (velocity 100 and offset -0.1 on every hit)."""
    encoding = model.encoding
    rows = [encoding.inputs([s], [[100 if s >> d & 1 else 0 for d in range(9)]], position, encoding.style_id(style),
                            offsets=np.full((1, 9), -0.1), label_ids=label) for s in steps]
    return {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}


def test_metadata_describes_the_model(model):
    assert model.encoding.styles[0] == "any" and "hiphop" in model.encoding.styles
    assert model.info["hparams"]["rnn_layer_sizes"] == [32, 32]
    lstm = ["lstm_0_h", "lstm_0_c", "lstm_1_h", "lstm_1_c"]
    if model.metadata.format_version == 1:
        assert [s.name for s in model.metadata.states] == lstm and model.encoding.offset_bins == 0
        assert model.info["data_summary"]["splits"]["test"]["sequences"] > 0
    else:
        assert [s.name for s in model.metadata.states] == lstm + ["history", "attention_keys", "attention_values"]
        assert model.encoding.offset_bins == 16 and model.encoding.labels == ("beat", "fill")


def test_threads_are_a_load_option(model):
    """One thread unless asked (the real-time bridge's setting); more give the same logits."""
    options = model.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    two = StepModel.load(model.path, threads=2)
    assert two.session.get_session_options().intra_op_num_threads == 2
    inputs = step_inputs(model, [1, 5, 0])
    one_thread, two_threads = model.step(inputs, model.initial_state(3))[0], two.step(inputs, two.initial_state(3))[0]
    np.testing.assert_allclose(one_thread.class_logits, two_threads.class_logits, atol=1e-6)
    np.testing.assert_allclose(one_thread.velocity_logits, two_threads.velocity_logits, atol=1e-6)
    with pytest.raises(DeepBeatError, match="0 model threads asked for"):
        StepModel.load(model.path, threads=0)


def test_step_shapes_and_state(model):
    state = model.initial_state(3)
    assert all(s.shape == (3, t.size) and not s.any() for s, t in zip(state, model.metadata.states))
    outputs, new_state = model.step(step_inputs(model, [1, 5, 0]), state)
    assert outputs.class_logits.shape == (3, 512)
    assert outputs.velocity_logits.shape == (3, 9, model.encoding.velocity_bins)
    if model.encoding.offset_bins:
        assert outputs.offset_logits.shape == (3, 9, model.encoding.offset_bins)
    else:
        assert outputs.offset_logits is None
    assert [s.shape for s in new_state] == [s.shape for s in state]
    assert np.isfinite(outputs.class_logits).all() and any(s.any() for s in new_state)


def test_rows_of_a_batch_are_independent(model):
    """A batched step gives each row what a batch of one would."""
    steps = [1, 5, 0, 511]
    batched, _ = model.step(step_inputs(model, steps, position=3, style="funk"), model.initial_state(4))
    for row, step in enumerate(steps):
        single, _ = model.step(step_inputs(model, [step], position=3, style="funk"), model.initial_state(1))
        np.testing.assert_allclose(batched.class_logits[row], single.class_logits[0], atol=1e-5)
        np.testing.assert_allclose(batched.velocity_logits[row], single.velocity_logits[0], atol=1e-5)


def test_state_carries_history(model):
    inputs = step_inputs(model, [1])
    first, state = model.step(inputs, model.initial_state(1))
    second, _ = model.step(inputs, state)
    assert not np.allclose(first.class_logits, second.class_logits)


def test_conditioning_inputs_change_the_logits(model):
    state = model.initial_state(1)
    plain = model.step(step_inputs(model, [1]), state)[0].class_logits
    assert not np.allclose(plain, model.step(step_inputs(model, [1], style="jazz"), state)[0].class_logits)
    assert not np.allclose(plain, model.step(step_inputs(model, [1], position=7), state)[0].class_logits)
    if model.encoding.labels:
        fill = model.encoding.label_id("fill")
        assert not np.allclose(plain, model.step(step_inputs(model, [1], label=fill), state)[0].class_logits)


def test_lookback_repeats_make_a_repeated_bar_differ_from_a_fresh_one():
    """Format 2 streams the lookback history: the same step after the same bar differs from after silence."""
    model = StepModel.load(TINY_MODEL_V2)
    bar = [1, 0, 4, 0, 2, 0, 4, 0] * 2
    state = model.initial_state(1)
    for position, step in enumerate(bar):
        _, state = model.step(step_inputs(model, [step], position), state)
    history = dict(zip((s.name for s in model.metadata.states), state))["history"]
    assert history[0, -16:].tolist() == [s + 1 for s in bar]  # ids of the last steps, 0 = none


def test_default_path_is_package_data():
    path = default_model_path()
    assert path.name == "default.onnx" and path.parent.name == "models"


def _with_props(tmp_path, change, source=TINY_MODEL):
    """A copy of a tiny model with its metadata_props edited by `change(dict)`."""
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(source)
    props = {p.key: p.value for p in proto.metadata_props}
    change(props)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    path = tmp_path / "edited.onnx"
    onnx.save(proto, path)
    return path


def _expect_one_line_error(path, *fragments):
    with pytest.raises(ModelFileError) as caught:
        StepModel.load(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    _expect_one_line_error(tmp_path / "absent.onnx", "no such file")


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "beat.onnx"
    path.write_bytes(b"MThd\x00\x00\x00\x06not a model at all")
    _expect_one_line_error(path, "not a loadable ONNX model")


def test_onnx_without_our_metadata(tmp_path):
    path = _with_props(tmp_path, lambda props: props.clear())
    _expect_one_line_error(path, "without DeepBeat metadata")


def test_newer_format_version(tmp_path):
    path = _with_props(tmp_path, lambda props: props.update({PREFIX + "format_version": str(FORMAT_VERSION + 1)}))
    _expect_one_line_error(path, "newer", "upgrade deepbeat")


def test_damaged_metadata(tmp_path):
    path = _with_props(tmp_path, lambda props: props.update({PREFIX + "encoding": "{not json"}))
    _expect_one_line_error(path, "not valid JSON")


def test_metadata_that_contradicts_the_graph(tmp_path):
    def widen(props):
        states = json.loads(props[PREFIX + "states"])
        states[0]["size"] = 64
        props[PREFIX + "states"] = json.dumps(states)

    _expect_one_line_error(_with_props(tmp_path, widen), "lstm_0_h", "64")


def test_metadata_round_trip(model):
    again = ModelMetadata.from_props(model.metadata.to_props(), "copy")
    assert again == model.metadata


ABSOLUTE_PATH = re.compile(r"""(^|[\s"'(=])(/[\w.-]+)+/""")


def test_the_shipped_model_and_benchmark_results_name_no_machine_folders():
    """Metadata and committed results travel: they hold no absolute path of the machine that made them."""
    shipped = StepModel.load()
    texts = {f"metadata {key}": value for key, value in shipped.session.get_modelmeta().custom_metadata_map.items()}
    folder = default_model_path().parent
    for path in [*folder.glob("default*.json"), *folder.glob("default*.md"), *REPO_ROOT.glob("docs/benchmarks/*.json")]:
        texts[path.name] = path.read_text()
    assert len(texts) > 5
    found = {name: ABSOLUTE_PATH.search(text) for name, text in texts.items()}
    assert {name: match.group(0) for name, match in found.items() if match} == {}
    assert ABSOLUTE_PATH.search('"data_dir": "/tmp/gmd"') and not ABSOLUTE_PATH.search("4/4 and hiphop/groove3")


def _edit_encoding(field, value):
    def change(props):
        encoding = json.loads(props[PREFIX + "encoding"])
        encoding[field] = value(encoding[field]) if callable(value) else value
        props[PREFIX + "encoding"] = json.dumps(encoding)
        for name in ("counter_bits", "styles"):  # keep the top-level copies in step, as a careful editor would
            props[PREFIX + name] = json.dumps(encoding[name])
    return change


@pytest.mark.parametrize("source", [TINY_MODEL, TINY_MODEL_V2], ids=["format-1", "format-2"])
@pytest.mark.parametrize("edit, fragments", [
    (_edit_encoding("counter_bits", 7), ["'counter_bits'", "takes 6"]),
    (_edit_encoding("counter_bits", 40), ["'counter_bits'", "takes 6"]),  # once asked for an 8 TiB table
    (_edit_encoding("velocity_bins", 12), ["'velocity_bins'"]),
    (_edit_encoding("styles", lambda styles: styles + ["polka"]), ["'styles'", "does not fit the graph"]),
    (lambda props: props.update({PREFIX + "states": "[]"}), ["'states'", "lists no state tensors"]),
    (lambda props: props.update({PREFIX + "counter_bits": "5"}), ["'counter_bits' is 5"]),
], ids=["counter_bits-7", "counter_bits-40", "velocity_bins", "extra-style", "empty-states", "top-level-copy"])
def test_edited_metadata_is_refused_at_load_naming_the_field(tmp_path, source, edit, fragments):
    """Metadata that does not fit the graph is one line naming the file and the field, before any step runs."""
    _expect_one_line_error(_with_props(tmp_path, edit, source), *fragments)


def test_edited_timing_and_labels_are_refused_at_load(tmp_path):
    _expect_one_line_error(_with_props(tmp_path, _edit_encoding("offset_bins", 8), TINY_MODEL_V2), "'offset_bins'")
    _expect_one_line_error(_with_props(tmp_path, _edit_encoding("offset_bins", 0), TINY_MODEL_V2), "offset")
    _expect_one_line_error(_with_props(tmp_path, _edit_encoding("labels", ["beat", "fill", "break"]), TINY_MODEL_V2),
                           "does not fit the graph")


def test_deeply_nested_metadata_is_one_line(tmp_path):
    path = _with_props(tmp_path, lambda props: props.update({PREFIX + "hparams": "[" * 100_000}))
    _expect_one_line_error(path, "nested 100000 levels deep")
