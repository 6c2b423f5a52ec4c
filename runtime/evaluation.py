"""The musical evaluation: what a step model plays after one-bar primers, against what the drummers played.

Primers are the first bars of the beat files of one split; each is continued for `bars` bars,
`outputs` times, the way `deepbeat generate` continues it (the file's style and tempo, the given
steering). Two kinds of figures:
- how each continuation relates to its primer (adherence, own-primer identity), beside the real
  bars that follow each primer;
- what the bars sound like (density, backbeat, syncopation, fills, failures, timing, velocities),
  for all styles and for the focus style, beside every real bar of the split's beat files.
A real-vs-real floor (the real figure of one half of the files against the other half) gives the
noise level of each figure. TF-free: it runs on any object with the StepModel interface.
"""
from dataclasses import dataclass, replace

import numpy as np

from deepbeat.dataset import load_split
from deepbeat.drums import DRUM_CLASSES, NUM_DRUM_CLASSES
from deepbeat.encoding import BEAT
from deepbeat.errors import DatasetError
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.musical import (
    CLOSED_HAT,
    KICK,
    SNARE,
    failure,
    has_backbeat,
    is_fill_like,
    jaccard,
    offsets_ms,
    ride_share,
    syncopation,
)

from .generate import continue_primer
from .steering import Steering

FOCUS_STYLE = "hiphop"
# A kick-and-snare skeleton (no hats, no ride): what the style alone must turn into a groove.
SKELETON = np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.uint8)
SKELETON[[0, 8, 10], KICK] = 100
SKELETON[[4, 12], SNARE] = 100
SKELETON_STYLES = ("jazz", "hiphop", "rock", "funk", "latin")
ADHERENCE_BARS = (2, 3)  # the continuation's bars 3 and 4: far enough from the primer to show drift
BAR_SHAPE = (-1, STEPS_PER_BAR, NUM_DRUM_CLASSES)


@dataclass(frozen=True)
class Bars:
    """Bars with where they came from: velocities and offsets [n, 16, 9], tempo, style and file per bar."""

    velocities: np.ndarray
    offsets: np.ndarray
    bpms: np.ndarray
    styles: np.ndarray
    files: np.ndarray

    @classmethod
    def of(cls, grid, style, file):
        count = grid.num_steps // STEPS_PER_BAR
        return cls(grid.velocities.reshape(BAR_SHAPE), grid.offsets.reshape(BAR_SHAPE), np.full(count, grid.bpm),
                   np.full(count, style), np.full(count, file))

    @classmethod
    def join(cls, parts):
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))

    def where(self, keep):
        return Bars(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))

    def __len__(self):
        return len(self.velocities)


@dataclass(frozen=True)
class Primed:
    """Primers (one bar each, [p, 16, 9]) and the continuations of each: continuations[i] is a list of
    [bars, 16, 9] velocity arrays (real data: the one continuation the drummer played)."""

    primers: np.ndarray
    continuations: list

    def half(self, parity):
        keep = list(range(parity, len(self.primers), 2))
        return Primed(self.primers[keep], [self.continuations[i] for i in keep])


def beat_files(data_dir, split, bars):
    """The beat files of `split` in 4/4 with a primer bar and `bars` more."""
    files = [s for s in load_split(data_dir, split)
             if s.beat_type == BEAT and s.grid.steps_per_bar == STEPS_PER_BAR
             and s.grid.num_steps >= (1 + bars) * STEPS_PER_BAR]
    if len(files) < 2:
        raise DatasetError(f"{data_dir}: the {split} split has {len(files)} beat files of {1 + bars} bars or "
                           "more; the musical evaluation needs at least 2")
    return files


