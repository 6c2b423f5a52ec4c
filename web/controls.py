"""The steering controls as the pages show them, and their values to and from JSON.

Every range, default, preset and lock group comes from runtime.steering; this module only says which
widget shows each setting (a slider for a Range, a choice, a count) and checks what a page sends back.
"""
import math
from types import SimpleNamespace

from deepbeat.drums import DRUM_CLASSES
from deepbeat.runtime.commands import steering_from_args
from deepbeat.runtime.steering import (
    DENSITY, FEEL_FIELDS, HUMANIZE, LOCK_GROUPS, PHRASE_BARS, PRESETS, STYLE_STRENGTH, SWING, SWING_UNITS, TEMPERATURE,
    TOP_P, VARIATION, Feel, FillPlan, SettingError, Steering, parse_locks,
)

# Each continuous setting (a Steering or Feel field) and its Range.
RANGES = {"temperature": TEMPERATURE, "top_p": TOP_P, "style_strength": STYLE_STRENGTH, "variation": VARIATION,
          "density": DENSITY, "swing": SWING, "humanize": HUMANIZE}
# Fill plans a page offers (any "every:N" is accepted back).
FILL_CHOICES = tuple(str(FillPlan(every)) for every in (0, 2, PHRASE_BARS, 8, 16))
# The order the controls appear in: sound first, then feel.
SETTINGS = ("style", "style_strength", "temperature", "top_k", "top_p", "variation", "density", "fills", "swing",
            "swing_unit", "humanize")
SLIDER_STEPS = 200  # a slider's resolution over its range, rounded down to 1, 2 or 5 times a power of ten


def catalog(styles):
    """[{"name", "label", "kind", "default", ...}] of every setting in SETTINGS, for a page to build widgets:
    kind "range" (low, high, step, above_low), "count" (low) or "choice" (options: [value, label] pairs)."""
    defaults = settings_json(Steering(), Feel())
    controls = []
    for name in SETTINGS:
        default = defaults[name]
        if name in RANGES:
            setting = RANGES[name]
            controls.append({"name": name, "label": setting.name, "kind": "range", "low": setting.low,
                             "high": setting.high, "step": _slider_step(setting), "above_low": setting.above_low,
                             "default": default})
        elif name == "top_k":
            controls.append({"name": name, "label": "top-k", "kind": "count", "low": 0, "default": default})
        else:
            options = {"style": [[style, style] for style in styles],
                       "fills": [[plan, plan] for plan in FILL_CHOICES],
                       "swing_unit": [[unit, f"{unit}ths"] for unit in SWING_UNITS]}[name]
            label = {"swing_unit": "swing on"}.get(name, name)
            controls.append({"name": name, "label": label, "kind": "choice", "options": options, "default": default})
    return controls


def _slider_step(setting):
    span = (setting.high - setting.low) / SLIDER_STEPS
    power = 10 ** math.floor(math.log10(span))
    return max(m * power for m in (1, 2, 5) if m * power <= span)


def settings_json(steering, feel):
    """{setting: value} of a Steering and Feel as JSON values, plus "locks": the locked drums' names."""
    values = {name: getattr(feel if name in FEEL_FIELDS else steering, name) for name in SETTINGS}
    values["fills"] = str(steering.fills)
    values["locks"] = [DRUM_CLASSES[drum] for drum in sorted(steering.locks)]
    return values


def presets_json():
    """{name: {"description", "values"}}: each preset's description and every setting it leaves in place."""
    return {name: {"description": preset.description, "values": settings_json(*preset.apply(Steering(), Feel()))}
            for name, preset in PRESETS.items()}


def lock_groups_json():
    """{group: [drum names]}: the drums locked together."""
    return {group: list(drums) for group, drums in LOCK_GROUPS.items()}


def check_setting(name, value, styles):
    """One setting a page sent, as the value Steering or Feel takes (a float, an int, a style, a FillPlan),
    or SettingError saying what was expected."""
    if name in RANGES:
        if isinstance(value, bool):
            raise SettingError(f"{RANGES[name].name} {value!r} is not a number; expected {RANGES[name].expected}")
        return RANGES[name].check(value)
    if name == "top_k":
        return Steering(top_k=value).top_k
    if name == "swing_unit":
        return Feel(swing_unit=value).swing_unit
    if name == "style":
        if value not in styles:
            raise SettingError(f"style {value!r} is not one the model knows; expected one of {', '.join(styles)}")
        return value
    if name == "fills":
        if not isinstance(value, str):
            raise SettingError(f"fills {value!r}: expected off, phrase or every:N")
        return FillPlan.parse(value)
    raise SettingError(f"unknown setting {name!r}; expected one of {', '.join(SETTINGS)}")


def check_preset(name):
    """The Preset named `name`, or SettingError."""
    if not isinstance(name, str) or name not in PRESETS:
        raise SettingError(f"preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def check_lock_group(name):
    """`name` if it is a lock group, else SettingError."""
    if not isinstance(name, str) or name not in LOCK_GROUPS:
        raise SettingError(f"lock group {name!r}: expected one of {', '.join(LOCK_GROUPS)}")
    return name


def settings_from_json(values, styles):
    """(Steering, Feel) from a page's {setting: value}: "preset" (a name) first, then every setting given,
    "locks" as a list of drum or group names; SettingError for an unknown name or a value out of range."""
    if not isinstance(values, dict):
        raise SettingError("settings: expected an object of setting names and values")
    unknown = sorted(set(values) - set(SETTINGS) - {"preset", "locks"})
    if unknown:
        raise SettingError(f"unknown setting {unknown[0]!r}; expected preset, locks or one of {', '.join(SETTINGS)}")
    given = {name: None if values.get(name) is None else check_setting(name, values[name], styles)
             for name in SETTINGS}
    locks = values.get("locks")
    if locks is not None and not (isinstance(locks, list) and all(isinstance(name, str) for name in locks)):
        raise SettingError("locks: expected a list of drum or group names")
    preset = values.get("preset")
    return steering_from_args(SimpleNamespace(
        **given, preset=None if preset is None else check_preset(preset).name,
        lock=None if locks is None else parse_locks(",".join(locks))))
