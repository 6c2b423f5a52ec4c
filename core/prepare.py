"""`deepbeat data prepare`: MIDI folders to prepared arrays, with a summary of what was kept."""
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

from .dataset import SPLITS, Sequence, save_split
from .drums import DRUM_CLASSES, GM_PITCHES, TD11_PITCHES
from .errors import DatasetError, MidiFileError
from .gmd import read_index
from .midibytes import DRUM_CHANNEL
from .midifiles import read_drum_grids
from .paths import portable
from .progress import Progress

MIDI_SUFFIXES = {".mid", ".midi"}
USER_SPLIT = {"train": 0.8, "validation": 0.1}  # the rest is test


def gmd_jobs(root):
    """(path, split, metadata) for each file listed in a GMD folder's info.csv."""
    return [
        (Path(root) / e.midi_filename, e.split, {"style": e.style, "drummer": e.drummer, "beat_type": e.beat_type})
        for e in read_index(root)
    ]


def folder_jobs(root, seed, style):
    """(path, split, metadata) for each MIDI file under a folder, split by a seeded shuffle."""
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{root}: no .mid or .midi files found")
    order = list(range(len(files)))
    random.Random(seed).shuffle(order)
    train_end = round(len(files) * USER_SPLIT["train"])
    valid_end = train_end + round(len(files) * USER_SPLIT["validation"])
    split_of = {i: "train" if rank < train_end else "validation" if rank < valid_end else "test"
                for rank, i in enumerate(order)}
    meta = {"style": style, "drummer": "user", "beat_type": "beat"}
    return [(path, split_of[i], meta) for i, path in enumerate(files)]


def prepare(source, out, seed=0, style="any", meters=((4, 4),), channel=DRUM_CHANNEL, log=print):
    """Read every file of `source` (a GMD folder or any MIDI folder) and write OUT/<split>.npz.

    Bad files are skipped and counted by reason; returns the summary also written to
    OUT/summary.json.
    """
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise DatasetError(f"{source}: no such folder; expected the Groove MIDI Dataset or a folder of MIDI files")
    is_gmd = (source / "info.csv").exists()
    jobs = gmd_jobs(source) if is_gmd else folder_jobs(source, seed, style)
    pitches = TD11_PITCHES if is_gmd else GM_PITCHES
    meter_set = None if meters is None else set(meters)
    sequences = {split: [] for split in SPLITS}
    skipped, skipped_files = Counter(), {}
    dropped, other_meters, histogram = Counter(), Counter(), np.zeros(len(DRUM_CLASSES), np.int64)
    with Progress(len(jobs), "prepare") as bar:
        for path, split, meta in jobs:
            bar.advance(extra=path.name[:40])
            name = path.relative_to(source).as_posix() if path.is_relative_to(source) else str(path)
            try:
                found = read_drum_grids(path, pitches, channel=channel, meters=meter_set)
            except MidiFileError as error:
                skipped[error.reason] += 1
                skipped_files[name] = error.reason
                found = error.found
                if found is None:
                    continue
            # a skipped file's left-out pitches and meters are counted too
            dropped.update(found.dropped_pitches)
            other_meters.update(found.skipped_sections)
            for grid in found.grids:
                sequences[split].append(Sequence(grid, name, **meta))
                histogram += (grid.velocities > 0).sum(axis=0)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for split, items in sequences.items():
            save_split(out / f"{split}.npz", items)
    except OSError as error:
        raise DatasetError(f"{out}: cannot write the prepared arrays ({error.strerror or error})") from None
    summary = {
        "source": portable(source),
        "kind": "groove" if is_gmd else "folder",
        "pitch_table": pitches.name,
        "meters": None if meters is None else ["%d/%d" % m for m in meters],
        "files": len(jobs),
        "files_used": len(jobs) - sum(skipped.values()),
        "skipped": dict(skipped),
        "skipped_files": skipped_files,
        "sections_of_other_meters": dict(other_meters),
        "splits": {
            split: {
                "sequences": len(items),
                "bars": int(sum(s.grid.num_bars for s in items)),
                "steps": int(sum(s.grid.num_steps for s in items)),
            }
            for split, items in sequences.items()
        },
        "dropped_pitches": {str(p): n for p, n in sorted(dropped.items())},
        "class_histogram": dict(zip(DRUM_CLASSES, histogram.tolist())),
        "styles": dict(Counter(s.style for items in sequences.values() for s in items)),
    }
    try:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as error:
        raise DatasetError(f"{out}: cannot write summary.json ({error.strerror or error})") from None
    log(format_summary(summary))
    return summary


def format_summary(summary):
    """The summary as a few readable lines."""
    splits = summary["splits"]
    lines = [
        f"files read: {summary['files']}, used: {summary['files_used']}, skipped: "
        + (", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()) or "none"),
        "sections of other meters skipped: "
        + (", ".join(f"{n} in {m}" for m, n in summary["sections_of_other_meters"].items()) or "none"),
    ]
    for split, counts in splits.items():
        lines.append(f"{split:>10}: {counts['sequences']} sequences, {counts['bars']} bars, {counts['steps']} steps")
    dropped = summary["dropped_pitches"]
    lines.append(
        f"dropped pitches: {sum(dropped.values())} notes"
        + (" (" + ", ".join(f"pitch {p}: {n}" for p, n in dropped.items()) + ")" if dropped else "")
    )
    lines.append("hits per class: " + ", ".join(f"{d} {n}" for d, n in summary["class_histogram"].items()))
    return "\n".join(lines)
