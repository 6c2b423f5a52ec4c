"""Live controls: which Control Change numbers steer the bridge, and what a value means."""
from dataclasses import dataclass

from deepbeat.midibytes import MAX_DATA
from deepbeat.runtime.steering import TEMPERATURE

# CC 20-31 are undefined in the MIDI 1.0 controller table, so no instrument claims them.
DEFAULT_CCS = {"temperature": 20, "mode": 21, "reprime": 22, "hold": 23, "panic": 24}
SWITCH_ON = 64  # MIDI convention for on/off controllers: 0-63 off, 64-127 on


@dataclass(frozen=True)
class Control:
    """One live control action: `name` is temperature, mode, reprime, hold or panic."""

    name: str
    value: object


def setting_of(setting, value):
    """A CC value 0-127 spread linearly over a steering Range."""
    return setting.at(value / MAX_DATA)


@dataclass(frozen=True)
class ControlMap:
    """CC numbers of the live controls (each 0-127, all different)."""

    temperature: int = DEFAULT_CCS["temperature"]
    mode: int = DEFAULT_CCS["mode"]
    reprime: int = DEFAULT_CCS["reprime"]
    hold: int = DEFAULT_CCS["hold"]
    panic: int = DEFAULT_CCS["panic"]

    def __post_init__(self):
        numbers = [self.temperature, self.mode, self.reprime, self.hold, self.panic]
        if any(not 0 <= n <= MAX_DATA for n in numbers):
            raise ValueError(f"control CC numbers must be 0-{MAX_DATA}, got {numbers}")
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"control CC numbers must differ, got {numbers}")

    def interpret(self, number, value):
        """The Control a CC message asks for, or None when the CC is not one of ours.

        mode: below 64 call-response, 64 and above continuous; hold: on/off at 64;
        re-prime and panic act on any value of 64 or more (a button press).
        """
        if number == self.temperature:
            return Control("temperature", setting_of(TEMPERATURE, value))
        if number == self.mode:
            return Control("mode", "continuous" if value >= SWITCH_ON else "call-response")
        if number == self.hold:
            return Control("hold", value >= SWITCH_ON)
        if number == self.reprime and value >= SWITCH_ON:
            return Control("reprime", True)
        if number == self.panic and value >= SWITCH_ON:
            return Control("panic", True)
        return None
