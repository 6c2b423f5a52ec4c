"""`deepbeat generate` end to end on the tiny fixture model, without TensorFlow."""
import shutil
import subprocess
import sys
import zipfile

import mido
import pytest

from deepbeat.cli import main
from deepbeat.grid import DrumGrid
from deepbeat.midifiles import read_drum_grids, write_midi
from deepbeat.notemaps import MPC_CHROMATIC
from deepbeat.primer import parse_step_text

from conftest import REPO_ROOT, TINY_MODEL, write_test_midi

PRIMER = "[(36,42),(42,),(38,42),(42,)]"


def generate(tmp_path, *options, folder="out"):
    """Run generate in-process: (exit code, MIDI files written)."""
    out = tmp_path / folder
    argv = ["generate", "--model", str(TINY_MODEL), "--output-dir", str(out), *options]
    return main(argv), sorted(out.glob("*.mid")) if out.exists() else []


def printed_grids(text):
    """The grid blocks printed after each file line."""
    blocks = {}
    for block in text.strip().split("\n\n"):
        header, _, grid = block.partition("\n")
        blocks[header.split(":")[0]] = grid
    return blocks


def test_writes_one_midi_per_output_matching_the_printed_grid(tmp_path, capsys):
    code, files = generate(tmp_path, "--primer-drums", PRIMER, "--num-outputs", "3", "--num-steps", "32",
                           "--qpm", "90", "--style", "hiphop", "--seed", "7")
    out = capsys.readouterr().out
    assert code == 0 and len(files) == 3
    printed = printed_grids(out)
    assert set(printed) == {str(f) for f in files}
    for path in files:
        midi = mido.MidiFile(path)
        tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
        assert round(mido.tempo2bpm(tempo), 3) == 90.0
        grid = read_drum_grids(path).grids[0]
        grid = grid.concat(DrumGrid.silent(32 - grid.num_steps))  # a silent last bar reads back shorter
        assert grid.to_text() == printed[str(path)]
        assert grid.steps[:4].tolist() == [0b101, 0b100, 0b110, 0b100]  # the primer comes first
        assert "90 BPM, style hiphop" in out


def test_velocities_come_from_the_model(tmp_path, capsys):
    code, files = generate(tmp_path, "--num-steps", "48", "--seed", "3")
    assert code == 0
    grid = read_drum_grids(files[0]).grids[0]
    continuation = grid.velocities[1:][grid.velocities[1:] > 0]
    assert len(set(continuation.tolist())) > 1  # several velocity bins, not one fixed velocity


def test_seed_reproduces_the_midi_at_any_thread_count(tmp_path, capsys):
    runs = [generate(tmp_path, "--seed", "5", "--num-outputs", "2", "--num-steps", "32", "--threads", threads,
                     folder=f"run{threads}")[1]
            for threads in ("1", "2")]
    other = generate(tmp_path, "--seed", "6", "--num-outputs", "2", "--num-steps", "32", folder="other")[1]
    assert [f.read_bytes() for f in runs[0]] == [f.read_bytes() for f in runs[1]]
    assert [f.read_bytes() for f in runs[0]] != [f.read_bytes() for f in other]


def test_seed_spellings_are_aliases(tmp_path, capsys):
    out = tmp_path / "aliases"
    code = main(["generate", "--model", str(TINY_MODEL), "--primer_drums", PRIMER, "--num_outputs", "2",
                 "--num_steps", "20", "--output_dir", str(out), "--qpm", "100", "--temperature", "0.8",
                 "--seed", "1"])
    assert code == 0 and len(list(out.glob("*.mid"))) == 2


def test_primer_grid_and_beam_search(tmp_path, capsys):
    code, files = generate(tmp_path, "--primer-grid", "kick: x...x...; snare: ....x...", "--num-steps", "32",
                           "--beam-size", "2", "--branch-factor", "3", "--steps-per-iteration", "4", "--seed", "2")
    assert code == 0 and len(files) == 1
    grid = read_drum_grids(files[0]).grids[0]
    assert grid.slice(0, 8).steps.tolist() == parse_step_text("kick: x...x...; snare: ....x...").steps.tolist()


