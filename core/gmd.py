"""The Groove MIDI Dataset: its index (info.csv) and the verified download of its archive."""
import csv
import hashlib
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

GMD_URL = "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"
GMD_ARCHIVE_NAME = "groove-v1.0.0-midionly.zip"
GMD_SPLITS = ("train", "validation", "test")
# Measured on the v1.0.0 archive's MIDI files: their count, and the sha256 over the lines
# "relative/path\0<sha256 of the file>\n" in path order (see contents_digest).
GMD_MIDI_FILES = 1150
GMD_DIGEST = "7f7b97e48136d7fc2241f4bd4860de56422218cb227ade3081984478e528ee14"


@dataclass(frozen=True)
class GrooveEntry:
    """One row of info.csv."""

    midi_filename: str
    split: str
    style: str  # primary style, e.g. "hiphop" from "hiphop/groove3"
    bpm: float
    beat_type: str  # "beat" or "fill"
    drummer: str
    time_signature: str


def read_index(root):
    """The rows of ROOT/info.csv, or DatasetError naming what is missing."""
    path = Path(root) / "info.csv"
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found; expected the Groove MIDI Dataset's info.csv") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from None
    needed = {"midi_filename", "split", "style", "bpm", "beat_type", "drummer", "time_signature"}
    if not rows or not needed <= set(rows[0]):
        raise DatasetError(f"{path}: expected columns {', '.join(sorted(needed))}")
    entries = []
    for number, row in enumerate(rows, start=2):
        if row["split"] not in GMD_SPLITS:
            raise DatasetError(f"{path}: line {number}: split {row['split']!r} is not one of {', '.join(GMD_SPLITS)}")
        try:
            bpm = float(row["bpm"])
        except ValueError:
            raise DatasetError(f"{path}: line {number}: bpm {row['bpm']!r} is not a number") from None
        entries.append(
            GrooveEntry(
                row["midi_filename"], row["split"], row["style"].split("/")[0], bpm,
                row["beat_type"], row["drummer"], row["time_signature"],
            )
        )
    return entries


def contents_digest(root):
    """(number of .mid files, digest) of a folder, as GMD_DIGEST was measured."""
    root = Path(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mid"))
    digest = hashlib.sha256()
    for name in files:
        file_hash = hashlib.sha256((root / name).read_bytes()).hexdigest()
        digest.update(f"{name}\0{file_hash}\n".encode())
    return len(files), digest.hexdigest()


def download(url, target):
    """Fetch url to target through a .part file, so an interrupted download leaves no archive."""
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"cannot download {url} ({error})") from None
    partial.replace(target)


def fetch_gmd(dest, url=GMD_URL, archive=None, expected=(GMD_MIDI_FILES, GMD_DIGEST), log=print):
    """Download (or take `archive`), verify and unpack the GMD MIDI archive; returns DEST/groove."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if archive is None:
        archive = dest / GMD_ARCHIVE_NAME
        if not archive.exists():
            log(f"downloading {url}")
            download(url, archive)
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as zipped:
            bad = zipped.testzip()
            if bad is not None:
                raise DatasetError(f"{archive}: member {bad} is corrupt")
            names = zipped.namelist()
            if "groove/info.csv" not in names:
                raise DatasetError(f"{archive}: no groove/info.csv; expected the Groove MIDI Dataset archive")
            unsafe = [n for n in names if n.startswith("/") or ".." in Path(n).parts]
            if unsafe:
                raise DatasetError(f"{archive}: unsafe member path {unsafe[0]!r}")
            staging = dest / "groove.unpacking"
            shutil.rmtree(staging, ignore_errors=True)
            zipped.extractall(staging)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{archive}: not a readable zip archive ({error})") from None
    count, digest = contents_digest(staging / "groove")
    if (count, digest) != tuple(expected):
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetError(
            f"{archive}: contents differ from GMD v1.0.0 ({count} MIDI files, digest {digest[:12]}; "
            f"expected {expected[0]} files, digest {expected[1][:12]})"
        )
    target = dest / "groove"
    shutil.rmtree(target, ignore_errors=True)
    (staging / "groove").replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    log(f"verified {count} MIDI files; unpacked to {target}")
    return target
