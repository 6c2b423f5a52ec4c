"""Paths as DeepBeat writes them into files that travel (model metadata, reports, benchmark results)."""
import os
from pathlib import Path


def portable(path):
    """`path` without the machine's own folders: relative to the working folder when it lies inside it,
    as given when already relative, else only its name (for example /tmp/x/gmd -> gmd)."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return Path(os.path.relpath(path)).as_posix() if path.is_relative_to(Path.cwd()) else path.name
    except ValueError:  # another drive on Windows
        return path.name