def test_primer_midi_sets_the_tempo_and_note_map_the_notes(tmp_path, capsys):
    primer = DrumGrid.from_steps([1, 0, 4, 0] * 8, bpm=84.0)  # two bars
    write_midi(primer, tmp_path / "primer.mid", note_map=MPC_CHROMATIC)
    code, files = generate(tmp_path, "--primer-midi", str(tmp_path / "primer.mid"), "--primer-bars", "1",
                           "--num-steps", "32", "--note-map", "mpc-chromatic", "--seed", "4")
    assert code == 0
    midi = mido.MidiFile(files[0])
    notes = {m.note for m in midi.tracks[0] if m.type == "note_on"}
    assert notes <= set(MPC_CHROMATIC.notes) and {36, 38} <= notes
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    assert round(mido.tempo2bpm(tempo)) == 84
    assert "84 BPM" in capsys.readouterr().out


def test_run_dir_uses_its_exported_model(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["generate", "--run_dir", str(run), "--output-dir", str(tmp_path / "a")]) == 2
    assert "deepbeat export --run-dir" in capsys.readouterr().err
    shutil.copy(TINY_MODEL, run / "model.onnx")
    assert main(["generate", "--run_dir", str(run), "--num-steps", "17", "--output-dir", str(tmp_path / "b")]) == 0


