"""Live controls: which Control Change numbers steer the bridge, and what a value means.

A Control names what it changes in the words of runtime.steering and of the live page (web/live.py):
a setting of Steering or Feel, or an action (mode, hold, reprime, fill, lock, preset, panic, loop).
CCs and the page both end up as Controls handled on the timing thread.
"""
from dataclasses import dataclass, field

from deepbeat.midibytes import MAX_DATA
from deepbeat.runtime.steering import (
    DENSITY, HUMANIZE, LOCK_GROUPS, PRESETS, STYLE_STRENGTH, SWING, TEMPERATURE, VARIATION,
)

# Continuous settings a CC sweeps over their whole range (0-127 from low to high).
SWEPT = {"temperature": TEMPERATURE, "style_strength": STYLE_STRENGTH, "variation": VARIATION, "density": DENSITY,
         "swing": SWING, "humanize": HUMANIZE}
PRESET_ORDER = tuple(PRESETS)  # the preset CC's 0-127 split evenly among these, in this order
# CC 20-31 and 102-119 are undefined in the MIDI 1.0 controller table, so no instrument claims them.
DEFAULT_CCS = {"temperature": 20, "mode": 21, "reprime": 22, "hold": 23, "panic": 24, "style_strength": 25,
               "variation": 26, "density": 27, "swing": 28, "humanize": 29, "fill": 30, "preset": 31,
               **{f"lock_{group}": 102 + k for k, group in enumerate(LOCK_GROUPS)}}
SWITCH_ON = 64  # MIDI convention for on/off controllers: 0-63 off, 64-127 on


@dataclass(frozen=True)
class Control:
    """One live change: `name` is a setting (temperature, style_strength, ...) with its value, or an action:
    mode (a mode name), hold (bool), reprime, fill, panic (value True), lock ((group, bool)), preset (a
    Preset), loop (a history bar, or None)."""

    name: str
    value: object


def setting_of(setting, value):
    """A CC value 0-127 spread linearly over a steering Range."""
    return setting.at(value / MAX_DATA)


def preset_of(value):
    """The Preset a preset CC value picks."""
    return PRESETS[PRESET_ORDER[min(value * len(PRESET_ORDER) // (MAX_DATA + 1), len(PRESET_ORDER) - 1)]]


@dataclass(frozen=True)
class ControlMap:
    """CC numbers of the live controls (each 0-127, all different): {control: CC} over DEFAULT_CCS."""

    numbers: dict = field(default_factory=lambda: dict(DEFAULT_CCS))

    def __post_init__(self):
        unknown = sorted(set(self.numbers) - set(DEFAULT_CCS))
        if unknown:
            raise ValueError(f"unknown live controls {unknown}; expected some of {', '.join(DEFAULT_CCS)}")
        numbers = {**DEFAULT_CCS, **self.numbers}
        object.__setattr__(self, "numbers", numbers)
        if any(not 0 <= n <= MAX_DATA for n in numbers.values()):
            raise ValueError(f"control CC numbers must be 0-{MAX_DATA}, got {sorted(numbers.values())}")
        if len(set(numbers.values())) != len(numbers):
            raise ValueError(f"control CC numbers must differ, got {sorted(numbers.values())}")
        object.__setattr__(self, "_by_number", {n: name for name, n in numbers.items()})

    @classmethod
    def of(cls, **numbers):
        """A map with some CCs moved, e.g. ControlMap.of(hold=30)."""
        return cls(numbers)

    def interpret(self, number, value):
        """The Control a CC message asks for, or None when the CC is not one of ours.

        Swept settings take 0-127 over their range; mode: below 64 call-response, 64 and above continuous;
        hold and the lock groups: on/off at 64; re-prime, fill and panic act on any value of 64 or more (a
        button press); preset: 0-127 split among the presets.
        """
        name = self._by_number.get(number)
        if name is None:
            return None
        if name in SWEPT:
            return Control(name, setting_of(SWEPT[name], value))
        if name == "mode":
            return Control("mode", "continuous" if value >= SWITCH_ON else "call-response")
        if name == "hold":
            return Control("hold", value >= SWITCH_ON)
        if name.startswith("lock_"):
            return Control("lock", (name[len("lock_"):], value >= SWITCH_ON))
        if name == "preset":
            return Control("preset", preset_of(value))
        if value >= SWITCH_ON:  # reprime, fill, panic
            return Control(name, True)
        return None
