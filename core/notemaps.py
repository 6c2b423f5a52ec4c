"""Note maps: which MIDI note plays each drum class, and which notes a pad sends.

A NoteMap has an output side (one note per drum class, for playback) and an input
side (a pitch table, for hearing a controller or reading files).
"""
from dataclasses import dataclass
from pathlib import Path

from .drums import DRUM_CLASSES, GM_PITCHES, NUM_DRUM_CLASSES, PitchTable, class_index
from .errors import NoteMapError
from .userfiles import read_json


@dataclass(frozen=True)
class NoteMap:
    """Output notes per drum class plus the input pitch table."""

    name: str
    notes: tuple  # one MIDI note per drum class, in DRUM_CLASSES order
    inputs: PitchTable

    def note_of(self, drum):
        return self.notes[drum]


def _pads(name, notes, pad_classes):
    """A map whose inputs are exactly `pad_classes` (note -> class name)."""
    pitches = [[] for _ in DRUM_CLASSES]
    for note, drum in pad_classes.items():
        pitches[class_index(drum)].append(note)
    return NoteMap(name, tuple(notes), PitchTable(name, tuple(tuple(p) for p in pitches)))


# General MIDI: the drum notes Magenta writes, and Magenta's full GM table for input.
GM = NoteMap("gm", (36, 38, 42, 46, 45, 48, 50, 49, 51), GM_PITCHES)

# Classic Akai MPC (MPC60/2000) pad layout, bank A pads 1-16 =
# 37,36,42,82,40,38,46,44,48,47,45,43,49,55,51,53 (side stick, kick, closed hat, shaker,
# snare 2, snare, open hat, pedal hat, hi-mid/low-mid/low/floor toms, crash, splash, ride, bell).
MPC_LEGACY = _pads(
    "mpc-legacy",
    (36, 38, 42, 46, 45, 47, 48, 49, 51),
    {
        37: "snare", 36: "kick", 42: "closed_hihat", 82: "closed_hihat",
        40: "snare", 38: "snare", 46: "open_hihat", 44: "closed_hihat",
        48: "high_tom", 47: "mid_tom", 45: "low_tom", 43: "low_tom",
        49: "crash", 55: "crash", 51: "ride", 53: "ride",
    },
)

# MPC "chromatic" pad mode: pad 1 = C1 (36) upward, one pad per drum class in order.
MPC_CHROMATIC = _pads(
    "mpc-chromatic",
    tuple(36 + drum for drum in range(NUM_DRUM_CLASSES)),
    {36 + drum: name for drum, name in enumerate(DRUM_CLASSES)},
)

# Ableton Drum Rack: 16 pads C1-D#2 (36-51) laid out as General MIDI drums.
DRUM_RACK = _pads(
    "drum-rack",
    (36, 38, 42, 46, 45, 48, 50, 49, 51),
    {note: DRUM_CLASSES[GM_PITCHES.drum_of(note)] for note in range(36, 52)},
)

NOTE_MAPS = {m.name: m for m in (GM, MPC_LEGACY, MPC_CHROMATIC, DRUM_RACK)}


def _checked_note(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise NoteMapError(f"{where}: expected a MIDI note 0-127, got {value!r}")
    return value


def note_map_from_dict(name, data):
    """A validated NoteMap from {"notes": {class: note}, "inputs": {note: class}}."""
    if not isinstance(data, dict) or not isinstance(data.get("notes"), dict):
        raise NoteMapError(f"{name}: expected a JSON object with a \"notes\" object mapping each drum class to a note")
    notes = data["notes"]
    missing = [drum for drum in DRUM_CLASSES if drum not in notes]
    unknown = [key for key in notes if key not in DRUM_CLASSES]
    if missing or unknown:
        problem = f"missing {', '.join(missing)}" if missing else f"unknown class {', '.join(map(str, unknown))}"
        raise NoteMapError(f"{name}: \"notes\" needs exactly the classes {', '.join(DRUM_CLASSES)} ({problem})")
    out = tuple(_checked_note(notes[drum], f"{name}: notes.{drum}") for drum in DRUM_CLASSES)
    if len(set(out)) != len(out):
        raise NoteMapError(f"{name}: each drum class needs its own note, got {list(out)}")
    inputs = data.get("inputs")
    if inputs is None:
        pads = {note: drum for note, drum in zip(out, DRUM_CLASSES)}
    elif isinstance(inputs, dict):
        pads = {}
        for key, drum in inputs.items():
            try:
                note = int(key)
            except ValueError:
                raise NoteMapError(f"{name}: inputs key {key!r} is not a MIDI note number") from None
            if drum not in DRUM_CLASSES:
                raise NoteMapError(f"{name}: inputs.{key} is {drum!r}; expected one of {', '.join(DRUM_CLASSES)}")
            pads[_checked_note(note, f"{name}: inputs")] = drum
    else:
        raise NoteMapError(f"{name}: \"inputs\" must be an object mapping notes to drum classes")
    return _pads(name, out, pads)


def load_note_map(spec):
    """A note map by built-in name (gm, mpc-legacy, mpc-chromatic, drum-rack) or JSON file path."""
    if spec in NOTE_MAPS:
        return NOTE_MAPS[spec]
    path = Path(spec)
    if not path.suffix.lower() == ".json":
        raise NoteMapError(f"unknown note map {spec!r}; expected one of {', '.join(NOTE_MAPS)} or a .json file")
    return note_map_from_dict(str(path), read_json(path, NoteMapError, "note map"))
