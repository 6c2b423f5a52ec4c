"""The Groove MIDI Dataset: its index (info.csv) and the verified download of its archive."""
import csv
import hashlib
import http.client
import shutil
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import DatasetError

GMD_URL = "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"
GMD_ARCHIVE_NAME = "groove-v1.0.0-midionly.zip"
GMD_SPLITS = ("train", "validation", "test")
# Measured on the v1.0.0 archive's MIDI files: their count, and the sha256 over the lines
# "relative/path\0<sha256 of the file>\n" in path order (see contents_digest).
GMD_MIDI_FILES = 1150
GMD_DIGEST = "7f7b97e48136d7fc2241f4bd4860de56422218cb227ade3081984478e528ee14"
# The v1.0.0 archive unpacks to about 9 MB; refusing more than this before unpacking
# anything keeps a zip bomb off the disk.
MAX_UNPACKED_BYTES = 1 << 30


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
            reader = csv.DictReader(handle)
            rows = list(reader)
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found; expected the Groove MIDI Dataset's info.csv") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from None
    needed = {"midi_filename", "split", "style", "bpm", "beat_type", "drummer", "time_signature"}
    if not needed <= set(reader.fieldnames or ()):
        raise DatasetError(f"{path}: expected columns {', '.join(sorted(needed))}")
    if not rows:
        raise DatasetError(f"{path}: lists no MIDI files")
    entries = []
    for number, row in enumerate(rows, start=2):
        if any(row[column] is None for column in needed):  # csv fills a short row with None
            raise DatasetError(f"{path}: line {number}: fewer columns than the header")
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
    target = Path(target)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (OSError, ValueError, http.client.HTTPException) as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"cannot download {url} ({error})") from None
    partial.replace(target)


def fetch_gmd(dest, url=GMD_URL, archive=None, expected=(GMD_MIDI_FILES, GMD_DIGEST), log=print):
    """Download (or take `archive`), verify and unpack the GMD MIDI archive; returns DEST/groove.

    A downloaded archive that fails verification is removed, so the next run fetches it anew.
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"{dest}: cannot create the folder ({error.strerror})") from None
    downloaded = archive is None
    if downloaded:
        archive = dest / GMD_ARCHIVE_NAME
        if not archive.exists():
            log(f"downloading {url}")
            download(url, archive)
    archive = Path(archive)
    staging, target = dest / "groove.unpacking", dest / "groove"
    try:
        _unpack(archive, staging)
        count, digest = contents_digest(staging / "groove")
        if (count, digest) != tuple(expected):
            raise DatasetError(
                f"{archive}: contents differ from GMD v1.0.0 ({count} MIDI files, digest {digest[:12]}; "
                f"expected {expected[0]} files, digest {expected[1][:12]})"
            )
        shutil.rmtree(target, ignore_errors=True)
        (staging / "groove").replace(target)
    except DatasetError as error:
        if not downloaded:
            raise
        archive.unlink(missing_ok=True)
        raise DatasetError(f"{error} (removed it; run again to download anew)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"verified {count} MIDI files; unpacked to {target}")
    return target


def _unpack(archive, staging):
    """Check the zip's members (names, size, checksums) and extract it into `staging`."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            names = [member.filename for member in members]
            if "groove/info.csv" not in names:
                raise DatasetError(f"{archive}: no groove/info.csv; expected the Groove MIDI Dataset archive")
            unsafe = [name for name in names if not _safe_member(name)]
            if unsafe:
                raise DatasetError(f"{archive}: unsafe member path {unsafe[0]!r}")
            size = sum(member.file_size for member in members)
            if size > MAX_UNPACKED_BYTES:
                raise DatasetError(f"{archive}: unpacks to {size} bytes, more than the {MAX_UNPACKED_BYTES} allowed")
            bad = zipped.testzip()
            if bad is not None:
                raise DatasetError(f"{archive}: member {bad} is corrupt")
            shutil.rmtree(staging, ignore_errors=True)
            zipped.extractall(staging)
    # zipfile lets zlib, EOF, encryption and unknown-method errors through as they are
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError) as error:
        raise DatasetError(f"{archive}: not a readable zip archive ({error})") from None


def _safe_member(name):
    """Whether a member name stays inside the folder it is extracted to."""
    path = PurePosixPath(name.replace("\\", "/"))
    return not path.is_absolute() and ".." not in path.parts and ":" not in (path.parts[0] if path.parts else "")
