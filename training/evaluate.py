"""`deepbeat eval`: a trained model next to the baselines on one split, as a table, JSON and Markdown.

The model runs over whole sequences with its state carried; every baseline predicts exactly
the same target steps (each step of a sequence but its first) from the steps before it.
"""
import dataclasses
import json
from pathlib import Path

import numpy as np

from deepbeat.dataset import load_summary
from deepbeat.drums import DRUM_CLASSES
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.paths import portable
from deepbeat.runtime.evaluation import markdown as musical_markdown
from deepbeat.runtime.evaluation import musical_evaluation, summary_lines
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import Steering

from .baselines import all_baselines, baseline_sums, step_sequences
from .examples import SEQUENCES_PER_BATCH, encode_sequences, load_sequences, sequence_batches
from .losses import head_weights, metrics_from_sums
from .runs import RunDir, config_path, load_trained, read_json, write_json

FOCUS_STYLE = "hiphop"
TABLE_METRICS = ("nll", "perplexity", "accuracy", "event_accuracy", "no_event_accuracy")
GOAL_PERPLEXITY_CUT = 0.20  # issue 3: perplexity at least 20 % below the best baseline's
GENERATED_SEQUENCES = 64  # sampled in parallel, each primed with the first bar of a split sequence


def style_groups(sequences):
    """{"all": sequences, FOCUS_STYLE: those of that style} (the second only when present)."""
    groups = {"all": sequences}
    focused = [s for s in sequences if s.style == FOCUS_STYLE]
    if focused:
        groups[FOCUS_STYLE] = focused
    return groups


def hide_style(encoded):
    """The same encoded split with every style set to "any" (id 0)."""
    return dataclasses.replace(encoded, arrays=dict(encoded.arrays, style=np.zeros_like(encoded.arrays["style"])))


def model_metrics(trained, sequences):
    """Class metrics of the model with the sequences' styles, and with style "any"."""
    from .trainer import sequence_sums

    encoded = encode_sequences(sequences, trained.encoding)
    weight = head_weights(trained.hparams)
    return {
        "model": metrics_from_sums(sequence_sums(trained.model, encoded), weight),
        "model, style any": metrics_from_sums(sequence_sums(trained.model, hide_style(encoded)), weight),
    }


def velocity_metrics(trained, sequences, train_sequences):
    """Per drum class over the hits of the split: velocity NLL (nats), MAE of the expected velocity,
    and for scale the MAE of always playing the class's mean training velocity."""
    train_velocities = np.concatenate([s.grid.velocities for s in train_sequences]).astype(np.float64)
    class_means = np.array([np.mean(v[v > 0]) if np.any(v > 0) else 0.0 for v in train_velocities.T])
    constant_error = np.zeros(len(DRUM_CLASSES))
    encoding = trained.encoding
    centres = encoding.bin_velocity(np.arange(encoding.velocity_bins)).astype(np.float64)
    nll = np.zeros(len(DRUM_CLASSES))
    error = np.zeros(len(DRUM_CLASSES))
    hits = np.zeros(len(DRUM_CLASSES))
    encoded = encode_sequences(sequences, encoding)
    for indices, inputs, targets in sequence_batches(encoded):
        logits = np.asarray(trained.model(inputs, training=False)["velocity_logits"], np.float64)
        log_p = logits - logits.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        mask = targets["velocity_mask"] * targets["step_mask"][..., None]
        true_bins = targets["velocity_bin"]
        nll -= np.sum(np.take_along_axis(log_p, true_bins[..., None], -1)[..., 0] * mask, axis=(0, 1))
        true_velocity = _next_velocities(sequences, indices, mask.shape[1])
        expected = np.exp(log_p) @ centres
        error += np.sum(np.abs(expected - true_velocity) * mask, axis=(0, 1))
        constant_error += np.sum(np.abs(class_means - true_velocity) * mask, axis=(0, 1))
        hits += mask.sum((0, 1))
    return {
        name: {"hits": int(hits[d]), "nll": nll[d] / max(hits[d], 1), "mae": error[d] / max(hits[d], 1),
               "mae_class_mean": constant_error[d] / max(hits[d], 1)}
        for d, name in enumerate(DRUM_CLASSES)
    }


def _next_velocities(sequences, indices, length):
    """MIDI velocities of the target steps (t+1) for each padded row of a sequence batch ([B, length, 9])."""
    result = np.zeros((len(indices), length, len(DRUM_CLASSES)))
    for row, index in enumerate(indices):
        velocities = sequences[index].grid.velocities[1:]
        result[row, : len(velocities)] = velocities
    return result


