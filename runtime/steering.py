"""Steering: what a producer sets to shape generated beats, and the range of every setting.

Two value objects: Steering (how the model is sampled: temperature, truncation, style and its
strength, variation, density, locked drums, fills) and Feel (how the drawn hits are placed:
swing, humanize, groove). Each range is written once here; the CLI validates flags with it, the
live bridge maps Control Change values onto it and the views show values within it. Presets
bundle values under names a producer knows.
"""
import math
from dataclasses import dataclass, fields, replace

import numpy as np

from deepbeat.drums import DRUM_CLASSES, class_index
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
TOP_P = Range("top-p", 0.0, 1.0, 1.0, above_low=True)  # nucleus sampling: at 0 no step would be kept
# Classifier-free guidance between the style and "any": 0 ignores the style, 1 is the model as trained,
# above 1 leans further into the style (docs/BENCHMARKS.md, steering sweeps).
STYLE_STRENGTH = Range("style strength", 0.0, 4.0, 1.0)
# 0 keeps the figure last heard (the model may only vary it a little); 1 lets the model run free. The
# default stays as close to what was played as the GMD drummers do (core/models/default-eval.md).
VARIATION = Range("variation", 0.0, 1.0, 0.5)
DENSITY = Range("density", -1.0, 1.0, 0.0)  # fewer (-1) or more (+1) hits per step
SWING = Range("swing", 50.0, 75.0, 50.0)  # MPC swing: the share of a pair of notes the first one takes, in %
HUMANIZE = Range("humanize", 0.0, 1.0, 1.0)  # how much of the model's own timing is played (0: on the grid)
SWING_UNITS = (16, 8)  # swing 16th or 8th notes
PHRASE_BARS = 4  # a phrase, as GMD's drummers play them and the position counter's two high bits count
# Drum groups a producer locks together (live: one Control Change each).
LOCK_GROUPS = {"kick": ("kick",), "snare": ("snare",), "hats": ("closed_hihat", "open_hihat"),
               "toms": ("low_tom", "mid_tom", "high_tom"), "cymbals": ("crash", "ride")}


@dataclass(frozen=True)
class FillPlan:
    """Which bars ask the model for a fill: the last of every `every` bars (0: none), and any `bars` named.

    Bars count from the primer's first bar (offline) or from song start (live).
    """

    every: int = 0
    bars: frozenset = frozenset()

    def __post_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 0 or self.every == 1:
            raise SettingError(f"fills every {self.every!r} bars; expected 0 (off) or 2 bars or more")

    def is_fill(self, bar):
        return (self.every > 0 and bar % self.every == self.every - 1) or bar in self.bars

    def with_bar(self, bar):
        """This plan with one more fill bar (a fill asked for live)."""
        return replace(self, bars=frozenset({*self.bars, bar}))

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


def parse_locks(text):
    """Locked drums from "kick,snare" (drum class names, or the groups of LOCK_GROUPS): a frozenset of
    drum class indices; "" or "none" locks nothing."""
    drums = set()
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name == "none":
            continue
        names = LOCK_GROUPS.get(name, (name,))
        try:
            drums.update(class_index(drum) for drum in names)
        except ValueError:
            raise SettingError(f"cannot lock {name!r}; expected drums ({', '.join(DRUM_CLASSES)}) or groups "
                               f"({', '.join(LOCK_GROUPS)})") from None
    return frozenset(drums)


@dataclass(frozen=True)
class Steering:
    """How to sample: temperature, top-k / top-p truncation, the style and how strongly to follow it,
    variation from the figure last heard, density, locked drums (class indices, kept as last heard)
    and where fills go."""

    temperature: float = TEMPERATURE.default
    top_k: int = 0  # 0: all steps
    top_p: float = TOP_P.default
    style: str = ANY_STYLE
    style_strength: float = STYLE_STRENGTH.default
    variation: float = VARIATION.default
    density: float = DENSITY.default
    locks: frozenset = frozenset()
    fills: FillPlan = FillPlan()

    def __post_init__(self):
        for name, setting in (("temperature", TEMPERATURE), ("top_p", TOP_P), ("style_strength", STYLE_STRENGTH),
                              ("variation", VARIATION), ("density", DENSITY)):
            object.__setattr__(self, name, setting.check(getattr(self, name)))
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise SettingError(f"top-k {self.top_k!r} is not 0 (off) or a positive count of steps")

    @property
    def guided(self):
        """Whether sampling mixes the style with "any" (a named style at a strength other than 1)."""
        return self.style != ANY_STYLE and self.style_strength != 1

    def with_changes(self, **changes):
        """A copy with some values changed (checked again)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Feel:
    """How drawn hits are placed in time: swing (MPC-style, on 16ths or 8ths), how much of the model's own
    timing is played (humanize), and an optional groove template (a Groove) that replaces it."""

    swing: float = SWING.default
    swing_unit: int = 16
    humanize: float = HUMANIZE.default
    groove: object = None

    def __post_init__(self):
        object.__setattr__(self, "swing", SWING.check(self.swing))
        object.__setattr__(self, "humanize", HUMANIZE.check(self.humanize))
        if self.swing_unit not in SWING_UNITS:
            raise SettingError(f"swing on {self.swing_unit}ths; expected 16 or 8")

    def swing_delay(self, positions):
        """How far (in steps) swing moves the notes at bar positions (16ths): the off-beat note of each
        pair of 16ths (or 8ths) starts at `swing` % of the pair instead of half way."""
        pair = 2 if self.swing_unit == 16 else 4
        positions = np.asarray(positions)
        offbeat = positions % pair == pair // 2
        return np.where(offbeat, (self.swing / 50.0 - 1.0) * (pair // 2), 0.0)

    def onsets(self, grid, first=0):
        """Where each hit of a grid sounds, in steps from its start ([steps, 9]; hits only matter). Steps
        before `first` (a primer) sound as played, at their own offsets."""
        steps = np.arange(grid.num_steps)
        offsets = self.groove.offsets(grid) if self.groove is not None else grid.offsets * self.humanize
        placed = steps[:, None] + offsets + self.swing_delay(steps % grid.steps_per_bar)[:, None]
        return np.where((steps < first)[:, None], steps[:, None] + grid.offsets, placed)

    def velocities(self, grid, first=0):
        """The velocities played: the groove's accents applied from step `first` on, when there is a groove."""
        if self.groove is None:
            return grid.velocities
        return np.where((np.arange(grid.num_steps) < first)[:, None], grid.velocities, self.groove.velocities(grid))


