"""Training and evaluation: windows, train/resume/best, strategies, NaN guard, bad input, eval report."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from deepbeat.cli import build_parser, main  # noqa: E402
from deepbeat.dataset import Sequence, save_split  # noqa: E402
from deepbeat.errors import DeepBeatError, ModelFileError  # noqa: E402
from deepbeat.grid import DrumGrid  # noqa: E402
from deepbeat.runtime.stepmodel import StepModel  # noqa: E402
from deepbeat.timekeeping import TimeKeeping  # noqa: E402
from deepbeat.training.examples import (  # noqa: E402
    encode_sequences, encoding_for, load_sequences, training_dataset, window_rows,
)
from deepbeat.training.hparams import HParams  # noqa: E402
from deepbeat.training.runs import RunDir, load_trained  # noqa: E402
from deepbeat.training.trainer import TrainingError, TrainingOptions, make_strategy, train  # noqa: E402

from conftest import TINY_MODEL_V2  # noqa: E402

TINY = "rnn_layer_sizes=[16],embedding_size=8,batch_size=4,window_bars=2"
KICK, SNARE, HAT = 1, 2, 4  # step bits of drum classes 0, 1, 2


def groove(bars, style, bpm=100.0, seed=0):
    """A rock-ish groove: kick/snare/hats with some random ghost notes, varied velocities."""
    rng = np.random.default_rng(seed)
    bar = [KICK | HAT, 0, HAT, 0, SNARE | HAT, 0, HAT, KICK, KICK | HAT, 0, HAT, 0, SNARE | HAT, 0, HAT, 0]
    steps = np.tile(bar, bars)
    steps[rng.random(len(steps)) < 0.05] |= SNARE
    hits = (steps[:, None] >> np.arange(9)) & 1
    velocities = hits * rng.integers(30, 127, hits.shape)
    return Sequence(DrumGrid(velocities, bpm=bpm), f"{style}-{seed}.mid", style, "drummer1", "beat")


def write_data(folder, train_count=6, bars=6, bpm=100.0):
    folder.mkdir(parents=True, exist_ok=True)
    styles = ("rock", "hiphop")
    for first_seed, (split, count) in enumerate((("train", train_count), ("validation", 2), ("test", 3))):
        save_split(folder / f"{split}.npz",
                   [groove(bars + i % 3, styles[i % 2], bpm, seed=100 * first_seed + i) for i in range(count)])
    return folder


@pytest.fixture
def data(tmp_path):
    return write_data(tmp_path / "data")


def options(data, run, **changes):
    base = dict(data_dir=str(data), run_dir=str(run), hparams_text=TINY, num_steps=4, seed=3, eval_every=2)
    return TrainingOptions(**{**base, **changes})


def quiet(line):
    quiet.lines.append(line)


quiet.lines = []


def test_windows_start_on_bar_lines_and_targets_are_the_next_steps(data):
    sequences = load_sequences(data, "train")
    hparams = HParams().parse(TINY)
    encoding = encoding_for(sequences, hparams)
    assert encoding.styles == ("any", "hiphop", "rock")
    encoded = encode_sequences(sequences, encoding)
    rows = window_rows(encoded, 32)
    first_rows = rows[:, 0]
    sequence_of = np.searchsorted(encoded.starts, first_rows, side="right") - 1
    assert np.all((first_rows - encoded.starts[sequence_of]) % 16 == 0)
    assert len(rows) == sum(s.grid.num_bars for s in sequences)
    steps = sequences[0].grid.steps
    window = encoded.sequence(0)
    np.testing.assert_array_equal(window["step_class"], steps[:-1])
    np.testing.assert_array_equal(window["next_class"], steps[1:])
    # the last window of the first sequence runs past its end into padding rows
    assert rows[sequences[0].grid.num_bars - 1, -1] == encoded.num_rows


@pytest.mark.parametrize("rate, hidden", [(0.0, False), (1.0, True)])
def test_training_batches_hide_the_style_at_the_any_style_rate(data, rate, hidden):
    sequences = load_sequences(data, "train")
    hparams = HParams().parse(TINY + f",any_style_rate={rate}")
    encoded = encode_sequences(sequences, encoding_for(sequences, hparams))
    inputs, targets = next(iter(training_dataset(encoded, hparams, seed=1)))
    assert inputs["step_class"].shape == (4, 32) and inputs["velocity"].shape == (4, 32, 9)
    assert targets["next_class"].shape == (4, 32) and targets["velocity_bin"].shape == (4, 32, 9)
    real = targets["step_mask"].numpy() > 0
    assert np.all((inputs["style"].numpy()[real] == 0) == hidden)


def test_train_writes_a_run_then_resumes_from_its_latest_checkpoint(data, tmp_path):
    run = RunDir(tmp_path / "run")
    state = train(options(data, run.root), log=quiet)
    assert state["step"] == 4 and state["timesteps_per_second"] > 0
    assert (run.checkpoints / "checkpoint").exists() and any(run.checkpoints.glob("events.out.tfevents*"))
    assert any(run.validation_logs.glob("events.out.tfevents*"))
    history = [json.loads(line) for line in run.history.read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]
    assert set(history[0]["validation"]) >= {"loss", "perplexity", "accuracy", "event_accuracy",
                                               "no_event_accuracy", "velocity_loss"}
    before = load_trained(run.root).model.get_weights()

    quiet.lines.clear()
    state = train(options(data, run.root, num_steps=6, hparams_text=None), log=quiet)
    assert quiet.lines[0] == f"resumed {run.root} from step 4"
    assert state["step"] == 6
    assert [json.loads(line)["step"] for line in run.history.read_text().splitlines()] == [2, 4, 6]
    trained = load_trained(run.root)
    assert trained.info["step"] == state["best_step"]
    assert trained.encoding.styles == ("any", "hiphop", "rock")
    assert len(trained.model.get_weights()) == len(before)


def test_resume_with_other_hparams_is_refused_with_the_difference(data, tmp_path):
    train(options(data, tmp_path / "run", num_steps=2), log=quiet)
    with pytest.raises(TrainingError, match=r"rnn_layer_sizes: \[16\] in the run, \[8\] given"):
        train(options(data, tmp_path / "run", hparams_text=TINY.replace("[16]", "[8]")), log=quiet)


def test_mirrored_strategy_trains_on_cpu(data, tmp_path):
    state = train(options(data, tmp_path / "run", num_steps=2, strategy="mirrored"), log=quiet)
    assert state["step"] == 2
    assert np.all(np.isfinite(np.concatenate([w.ravel() for w in load_trained(tmp_path / "run").model.get_weights()])))


def _free_ports(count):
    """Ports on 127.0.0.1 nothing listens on now (each bound once and released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_workers_train_in_step_over_loopback(data, tmp_path):
    """MultiWorkerMirroredStrategy for real: two worker processes on 127.0.0.1 (TF_CONFIG), a few steps of
    `deepbeat train --strategy multiworker`; both end with the same weights, and they moved from the start."""
    cluster = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    run = tmp_path / "run"
    workers = []
    for index in range(2):
        task = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", TF_CONFIG=json.dumps(task))
        command = [sys.executable, "-m", "deepbeat", "train", "--data", str(data), "--run-dir", str(run), "--hparams",
                   TINY, "--num-training-steps", "4", "--eval-every", "2", "--seed", "3", "--strategy", "multiworker"]
        workers.append(subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
    outcomes = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [err[-2000:] for _, err in outcomes]
    chief, other = (tf.train.load_checkpoint(tf.train.latest_checkpoint(str(folder)))
                    for folder in (run / "train", run / "workers" / "1"))
    # every saved value: the weights (Keras 3 saves them under the optimizer's references) and the Adam slots
    names = [name for name in chief.get_variable_to_shape_map() if name.endswith("/VARIABLE_VALUE")]
    assert len(names) > 30 and chief.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name), err_msg=name)
    earlier = tf.train.load_checkpoint(str(run / "train" / "ckpt-2"))  # and training moved them
    assert any(not np.array_equal(earlier.get_tensor(name), chief.get_tensor(name)) for name in names)


