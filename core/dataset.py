"""Prepared datasets: one compact .npz of grids and metadata per split, plus summary.json."""
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .drums import NUM_DRUM_CLASSES
from .errors import DatasetError
from .grid import DrumGrid
from .userfiles import read_json

SPLITS = ("train", "validation", "test")
METADATA_FIELDS = ("source", "style", "drummer", "beat_type")


@dataclass(frozen=True)
class Sequence:
    """One bar-aligned grid with where it came from."""

    grid: DrumGrid
    source: str
    style: str
    drummer: str
    beat_type: str


def save_split(path, sequences):
    """Write sequences as concatenated arrays with start offsets (no pickles)."""
    grids = [s.grid for s in sequences]
    lengths = [g.num_steps for g in grids]
    empty = np.zeros((0, NUM_DRUM_CLASSES))
    np.savez_compressed(
        path,
        velocities=np.concatenate([g.velocities for g in grids]) if grids else empty.astype(np.uint8),
        offsets=np.concatenate([g.offsets for g in grids]).astype(np.float16) if grids else empty.astype(np.float16),
        starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        bpm=np.array([g.bpm for g in grids], np.float32),
        time_signature=np.array([g.time_signature for g in grids], np.int32).reshape(-1, 2),
        **{name: np.array([getattr(s, name) for s in sequences], dtype=str) for name in METADATA_FIELDS},
    )


class PreparedSplit:
    """The sequences of one split of a prepared dataset folder."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                self._arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise DatasetError(
                f"{self.path}: not found; expected the split files 'deepbeat data prepare' writes"
            ) from None
        # a damaged .npz fails as a bad zip, a bad zlib stream or an early end of file
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise DatasetError(f"{self.path}: not a prepared dataset file ({error})") from None
        missing = {"velocities", "offsets", "starts", "bpm", "time_signature", *METADATA_FIELDS} - set(self._arrays)
        if missing:
            raise DatasetError(f"{self.path}: missing arrays {', '.join(sorted(missing))}")

    def __len__(self):
        return len(self._arrays["starts"]) - 1

    @property
    def num_steps(self):
        return int(self._arrays["starts"][-1])

    def __getitem__(self, index):
        a = self._arrays
        start, stop = a["starts"][index], a["starts"][index + 1]
        grid = DrumGrid(
            a["velocities"][start:stop],
            a["offsets"][start:stop].astype(np.float32),
            bpm=float(a["bpm"][index]),
            time_signature=tuple(int(x) for x in a["time_signature"][index]),
        )
        return Sequence(grid, *(str(a[name][index]) for name in METADATA_FIELDS))

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def load_split(folder, split):
    """A PreparedSplit from DIR/<split>.npz, with a clear error for a bad folder or split."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder; expected a folder written by 'deepbeat data prepare'")
    return PreparedSplit(folder / f"{split}.npz")


def load_summary(folder):
    """The summary.json written by data prepare (empty dict when absent)."""
    path = Path(folder) / "summary.json"
    if not path.exists():
        return {}
    return read_json(path, DatasetError, "dataset summary")