def _bad_files(tmp_path):
    onnx = pytest.importorskip("onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    bare = onnx.load(TINY_MODEL)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    newer = onnx.load(TINY_MODEL)
    onnx.helper.set_model_props(newer, {**{p.key: p.value for p in newer.metadata_props},
                                         "deepbeat.format_version": "99"})
    onnx.save(newer, tmp_path / "newer.onnx")
    return text, tmp_path / "bare.onnx", tmp_path / "newer.onnx"


BAD_OPTIONS = {
    "long primer": (["--primer-drums", PRIMER, "--num-steps", "4"], "--num-steps 4"),
    "style": (["--style", "polka"], "unknown style 'polka'"),
    "note map": (["--note-map", "tr808"], "unknown note map"),
    "primer": (["--primer-drums", "[(36,),(999,)]"], "primer position"),
    "missing": (["--model", "absent.onnx"], "no such file"),
    "threads": (["--threads", "0"], "argument --threads: 0 is below 1"),
    # issue 14 item 5: values that were quietly changed or accepted
    "qpm 0": (["--qpm", "0"], "argument --bpm/--qpm: tempo 0 BPM is outside 20-400 BPM"),
    "bpm 0": (["--bpm", "0"], "argument --bpm/--qpm: tempo 0 BPM is outside 20-400 BPM"),
    "empty primer grid": (["--primer-grid", ""], "step text has no rows"),
    "temperature inf": (["--temperature", "inf"], "argument --temperature: temperature inf is outside the range; "
                        "expected 0-2"),
    "temperature nan": (["--temperature", "nan"], "temperature nan is outside the range"),
    "beam size 0": (["--beam-size", "0"], "argument --beam-size/--beam_size: 0 is below 1; expected at least 1"),
    "branch factor 0": (["--branch-factor", "0"], "argument --branch-factor/--branch_factor: 0 is below 1"),
    "steps per iteration 0": (["--steps-per-iteration", "0"],
                              "argument --steps-per-iteration/--steps_per_iteration: 0 is below 1"),
    "primer bars 0": (["--primer-bars", "0"], "argument --primer-bars/--primer_bars: 0 is below 1"),
    "bars and num-steps": (["--bars", "2", "--num-steps", "64"], "argument --num-steps/--num_steps: not allowed with "
                           "argument --bars"),
}


@pytest.mark.parametrize("case", ["text", "bare", "newer", *BAD_OPTIONS])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    if case in ("text", "bare", "newer"):
        text, bare, newer = _bad_files(tmp_path)
        options = ["--model", str({"text": text, "bare": bare, "newer": newer}[case])]
        expected = {"text": "not a loadable ONNX model", "bare": "without DeepBeat metadata", "newer": "newer"}[case]
    else:
        options, expected = BAD_OPTIONS[case]
        options = [str(tmp_path / o) if o.endswith(".onnx") else o for o in options]
    argv = ["generate", "--model", str(TINY_MODEL), "--output-dir", str(tmp_path / "out"), *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepbeat generate: error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def two_bar_primer(tmp_path, extra_notes=()):
    """A 2-bar GM MIDI primer (kick and snare on the beats), plus (tick, pitch, velocity) notes."""
    notes = [(beat * 480, 36 if beat % 2 == 0 else 38, 100) for beat in range(8)]
    return write_test_midi(tmp_path / "primer.mid", notes + list(extra_notes))


def test_primer_bars_beyond_the_file_name_the_file_not_num_steps(tmp_path, capsys):
    primer = two_bar_primer(tmp_path)
    code, files = generate(tmp_path, "--primer-midi", str(primer), "--primer-bars", "5", "--bars", "1")
    err = capsys.readouterr().err
    assert code == 2 and not files and err.count("\n") == 1
    assert err == f"deepbeat generate: error: {primer}: its first 4/4 drum section has 2 bars; 5 bars asked for\n"


def test_left_out_primer_notes_are_printed(tmp_path, capsys):
    primer = two_bar_primer(tmp_path, extra_notes=[(0, 100, 90), (960, 100, 90), (2000, 21, 90)])
    code, files = generate(tmp_path, "--primer-midi", str(primer), "--primer-bars", "2", "--bars", "1", "--seed", "1")
    err = capsys.readouterr().err
    assert code == 0 and len(files) == 1
    assert ("deepbeat generate: note: primer: left out notes the gm note map has no drum for: 21 (x1), 100 (x2)"
            in err.splitlines())


def test_bars_count_what_comes_after_the_primer(tmp_path, capsys):
    code, files = generate(tmp_path, "--primer-grid", "kick: x...x...x...x...", "--bars", "2", "--seed", "1")
    out = capsys.readouterr().out
    assert code == 0 and len(files) == 1
    assert out.splitlines()[0] == f"{files[0]}: 3 bars at 120 BPM, style any (primer 16 steps, then 32 generated)"


def test_num_steps_help_says_it_counts_the_primer(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--num-steps NUM_STEPS, --num_steps NUM_STEPS Magenta's length: 16th steps of each output, primer " \
           "included" in help_text
    assert "--bars BARS bars to generate after the primer" in help_text


@pytest.fixture
def one_second(monkeypatch):
    """Every run stamps its files with the same second."""
    from deepbeat.runtime import generate as use_case

    monkeypatch.setattr(use_case.time, "strftime", lambda _: "2026-11-25_131913")
    return "2026-11-25_131913"


def test_two_runs_in_one_second_keep_both_files(tmp_path, capsys, one_second):
    first = generate(tmp_path, "--num-steps", "20", "--seed", "1")[1]
    both = generate(tmp_path, "--num-steps", "20", "--seed", "2")[1]
    assert [f.name for f in first] == [f"{one_second}_01.mid"]
    assert [f.name for f in both] == [f"{one_second}_01-2.mid", f"{one_second}_01.mid"]
    assert both[0].read_bytes() != both[1].read_bytes() and both[1].read_bytes() == first[0].read_bytes()


def test_an_existing_file_is_never_overwritten(tmp_path, capsys, one_second):
    mine = tmp_path / "out" / f"{one_second}_01.mid"
    mine.parent.mkdir()
    mine.write_bytes(b"my own take")
    code, files = generate(tmp_path, "--num-outputs", "2", "--num-steps", "20", "--seed", "1")
    assert code == 0 and mine.read_bytes() == b"my own take"
    assert [f.name for f in files] == [f"{one_second}_01-2.mid", f"{one_second}_01.mid", f"{one_second}_02.mid"]
    assert f"{mine.parent / (one_second + '_01-2.mid')}: " in capsys.readouterr().out


def test_generate_never_imports_tensorflow(tmp_path):
    script = (
        "import sys; from deepbeat.cli import main; "
        f"code = main(['generate', '--model', {str(TINY_MODEL)!r}, '--output-dir', {str(tmp_path)!r}, "
        "'--num-outputs', '2', '--num-steps', '32', '--style', 'hiphop', '--seed', '1']); "
        "assert code == 0, code; "
        # onnx and tf2onnx are export-only extras too: a plain install must generate without them
        "assert not {'tensorflow', 'keras', 'onnx', 'tf2onnx'} & set(sys.modules), 'training stack imported'"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.mid"))) == 2 and "kick" in result.stdout


def test_without_model_uses_the_shipped_one(tmp_path, capsys):
    out = tmp_path / "shipped"
    assert main(["generate", "--style", "hiphop", "--num-steps", "32", "--seed", "7", "--output-dir", str(out)]) == 0
    assert len(list(out.glob("*.mid"))) == 1 and "style hiphop" in capsys.readouterr().out


def test_the_wheel_carries_the_shipped_model_and_every_stage(tmp_path):
    """What `pip install .` installs: the wheel holds the model files and each stage's package."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(REPO_ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    wheel, = tmp_path.glob("deepbeat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"deepbeat/models/default.onnx", "deepbeat/models/default.json", "deepbeat/models/default-eval.md",
            "deepbeat/runtime/sampler.py", "deepbeat/bridge/scheduler.py", "deepbeat/export/exporter.py",
            "deepbeat/training/model.py"} <= names
