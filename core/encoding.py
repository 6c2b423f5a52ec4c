"""StepEncoding: how drum steps become model inputs and targets, and outputs become steps.

Every model plugs into this one encoder/decoder (the note-seq idea): training builds its
examples with it, export records its settings in the model file, and the runtime builds
each step's inputs and decodes each step's outputs with it.

A step is the set of drum classes hit at one 16th note, stored as an integer 0-511 whose
bit d is set when drum class d is hit (Magenta's MultiDrumOneHotEncoding).
"""
from dataclasses import asdict, dataclass

import numpy as np

from .drums import NUM_DRUM_CLASSES
from .tempo import DEFAULT_BPM

ANY_STYLE = "any"
NUM_STEP_CLASSES = 2 ** NUM_DRUM_CLASSES
# The per-step input features, in the order the Keras model, the ONNX graph and the runtime use.
# A model uses those its encoding has: format-1 models have no offset and no label inputs.
FEATURES = ("step_class", "velocity", "offset", "position", "tempo", "style", "label")
# Bar labels of format-2 models, from the Groove MIDI Dataset's beat_type column.
BEAT, FILL = "beat", "fill"
SECTION_LABELS = (BEAT, FILL)
_CLASS_BITS = (1 << np.arange(NUM_DRUM_CLASSES)).astype(np.int32)


def step_of(hits):
    """Step integers of hit masks: [..., 9] booleans (or velocities, hit when > 0) -> [...] ints 0-511."""
    return ((np.asarray(hits) > 0) @ _CLASS_BITS).astype(np.int32)


def hits_of(steps):
    """Hit masks of step integers: [...] ints 0-511 -> [..., 9] booleans (bit d = drum class d)."""
    steps = np.asarray(steps, dtype=np.int32)
    if steps.size and not (0 <= steps.min() and steps.max() < NUM_STEP_CLASSES):
        raise ValueError(f"steps must lie in 0-{NUM_STEP_CLASSES - 1}")
    return (steps[..., None] & _CLASS_BITS) != 0


STEP_HITS = hits_of(np.arange(NUM_STEP_CLASSES))  # [512, 9]: the hit mask of every step integer


def next_position(position):
    """The position the inputs of the step at `position` describe: the next step's.

    Magenta's LookbackEventSequenceEncoderDecoder counts the *next* event's position the same way.
    """
    return position + 1


