"""`deepbeat train`, `deepbeat eval` and `deepbeat bench train` (TensorFlow is imported only when they run).

The seed's flags are accepted as aliases: --run_dir, --SE (sequence example / data folder),
--modo_trabajo train|eval, --num_training_steps, --num_eval_batches, --hparams. As in the seed, one
command line serves both modes: --modo_trabajo MODE hands the whole line to MODE's parser, and eval
takes the seed's training flags (--hparams, --num_training_steps) without listing them, unused.
"""
import argparse
import math

from deepbeat.options import add_results_option, count

from .tfoutput import tensorflow_output

MODES = ("train", "eval")
NEEDS = ("tensorflow",)  # beyond the runtime install (see deepbeat.cli)


def register(subparsers, benchmarks):
    parsers = {"train": _train_parser(subparsers), "eval": _eval_parser(subparsers)}
    for mode, parser in parsers.items():
        parser.add_argument("--modo_trabajo", choices=MODES, default=mode,
                            help=f"seed alias: run 'train' or 'eval' with this command line (default {mode})")
        add_verbose_option(parser)
        parser.handover = lambda parsed: parsers[parsed.modo_trabajo] if parsed.modo_trabajo != parsed.command else None
    p = benchmarks.add_parser(
        "train", help="timesteps/s of deepbeat's training step vs a naive one-hot Keras model.fit",
        description="Time the training step `deepbeat train` uses (embedding input, tf.data windows) and a "
        "naive one-hot Keras model.fit with the same layer sizes, in one run; print both and the ratio, "
        "and write them as JSON.",
    )
    p.add_argument("--data", default=None, help="prepared data folder (default: synthetic grooves)")
    p.add_argument("--hparams", default="", help="hparams for both models, e.g. \"rnn_layer_sizes=[256,256]\"")
    p.add_argument("--batches", type=count(1), default=12, help="timed training batches per method (default 12)")
    add_results_option(p, "train")
    add_verbose_option(p)
    p.set_defaults(run=_bench, command="bench train", needs=NEEDS)


def add_verbose_option(parser):
    """--verbose: let TensorFlow's own messages through (see tfoutput)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own messages (start-up, devices, warnings), held back by default")


def _shared_options(parser, run_dir_help):
    """The options train and eval share: the data, the run folder, validation batches."""
    parser.add_argument("--data", "--SE", dest="data", required=True,
                        help="prepared data folder (from 'deepbeat data prepare')")
    parser.add_argument("--run-dir", "--run_dir", dest="run_dir", help=run_dir_help)
    parser.add_argument("--num-eval-batches", "--num_eval_batches", dest="num_eval_batches", type=count(1),
                        help="limit each validation/eval pass to this many batches of 16 sequences (default: all)")


def _train_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train the drum LSTM on prepared data (resumes a run folder)",
        description="Train the drum language model on DATA/train.npz in shuffled bar-aligned windows, "
        "validating on DATA/validation.npz over whole sequences. RUN_DIR/train holds checkpoints "
        "(resumed from the latest) and TensorBoard scalars (RUN_DIR/validation for validation); "
        "RUN_DIR/best.weights.h5 + best.json keep the weights with the lowest validation loss. "
        "A non-finite loss stops training with exit 2 and keeps the last good checkpoint. "
        "Multi-worker: set TF_CONFIG on every worker and pass --strategy multiworker.",
    )
    _shared_options(p, "run folder, created or resumed (required)")
    p.add_argument("--hparams", default=None,
                   help="overrides like \"batch_size=64,rnn_layer_sizes=[256,256]\" (default: the resumed run's, "
                   "else the seed's)")
    p.add_argument("--num-training-steps", "--num_training_steps", dest="num_training_steps", type=count(1),
                   default=20000, help="total training steps (batches) of the run (default 20000)")
    p.add_argument("--seed", type=int, default=None, help="fix the random seed (weights, shuffling, style hiding)")
    p.add_argument("--eval-every", type=count(1), default=250,
                   help="validate, checkpoint and log every N steps (default 250)")
    p.add_argument("--early-stop", type=count(0), default=0, metavar="N",
                   help="stop after N validations without a better validation loss (default 0: never)")
    p.add_argument("--max-minutes", type=_minutes, default=None,
                   help="wall-clock budget: validate, checkpoint and stop once it is used up")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="tf.distribute strategy: default (one device), mirrored (all local GPUs, or the CPU), "
                   "multiworker (cluster from TF_CONFIG, see training/README.md)")
    p.add_argument("--save-weights", metavar="FILE.weights.h5",
                   help="after training, copy the best weights to FILE.weights.h5 and their config to FILE.json "
                   "(the trained-model pair 'deepbeat eval --model' and 'deepbeat export' read)")
    p.set_defaults(run=_train, command="train", needs=NEEDS)
    return p


def _eval_parser(subparsers):
    p = subparsers.add_parser(
        "eval", help="evaluate a trained model and the baselines; with --musical, what it plays too",
        description="Evaluate a run folder (its best weights) or a NAME.weights.h5 file on one split over "
        "whole sequences, next to the baselines (uniform, unigram, position n-gram, bar-aware n-gram, "
        "repeat-previous-bar) fit on DATA/train.npz, for all styles and for hiphop. With --musical, also "
        "continue the first bar of every beat file and compare what the model plays with what the drummers "
        "played (adherence, backbeat, fills, timing, velocities, style), on the exported ONNX model beside the "
        "weights when there is one; an .onnx --model gets the musical evaluation alone, without TensorFlow. "
        "Prints tables and writes JSON + Markdown.",
    )
    _shared_options(p, "run folder to evaluate (its best weights)")
    p.add_argument("--model", metavar="FILE",
                   help="evaluate this trained-model file (FILE.weights.h5 with FILE.json beside it) or, with "
                   "--musical, an exported .onnx model, instead of --run-dir")
    p.add_argument("--split", choices=("train", "validation", "test"),
                   help="split to evaluate (default: test for perplexity, validation for --musical)")
    p.add_argument("--musical", action="store_true",
                   help="also evaluate what the model plays after one-bar primers, against the real continuations")
    p.add_argument("--continuations", type=count(1), default=4,
                   help="with --musical or --compare: continuations of 4 bars generated per primer (default 4)")
    p.add_argument("--compare", nargs="+", metavar="RUN",
                   help="an ablation: these run folders (or NAME.weights.h5 files) next to the model, each's "
                   "perplexity and primer adherence on the validation and test splits")
    p.add_argument("--out", help="report path stem; writes OUT.json and OUT.md (default RUN_DIR/eval-SPLIT, "
                   "or NAME-eval beside --model)")
    p.add_argument("--generate-bars", type=count(0), default=256,
                   help="bars to sample for the generated-velocity statistics (default 256; 0 skips)")
    for seed_flag in ("--hparams", "--num_training_steps"):  # the seed's, for one command line in both modes
        p.add_argument(seed_flag, dest=f"unused_{seed_flag.strip('-')}", help=argparse.SUPPRESS)
    p.set_defaults(run=_eval, command="eval", needs=lambda args: () if _is_onnx(args.model) else NEEDS)
    return p


def _is_onnx(path):
    return bool(path) and str(path).lower().endswith(".onnx")


def _minutes(text):
    """A positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of minutes")
    return value


