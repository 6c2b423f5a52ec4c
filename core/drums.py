"""The drum vocabulary: 9 drum classes, steps as sets of classes, pitch tables.

A step is the set of drum classes hit at one 16th note. It is stored as an integer
0-511 whose bit i is set when class i is hit, as in Magenta's MultiDrumOneHotEncoding.
"""
from dataclasses import dataclass, field

DRUM_CLASSES = (
    "kick",
    "snare",
    "closed_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
NUM_DRUM_CLASSES = len(DRUM_CLASSES)
NUM_STEP_CLASSES = 2 ** NUM_DRUM_CLASSES

# Short labels for grid views, in DRUM_CLASSES order.
DRUM_LABELS = ("BD", "SD", "CH", "OH", "LT", "MT", "HT", "CR", "RD")


def step_index(classes):
    """The integer 0-511 of a set of drum class indices."""
    index = 0
    for drum in classes:
        if not 0 <= drum < NUM_DRUM_CLASSES:
            raise ValueError(f"drum class {drum} is outside 0-{NUM_DRUM_CLASSES - 1}")
        index |= 1 << drum
    return index


def step_classes(index):
    """The sorted drum class indices of a step integer 0-511."""
    if not 0 <= index < NUM_STEP_CLASSES:
        raise ValueError(f"step {index} is outside 0-{NUM_STEP_CLASSES - 1}")
    return tuple(drum for drum in range(NUM_DRUM_CLASSES) if index >> drum & 1)


def class_index(name):
    """The index of a drum class given its name (e.g. 'kick')."""
    try:
        return DRUM_CLASSES.index(name)
    except ValueError:
        raise ValueError(f"unknown drum class {name!r}; expected one of {', '.join(DRUM_CLASSES)}") from None


@dataclass(frozen=True)
class PitchTable:
    """Maps MIDI pitches to drum classes; pitches it lacks are dropped and counted."""

    name: str
    pitches: tuple  # per drum class, the pitches that play it
    _lookup: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        lookup = {}
        for drum, pitches in enumerate(self.pitches):
            for pitch in pitches:
                lookup.setdefault(pitch, drum)
        object.__setattr__(self, "_lookup", lookup)

    def drum_of(self, pitch):
        """The drum class of a pitch, or None when the table lacks it."""
        return self._lookup.get(pitch)


# Magenta's DEFAULT_DRUM_TYPE_PITCHES (note_seq/drums_encoder_decoder.py): General MIDI
# drums folded into 9 classes, plus the Roland TD-11 extras 22 and 26.
GM_PITCHES = PitchTable(
    "gm",
    (
        (36, 35),
        (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
        (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
        (46, 67, 72, 74, 79, 81, 26),
        (45, 29, 41, 43, 61, 64, 84),
        (48, 47, 60, 63, 77, 86, 87),
        (50, 30, 62, 76, 83),
        (49, 52, 55, 57, 58),
        (51, 53, 59, 82),
    ),
)

# Roland TD-11 mapping of the Groove MIDI Dataset (its paper's drum mapping table):
# head and rim/edge pitches of each pad go to the pad's class.
TD11_PITCHES = PitchTable(
    "td11",
    (
        (36,),
        (38, 37, 40),
        (42, 22, 44),
        (46, 26),
        (43, 58),
        (47, 45),
        (50, 48),
        (49, 52, 55, 57),
        (51, 53, 59),
    ),
)

PITCH_TABLES = {table.name: table for table in (GM_PITCHES, TD11_PITCHES)}


def pitch_table(name):
    """A pitch table by name ('gm' or 'td11')."""
    try:
        return PITCH_TABLES[name]
    except KeyError:
        raise ValueError(f"unknown pitch table {name!r}; expected one of {', '.join(PITCH_TABLES)}") from None
