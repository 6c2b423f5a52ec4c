"""The `deepbeat` command: core subcommands, every --help, and one-line errors for bad input."""
import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deepbeat import __version__
from deepbeat.benchresults import default_results_path, write_results
from deepbeat.cli import build_parser, main
from deepbeat.drums import TD11_PITCHES
from deepbeat.midifiles import read_drum_grids
from deepbeat.primer import parse_step_text

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_main(capsys, *argv):
    """(exit code, stdout, stderr) of deepbeat.cli.main(argv)."""
    try:
        code = main(list(map(str, argv)))
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def command_paths(parser, prefix=()):
    """Every subcommand path of the parser, e.g. ('data', 'prepare')."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from command_paths(sub, prefix + (name,))


COMMANDS = sorted(set(command_paths(build_parser())))


def test_core_commands_are_registered():
    assert {("data",), ("data", "prepare"), ("data", "fetch-gmd"), ("grid",), ("bench",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", [()] + COMMANDS, ids=lambda p: " ".join(p) or "deepbeat")
def test_every_help_exits_0(capsys, path):
    code, out, err = run_main(capsys, *path, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: deepbeat") and len(out.splitlines()) >= 3


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip() == f"deepbeat {__version__}"


def test_grid_text_view(capsys, hiphop_midi, gmd_fixture_dir):
    code, out, err = run_main(capsys, "grid", hiphop_midi, "--pitches", "td11")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "# section 1: 4/4, 92 BPM, 2 bars"
    _, out, _ = run_main(capsys, "grid", gmd_fixture_dir / "drummer1/session1/29_latin-samba_116_fill_4-4.mid")
    assert out.splitlines()[0] == "# section 1: 4/4, 116 BPM, 1 bar"
    assert lines[1].startswith("# bar 1") and lines[2].startswith("kick        :|X...............|X.X.")


def test_grid_names_sections_and_dropped_pitches(capsys, six_eight_midi, make_midi):
    code, out, _ = run_main(capsys, "grid", six_eight_midi, "--pitches", "td11")
    assert code == 0 and out.startswith("# section 1: 6/8, 80 BPM, 9 bars")
    code, out, _ = run_main(capsys, "grid", make_midi([(0, 36, 100), (0, 90, 100), (120, 90, 100)]))
    assert code == 0 and out.splitlines()[-1] == "# dropped pitches: 90 x2"


def test_grid_printout_reads_back_as_step_text(capsys, six_eight_midi, make_midi):
    code, out, _ = run_main(capsys, "grid", six_eight_midi, "--pitches", "td11")
    grid = read_drum_grids(six_eight_midi, TD11_PITCHES).grids[0]
    assert code == 0 and parse_step_text(out).steps.tolist() == grid.steps.tolist()
    # two sections and a dropped pitch: still one timeline
    path = make_midi([(0, 36, 100), (1920, 38, 90), (1920, 90, 90)], meters=((0, (4, 4)), (1920, (3, 4))))
    code, out, _ = run_main(capsys, "grid", path)
    steps = parse_step_text(out).steps.tolist()
    assert code == 0 and len(steps) == 16 + 12 and steps[0] == 1 and steps[16] == 2


def test_grid_json(capsys, hiphop_midi):
    code, out, _ = run_main(capsys, "grid", hiphop_midi, "--json", "--pitches", "td11")
    data = json.loads(out)
    assert code == 0
    assert (data["steps_per_quarter"], data["steps_per_bar"], data["bpm"]) == (4, 16, 92.0)
    assert len(data["steps"]) == len(data["velocities"]) == 32
    assert data["steps"][0] == [0, 3]  # kick and open hi-hat on the downbeat
    assert all(len(s) == len(v) for s, v in zip(data["steps"], data["velocities"]))


def test_grid_json_joins_sections_and_all_channels(capsys, make_midi):
    path = make_midi([(0, 36, 100, 0), (1920, 38, 90)], meters=((0, (4, 4)), (1920, (3, 4))))
    code, out, _ = run_main(capsys, "grid", path, "--json")
    data = json.loads(out)
    assert code == 0 and len(data["steps"]) == 16 + 12 and data["steps"][16] == [1] and data["steps"][0] == []
    code, out, _ = run_main(capsys, "grid", path, "--json", "--all-channels")
    assert json.loads(out)["steps"][0] == [0]


def test_grid_json_in_a_real_process(hiphop_midi):
    result = subprocess.run(
        [sys.executable, "-m", "deepbeat", "grid", str(hiphop_midi), "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["steps_per_bar"] == 16 and len(data["steps"]) == 32


def test_bad_input_in_a_real_process_is_one_line(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"\x00" * 10)
    result = subprocess.run(
        [sys.executable, "-m", "deepbeat", "grid", str(bad)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"deepbeat grid: error: {bad}: not a readable MIDI file")
    assert len(result.stderr.splitlines()) == 1


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "argv, command, fragment",
    [
        (lambda t, f: ["grid", t / "absent.mid"], "grid", "absent.mid: no such file"),
        (lambda t, f: ["grid", t], "grid", "is a folder, expected a MIDI file"),
        (lambda t, f: ["grid", write(t / "empty.mid", b"")], "grid", "empty.mid: not a readable MIDI file"),
        (lambda t, f: ["grid", write(t / "text.mid", b"hello")], "grid", "text.mid: not a readable MIDI file"),
        (lambda t, f: ["grid", write(t / "cut.mid", f.read_bytes()[:150])], "grid", "cut.mid: not a readable"),
        (lambda t, f: ["data", "prepare", "--source", t / "absent", "--out", t / "o"], "data prepare",
         "absent: no such folder"),
        (lambda t, f: ["data", "fetch-gmd", "--dest", t / "d", "--archive", write(t / "a.zip", b"PK")],
         "data fetch-gmd", "a.zip: not a readable zip archive"),
    ],
    ids=["missing", "folder", "empty", "not-midi", "truncated", "no-source", "bad-zip"],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, hiphop_midi, argv, command, fragment):
    code, out, err = run_main(capsys, *argv(tmp_path, hiphop_midi))
    assert code == 2 and out == ""
    assert err.startswith(f"deepbeat {command}: error: ") and fragment in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_absurd_tempo_and_no_drums(capsys, make_midi):
    code, _, err = run_main(capsys, "grid", make_midi([(0, 36, 100)], tempos=((0, 2000.0),)))
    assert code == 2 and "tempo 2000.0 BPM at tick 0 is outside 20-400" in err
    code, _, err = run_main(capsys, "grid", make_midi([(0, 36, 100, 0)], name="keys.mid"))
    assert code == 2 and err.strip().endswith("keys.mid: no notes on channel 10")


def test_argument_errors_exit_2(capsys, hiphop_midi):
    code, _, err = run_main(capsys, "grid", hiphop_midi, "--pitches", "roland")
    assert code == 2 and "invalid choice: 'roland'" in err
    code, _, _ = run_main(capsys, "data")
    assert code == 2


def test_data_prepare_on_the_fixture_folder(capsys, tmp_path, gmd_fixture_dir):
    code, out, err = run_main(capsys, "data", "prepare", "--source", gmd_fixture_dir, "--out", tmp_path)
    assert code == 0 and "Traceback" not in err
    assert out.splitlines()[0] == "files read: 4, used: 3, skipped: 1 meter 6/8"
    assert {p.name for p in tmp_path.iterdir()} == {"train.npz", "validation.npz", "test.npz", "summary.json"}
    code, out, _ = run_main(capsys, "data", "prepare", "--source", gmd_fixture_dir, "--out", tmp_path / "all",
                            "--all-meters")
    assert code == 0 and out.splitlines()[0] == "files read: 4, used: 4, skipped: none"


def test_fetch_gmd_refuses_a_zip_that_is_not_gmd(capsys, tmp_path, gmd_fixture_dir):
    archive = tmp_path / "small.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in gmd_fixture_dir.rglob("*"):
            zipped.write(path, f"groove/{path.relative_to(gmd_fixture_dir).as_posix()}")
    code, _, err = run_main(capsys, "data", "fetch-gmd", "--dest", tmp_path / "d", "--archive", archive)
    assert code == 2 and "contents differ from GMD v1.0.0 (4 MIDI files" in err and len(err.splitlines()) == 1


# --- help that fits, errors that name the flag ---------------------------------------------------


def help_text(capsys, *path):
    code, out, _ = run_main(capsys, *path, "--help")
    assert code == 0
    return out


def test_train_and_eval_each_list_only_their_own_options(capsys):
    train, evaluate = help_text(capsys, "train"), help_text(capsys, "eval")
    shared = ["--data", "--SE", "--run-dir", "--num-eval-batches", "--modo_trabajo", "--verbose"]
    train_only = ["--hparams", "--num-training-steps", "--seed", "--eval-every", "--early-stop", "--max-minutes",
                  "--strategy", "--save-weights"]
    eval_only = ["--model", "--split", "--out", "--generate-bars"]
    for option in shared:
        assert option in train and option in evaluate, option
    for option in train_only:
        assert f"{option} " in train and f"{option} " not in evaluate, option
    for option in eval_only:
        assert f"{option} " in evaluate and f"{option} " not in train, option


@pytest.mark.parametrize("argv, prog, message", [
    (["generate", "--bogus"], "deepbeat generate", "unrecognized arguments: --bogus"),
    (["generate", "--style", "rock", "--bogus", "1"], "deepbeat generate", "unrecognized arguments: --bogus 1"),
    (["data", "prepare", "--source", "s", "--out", "o", "--bogus"], "deepbeat data prepare",
     "unrecognized arguments: --bogus"),
    (["bench", "train", "--bogus"], "deepbeat bench train", "unrecognized arguments: --bogus"),
    (["train", "--data", "d", "--split", "test"], "deepbeat train", "unrecognized arguments: --split test"),
    (["generate", "--top-p", "0"], "deepbeat generate",
     "argument --top-p/--top_p: top-p 0 is outside the range; expected above 0 and at most 1"),
    (["generate", "--top-k", "-1"], "deepbeat generate",
     "argument --top-k/--top_k: -1 is below 0; expected at least 0"),
    (["train", "--data", "d", "--run-dir", "r", "--num-training-steps", "0"], "deepbeat train",
     "argument --num-training-steps/--num_training_steps: 0 is below 1; expected at least 1"),
    (["train", "--data", "d", "--run-dir", "r", "--max-minutes", "-5"], "deepbeat train",
     "argument --max-minutes: -5 is not a positive number of minutes"),
    (["eval", "--data", "d", "--run-dir", "r", "--num-eval-batches", "0"], "deepbeat eval",
     "argument --num-eval-batches/--num_eval_batches: 0 is below 1; expected at least 1"),
    (["bench", "generate", "--repeats", "10"], "deepbeat bench generate",
     "argument --repeats: 10 is below 80; expected at least 80"),
])
def test_command_line_errors_name_the_command_and_the_flag(capsys, argv, prog, message):
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err == f"{prog}: error: {message} (see {prog} --help)\n"


@pytest.mark.parametrize("command", ["generate", "bridge"])
def test_style_help_lists_the_shipped_models_styles(capsys, command):
    styles = json.loads((REPO_ROOT / "core" / "models" / "default.json").read_text())["encoding"]["styles"]
    text = " ".join(help_text(capsys, command).split())
    assert len(styles) > 10 and f"the shipped model knows: {', '.join(styles)}" in text


def test_grid_json_names_the_drums(capsys, hiphop_midi):
    code, out, _ = run_main(capsys, "grid", hiphop_midi, "--json", "--pitches", "td11")
    data = json.loads(out)
    assert code == 0 and data["drums"][:3] == ["kick", "snare", "closed_hihat"] and len(data["drums"]) == 9
    assert data["step_drums"][0] == ["kick", "open_hihat"] and data["steps"][0] == [0, 3]
    assert all([data["drums"][i] for i in step] == names for step, names in zip(data["steps"], data["step_drums"]))


# --- benchmark results ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train", "generate"])
def test_bench_results_go_where_output_says_by_default_beside_the_working_files(name):
    parser = build_parser()
    for spelling in ("--output", "--out"):
        assert parser.parse_args(["bench", name, spelling, "mine.json"]).out == Path("mine.json")
    assert parser.parse_args(["bench", name]).out == Path("deepbeat-bench") / f"{name}.json"


def test_results_are_written_in_the_working_folder_and_the_path_said(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_results(default_results_path("train"), {"ratio": 2.5})
    assert json.loads((tmp_path / "deepbeat-bench" / "train.json").read_text()) == {"ratio": 2.5}
    assert capsys.readouterr().out == "wrote deepbeat-bench/train.json\n"


@pytest.mark.parametrize("name", ["train", "generate"])
def test_bench_refuses_a_folder_as_results_file_before_measuring(tmp_path, capsys, name):
    code, _, err = run_main(capsys, "bench", name, "--output", tmp_path)
    assert code == 2
    assert err == f"deepbeat bench {name}: error: {tmp_path}: is a folder; expected a results file name such as " \
                  f"{tmp_path / 'results.json'}\n"


# --- after the runtime install (no training extra) -----------------------------------------------------


def test_training_commands_without_the_training_extra_say_which_to_install(tmp_path):
    """As after `pip install .`: importing TensorFlow, tf2onnx and onnx fails; each command says what to install."""
    tensorflow, export_stack = "tensorflow", "tensorflow, tf2onnx, onnx"
    commands = [(["train", "--data", "d", "--run-dir", "r"], "train", tensorflow),
                (["eval", "--data", "d", "--run-dir", "r"], "eval", tensorflow),
                (["export", "--run-dir", "r"], "export", export_stack),
                (["bench", "train"], "bench train", tensorflow),
                (["bench", "generate"], "bench generate", export_stack)]
    script = (
        "import contextlib, io, json, sys\n"
        "sys.modules.update(dict.fromkeys(['tensorflow', 'tf2onnx', 'onnx']))  # import fails: not installed\n"
        "from deepbeat.cli import main\n"
        "results = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        "        results.append([main(argv), err.getvalue()])\n"
        "print(json.dumps(results))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, json.dumps([argv for argv, _, _ in commands])],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    for (_, command, needs), (code, err) in zip(commands, json.loads(result.stdout)):
        assert code == 2
        assert err == f"deepbeat {command}: error: needs {needs}, which this install lacks; install the training " \
                      f'extra: pip install "deepbeat[train]"\n'
    assert not list(tmp_path.iterdir())  # nothing written