def generated_velocity_stats(trained, sequences, bars, seed=0):
    """Per class mean/std of sampled velocities vs the split's own, from about `bars` sampled bars.

    Sampled the way `deepbeat generate` samples (the runtime's DrumSampler at temperature 1), on the
    model's single-step graph, each continuation primed with a split sequence's first bar and style.
    """
    from .step_graph import KerasStepModel

    rng = np.random.default_rng(seed)
    encoding = trained.encoding
    count = min(GENERATED_SEQUENCES, max(bars, 1))
    new_steps = STEPS_PER_BAR * max(bars // count, 1)
    model = KerasStepModel(trained)
    generated = []
    for index in rng.choice(len(sequences), count):
        primer = sequences[index]
        steering = Steering(style=encoding.styles[encoding.style_id_or_any(primer.style)])
        sampler = DrumSampler(model, seed=int(rng.integers(2**31)))
        sampler.prime(primer.grid.slice(0, STEPS_PER_BAR), steering)
        generated.append(sampler.sample_rows(new_steps, steering).velocities.reshape(-1, len(DRUM_CLASSES)))
    generated = np.concatenate(generated).astype(np.float64)
    data = np.concatenate([s.grid.velocities for s in sequences]).astype(np.float64)
    return {
        "bars": int(count * new_steps // STEPS_PER_BAR),
        "classes": {name: {"generated": _mean_std(generated[:, d]), "data": _mean_std(data[:, d])}
                    for d, name in enumerate(DRUM_CLASSES)},
    }


def _mean_std(values):
    hits = values[values > 0]
    return {"hits": int(len(hits)), "mean": float(hits.mean()) if len(hits) else None,
            "std": float(hits.std()) if len(hits) else None}


def evaluate(trained, data_dir, split, num_batches=None, generate_bars=256):
    """The report dict: metrics per group (all, hiphop) for the model and every baseline, velocity figures.

    num_batches limits the split to its first num_batches x SEQUENCES_PER_BATCH sequences (model and baselines alike).
    """
    train = load_sequences(data_dir, "train")
    evaluated = load_sequences(data_dir, split)
    if num_batches:
        evaluated = evaluated[: num_batches * SEQUENCES_PER_BATCH]
    baselines = [b.fit(step_sequences(train)) for b in all_baselines()]
    groups = {}
    for group, sequences in style_groups(evaluated).items():
        rows = model_metrics(trained, sequences)
        for baseline in baselines:
            rows[baseline.name] = metrics_from_sums(baseline_sums(baseline, step_sequences(sequences)))
        groups[group] = {"sequences": len(sequences), "rows": rows}
    report = {"split": split, "data_dir": portable(data_dir), "groups": groups,
              "velocity": velocity_metrics(trained, evaluated, train),
              "goals": goals(groups["all"]["rows"], [b.name for b in baselines])}
    if generate_bars:
        report["generated_velocity"] = generated_velocity_stats(trained, evaluated, generate_bars)
    return report


ABLATION_SPLITS = ("validation", "test")
ABLATION_HPARAMS = ("attn_length", "lookback_distances", "offset_bins", "use_labels", "condition_every_layer")


def ablation(sources, data_dir, outputs=4, seed=0):
    """For each model (a run folder or NAME.weights.h5, exported or not): its distinguishing hparams, training
    steps, and on the validation and test splits its perplexity and primer adherence (the musical evaluation's,
    sampled as `deepbeat generate` samples)."""
    from deepbeat.runtime.evaluation import beat_files, generate, primer_figures, real

    rows = []
    for source in map(Path, sources):
        trained = load_trained(source)
        run = RunDir(source) if source.is_dir() else None
        step_model = _step_model(trained, source, run)
        row = {"model": portable(source), "hparams": {k: trained.hparams.to_dict()[k] for k in ABLATION_HPARAMS},
               "step": trained.info.get("step")}
        for split in ABLATION_SPLITS:
            row[f"{split}_perplexity"] = model_metrics(trained, load_sequences(data_dir, split))["model"]["perplexity"]
            files = beat_files(data_dir, split, 4)
            row[f"{split}_adherence"] = primer_figures(generate(step_model, files, 4, outputs, Steering(), seed)[0])[
                "adherence"]
            row[f"{split}_real_adherence"] = primer_figures(real(files, 4)[0])["adherence"]
        rows.append(row)
    return rows


def ablation_markdown(rows):
    """The ablation as a Markdown table."""
    header = ["model", "attention", "lookback", "steps"] + [f"{split} {figure}" for split in ABLATION_SPLITS
                                                             for figure in ("perplexity", "adherence")]
    lines = ["## Ablation", "", "Each model part on and off, trained the same way; perplexity on whole sequences, "
             "adherence as in the musical evaluation (temperature 1, default steering). Real adherence: "
             + ", ".join(f"{split} {rows[0][f'{split}_real_adherence']:.3f}" for split in ABLATION_SPLITS) + ".", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        hparams = row["hparams"]
        cells = [row["model"], str(hparams["attn_length"] or "-"), str(hparams["lookback_distances"] or "-"),
                 str(row["step"] or "-")]
        cells += [f"{row[f'{split}_{figure}']:.3f}" for split in ABLATION_SPLITS for figure in ("perplexity",
                                                                                             "adherence")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""])


def goals(rows, baseline_names):
    """Issue 3's goals: lower NLL than every baseline, perplexity >= 20 % below the best baseline's."""
    best = min(baseline_names, key=lambda name: rows[name]["nll"])
    model = rows["model"]
    cut = 1 - model["perplexity"] / rows[best]["perplexity"]
    return {"best_baseline": best, "beats_every_baseline_nll": model["nll"] < rows[best]["nll"],
            "perplexity_cut_vs_best": cut, "perplexity_goal_met": cut >= GOAL_PERPLEXITY_CUT}


def table(group_rows):
    """Fixed-width text table of one group's rows."""
    lines = [f"{'':26s}" + "".join(f"{name:>18s}" for name in TABLE_METRICS)]
    for name, metrics in group_rows.items():
        lines.append(f"{name:26s}" + "".join(f"{metrics[m]:18.4f}" for m in TABLE_METRICS))
    return "\n".join(lines)


def markdown(report, title):
    """The report as Markdown: metric tables per group, velocity tables, goals, training and commands."""
    out = [f"# {title}", "", f"Split `{report['split']}` of `{report['data_dir']}`; the model runs over whole "
           "sequences with its state carried, every baseline predicts the same target steps from the steps "
           "before them. NLL in nats per step; perplexity = exp(NLL); event accuracy over target steps with "
           "at least one hit.", ""]
    for group, data in report["groups"].items():
        out += [f"## {group} ({data['sequences']} sequences, {data['rows']['model']['steps']} target steps)", "",
                "| | " + " | ".join(TABLE_METRICS) + " |", "|---" * (len(TABLE_METRICS) + 1) + "|"]
        for name, metrics in data["rows"].items():
            out.append(f"| {name} | " + " | ".join(f"{metrics[m]:.4f}" for m in TABLE_METRICS) + " |")
        out.append("")
    g = report["goals"]
    out += ["## Goals (all styles)", "",
            f"- lower NLL than every baseline: **{'yes' if g['beats_every_baseline_nll'] else 'no'}** "
            f"(best baseline: {g['best_baseline']})",
            f"- perplexity vs the best baseline's: {100 * g['perplexity_cut_vs_best']:.1f} % lower (goal: at least "
            f"{100 * GOAL_PERPLEXITY_CUT:.0f} % lower): **{'met' if g['perplexity_goal_met'] else 'not met'}**", ""]
    out += [f"## Velocity head ({report['split']} hits)", "",
            "MAE of the expected velocity (bin centres weighted by the predicted distribution) against the played "
            "MIDI velocity; for scale, the MAE of always playing the class's mean training velocity.", "",
            "| class | hits | NLL (nats) | MAE | MAE, class mean |", "|---|---|---|---|---|"]
    for name, v in report["velocity"].items():
        out.append(f"| {name} | {v['hits']} | {v['nll']:.3f} | {v['mae']:.2f} | {v['mae_class_mean']:.2f} |")
    out.append("")
    if "generated_velocity" in report:
        generated = report["generated_velocity"]
        out += [f"## Generated velocities ({generated['bars']} sampled bars) vs data", "",
                "Sampled as `deepbeat generate` samples (default steering, each velocity at a random place inside its "
                "drawn bin); "
                "primed with a split sequence's first bar and style.", "",
                "| class | generated hits | generated mean ± std | data hits | data mean ± std |",
                "|---|---|---|---|---|"]
        for name, v in generated["classes"].items():
            out.append(f"| {name} | {v['generated']['hits']} | {_format_mean_std(v['generated'])} | "
                       f"{v['data']['hits']} | {_format_mean_std(v['data'])} |")
        out.append("")
    if "musical" in report:
        out += [musical_markdown(report["musical"]), ""]
    if "ablation" in report:
        out += [ablation_markdown(report["ablation"]), ""]
    if report.get("training"):
        out += ["## Training", "", *training_lines(report["training"]), ""]
    if report.get("commands"):
        out += ["## Commands", "", "```"] + report["commands"] + ["```", ""]
    return "\n".join(out)


def training_lines(training):
    """Markdown bullets of a run state: steps, best step, time and throughput."""
    lines = [f"- steps trained: {training['step']}; weights kept from step {training['best_step']} "
             f"(lowest validation loss, {training['best_validation_loss']:.4f})"]
    if "training_seconds" in training:
        lines.append(f"- training time: {training['training_seconds'] / 60:.1f} min of training steps, "
                     f"{training.get('wall_seconds', 0) / 60:.1f} min wall clock with validation")
    if "timesteps_per_second" in training:
        lines.append(f"- throughput: {training['timesteps_per_second']:,.0f} timesteps/s "
                     f"({training['timesteps']:,} real steps of training windows, padding not counted)")
    if "machine" in training:
        lines.append(f"- machine: {training['machine']['cpus']} CPU cores, {training['machine']['gpus']} GPUs")
    if training.get("stopped_early"):
        lines.append("- stopped early: no better validation loss")
    return lines


def _format_mean_std(stats):
    return "-" if stats["mean"] is None else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def run_evaluation(args, command):
    """The `deepbeat eval` command: evaluate, print the tables, write JSON + Markdown, record a summary."""
    source = Path(args.model or args.run_dir)
    run = RunDir(source) if source.is_dir() else None
    trained = load_trained(source)
    config_file = config_path(run.best_weights if run else source)
    split = args.split or "test"
    report = evaluate(trained, args.data, split, args.num_eval_batches, args.generate_bars)
    report["model"] = portable(source)
    if args.musical:
        report["musical"] = musical_evaluation(_step_model(trained, source, run), args.data,
                                               args.split or "validation", outputs=args.continuations)
    if args.compare:
        report["ablation"] = ablation([source, *args.compare], args.data, outputs=args.continuations)
    training = trained.info.get("training")
    if training is None and run and run.state.exists():
        training = read_json(run.state, "run state")
    if training:
        report["training"] = training
    report["commands"] = reproduction_commands(args.data, training, trained.info.get("export_command"), command)
    stem = Path(args.out) if args.out else (
        source / f"eval-{split}" if run else source.with_name(config_file.stem + "-eval"))
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report, f"DeepBeat evaluation: {source.name}"))
    config = read_json(config_file, "trained-model config")
    config["eval"] = {"split": split, "all": report["groups"]["all"]["rows"]["model"],
                      "goals": report["goals"], "report": stem.with_suffix(".md").name}
    if "musical" in report:
        config["eval"]["musical"] = {"split": report["musical"]["split"], "goals": report["musical"]["goals"]}
    write_json(config_file, config)
    for group, data in report["groups"].items():
        print(f"{group} ({data['sequences']} sequences)")
        print(table(data["rows"]))
    print(f"goals: {json.dumps(report['goals'])}")
    for line in summary_lines(report["musical"]) if "musical" in report else ():
        print(line)
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")


def _step_model(trained, source, run):
    """What the musical evaluation plays: the exported ONNX model beside the weights (RUN/model.onnx or
    NAME.onnx), as `deepbeat generate` would; else the weights' own single-step graph."""
    from deepbeat.runtime.stepmodel import StepModel, run_model_path

    from .runs import beside_weights
    from .step_graph import KerasStepModel

    exported = run_model_path(source) if run else beside_weights(source, ".onnx")
    return StepModel.load(exported, threads=2) if exported.is_file() else KerasStepModel(trained)


def reproduction_commands(data_dir, training, export_command, eval_command):
    """Prepare (when the data summary names its source), train, export and eval command lines."""
    source = load_summary(data_dir).get("source")
    return [
        *([f"deepbeat data prepare --source {source} --out {portable(data_dir)}"] if source else []),
        *(training or {}).get("commands", []),
        *([export_command] if export_command else []),
        eval_command,
    ]
