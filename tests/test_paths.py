"""Paths written into files that travel carry none of the machine's own folders."""
import os

from deepbeat.paths import portable


def test_relative_paths_stay_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable("data/prepared") == "data/prepared"
    assert portable("../shared/data/groove") == "../shared/data/groove"


def test_absolute_paths_inside_the_working_folder_become_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable(tmp_path / "runs" / "default") == "runs/default"


def test_other_absolute_paths_keep_only_their_name(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    outside = tmp_path / "elsewhere" / "gmd"
    assert portable(outside) == "gmd" and not os.path.isabs(portable(outside))
