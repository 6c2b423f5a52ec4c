"""`deepbeat data prepare`: GMD and plain folders to split arrays, with an honest summary."""
import json
from collections import Counter

import numpy as np
import pytest

from deepbeat.dataset import SPLITS, load_split, load_summary
from deepbeat.drums import DRUM_CLASSES, TD11_PITCHES
from deepbeat.errors import DatasetError
from deepbeat.gmd import read_index
from deepbeat.midifiles import read_drum_grids
from deepbeat.prepare import format_summary, prepare


def quiet(line):
    """A log that drops the summary (tests read the returned dict)."""


def test_gmd_fixture_summary(prepared_fixture, gmd_fixture_dir):
    summary = load_summary(prepared_fixture)
    assert summary["kind"] == "groove" and summary["pitch_table"] == "td11" and summary["meters"] == ["4/4"]
    assert (summary["files"], summary["files_used"]) == (4, 3)
    assert summary["skipped"] == {"meter 6/8": 1}
    assert summary["skipped_files"] == {"drummer6/session1/3_rock_80_beat_6-8.mid": "meter 6/8"}
    assert summary["sections_of_other_meters"] == {"6/8": 1}
    assert summary["splits"] == {
        "train": {"sequences": 1, "bars": 2, "steps": 32},
        "validation": {"sequences": 1, "bars": 1, "steps": 16},
        "test": {"sequences": 1, "bars": 1, "steps": 16},
    }
    assert summary["dropped_pitches"] == {}
    assert summary["styles"] == {"hiphop": 1, "funk": 1, "latin": 1}
    # the histogram is the hits of the grids the reader gives
    expected = np.zeros(9, int)
    for entry in read_index(gmd_fixture_dir):
        if entry.time_signature == "4-4":
            grid = read_drum_grids(gmd_fixture_dir / entry.midi_filename, TD11_PITCHES).grids[0]
            expected += (grid.velocities > 0).sum(axis=0)
    assert summary["class_histogram"] == dict(zip(DRUM_CLASSES, expected.tolist()))


def test_gmd_splits_keep_grids_and_metadata(prepared_fixture, gmd_fixture_dir, hiphop_midi):
    (train,) = list(load_split(prepared_fixture, "train"))
    assert (train.source, train.style, train.drummer, train.beat_type) == (
        "drummer3/session2/33_hiphop_92_beat_4-4.mid", "hiphop", "drummer3", "beat",
    )
    original = read_drum_grids(hiphop_midi, TD11_PITCHES).grids[0]
    assert np.array_equal(train.grid.velocities, original.velocities)
    assert np.allclose(train.grid.offsets, original.offsets, atol=1e-3)  # stored as float16
    assert (train.grid.bpm, train.grid.time_signature) == (92.0, (4, 4))
    (fill,) = list(load_split(prepared_fixture, "validation"))
    assert (fill.style, fill.beat_type) == ("funk", "fill")
    assert load_split(prepared_fixture, "test").num_steps == 16


def test_all_meters_keeps_the_6_8_file(tmp_path, gmd_fixture_dir):
    summary = prepare(gmd_fixture_dir, tmp_path, meters=None, log=quiet)
    assert summary["skipped"] == {} and summary["files_used"] == 4
    assert summary["splits"]["train"] == {"sequences": 2, "bars": 11, "steps": 32 + 9 * 12}
    meters = {s.grid.time_signature for s in load_split(tmp_path, "train")}
    assert meters == {(4, 4), (6, 8)}


def test_summary_is_printed(tmp_path, gmd_fixture_dir):
    lines = []
    summary = prepare(gmd_fixture_dir, tmp_path, log=lines.append)
    assert lines == [format_summary(summary)]
    text = lines[0]
    assert "files read: 4, used: 3, skipped: 1 meter 6/8" in text
    assert "train: 1 sequences, 2 bars, 32 steps" in text
    assert "dropped pitches: 0 notes" in text
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


@pytest.fixture
def user_folder(tmp_path, make_midi):
    """Ten good files in nested folders, one corrupt .mid, one piano-only .mid, one text file."""
    folder = tmp_path / "mine"
    for number in range(10):
        (folder / f"set{number % 2}").mkdir(parents=True, exist_ok=True)
        notes = [(0, 36, 100), (480 * (number % 4 + 1), 38, 90), (240, 90, 80)]  # 90 is outside GM drums
        make_midi(notes, name=f"mine/set{number % 2}/beat{number}.mid")
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")
    make_midi([(0, 90, 100), (120, 90, 90), (240, 91, 80)], name="mine/piano.MIDI")
    (folder / "notes.txt").write_text("not a MIDI file")
    return folder


