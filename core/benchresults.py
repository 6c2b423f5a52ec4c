"""Benchmark results files: where a benchmark writes its JSON unless told, and the writing.

By default results land beside the user's own working files, in ./deepbeat-bench/ of the folder the
command runs in, never inside an installed package or a source tree that may not be there.
"""
import json
import os
import platform
from pathlib import Path

from .errors import DeepBeatError

RESULTS_FOLDER = "deepbeat-bench"


def default_results_path(name):
    """Where benchmark `name` writes by default: deepbeat-bench/NAME.json in the working folder."""
    return Path(RESULTS_FOLDER) / f"{name}.json"


def machine(**extra):
    """What a benchmark ran on: cores, processor, Python, and `extra` (library versions and the like)."""
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), **extra}


def check_results_path(path):
    """Make the folder for a results file before a benchmark runs, so a long run cannot end with nowhere to write;
    DeepBeatError naming the path when it cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise DeepBeatError(f"{path}: is a folder; expected a results file name such as {path / 'results.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeepBeatError(f"{path}: cannot create its folder ({error.strerror})") from None
    return path


def write_results(path, results, log=print):
    """Write `results` as JSON to `path` and say where."""
    path = check_results_path(path)
    try:
        path.write_text(json.dumps(results, indent=2) + "\n")
    except OSError as error:
        raise DeepBeatError(f"{path}: cannot write the results ({error.strerror})") from None
    log(f"wrote {path}")