STEERING_FIELDS = frozenset(field.name for field in fields(Steering))  # what a control may set on a Steering...
FEEL_FIELDS = frozenset(field.name for field in fields(Feel))  # ...and on a Feel


@dataclass(frozen=True)
class Groove:
    """A per-position timing and accent template taken from played bars (the MPC's groove quantize).

    offsets[position, drum]: mean offset of that drum at that bar position (NaN where it never hit);
    accents[position, drum]: its mean velocity there over its mean velocity overall.
    """

    offsets_by_position: np.ndarray
    accents: np.ndarray

    @classmethod
    def of(cls, grid):
        """The template of a grid's bars (positions modulo its bar length)."""
        per_bar = grid.steps_per_bar
        hits = grid.velocities > 0
        positions = np.arange(grid.num_steps) % per_bar
        offsets = np.full((per_bar, hits.shape[1]), np.nan)
        accents = np.ones((per_bar, hits.shape[1]))
        means = np.array([grid.velocities[hits[:, d], d].mean() if hits[:, d].any() else 1.0
                          for d in range(hits.shape[1])])
        for position in range(per_bar):
            here = hits & (positions == position)[:, None]
            for drum in np.flatnonzero(here.any(axis=0)):
                offsets[position, drum] = grid.offsets[here[:, drum], drum].mean()
                accents[position, drum] = grid.velocities[here[:, drum], drum].mean() / means[drum]
        return cls(offsets, accents)

    def offsets(self, grid):
        """Each hit's offset from the template: the drum's at that position, else the mean of the position's
        drums, else its own."""
        positions = np.arange(grid.num_steps) % len(self.offsets_by_position)
        template = self.offsets_by_position[positions]
        known = np.isfinite(template)
        counts = known.sum(axis=1, keepdims=True)
        by_position = np.where(counts > 0, np.where(known, template, 0.0).sum(axis=1, keepdims=True)
                               / np.maximum(counts, 1), np.nan)
        chosen = np.where(known, template, by_position)
        return np.where(np.isnan(chosen), grid.offsets, chosen)

    def velocities(self, grid):
        positions = np.arange(grid.num_steps) % len(self.accents)
        scaled = np.round(grid.velocities * self.accents[positions])
        return np.where(grid.velocities > 0, np.clip(scaled, 1, 127), 0).astype(np.uint8)


@dataclass(frozen=True)
class Preset:
    """Named values of Steering and Feel; options given alongside a preset override it."""

    name: str
    description: str
    values: dict

    def apply(self, steering, feel):
        """(steering, feel) with the preset's values in place of the defaults."""
        names = {f.name for f in fields(Steering)}
        return (steering.with_changes(**{k: v for k, v in self.values.items() if k in names}),
                replace(feel, **{k: v for k, v in self.values.items() if k not in names}))


PRESETS = {preset.name: preset for preset in (
    Preset("boom-bap", "hip-hop, laid back: light 16th swing, the drummer's own timing, stays close to the loop",
           {"style": "hiphop", "swing": 56.0, "humanize": 1.0, "variation": 0.4, "density": 0.0}),
    Preset("trap", "straight and busy: no swing, tight timing, denser hats, a fill every 8 bars",
           {"style": "hiphop", "swing": 50.0, "humanize": 0.3, "density": 0.5, "fills": FillPlan(8)}),
    Preset("lofi", "lazy and loose: heavy 16th swing, full humanize, calmer and sparser, safer choices",
           {"style": "hiphop", "swing": 62.0, "humanize": 1.0, "density": -0.3, "temperature": 0.85,
            "variation": 0.5}),
    Preset("straight", "on the grid: no swing, no humanize, the style as trained",
           {"swing": 50.0, "humanize": 0.0, "style_strength": 1.0}),
)}