def test_user_folder_skips_bad_files_and_goes_on(tmp_path, user_folder):
    summary = prepare(user_folder, tmp_path / "out", seed=3, style="trap", log=quiet)
    assert summary["kind"] == "folder" and summary["pitch_table"] == "gm"
    assert (summary["files"], summary["files_used"]) == (12, 10)
    assert summary["skipped"] == {"not MIDI": 1, "no drum notes": 1}
    assert summary["skipped_files"] == {"broken.mid": "not MIDI", "piano.MIDI": "no drum notes"}
    # pitches left out of the piano file (skipped) count as well as those of the used files
    assert summary["dropped_pitches"] == {"90": 12, "91": 1}
    sequences = [s for split in SPLITS for s in load_split(tmp_path / "out", split)]
    assert len(sequences) == 10
    assert {(s.style, s.drummer, s.beat_type) for s in sequences} == {("trap", "user", "beat")}
    assert sum(summary["splits"][split]["sequences"] for split in SPLITS) == 10
    assert summary["styles"] == {"trap": 10}


def test_user_split_is_seeded(tmp_path, user_folder):
    def splits(seed, out):
        prepare(user_folder, tmp_path / out, seed=seed, log=quiet)
        return {split: sorted(s.source for s in load_split(tmp_path / out, split)) for split in SPLITS}

    first, again, other = splits(0, "a"), splits(0, "b"), splits(1, "c")
    assert first == again
    assert first != other
    # 12 files: 10 train, 1 validation, 1 test by position; two of them are the bad ones
    assert sum(len(v) for v in first.values()) == 10 and len(first["train"]) >= 8


def test_all_channels_option(tmp_path, make_midi):
    folder = tmp_path / "channels"
    folder.mkdir()
    make_midi([(0, 36, 100, 0), (480, 38, 100, 9)], name="channels/mixed.mid")
    drum_only = prepare(folder, tmp_path / "a", log=quiet)
    every = prepare(folder, tmp_path / "b", channel=None, log=quiet)
    histogram = Counter(drum_only["class_histogram"]), Counter(every["class_histogram"])
    assert histogram[0]["kick"] == 0 and histogram[1]["kick"] == 1 and histogram[1]["snare"] == 1


def test_bad_sources(tmp_path):
    with pytest.raises(DatasetError, match="absent: no such folder"):
        prepare(tmp_path / "absent", tmp_path / "out", log=quiet)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .mid or .midi files found"):
        prepare(tmp_path / "empty", tmp_path / "out", log=quiet)


def test_bad_gmd_index(tmp_path):
    (tmp_path / "info.csv").write_text("drummer,split\nx,train\n")
    with pytest.raises(DatasetError, match="info.csv: expected columns"):
        prepare(tmp_path, tmp_path / "out", log=quiet)


def test_unwritable_out(tmp_path, gmd_fixture_dir):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatasetError, match="file: cannot write the prepared arrays"):
        prepare(gmd_fixture_dir, blocker, log=quiet)


def test_missing_gmd_file_is_skipped_and_named(tmp_path, gmd_fixture_dir):
    index = (gmd_fixture_dir / "info.csv").read_text().splitlines()
    ghost = index[1].replace("133_funk-fast_125_fill_4-4", "999_ghost_fill_4-4")
    (tmp_path / "info.csv").write_text("\n".join([index[0], ghost]) + "\n")
    summary = prepare(tmp_path, tmp_path / "out", log=quiet)
    assert summary["skipped"] == {"missing": 1}
    assert summary["skipped_files"] == {"drummer1/session1/999_ghost_fill_4-4.mid": "missing"}


def test_full_groove_dataset(tmp_path, groove_root):
    """All 1,150 GMD files: read, official splits kept, non-4/4 files skipped by meter (~22 s)."""
    summary = prepare(groove_root, tmp_path, log=quiet)
    assert summary["files"] == 1150
    assert summary["files_used"] == 1138
    assert summary["skipped"] == {"meter 3/4": 5, "meter 5/4": 1, "meter 5/8": 1, "meter 6/8": 5}
    assert summary["dropped_pitches"] == {}  # TD11_PITCHES covers every pitch the kit sent
    counts = {split: summary["splits"][split]["sequences"] for split in SPLITS}
    assert counts == {"train": 887, "validation": 122, "test": 129}
    index = read_index(groove_root)
    for split in SPLITS:  # each split holds its info.csv files that are 4/4
        expected = sum(1 for e in index if e.split == split and e.time_signature == "4-4")
        assert counts[split] == expected
        assert summary["splits"][split]["steps"] == 16 * summary["splits"][split]["bars"]
    assert summary["splits"]["train"]["steps"] == 278784
    assert "hiphop" in summary["styles"]