def test_early_stop_when_validation_does_not_improve(data, tmp_path):
    state = train(options(data, tmp_path / "run", num_steps=20, patience=1,
                          hparams_text=TINY + ",learning_rate=0.0"), log=quiet)
    assert state["stopped_early"] and state["step"] == 4 and state["best_step"] == 2


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    run = RunDir(tmp_path / "run")
    train(options(data, run.root, num_steps=2), log=quiet)
    good = load_trained(run.root).model.get_weights()
    poisoned = write_data(tmp_path / "poisoned", bpm=float("inf"))  # log2(inf) tempo feature -> NaN loss
    with pytest.raises(TrainingError, match="not finite at step 3"):
        train(options(poisoned, run.root, num_steps=6, hparams_text=None), log=quiet)
    assert tf.train.latest_checkpoint(str(run.checkpoints)).endswith("ckpt-2")
    assert json.loads(run.state.read_text())["step"] == 2
    for kept, before in zip(load_trained(run.root).model.get_weights(), good):
        np.testing.assert_array_equal(kept, before)


def run_cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr()


@pytest.mark.parametrize("make", [
    lambda tmp: tmp / "missing",
    lambda tmp: (tmp / "empty").mkdir() or tmp / "empty",
    lambda tmp: (tmp / "nothing").mkdir() or save_split(tmp / "nothing" / "train.npz", []) or tmp / "nothing",
])
def test_missing_or_empty_data_folder_is_one_line_and_exit_2(tmp_path, capsys, make):
    folder = make(tmp_path)
    code, out = run_cli(capsys, "train", "--data", str(folder), "--run-dir", str(tmp_path / "run"),
                        "--hparams", TINY, "--num-training-steps", "2")
    assert code == 2
    assert out.err.startswith("deepbeat train: error: ") and out.err.count("\n") == 1
    assert str(folder) in out.err
    assert not (tmp_path / "run" / "train").exists()


