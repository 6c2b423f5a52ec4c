"""`deepbeat bench steering`: each steering control swept against the figure it moves, beside the real
data's figure, and the time to generate a bar with every control on.

Primers are the first bars of the beat files of a split (as in the musical evaluation); each value
of a control continues every primer a few times, everything else at its default.
"""
import statistics
import time

import numpy as np

from deepbeat.benchresults import machine
from deepbeat.drums import class_index
from deepbeat.encoding import FILL
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.musical import is_fill_like, onsets
from deepbeat.paths import portable

from .evaluation import BAR_SHAPE, SKELETON, beat_files, generate, primer_figures, real, skeleton_ride_shares
from .sampler import DrumSampler
from .steering import Feel, FillPlan, Steering, parse_locks

BARS = 4
VARIATIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
STRENGTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
STRENGTH_STYLES = ("jazz", "hiphop")
DENSITIES = (-1.0, -0.5, 0.0, 0.5, 1.0)
FILLS = ("off", "every:4", "every:2")
SWINGS = (50.0, 54.0, 58.0, 62.0, 66.0, 75.0)
HUMANIZE = (0.0, 0.5, 1.0)
ALL_ON = Steering(style="hiphop", style_strength=2.0, variation=0.5, density=0.3, locks=parse_locks("kick"),
                  fills=FillPlan.parse("phrase"))
BAR_MS_GOAL = 3.5  # issue 11: a bar with every control on, at 2 threads


def _continuations(model, files, steering, outputs, seed):
    return generate(model, files, BARS, outputs, steering, seed)


def variation_sweep(model, files, outputs, seed):
    """Adherence (bars 3-4 to the primer) per variation, and the drummers' own."""
    real_primed, _ = real(files, BARS)
    rows = [{"variation": v, "adherence": primer_figures(
        _continuations(model, files, Steering(variation=v), outputs, seed)[0])["adherence"]} for v in VARIATIONS]
    return {"rows": rows, "real_adherence": primer_figures(real_primed)["adherence"]}


def style_strength_sweep(model, files, outputs, seed):
    """The ride's share of time keeping after the kick-and-snare skeleton, jazz and hip-hop, per strength (the
    musical evaluation's figure)."""
    _, real_bars = real(files, BARS)
    rows = []
    for strength in STRENGTHS:
        shares = skeleton_ride_shares(model, real_bars, Steering(style_strength=strength), bars=BARS, seed=seed,
                                      styles=STRENGTH_STYLES)
        rows.append({"style_strength": strength, **{style: shares[style]["generated"] for style in STRENGTH_STYLES}})
    return {"rows": rows, "real": {style: shares[style]["real"] for style in STRENGTH_STYLES}}


def density_sweep(model, files, outputs, seed):
    """Onsets per bar and the backbeat's presence per density."""
    _, real_bars = real(files, BARS)
    rows = []
    for density in DENSITIES:
        _, bars = _continuations(model, files, Steering(density=density), outputs, seed)
        rows.append({"density": density, "onsets_per_bar": float(onsets(bars.velocities).sum() / len(bars)),
                     "backbeat": float(np.mean(onsets(bars.velocities)[:, [4, 12], class_index("snare")].any(1)))})
    return {"rows": rows, "real_onsets_per_bar": float(onsets(real_bars.velocities).sum() / len(real_bars))}


