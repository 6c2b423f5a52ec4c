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
FEATURES = ("step_class", "velocity", "position", "tempo", "style")
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


def next_position(position):
    """The position the inputs of the step at `position` describe: the next step's.

    Magenta's LookbackEventSequenceEncoderDecoder counts the *next* event's position the same way.
    """
    return position + 1


@dataclass(frozen=True)
class StepEncoding:
    """Input features per step and velocity bins.

    Inputs at step t describe the step just played and where the next one falls:
      step_class  int   the step integer 0-511 played at t
      velocity    float the 9 velocities at t scaled to 0-1 (0 = no hit)
      position    float binary counter of next_position(t) in the bar-aligned stream, bits as +1/-1
      tempo       float log2(bpm / 120)
      style       int   index into `styles`; 0 is "any"
    Targets at t: the step class at t+1 and, per drum hit at t+1, its velocity bin.
    """

    counter_bits: int = 6  # Magenta drum_kit config: binary_counter_bits=6
    velocity_bins: int = 8
    styles: tuple = (ANY_STYLE,)

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
        return np.float32(np.log2((bpm or DEFAULT_BPM) / DEFAULT_BPM))

    def inputs(self, steps, velocities, first_position, style_id=0, bpm=None):
        """Feature arrays (FEATURES) for steps played at positions first_position, first_position+1, ..."""
        steps = np.asarray(steps, dtype=np.int32)
        count = len(steps)
        return {
            "step_class": steps,
            "velocity": self.velocity_features(velocities).reshape(count, NUM_DRUM_CLASSES),
            "position": self.position_features(next_position(np.arange(count) + first_position)),
            "tempo": np.full((count, 1), self.tempo_feature(bpm), np.float32),
            "style": np.full((count,), style_id, np.int32),
        }

    def velocity_bin(self, velocities):
        """Bin 0..velocity_bins-1 of MIDI velocities 1-127 (0 maps to bin 0)."""
        velocities = np.clip(np.asarray(velocities, dtype=np.int32), 1, 127)
        return ((velocities - 1) * self.velocity_bins // 127).astype(np.int32)

    def bin_velocity(self, bins):
        """The MIDI velocity at the centre of each bin."""
        width = 127 / self.velocity_bins
        return np.clip(np.round(1 + (np.asarray(bins) + 0.5) * width), 1, 127).astype(np.uint8)

    def hit_velocities(self, steps, bins):
        """Velocities [..., 9] of drawn steps [...] with velocity bins [..., 9]: bin centres where a drum hits."""
        return np.where(hits_of(steps), self.bin_velocity(bins), 0).astype(np.uint8)

    def targets(self, steps, velocities):
        """Next-step targets for a sequence: classes [T-1], velocity bins and hit mask [T-1, 9]."""
        velocities = np.asarray(velocities)
        return {
            "next_class": np.asarray(steps[1:], dtype=np.int32),
            "velocity_bin": self.velocity_bin(velocities[1:]),
            "velocity_mask": (velocities[1:] > 0).astype(np.float32),
        }

    def to_dict(self):
        data = asdict(self)
        data["styles"] = list(self.styles)
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(
            counter_bits=int(data["counter_bits"]),
            velocity_bins=int(data["velocity_bins"]),
            styles=tuple(data["styles"]),
        )