def test_bad_hparams_on_the_command_line_are_one_line(data, tmp_path, capsys):
    code, out = run_cli(capsys, "train", "--data", str(data), "--run-dir", str(tmp_path / "run"),
                        "--hparams", "rnn_layer_sizes=big")
    assert code == 2 and "rnn_layer_sizes='big' is not a list like [256,256]" in out.err


def test_seed_flag_aliases_parse_to_the_same_options():
    """One seed command line serves both modes: --modo_trabajo hands it to that command's parser."""
    parser = build_parser()
    seed = parser.parse_args(["train", "--run_dir", "R", "--SE", "D", "--num_training_steps", "7",
                              "--num_eval_batches", "2", "--hparams", "batch_size=8", "--modo_trabajo", "eval"])
    plain = parser.parse_args(["eval", "--run-dir", "R", "--data", "D", "--num-eval-batches", "2"])
    assert (seed.run, seed.command, seed.run_dir, seed.data, seed.num_eval_batches, seed.split) == \
           (plain.run, "eval", "R", "D", 2, None)  # the split defaults per evaluation (test; --musical validation)
    back = parser.parse_args(["eval", "--modo_trabajo=train", "--SE", "D", "--run_dir", "R",
                              "--num_training_steps", "7", "--hparams", "batch_size=8"])
    assert (back.command, back.num_training_steps, back.hparams, back.eval_every) == ("train", 7, "batch_size=8", 250)


def test_cli_train_exports_weights_and_eval_writes_the_report(data, tmp_path, capsys):
    run, weights = tmp_path / "run", tmp_path / "model" / "tiny.weights.h5"
    code, out = run_cli(capsys, "train", "--SE", str(data), "--run_dir", str(run), "--hparams", TINY,
                        "--num_training_steps", "2", "--eval-every", "2", "--seed", "1", "--save-weights", str(weights))
    assert code == 0 and weights.exists()
    config = json.loads((tmp_path / "model" / "tiny.json").read_text())
    assert config["training"]["step"] == 2 and config["data_summary"]["train"]["sequences"] == 6
    # the training data's time keeping travels with the model: the sampler's style prior
    counted = TimeKeeping.of(load_sequences(data, "train"))
    assert counted.bars and TimeKeeping.in_summary(config["data_summary"]).to_dict() == counted.to_dict()
    # paths outside the working folder are written by name: the config travels with the model
    assert config["training"]["commands"] == [
        f'deepbeat train --data {data.name} --run-dir {run.name} --hparams "{TINY}" --num-training-steps 2 --seed 1 '
        f'--eval-every 2 --early-stop 0 --strategy default --save-weights {weights.name}']
    assert str(tmp_path) not in json.dumps(config)

    code, out = run_cli(capsys, "eval", "--data", str(data), "--model", str(weights), "--split", "test",
                        "--generate-bars", "4", "--out", str(tmp_path / "report"))
    assert code == 0, out.err
    report = json.loads((tmp_path / "report.json").read_text())
    rows = report["groups"]["all"]["rows"]
    assert set(rows) == {"model", "model, style any", "uniform", "unigram", "position 3-gram", "bar-aware n-gram",
                         "bar n-gram, no position", "repeat previous bar"}
    assert rows["uniform"]["perplexity"] == pytest.approx(512.0)
    assert rows["model"]["steps"] == rows["unigram"]["steps"] == sum(
        s.grid.num_steps - 1 for s in load_sequences(data, "test"))
    assert report["groups"]["hiphop"]["sequences"] == 1
    assert set(report["velocity"]["kick"]) == {"hits", "nll", "mae", "mae_class_mean"}
    assert report["velocity"]["kick"]["hits"] > 0
    assert report["generated_velocity"]["bars"] == 4
    markdown = (tmp_path / "report.md").read_text()
    assert "| repeat previous bar |" in markdown and "deepbeat train --data" in markdown
    assert f"deepbeat eval --data {data.name} --model {weights.name} --split test --generate-bars 4" in markdown
    assert str(tmp_path) not in markdown + json.dumps(report)
    assert "model" in out.out and "wrote" in out.out
    assert load_trained(weights).info["eval"]["all"]["nll"] == pytest.approx(rows["model"]["nll"])

    code, out = run_cli(capsys, "eval", "--data", str(data), "--model", str(weights), "--musical", "--compare",
                        str(run), "--continuations", "2", "--generate-bars", "0", "--out", str(tmp_path / "musical"))
    assert code == 0, out.err
    report = json.loads((tmp_path / "musical.json").read_text())
    assert report["split"] == "test" and report["musical"]["split"] == "validation"
    assert report["musical"]["primer"]["generated"]["continuations"] == 2 * report["musical"]["primers"]
    assert [row["model"] for row in report["ablation"]] == [weights.name, run.name]
    assert all(row["test_perplexity"] > 1 and 0 <= row["validation_adherence"] <= 1 for row in report["ablation"])
    markdown = (tmp_path / "musical.md").read_text()
    assert "## Musical evaluation" in markdown and "## Ablation" in markdown and "| adherence" in markdown
    assert "musical evaluation, validation split" in out.out

    code, out = run_cli(capsys, "export", "--weights", str(weights))
    assert code == 0, out.err
    assert StepModel.load(weights.with_suffix("").with_suffix(".onnx")).time_keeping.to_dict() == counted.to_dict()