def fills_sweep(model, files, outputs, seed, data_dir, split):
    """The fill-like share of the bars asked to be fills and of the others, per fill plan; beside the real
    share in the split's beat and fill files."""
    from deepbeat.dataset import load_split

    rows = []
    for text in FILLS:
        plan = FillPlan.parse(text)
        _, bars = _continuations(model, files, Steering(fills=plan), outputs, seed)
        bar_numbers = np.tile(np.arange(1, BARS + 1), len(bars) // BARS)  # bar 0 is the primer
        asked = np.array([plan.is_fill(bar) for bar in bar_numbers])
        fill_like = np.array([is_fill_like(bar) for bar in bars.velocities])
        rows.append({"fills": text, "fill_bars": float(fill_like[asked].mean()) if asked.any() else None,
                     "other_bars": float(fill_like[~asked].mean())})
    sequences = list(load_split(data_dir, split))
    real_share = {kind: float(np.mean([is_fill_like(bar) for s in sequences if s.beat_type == kind
                                       for bar in s.grid.velocities[:s.grid.num_steps // 16 * 16].reshape(BAR_SHAPE)]))
                  for kind in ("beat", FILL)}
    return {"rows": rows, "real": real_share}


def swing_sweep(model, files, seed):
    """Swing measured where the notes are placed (16ths, no humanize, and with the model's timing)."""
    rows = []
    beats = generate(model, files[:8], BARS, 2, Steering(), seed)[1]
    for swing in SWINGS:
        row = {"swing": swing}
        for humanize in (0.0, 1.0):
            feel = Feel(swing=swing, humanize=humanize)
            measured = []
            for velocities, offsets in zip(beats.velocities, beats.offsets):
                grid = DrumGrid(velocities, offsets)
                placed = feel.onsets(grid)
                hits = grid.velocities > 0
                steps = np.arange(STEPS_PER_BAR)[:, None] + np.zeros((1, hits.shape[1]))
                off = hits & (steps % 2 == 1)
                measured += list(100 * (placed[off] - (steps[off] - 1)) / 2)
            row["measured_on_grid" if humanize == 0 else "measured_with_timing"] = float(np.mean(measured))
        rows.append(row)
    return {"rows": rows}


def humanize_sweep(model, files, outputs, seed):
    """Mean |offset| of the hits as placed, per humanize amount, beside the drummers'."""
    _, real_bars = real(files, BARS)
    _, bars = _continuations(model, files, Steering(), outputs, seed)
    hits = bars.velocities > 0
    rows = [{"humanize": h, "mean_abs_offset_steps": float(np.abs(bars.offsets[hits] * h).mean())} for h in HUMANIZE]
    real_offsets = real_bars.offsets[real_bars.velocities > 0]
    return {"rows": rows, "real_mean_abs_offset_steps": float(np.abs(real_offsets).mean())}


def bar_times(model, repeats=200):
    """Median ms to sample one bar (16 steps) for one output: default steering, and every control on."""
    figures = {}
    for name, steering in (("default", Steering()), ("all controls on", ALL_ON)):
        sampler = DrumSampler(model, seed=0)
        sampler.prime(DrumGrid(SKELETON), steering)
        for _ in range(5):
            sampler.sample(STEPS_PER_BAR, steering)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            sampler.sample(STEPS_PER_BAR, steering)
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90))}
    return figures


def run_sweeps(model_path, data_dir, split="validation", outputs=2, seed=0, log=print):
    """Every sweep and the bar times, printed as tables; the results dict."""
    from .stepmodel import StepModel

    model = StepModel.load(model_path, threads=2)
    files = beat_files(data_dir, split, BARS)
    results = {
        "benchmark": "steering", "model": portable(model.path), "split": split, "primers": len(files),
        "outputs_per_primer": outputs,
        "machine": machine(),
        "variation": variation_sweep(model, files, outputs, seed),
        "style_strength": style_strength_sweep(model, files, outputs, seed),
        "density": density_sweep(model, files, outputs, seed),
        "fills": fills_sweep(model, files, outputs, seed, data_dir, split),
        "swing": swing_sweep(model, files, seed),
        "humanize": humanize_sweep(model, files, outputs, seed),
        "bar_ms": bar_times(model),
    }
    results["bar_ms"]["goal_all_controls_ms"] = BAR_MS_GOAL
    results["bar_ms"]["met"] = results["bar_ms"]["all controls on"]["median_ms"] <= BAR_MS_GOAL
    for line in tables(results):
        log(line)
    return results


def tables(results):
    """The sweeps as text tables, each with the real figure beside."""
    def rows(title, sweep, columns, real_text):
        lines = [title, "  " + " | ".join(f"{c:>22}" for c in columns)]
        for row in sweep["rows"]:
            lines.append("  " + " | ".join(f"{_fmt(row.get(c)):>22}" for c in columns))
        return lines + [f"  real: {real_text}", ""]

    r = results
    return [
        *rows("variation -> adherence", r["variation"], ("variation", "adherence"),
              f"adherence {r['variation']['real_adherence']:.3f}"),
        *rows("style strength -> ride share of time keeping after a kick+snare skeleton", r["style_strength"],
              ("style_strength", "jazz", "hiphop"),
              ", ".join(f"{k} {_fmt(v)}" for k, v in r["style_strength"]["real"].items())),
        *rows("density -> onsets per bar", r["density"], ("density", "onsets_per_bar", "backbeat"),
              f"{r['density']['real_onsets_per_bar']:.2f} onsets per bar"),
        *rows("fills -> fill-like share", r["fills"], ("fills", "fill_bars", "other_bars"),
              ", ".join(f"{k} files {_fmt(v)}" for k, v in r["fills"]["real"].items())),
        *rows("swing -> measured swing %", r["swing"], ("swing", "measured_on_grid", "measured_with_timing"), "-"),
        *rows("humanize -> mean |offset| (16ths)", r["humanize"], ("humanize", "mean_abs_offset_steps"),
              f"{r['humanize']['real_mean_abs_offset_steps']:.3f}"),
        f"bar of 16 steps, one output, 2 threads: default {r['bar_ms']['default']['median_ms']:.2f} ms, "
        f"all controls on {r['bar_ms']['all controls on']['median_ms']:.2f} ms (goal <= {BAR_MS_GOAL:g} ms: "
        f"{'met' if r['bar_ms']['met'] else 'NOT met'})",
    ]


def _fmt(value):
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
