"""`deepbeat train`, `deepbeat eval` and `deepbeat bench train` (TensorFlow is imported only when they run).

The seed's flags are accepted as aliases: --run_dir, --SE (sequence example / data folder),
--modo_trabajo train|eval, --num_training_steps, --num_eval_batches, --hparams.
"""
import os

MODES = ("train", "eval")


def register(subparsers, benchmarks):
    for mode in MODES:
        _add_command(subparsers, mode)
    p = benchmarks.add_parser(
        "train", help="timesteps/s of deepbeat's training step vs a naive one-hot Keras model.fit",
        description="Time the training step `deepbeat train` uses (embedding input, tf.data windows) and a "
        "naive one-hot Keras model.fit with the same layer sizes, in one run; print both and the ratio, "
        "and write them as JSON.",
    )
    p.add_argument("--data", default=None, help="prepared data folder (default: synthetic grooves)")
    p.add_argument("--hparams", default="", help="hparams for both models, e.g. \"rnn_layer_sizes=[256,256]\"")
    p.add_argument("--batches", type=int, default=12, help="timed training batches per method (default 12)")
    p.add_argument("--out", default="docs/benchmarks/train.json",
                   help="results file (default docs/benchmarks/train.json)")
    p.set_defaults(run=_bench, command="bench train")


def _add_command(subparsers, mode):
    if mode == "train":
        p = subparsers.add_parser(
            "train", help="train the drum LSTM on prepared data (resumes a run folder)",
            description="Train the drum language model on DATA/train.npz in shuffled bar-aligned windows, "
            "validating on DATA/validation.npz over whole sequences. RUN_DIR/train holds checkpoints "
            "(resumed from the latest) and TensorBoard scalars (RUN_DIR/validation for validation); "
            "RUN_DIR/best.weights.h5 + best.json keep the weights with the lowest validation loss. "
            "A non-finite loss stops training with exit 2 and keeps the last good checkpoint. "
            "Multi-worker: set TF_CONFIG on every worker and pass --strategy multiworker.",
        )
    else:
        p = subparsers.add_parser(
            "eval", help="evaluate a trained model and the baselines; table, JSON and Markdown",
            description="Evaluate a run folder (its best weights) or a NAME.weights.h5 file on one split over "
            "whole sequences, next to the baselines (uniform, unigram, position n-gram, bar-aware n-gram, "
            "repeat-previous-bar) fit on DATA/train.npz, for all styles and for hiphop. Prints a table and "
            "writes JSON + Markdown.",
        )
    p.add_argument("--data", "--SE", dest="data", required=True,
                   help="prepared data folder (from 'deepbeat data prepare')")
    p.add_argument("--run-dir", "--run_dir", dest="run_dir", required=mode == "train",
                   help="run folder (created or resumed)" if mode == "train"
                   else "run folder to evaluate (its best weights)")
    p.add_argument("--hparams", default=None,
                   help="train: overrides like \"batch_size=64,rnn_layer_sizes=[256,256]\" (default: the resumed "
                   "run's, else the seed's); eval uses the model's own")
    p.add_argument("--modo_trabajo", choices=MODES, default=mode,
                   help=f"seed alias: 'train' or 'eval' runs that command with these options (default {mode})")
    p.add_argument("--num-eval-batches", "--num_eval_batches", dest="num_eval_batches", type=int, default=None,
                   help="limit each validation/eval pass to this many batches of 16 sequences (default: all)")
    training = p.add_argument_group("training (train, or --modo_trabajo train)")
    training.add_argument("--num-training-steps", "--num_training_steps", dest="num_training_steps", type=int,
                          default=20000, help="total training steps (batches) of the run (default 20000)")
    training.add_argument("--seed", type=int, default=None,
                          help="fix the random seed (weights, shuffling, style hiding)")
    training.add_argument("--eval-every", type=int, default=250,
                          help="validate, checkpoint and log every N steps (default 250)")
    training.add_argument("--early-stop", type=int, default=0, metavar="N",
                          help="stop after N validations without a better validation loss (default 0: never)")
    training.add_argument("--max-minutes", type=float, default=None,
                          help="wall-clock budget: validate, checkpoint and stop once it is used up")
    training.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                          help="tf.distribute strategy: default (one device), mirrored (all local GPUs, or the CPU), "
                          "multiworker (cluster from TF_CONFIG, see training/README.md)")
    training.add_argument("--save-weights", metavar="FILE.weights.h5",
                          help="after training, copy the best weights to FILE.weights.h5 and their config to FILE.json "
                          "(the trained-model pair 'deepbeat eval --model' and 'deepbeat export' read)")
    evaluation = p.add_argument_group("evaluation (eval, or --modo_trabajo eval)")
    evaluation.add_argument("--model", metavar="FILE.weights.h5",
                            help="evaluate this trained-model file (FILE.json beside it) instead of --run-dir")
    evaluation.add_argument("--split", choices=("train", "validation", "test"), default="test",
                            help="split to evaluate (default test)")
    evaluation.add_argument("--out", help="report path stem; writes OUT.json and OUT.md (default RUN_DIR/eval-SPLIT, "
                            "or NAME-eval beside --model)")
    evaluation.add_argument("--generate-bars", type=int, default=256,
                            help="bars to sample for the generated-velocity statistics (default 256; 0 skips)")
    p.set_defaults(run=_dispatch, command=mode)


PATH_OPTIONS = {"data", "run_dir", "save_weights", "model", "out"}


def command_line(args, names):
    """The canonical `deepbeat <command> ...` line of parsed arguments (options left at None are omitted),
    its paths written without the machine's own folders."""
    from deepbeat.paths import portable

    parts = ["deepbeat", args.modo_trabajo]
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            text = f'"{value}"' if name == "hparams" else portable(value) if name in PATH_OPTIONS else str(value)
            parts += [f"--{name.replace('_', '-')}", text]
    return " ".join(parts)


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _dispatch(args):
    args.command = args.modo_trabajo
    _quiet_tensorflow()
    return _train(args) if args.modo_trabajo == "train" else _eval(args)


def _train(args):
    from deepbeat.errors import DeepBeatError

    from .runs import copy_trained
    from .trainer import TrainingOptions, train

    if not args.run_dir:
        raise DeepBeatError("--run-dir is required for training")
    if args.num_training_steps <= 0 or args.eval_every <= 0:
        raise DeepBeatError("--num-training-steps and --eval-every must be positive")
    command = command_line(args, ("data", "run_dir", "hparams", "num_training_steps", "num_eval_batches", "seed",
                                  "eval_every", "early_stop", "max_minutes", "strategy", "save_weights"))
    state = train(TrainingOptions(
        command=command,
        data_dir=args.data, run_dir=args.run_dir, hparams_text=args.hparams, num_steps=args.num_training_steps,
        seed=args.seed, strategy=args.strategy, eval_every=args.eval_every, patience=args.early_stop,
        num_eval_batches=args.num_eval_batches, max_minutes=args.max_minutes,
    ))
    if args.save_weights:
        copy_trained(args.run_dir, args.save_weights, {"training": state, "export_command": command})
        print(f"wrote {args.save_weights}")


def _eval(args):
    from deepbeat.errors import DeepBeatError

    from .evaluate import run_evaluation

    if not (args.model or args.run_dir):
        raise DeepBeatError("give --run-dir RUN or --model NAME.weights.h5 to evaluate")
    run_evaluation(args, command_line(
        args, ("data", "run_dir", "model", "split", "num_eval_batches", "generate_bars", "out")))


def _bench(args):
    _quiet_tensorflow()
    from .benchmark import run_benchmark

    run_benchmark(args)
