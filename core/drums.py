"""The drum vocabulary: 9 drum classes and the pitch tables that map MIDI notes onto them.

How a step (the set of classes hit at one 16th) becomes a model's class integer is the
encoding's business (deepbeat.encoding).
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

# Short labels for grid views, in DRUM_CLASSES order.
DRUM_LABELS = ("BD", "SD", "CH", "OH", "LT", "MT", "HT", "CR", "RD")


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