def generate(model, files, bars, outputs, steering, seed):
    """(Primed, Bars) of the model's continuations of each file's first bar, in the file's style when the
    model knows it, else the steering's."""
    continuations, parts = [], []
    for index, sequence in enumerate(files):
        style = sequence.style if sequence.style in model.encoding.styles else steering.style
        primer = sequence.grid.slice(0, STEPS_PER_BAR)
        beats = continue_primer(model, primer, bars * STEPS_PER_BAR, replace(steering, style=style),
                                num_outputs=outputs, seed=seed + index)
        continuations.append([beat.velocities[STEPS_PER_BAR:].reshape(BAR_SHAPE) for beat in beats])
        parts += [Bars.of(beat.slice(STEPS_PER_BAR, beat.num_steps), sequence.style, index) for beat in beats]
    return Primed(_first_bars(files), continuations), Bars.join(parts)


def real(files, bars):
    """(Primed, Bars) of the drummers: each file's own continuation, and every bar after its first."""
    continuations = [[s.grid.velocities[STEPS_PER_BAR:(1 + bars) * STEPS_PER_BAR].reshape(BAR_SHAPE)] for s in files]
    parts = [Bars.of(s.grid.slice(STEPS_PER_BAR, s.grid.num_steps // STEPS_PER_BAR * STEPS_PER_BAR), s.style, i)
             for i, s in enumerate(files)]
    return Primed(_first_bars(files), continuations), Bars.join(parts)


def _first_bars(files):
    return np.stack([s.grid.velocities[:STEPS_PER_BAR] for s in files])


def primer_figures(primed):
    """Adherence (Jaccard of continuation bars 3-4 to the primer) and own-primer identity (the primer they are
    nearest to is their own), over every continuation."""
    adherence, identity = [], []
    for index, continuations in enumerate(primed.continuations):
        for bars in continuations:
            late = [bars[b] for b in ADHERENCE_BARS if b < len(bars)]
            scores = [np.mean([jaccard(bar, primer) for bar in late]) for primer in primed.primers]
            adherence.append(scores[index])
            identity.append(int(np.argmax(scores)) == index)
    return {"continuations": len(adherence), "adherence": float(np.mean(adherence)),
            "own_primer_identity": float(np.mean(identity))}


def bar_figures(bars):
    """What the bars sound like: onsets per bar per drum, backbeat, kick+snare syncopation, fill-like and failed
    bars, timing (mean |offset| in steps, mean offset per drum in ms, the snare's lag) and velocities."""
    if not len(bars):
        return None
    hits = bars.velocities > 0
    offsets_by_drum = {d: [] for d in range(NUM_DRUM_CLASSES)}
    for velocities, offsets, bpm in zip(bars.velocities, bars.offsets, bars.bpms):
        for drum, values in offsets_ms(DrumGrid(velocities, offsets, bpm=float(bpm))).items():
            offsets_by_drum[drum].append(values)
    mean_ms = {DRUM_CLASSES[d]: _mean(np.concatenate(v)) for d, v in offsets_by_drum.items()}
    failures = [failure(bar) for bar in bars.velocities]
    velocities = bars.velocities[hits]
    return {
        "bars": len(bars),
        "onsets_per_bar": {name: float(hits[..., d].sum() / len(bars)) for d, name in enumerate(DRUM_CLASSES)},
        "backbeat": float(np.mean([has_backbeat(bar) for bar in bars.velocities])),
        "syncopation": float(np.mean([syncopation(bar) for bar in bars.velocities])),
        "fill_like": float(np.mean([is_fill_like(bar) for bar in bars.velocities])),
        "failures": {kind: float(np.mean([f == kind for f in failures])) for kind in ("empty", "no backbeat",
                                                                                      "crashes")},
        "mean_abs_offset_steps": float(np.abs(bars.offsets[hits]).mean()),
        "mean_offset_ms": mean_ms,
        "snare_lag_ms": _lag(mean_ms),
        "distinct_velocities": int(len(np.unique(velocities))),
        "velocity": {name: {"mean": _mean(bars.velocities[..., d][hits[..., d]]),
                            "std": _std(bars.velocities[..., d][hits[..., d]])} for d, name in enumerate(DRUM_CLASSES)},
    }


def _mean(values):
    return float(np.mean(values)) if len(values) else None


def _std(values):
    return float(np.std(values)) if len(values) else None


def _lag(mean_ms):
    """How far the snare sits behind kick and closed hat, in ms (None without all three)."""
    others = [mean_ms[DRUM_CLASSES[d]] for d in (KICK, CLOSED_HAT)]
    snare = mean_ms[DRUM_CLASSES[SNARE]]
    return None if snare is None or None in others else float(snare - np.mean(others))


def grouped(bars, focus=FOCUS_STYLE):
    """Bar figures for all styles and for the focus style."""
    return {"all": bar_figures(bars), focus: bar_figures(bars.where(bars.styles == focus))}


def skeleton_ride_shares(model, real_bars, steering, bars=4, outputs=32, seed=0, styles=SKELETON_STYLES):
    """Per style: the ride's share of time keeping after the kick-and-snare skeleton, generated and real."""
    shares = {}
    for style in styles:
        if style not in model.encoding.styles:
            continue
        beats = continue_primer(model, DrumGrid(SKELETON), bars * STEPS_PER_BAR, replace(steering, style=style),
                                num_outputs=outputs, seed=seed)
        generated = [bar for beat in beats for bar in beat.velocities[STEPS_PER_BAR:].reshape(BAR_SHAPE)]
        played = real_bars.velocities[real_bars.styles == style]
        shares[style] = {"generated": ride_share(generated), "real": ride_share(played) if len(played) else None,
                         "real_bars": int(len(played))}
    return shares


def musical_evaluation(model, data_dir, split="validation", *, bars=4, outputs=4, steering=Steering(), seed=0):
    """The report: generated, real and floor figures, skeleton ride shares per style, and the goals."""
    files = beat_files(data_dir, split, bars)
    real_primed, real_bars = real(files, bars)
    primed, generated_bars = generate(model, files, bars, outputs, steering, seed)
    halves = [(primer_figures(real_primed.half(p)), grouped(real_bars.where(real_bars.files % 2 == p)))
              for p in (0, 1)]
    report = {
        "split": split, "primers": len(files), "bars_per_continuation": bars, "outputs_per_primer": outputs,
        "focus_style": FOCUS_STYLE,
        "steering": {"temperature": steering.temperature, "top_k": steering.top_k, "top_p": steering.top_p,
                     "fills": str(steering.fills)},
        "primer": {"generated": primer_figures(primed), "real": primer_figures(real_primed),
                   "floor": _floor(halves[0][0], halves[1][0])},
        "bars": {"generated": grouped(generated_bars), "real": grouped(real_bars),
                 "floor": _floor(halves[0][1], halves[1][1])},
        "skeleton_ride_share": skeleton_ride_shares(model, real_bars, steering, seed=seed),
    }
    report["goals"] = goals(report)
    return report


def _floor(a, b):
    """|a - b| of every number of two figure dicts (nested dicts alike; None where either is None)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {key: _floor(a[key], b[key]) for key in a}
    if a is None or b is None or isinstance(a, dict) or isinstance(b, dict):
        return None
    return abs(a - b)


def goals(report):
    """Issue 10's goals for a model at default settings: {goal: {value, target, met}}. Primer figures over all
    styles; timing over all styles; fills and backbeat for the focus style, as the goals were set."""
    primer_generated, primer_real = report["primer"]["generated"], report["primer"]["real"]
    generated, real_figures = report["bars"]["generated"], report["bars"]["real"]
    focus = report["focus_style"]
    checks = {
        "adherence >= 0.9 x real": (primer_generated["adherence"], 0.9 * primer_real["adherence"], ">="),
        "own-primer identity >= 0.8 x real": (primer_generated["own_primer_identity"],
                                              0.8 * primer_real["own_primer_identity"], ">="),
        "distinct velocities >= 32": (generated["all"]["distinct_velocities"], 32, ">="),
    }
    if real_figures["all"]["mean_abs_offset_steps"]:  # data recorded with its timing (not quantized)
        ratio = generated["all"]["mean_abs_offset_steps"] / real_figures["all"]["mean_abs_offset_steps"]
        checks["mean |offset| 0.7-1.3 x real"] = (ratio, (0.7, 1.3), "within")
        for name in ("kick", "snare", "closed_hihat"):
            generated_ms = generated["all"]["mean_offset_ms"][name]
            real_ms = real_figures["all"]["mean_offset_ms"][name]
            if generated_ms is not None and real_ms is not None:
                checks[f"{name} mean offset within 5 ms of real"] = (abs(generated_ms - real_ms), 5.0, "<=")
    if generated[focus] and real_figures[focus]:
        gap = abs(generated[focus]["fill_like"] - real_figures[focus]["fill_like"])
        checks[f"{focus} fill-like bars within 5 points of real"] = (gap, 0.05, "<=")
        checks[f"{focus} no-backbeat bars <= 3%"] = (generated[focus]["failures"]["no backbeat"], 0.03, "<=")
    shares = report["skeleton_ride_share"]
    if "jazz" in shares:
        checks["jazz skeleton: ride >= 25% of time keeping"] = (shares["jazz"]["generated"] or 0.0, 0.25, ">=")
    if "hiphop" in shares:
        checks["hiphop skeleton: ride <= 10% of time keeping"] = (shares["hiphop"]["generated"] or 0.0, 0.10, "<=")
    met = {">=": lambda v, t: v >= t, "<=": lambda v, t: v <= t, "within": lambda v, t: t[0] <= v <= t[1]}
    return {name: {"value": value, "target": target, "met": bool(met[kind](value, target))}
            for name, (value, target, kind) in checks.items()}


def markdown(report, title="Musical evaluation"):
    """The report as Markdown tables: each figure generated, real and the real-vs-real floor, then the goals."""
    primer, bars = report["primer"], report["bars"]
    steering = report["steering"]
    lines = [
        f"## {title}", "",
        f"First bars of the {report['primers']} beat files of the `{report['split']}` split as one-bar primers, each "
        f"continued for {report['bars_per_continuation']} bars {report['outputs_per_primer']} times in its file's "
        f"style and tempo (temperature {steering['temperature']:g}, top-k {steering['top_k']}, top-p "
        f"{steering['top_p']:g}, fills {steering['fills']}). *Real* is what the drummers played; the *floor* is the "
        "gap between the real figure of one half of the files and the other's: differences below it are noise.", "",
        "| primer figure | generated | real | floor |", "|---|---|---|---|",
        *(f"| {label} | {primer['generated'][key]:.3f} | {primer['real'][key]:.3f} | {primer['floor'][key]:.3f} |"
          for key, label in (("adherence", "adherence: Jaccard of bars 3-4 to the primer"),
                             ("own_primer_identity", "own-primer identity: bars 3-4 nearest their own primer"))),
        "",
    ]
    for group in bars["generated"]:
        generated, real_figures, floor = bars["generated"][group], bars["real"][group], bars["floor"][group]
        if not generated or not real_figures:
            continue
        lines += [f"### Bars, {'all styles' if group == 'all' else group} ({generated['bars']} generated, "
                  f"{real_figures['bars']} real)", "", "| bar figure | generated | real | floor |", "|---|---|---|---|"]
        for label, pick, unit in _BAR_ROWS:
            values = [_pick(figures, pick) for figures in (generated, real_figures, floor or {})]
            lines.append(f"| {label} | " + " | ".join(_show(v, unit) for v in values) + " |")
        lines.append("")
    shares = report["skeleton_ride_share"]
    lines += ["### Style from a kick-and-snare skeleton", "",
              "The ride's share of the time-keeping hits (closed hat, open hat, ride) after a one-bar kick and snare "
              "skeleton, against the style's real beat bars.", "",
              "| style | generated | real (bars) |", "|---|---|---|",
              *(f"| {style} | {_show(v['generated'], '%')} | {_show(v['real'], '%')} ({v['real_bars']}) |"
                for style, v in shares.items()), "",
              "### Goals", "", "| goal | value | target | met |", "|---|---|---|---|",
              *(f"| {name.replace('|', chr(92) + '|')} | {_show(g['value'], '')} | {_target(g['target'])} | "
                f"{'yes' if g['met'] else '**no**'} |" for name, g in report["goals"].items()), ""]
    return "\n".join(lines)


_BAR_ROWS = (
    ("onsets per bar: kick / snare / closed hat / ride", ("onsets_per_bar", ("kick", "snare", "closed_hihat", "ride")),
     ""),
    ("backbeat (snare on 2 or 4)", ("backbeat",), "%"),
    ("kick+snare syncopation (Longuet-Higgins & Lee)", ("syncopation",), ""),
    ("fill-like (>= 5 snares or >= 2 toms)", ("fill_like",), "%"),
    ("failures: empty / no backbeat / >= 4 crashes", ("failures", ("empty", "no backbeat", "crashes")), "%"),
    ("mean \\|offset\\| (16ths)", ("mean_abs_offset_steps",), ""),
    ("mean offset ms: kick / snare / closed hat", ("mean_offset_ms", ("kick", "snare", "closed_hihat")), "ms"),
    ("snare lag behind kick and hat (ms)", ("snare_lag_ms",), "ms"),
    ("distinct velocities", ("distinct_velocities",), ""),
    ("velocity mean: kick / snare / closed hat", ("velocity", ("kick", "snare", "closed_hihat"), "mean"), ""),
    ("velocity spread: kick / snare / closed hat", ("velocity", ("kick", "snare", "closed_hihat"), "std"), ""),
)


def _pick(figures, path):
    """The value at a path of keys; a tuple of keys picks several (shown joined by ' / ')."""
    if not figures:
        return None
    value = figures.get(path[0])
    if len(path) == 1 or value is None:
        return value
    values = [value.get(key) for key in path[1]]
    return [v.get(path[2]) if len(path) > 2 and isinstance(v, dict) else v for v in values]


def _target(target):
    return "-".join(f"{t:g}" for t in target) if isinstance(target, (list, tuple)) else f"{target:.3g}"


def _show(value, unit):
    if value is None:
        return "-"
    if isinstance(value, list):
        return " / ".join(_show(v, unit) for v in value)
    if unit == "%":
        return f"{100 * value:.1f} %"
    if unit == "ms":
        return f"{value:+.1f}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary_lines(report):
    """A few printed lines: the primer figures, the goals met and missed."""
    primer = report["primer"]
    lines = [f"musical evaluation, {report['split']} split, {report['primers']} primers x "
             f"{report['outputs_per_primer']} continuations of {report['bars_per_continuation']} bars"]
    for key in ("adherence", "own_primer_identity"):
        lines.append(f"  {key.replace('_', ' ')}: generated {primer['generated'][key]:.3f}, "
                     f"real {primer['real'][key]:.3f} (floor {primer['floor'][key]:.3f})")
    lines += [f"  {'met' if goal['met'] else 'NOT met'}: {name} ({_show(goal['value'], '')})"
              for name, goal in report["goals"].items()]
    return lines


def run_musical_evaluation(model_path, data_dir, split, outputs, out=None, log=print):
    """`deepbeat eval --musical --model FILE.onnx`: evaluate, print the summary, write OUT.json and OUT.md
    (default FILE-musical beside the model)."""
    import json
    from pathlib import Path

    from deepbeat.paths import portable

    from .stepmodel import StepModel

    model = StepModel.load(model_path, threads=2)
    report = musical_evaluation(model, data_dir, split, outputs=outputs)
    report["model"] = portable(model_path)
    stem = Path(out) if out else Path(model_path).with_name(Path(model_path).stem + "-musical")
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(report, f"Musical evaluation: {Path(model_path).name}") + "\n")
    except OSError as error:
        raise DatasetError(f"{stem}: cannot write the report ({error.strerror or error})") from None
    for line in summary_lines(report):
        log(line)
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")
    return report