def test_musical_evaluation_of_an_exported_model_needs_no_tensorflow(data, tmp_path):
    script = (
        "import sys; sys.modules['tensorflow'] = None; from deepbeat.cli import main; "
        f"sys.exit(main(['eval', '--musical', '--model', {str(TINY_MODEL_V2)!r}, '--data', {str(data)!r}, "
        f"'--out', {str(tmp_path / 'm')!r}, '--continuations', '2']))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    assert set(report["goals"]) >= {"adherence >= 0.9 x real", "distinct velocities >= 32"}
    assert "met" in result.stdout


def test_load_trained_refuses_bad_paths(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_trained(tmp_path / "nope.weights.h5")
    with pytest.raises(ModelFileError, match="run folder has no best.weights.h5"):
        load_trained(tmp_path)
    with pytest.raises(ModelFileError, match="expected a run folder or a .weights.h5"):
        load_trained(tmp_path / "model.onnx")
    (tmp_path / "lone.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(DeepBeatError, match="lone.json: not found"):
        load_trained(tmp_path / "lone.weights.h5")


def test_eval_batch_limit_applies_to_model_and_baselines_alike(data, tmp_path):
    from deepbeat.training.evaluate import evaluate

    write_data(data, train_count=6)
    save_split(data / "test.npz", [groove(4 + i % 5, "rock", seed=300 + i) for i in range(20)])  # 2 batches of 16
    train(options(data, tmp_path / "run", num_steps=2), log=quiet)
    report = evaluate(load_trained(tmp_path / "run"), data, "test", num_batches=1, generate_bars=0)
    rows = report["groups"]["all"]["rows"]
    assert report["groups"]["all"]["sequences"] == 16 and "generated_velocity" not in report
    assert rows["model"]["steps"] == rows["bar-aware n-gram"]["steps"] == sum(
        s.grid.num_steps - 1 for s in load_sequences(data, "test")[:16])
    assert "hiphop" not in report["groups"]


def test_multiworker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainingError, match="needs TF_CONFIG"):
        make_strategy("multiworker")


def test_train_prints_its_own_lines_only(data, tmp_path):
    """TensorFlow's start-up and device messages (7 lines on a CPU-only machine) are held back."""
    result = subprocess.run(
        [sys.executable, "-m", "deepbeat", "train", "--data", str(data), "--run-dir", str(tmp_path / "run"),
         "--hparams", TINY, "--num-training-steps", "2", "--eval-every", "2", "--seed", "1"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    device, step = result.stdout.splitlines()
    assert device.startswith("training on ") and step.startswith("step 2/2: train loss ")
