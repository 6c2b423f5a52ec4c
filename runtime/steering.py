"""Steering: what a producer sets to shape generated beats, and the range of every setting.

Each range is written once here; the CLI validates flags with it, the live bridge maps
Control Change values onto it and the views show values within it.
"""
import math
from dataclasses import dataclass, replace

from deepbeat.encoding import ANY_STYLE
from deepbeat.errors import DeepBeatError


class SettingError(DeepBeatError):
    """A setting is out of its range."""


@dataclass(frozen=True)
class Range:
    """A continuous setting: its name in messages, its bounds and default."""

    name: str
    low: float
    high: float
    default: float
    above_low: bool = False  # the low bound itself is excluded

    @property
    def expected(self):
        """The range in words, e.g. "0-2" or "above 0 and at most 1"."""
        if self.above_low:
            return f"above {self.low:g} and at most {self.high:g}"
        return f"{self.low:g}-{self.high:g}"

    def check(self, value):
        """`value` as a float, or SettingError when it is not a finite number within the range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingError(f"{self.name} {value!r} is not a number; expected {self.expected}") from None
        inside = self.low < number if self.above_low else self.low <= number
        if not (math.isfinite(number) and inside and number <= self.high):
            raise SettingError(f"{self.name} {number:g} is outside the range; expected {self.expected}")
        return number

    def at(self, fraction):
        """The value a fraction 0-1 of the way from low to high (a controller's travel)."""
        return self.low + (self.high - self.low) * min(max(fraction, 0.0), 1.0)


TEMPERATURE = Range("temperature", 0.0, 2.0, 1.0)  # 0: always the likeliest step
PHRASE_BARS = 4  # a phrase, as GMD's drummers play them and the position counter's two high bits count


@dataclass(frozen=True)
class FillPlan:
    """Which bars ask the model for a fill: the last of every `every` bars (0: none).

    Bars count from the primer's first bar (offline) or from song start (live).
    """

    every: int = 0

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 0 or self.every == 1:
            raise SettingError(f"fills every {self.every!r} bars; expected 0 (off) or 2 bars or more")

    def is_fill(self, bar):
        return self.every > 0 and bar % self.every == self.every - 1

    @classmethod
    def parse(cls, text):
        """"off", "phrase" (the last bar of each 4-bar phrase) or "every:N"."""
        if text == "off":
            return cls(0)
        if text == "phrase":
            return cls(PHRASE_BARS)
        name, colon, count = text.partition(":")
        if name == "every" and colon and count.isdigit():
            return cls(int(count))
        raise SettingError(f"fills {text!r}: expected off, phrase or every:N (a fill every N bars)")

    def __str__(self):
        return "off" if not self.every else "phrase" if self.every == PHRASE_BARS else f"every:{self.every}"
TOP_P = Range("top-p", 0.0, 1.0, 1.0, above_low=True)  # nucleus sampling: at 0 no step would be kept


@dataclass(frozen=True)
class Steering:
    """How to sample: temperature, top-k / top-p truncation, the style to condition on, and where fills go."""

    temperature: float = TEMPERATURE.default
    top_k: int = 0  # 0: all steps
    top_p: float = TOP_P.default
    style: str = ANY_STYLE
    fills: FillPlan = FillPlan()

    def __post_init__(self):
        object.__setattr__(self, "temperature", TEMPERATURE.check(self.temperature))
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise SettingError(f"top-k {self.top_k!r} is not 0 (off) or a positive count of steps")
        object.__setattr__(self, "top_p", TOP_P.check(self.top_p))

    def with_changes(self, **changes):
        """A copy with some values changed (checked again)."""
        return replace(self, **changes)