PATH_OPTIONS = {"data", "run_dir", "save_weights", "model", "out", "compare"}


def command_line(args, names):
    """The canonical `deepbeat <command> ...` line of parsed arguments (options left at None are omitted),
    its paths written without the machine's own folders."""
    from deepbeat.paths import portable

    parts = ["deepbeat", args.command]
    for name in names:
        value = getattr(args, name, None)
        if value is True:
            parts.append(f"--{name.replace('_', '-')}")
        elif value is not None and value is not False:
            if isinstance(value, list):
                text = " ".join(portable(item) if name in PATH_OPTIONS else str(item) for item in value)
            else:
                text = f'"{value}"' if name == "hparams" else portable(value) if name in PATH_OPTIONS else str(value)
            parts += [f"--{name.replace('_', '-')}", text]
    return " ".join(parts)


def _train(args):
    from deepbeat.errors import DeepBeatError

    if not args.run_dir:
        raise DeepBeatError("--run-dir is required: the run folder to create or resume")
    command = command_line(args, ("data", "run_dir", "hparams", "num_training_steps", "num_eval_batches", "seed",
                                  "eval_every", "early_stop", "max_minutes", "strategy", "save_weights"))
    with tensorflow_output(args.verbose):
        import tensorflow as tf

        from .runs import copy_trained
        from .trainer import TrainingOptions, train

        print(_devices(tf.config.list_physical_devices("GPU"), args.verbose))
        state = train(TrainingOptions(
            command=command,
            data_dir=args.data, run_dir=args.run_dir, hparams_text=args.hparams, num_steps=args.num_training_steps,
            seed=args.seed, strategy=args.strategy, eval_every=args.eval_every, patience=args.early_stop,
            num_eval_batches=args.num_eval_batches, max_minutes=args.max_minutes,
        ))
        if args.save_weights:
            copy_trained(args.run_dir, args.save_weights, {"training": state, "export_command": command})
            print(f"wrote {args.save_weights}")


def _devices(gpus, verbose):
    """One line on where training runs, since TensorFlow's own device messages are held back."""
    if gpus:
        return f"training on {len(gpus)} GPU{'s' * (len(gpus) > 1)} ({', '.join(gpu.name for gpu in gpus)})"
    return "training on the CPU: TensorFlow sees no GPU" + ("" if verbose else " (--verbose shows its messages)")


def _eval(args):
    from deepbeat.errors import DeepBeatError

    if not (args.model or args.run_dir):
        raise DeepBeatError("give --run-dir RUN or --model NAME.weights.h5 to evaluate")
    command = command_line(args, ("data", "run_dir", "model", "split", "num_eval_batches", "generate_bars", "out",
                                  "musical", "continuations", "compare"))
    if _is_onnx(args.model):
        if not args.musical:
            raise DeepBeatError(f"--model {args.model}: an exported model has no Keras weights for perplexity; "
                                "add --musical for the musical evaluation, or give NAME.weights.h5")
        from deepbeat.runtime.evaluation import run_musical_evaluation

        run_musical_evaluation(args.model, args.data, args.split or "validation", args.continuations, args.out)
        return
    with tensorflow_output(args.verbose):
        from .evaluate import run_evaluation

        run_evaluation(args, command)


def _bench(args):
    from deepbeat.benchresults import check_results_path

    check_results_path(args.out)  # before minutes of measuring
    with tensorflow_output(args.verbose):
        from .benchmark import run_benchmark

        run_benchmark(args)
