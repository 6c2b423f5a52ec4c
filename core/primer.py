"""Primers: the beat a generation continues, from a pitch-tuple string, step text or MIDI."""
import re

import numpy as np

from .drums import DRUM_CLASSES, DRUM_LABELS, GM_PITCHES, NUM_DRUM_CLASSES
from .errors import MidiFileError, PrimerError
from .grid import DEFAULT_VELOCITY, SYMBOL_VELOCITIES, DrumGrid
from .midibytes import DRUM_CHANNEL
from .midifiles import read_first_bars

MAX_PRIMER_STEPS = 1024
MAX_PRIMER_CHARS = 64 * 1024

MAX_PITCH = 127
# Tokens: an ASCII number or one other visible character (\d would also take non-ASCII digits).
_TOKEN = re.compile(r"\s*(?:([0-9]+)|(\S))")


def parse_primer_drums(text, pitches=GM_PITCHES, velocity=DEFAULT_VELOCITY):
    """A grid from Magenta's primer string, e.g. "[(36,),(),(36,42)]": MIDI pitches per step.

    Parsed by a small tokenizer, never eval; errors name the character position (from 1).
    """
    if len(text) > MAX_PRIMER_CHARS:
        raise PrimerError(f"primer is {len(text)} characters; at most {MAX_PRIMER_CHARS} are allowed")
    tokens = [(m.start(m.lastindex) + 1, m.group(m.lastindex)) for m in _TOKEN.finditer(text)]
    position = 0

    def fail(expected):
        if position < len(tokens):
            where, token = tokens[position]
            found = repr(token) if len(token) <= 12 else repr(token[:12]) + "..."
        else:
            where, found = len(text) + 1, "the end of the text"
        raise PrimerError(f"primer position {where}: expected {expected}, found {found}")

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
            where, pitch = take(_is_number, f"a MIDI pitch 0-{MAX_PITCH} or ')'")
            if len(pitch.lstrip("0")) > 3 or int(pitch) > MAX_PITCH:  # int() refuses huge digit runs
                raise PrimerError(f"primer position {where}: pitch {pitch[:8]} is outside 0-{MAX_PITCH}")
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


def _is_number(token):
    return token.isascii() and token.isdigit()


_ROW_NAMES = {name: drum for drum, name in enumerate(DRUM_CLASSES)}
_ROW_NAMES.update({label.lower(): drum for drum, label in enumerate(DRUM_LABELS)})
_ROW_NAMES.update({"hat": 2, "hh": 2, "hihat": 2, "ohh": 3, "openhat": 3, "tom": 5, "cymbal": 7})
_RESTS = ".-_"


def parse_step_text(text):
    """A grid from step-sequencer rows, e.g. "kick: x...x... ; snare: ....X...".

    One row per drum ('kick', 'BD', 'hh', ...), rows split by newlines or ';'. Cells:
    'X' accent, 'x' hit, 'o' ghost, '.', '-' or '_' rest; '|' and spaces are ignored,
    lines starting with '#' too. A '# bar' line, as DrumGrid.to_text heads each block of
    bars, starts a block that follows the previous one in time, so a printed grid reads
    back whole. Errors name the row and column, counted from 1.
    """
    if len(text) > MAX_PRIMER_CHARS:
        raise PrimerError(f"step text is {len(text)} characters; at most {MAX_PRIMER_CHARS} are allowed")
    blocks, rows = [], {}
    for number, line in enumerate(re.split(r"[\n;]", text), start=1):
        stripped = line.strip()
        if stripped.startswith("# bar") and rows:
            blocks.append(rows)
            rows = {}
        if not stripped or stripped.startswith("#"):
            continue
        drum, pattern = _step_row(number, line)
        if drum in rows:
            raise PrimerError(f"step text row {number}: {DRUM_CLASSES[drum]} appears twice")
        rows[drum] = pattern
    if rows:
        blocks.append(rows)
    if not blocks:
        raise PrimerError("step text has no rows; expected lines like 'kick: x...x...'")
    parts = []
    for block in blocks:
        velocities = np.zeros((max(map(len, block.values())), NUM_DRUM_CLASSES), np.uint8)
        for drum, pattern in block.items():
            velocities[: len(pattern), drum] = pattern
        parts.append(velocities)
    velocities = np.concatenate(parts)
    if len(velocities) > MAX_PRIMER_STEPS:
        raise PrimerError(f"step text has {len(velocities)} steps; at most {MAX_PRIMER_STEPS} are allowed")
    return DrumGrid(velocities)


def _step_row(number, line):
    """(drum class, velocities) of one 'drum: pattern' row."""
    name, colon, cells = line.partition(":")
    if not colon:
        raise PrimerError(f"step text row {number}: expected 'drum: pattern', found {line.strip()[:30]!r}")
    drum = _ROW_NAMES.get(name.strip().lower())
    if drum is None:
        raise PrimerError(
            f"step text row {number}: unknown drum {name.strip()[:30]!r}; expected one of {', '.join(DRUM_CLASSES)}"
        )
    pattern = []
    for column, cell in enumerate(cells, start=len(name) + 2):
        if cell in SYMBOL_VELOCITIES:
            pattern.append(SYMBOL_VELOCITIES[cell])
        elif cell in _RESTS:
            pattern.append(0)
        elif cell not in "| \t\r":
            raise PrimerError(
                f"step text row {number}, column {column}: {cell!r} is not a cell; "
                "expected X, x, o (hits) or . - _ (rests)"
            )
    if len(pattern) > MAX_PRIMER_STEPS:
        raise PrimerError(f"step text row {number}: more than {MAX_PRIMER_STEPS} steps")
    return drum, pattern


def primer_from_midi(path, bars=1, pitches=GM_PITCHES, channel=DRUM_CHANNEL):
    """(the first `bars` bars of a MIDI file's first 4/4 drum section, {pitch: notes in them left out}).

    Notes the pitch table has no drum for are left out and counted, for the caller to report. Only
    as much of the file is read as those bars need.
    """
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
        raise PrimerError(f"primer bars must be a whole number of at least 1, got {bars!r}")
    try:
        return read_first_bars(path, bars, pitches, channel=channel, meter=(4, 4))
    except MidiFileError as error:
        raise PrimerError(str(error)) from None