@dataclass(frozen=True)
class StepEncoding:
    """Input features per step, and the bins of the velocity and timing heads.

    Inputs at step t describe the step just played and where the next one falls:
      step_class  int   the step integer 0-511 played at t
      velocity    float the 9 velocities at t scaled to 0-1 (0 = no hit)
      offset      float the 9 hits' onsets at t relative to the step, in steps (-0.5 to 0.5; 0 = no hit)
      position    float binary counter of next_position(t) in the bar-aligned stream, bits as +1/-1;
                        with 6 bits its two high bits are the bar's place in a 4-bar phrase
      tempo       float log2(bpm / 120), bpm in whole BPM
      style       int   index into `styles`; 0 is "any"
      label       int   index into `labels` of the bar holding next_position(t): beat or fill
    Targets at t: the step class at t+1 and, per drum hit at t+1, its velocity bin and offset bin.
    A format-1 encoding has no offset bins and no labels: no offset and label inputs, no timing head.
    """

    counter_bits: int = 6  # Magenta drum_kit config: binary_counter_bits=6
    velocity_bins: int = 8
    styles: tuple = (ANY_STYLE,)
    offset_bins: int = 0  # bins of a step's width for the timing head; 0: none
    labels: tuple = ()  # SECTION_LABELS, or () without label input

    @property
    def features(self):
        """The FEATURES a model with this encoding takes."""
        absent = ({"offset"} if not self.offset_bins else set()) | ({"label"} if not self.labels else set())
        return tuple(name for name in FEATURES if name not in absent)

    def label_id(self, label):
        """The index of a bar label (0 when the encoding has no labels)."""
        if not self.labels:
            return 0
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"unknown bar label {label!r}; expected one of {', '.join(self.labels)}") from None

    def style_id(self, style):
        """The index of a style name; None or 'any' give 0."""
        if style in (None, ANY_STYLE):
            return 0
        try:
            return self.styles.index(style)
        except ValueError:
            raise ValueError(f"unknown style {style!r}; this model knows {', '.join(self.styles)}") from None

    def style_id_or_any(self, style):
        """The index of a style name, 0 ("any") when the model does not know it (data of other styles)."""
        return self.styles.index(style) if style in self.styles else 0

    @property
    def position_period(self):
        """Positions repeat with this period: the counter keeps only its low bits."""
        return 2 ** self.counter_bits

    def position_features(self, positions):
        """+1/-1 binary counter bits of integer positions, shape [..., counter_bits]."""
        positions = np.asarray(positions, dtype=np.int64)[..., None]
        bits = (positions >> np.arange(self.counter_bits)) & 1
        return np.where(bits == 1, 1.0, -1.0).astype(np.float32)

    @staticmethod
    def velocity_features(velocities):
        return np.asarray(velocities, dtype=np.float32) / 127.0

    @staticmethod
    def tempo_feature(bpm):
        """The tempo as the model hears it: in whole BPM, as GMD labels it (info.csv's bpm are integers), so
        that a live tempo reading of 179.96 and one of 180.02 ask the same of the model."""
        return np.float32(np.log2(np.rint(bpm or DEFAULT_BPM) / DEFAULT_BPM))

    def inputs(self, steps, velocities, first_position, style_id=0, bpm=None, offsets=None, label_ids=0):
        """Feature arrays (every name of FEATURES) for steps played at positions first_position, first_position+1,
        ...; `label_ids` is one label index for all steps or one per step (the label of each next step's bar)."""
        steps = np.asarray(steps, dtype=np.int32)
        count = len(steps)
        velocities = np.asarray(velocities).reshape(count, NUM_DRUM_CLASSES)
        return {
            "step_class": steps,
            "velocity": self.velocity_features(velocities),
            "offset": self.offset_features(velocities, offsets),
            "position": self.position_features(next_position(np.arange(count) + first_position)),
            "tempo": np.full((count, 1), self.tempo_feature(bpm), np.float32),
            "style": np.full((count,), style_id, np.int32),
            "label": np.broadcast_to(np.asarray(label_ids, np.int32), (count,)).copy(),
        }

    @staticmethod
    def offset_features(velocities, offsets):
        """Offsets of the hits (0 where a drum does not hit, and everywhere without offsets)."""
        if offsets is None:
            return np.zeros(np.shape(velocities), np.float32)
        return np.where(np.asarray(velocities) > 0, np.asarray(offsets, np.float32), 0.0).astype(np.float32)

    def velocity_bin(self, velocities):
        """Bin 0..velocity_bins-1 of MIDI velocities 1-127 (0 maps to bin 0)."""
        velocities = np.clip(np.asarray(velocities, dtype=np.int32), 1, 127)
        return ((velocities - 1) * self.velocity_bins // 127).astype(np.int32)

    def bin_velocity(self, bins, within=0.5):
        """The MIDI velocity at a place within each bin: 0.5 its centre, 0-1 across it (dither)."""
        width = 127 / self.velocity_bins
        return np.minimum(np.rint(1 + (np.asarray(bins) + within) * width), 127).astype(np.uint8)  # at least 1

    def offset_bin(self, offsets):
        """Bin 0..offset_bins-1 of offsets in [-0.5, 0.5) steps."""
        bins = np.floor((np.asarray(offsets, np.float64) + 0.5) * self.offset_bins)
        return np.clip(bins, 0, self.offset_bins - 1).astype(np.int32)

    def bin_offset(self, bins, within=0.5):
        """The offset in steps at a place within each bin: 0.5 its centre, 0-1 across it (dither)."""
        return ((np.asarray(bins) + within) / self.offset_bins - 0.5).astype(np.float32)

    def hit_velocities(self, steps, bins, within=0.5):
        """Velocities [..., 9] of drawn steps [...] (integers 0-511) with velocity bins [..., 9]: where a drum
        hits, the velocity at `within` of its bin (0.5: the centre)."""
        return np.where(STEP_HITS[steps], self.bin_velocity(bins, within), 0).astype(np.uint8)

    def targets(self, steps, velocities, offsets=None):
        """Next-step targets for a sequence: classes [T-1]; velocity bins, offset bins and hit mask [T-1, 9]."""
        velocities = np.asarray(velocities)
        offsets = np.zeros(velocities.shape, np.float32) if offsets is None else np.asarray(offsets)
        return {
            "next_class": np.asarray(steps[1:], dtype=np.int32),
            "velocity_bin": self.velocity_bin(velocities[1:]),
            "offset_bin": self.offset_bin(offsets[1:]) if self.offset_bins else np.zeros(offsets[1:].shape, np.int32),
            "velocity_mask": (velocities[1:] > 0).astype(np.float32),
        }

    def to_dict(self):
        data = asdict(self)
        data["styles"], data["labels"] = list(self.styles), list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data):
        """An encoding from to_dict's data; format-1 data lacks offset_bins and labels."""
        return cls(
            counter_bits=int(data["counter_bits"]),
            velocity_bins=int(data["velocity_bins"]),
            styles=tuple(str(style) for style in data["styles"]),
            offset_bins=int(data.get("offset_bins", 0)),
            labels=tuple(str(label) for label in data.get("labels", ())),
        )
