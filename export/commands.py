"""`deepbeat export` and `deepbeat bench generate` (TensorFlow is imported only when they run)."""
from pathlib import Path

from deepbeat.errors import DeepBeatError
from deepbeat.options import add_results_option, count
from deepbeat.training.commands import add_verbose_option
from deepbeat.training.tfoutput import tensorflow_output

NEEDS = ("tensorflow", "tf2onnx", "onnx")  # beyond the runtime install (see deepbeat.cli)


def _add_source(parser, required):
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--run-dir", "--run_dir", dest="run_dir", help="training run folder (uses its best weights)")
    source.add_argument("--weights", help="NAME.weights.h5 file with NAME.json beside it")
    parser.add_argument("--data", help="prepared data folder ('deepbeat data prepare --out'); parity runs on its "
                        "test split (validation if short). Without it, parity runs on sequences sampled from the model")


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "export",
        help="export a trained model to a streaming single-step ONNX file",
        description="Rebuild the trained model as a single-step graph (step features and LSTM state in, "
        "class and velocity logits and new state out), convert it to ONNX (opset 17) with its settings "
        "in the file's metadata, and write it only if its logits match the Keras model's within 1e-4 "
        "over 32 held-out sequences run step by step.",
    )
    _add_source(p, required=True)
    p.add_argument("--output", help="ONNX file to write (default: RUN/model.onnx, or NAME.onnx beside the weights)")
    p.add_argument("--verify", metavar="FILE", help="re-check an exported FILE against the model instead of exporting")
    add_verbose_option(p)
    p.set_defaults(run=_export, command="export", needs=NEEDS)

    b = benchmarks.add_parser(
        "generate",
        help="step latency and generation speed: ONNX Runtime vs TensorFlow",
        description="In one run on one model: batch-1 step latency (ONNX Runtime vs a TensorFlow "
        "tf.function), time per bar of 16 sampled steps, and 5 x 128-step generation in ORT vs TF. "
        "Goals: ORT at least 8x faster per step, a bar in at most 2.5 ms. Without --run-dir or "
        "--weights it measures the shipped model's weights (deepbeat/models/default.weights.h5).",
    )
    _add_source(b, required=False)
    add_results_option(b, "generate")
    b.add_argument("--repeats", type=count(80), default=2000,
                   help="timed steps per latency figure, at least 80 (default 2000)")
    add_verbose_option(b)
    b.set_defaults(run=_bench, command="bench generate", needs=NEEDS)


def _model_source(args):
    """The run folder or weights file to load; the benchmark defaults to the shipped weights."""
    if args.run_dir or args.weights:
        return args.run_dir or args.weights
    from .benchmark import default_weights

    return default_weights()


def _trained(args):
    from deepbeat.training.runs import load_trained

    return load_trained(_model_source(args))


def _default_output(args):
    from deepbeat.runtime.stepmodel import run_model_path
    from deepbeat.training.runs import beside_weights

    return run_model_path(args.run_dir) if args.run_dir else beside_weights(args.weights, ".onnx")


def _export(args):
    with tensorflow_output(args.verbose):
        from .exporter import export, verify

        trained = _trained(args)
        if args.verify:
            report = verify(trained, args.verify, args.data)
            print(report.summary())
            if not report.passed:
                raise DeepBeatError(f"{args.verify}: fails parity: logits differ by up to {report.max_diff:.3g}")
            print(f"{args.verify}: OK")
            return
        output = Path(args.output or _default_output(args))
        report = export(trained, output, args.data)
    print(report.summary())
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KiB)")


def _bench(args):
    from deepbeat.benchresults import check_results_path
    from deepbeat.paths import portable

    check_results_path(args.out)  # before minutes of measuring
    with tensorflow_output(args.verbose):
        from .benchmark import run_benchmark

        run_benchmark(_trained(args), portable(_model_source(args)), args.out, repeats=args.repeats,
                      data_dir=args.data)
