"""Primers: the beat a generation continues, from a pitch-tuple string, step text or MIDI."""
import re

import numpy as np

from .drums import DRUM_CLASSES, DRUM_LABELS, GM_PITCHES, NUM_DRUM_CLASSES
from .errors import MidiFileError, PrimerError
from .grid import DEFAULT_VELOCITY, SYMBOL_VELOCITIES, DrumGrid
from .midifiles import read_drum_grids

MAX_PRIMER_STEPS = 1024
MAX_PRIMER_CHARS = 64 * 1024

_TOKEN = re.compile(r"\s*(?:(\d+)|(.))")


def parse_primer_drums(text, pitches=GM_PITCHES, velocity=DEFAULT_VELOCITY):
    """A grid from Magenta's primer string, e.g. "[(36,),(),(36,42)]": MIDI pitches per step.

    Parsed by a small tokenizer, never eval; errors name the character position.
    """
    if len(text) > MAX_PRIMER_CHARS:
        raise PrimerError(f"primer is {len(text)} characters; at most {MAX_PRIMER_CHARS} are allowed")
    tokens = [(m.start(1) if m.group(1) else m.start(2), m.group(1) or m.group(2)) for m in _TOKEN.finditer(text)]
    tokens = [t for t in tokens if t[1] is not None]
    position = 0

    def fail(expected):
        where, found = tokens[position] if position < len(tokens) else (len(text), "end of text")
        raise PrimerError(f"primer position {where}: expected {expected}, found {found!r}")

    def take(allowed, expected):
        nonlocal position
        if position >= len(tokens) or not allowed(tokens[position][1]):
            fail(expected)
        position += 1
        return tokens[position - 1]

    take(lambda t: t == "[", "'[' to open the list of steps")
    steps = []
    while position < len(tokens) and tokens[position][1] != "]":
        take(lambda t: t == "(", "'(' to open a step, or ']'")
        step = []
        while position < len(tokens) and tokens[position][1] != ")":
            where, pitch = take(str.isdigit, "a MIDI pitch 0-127 or ')'")
            drum = pitches.drum_of(int(pitch))
            if drum is None:
                raise PrimerError(
                    f"primer position {where}: pitch {pitch} is not a drum in the {pitches.name} table"
                )
            step.append(drum)
            if position < len(tokens) and tokens[position][1] == ",":
                position += 1
            elif position < len(tokens) and tokens[position][1] != ")":
                fail("',' or ')'")
        take(lambda t: t == ")", "')' to close the step")
        steps.append(step)
        if len(steps) > MAX_PRIMER_STEPS:
            raise PrimerError(f"primer has more than {MAX_PRIMER_STEPS} steps")
        if position < len(tokens) and tokens[position][1] == ",":
            position += 1
        elif position < len(tokens) and tokens[position][1] != "]":
            fail("',' or ']'")
    take(lambda t: t == "]", "']' to close the list of steps")
    if position < len(tokens):
        fail("nothing after ']'")
    velocities = np.zeros((len(steps), NUM_DRUM_CLASSES), np.uint8)
    for t, step in enumerate(steps):
        velocities[t, step] = velocity
    return DrumGrid(velocities)


_ROW_NAMES = {name: drum for drum, name in enumerate(DRUM_CLASSES)}
_ROW_NAMES.update({label.lower(): drum for drum, label in enumerate(DRUM_LABELS)})
_ROW_NAMES.update({"hat": 2, "hh": 2, "hihat": 2, "ohh": 3, "openhat": 3, "tom": 5, "cymbal": 7})
_RESTS = ".-_"


def parse_step_text(text):
    """A grid from step-sequencer rows, e.g. "kick: x...x... ; snare: ....X...".

    One row per drum ('kick', 'BD', 'hh', ...), rows split by newlines or ';'. Cells:
    'X' accent, 'x' hit, 'o' ghost, '.', '-' or '_' rest; '|' and spaces are ignored,
    lines starting with '#' too (so a printed grid reads back).
    """
    if len(text) > MAX_PRIMER_CHARS:
        raise PrimerError(f"step text is {len(text)} characters; at most {MAX_PRIMER_CHARS} are allowed")
    rows = {}
    for number, line in enumerate(re.split(r"[\n;]", text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, cells = line.partition(":")
        if not colon:
            raise PrimerError(f"step text row {number}: expected 'drum: pattern', found {line[:30]!r}")
        drum = _ROW_NAMES.get(name.strip().lower())
        if drum is None:
            raise PrimerError(
                f"step text row {number}: unknown drum {name.strip()!r}; expected one of {', '.join(DRUM_CLASSES)}"
            )
        if drum in rows:
            raise PrimerError(f"step text row {number}: {DRUM_CLASSES[drum]} appears twice")
        pattern = []
        for column, cell in enumerate(cells):
            if cell in SYMBOL_VELOCITIES:
                pattern.append(SYMBOL_VELOCITIES[cell])
            elif cell in _RESTS:
                pattern.append(0)
            elif cell not in "| \t":
                raise PrimerError(
                    f"step text row {number}, column {len(name) + 1 + column}: {cell!r} is not a cell; "
                    "expected X, x, o (hits) or . - _ (rests)"
                )
        if len(pattern) > MAX_PRIMER_STEPS:
            raise PrimerError(f"step text row {number}: more than {MAX_PRIMER_STEPS} steps")
        rows[drum] = pattern
    if not rows:
        raise PrimerError("step text has no rows; expected lines like 'kick: x...x...'")
    velocities = np.zeros((max(map(len, rows.values())), NUM_DRUM_CLASSES), np.uint8)
    for drum, pattern in rows.items():
        velocities[: len(pattern), drum] = pattern
    return DrumGrid(velocities)


def primer_from_midi(path, bars=1, pitches=GM_PITCHES, channel=9):
    """The first `bars` bars of a MIDI file's first 4/4 drum section."""
    try:
        grid = read_drum_grids(path, pitches, channel=channel, meters={(4, 4)}).grids[0]
    except MidiFileError as error:
        raise PrimerError(str(error)) from None
    return grid.slice(0, bars * grid.steps_per_bar)
