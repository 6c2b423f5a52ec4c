"""The `deepbeat` command: one subcommand per stage, each registered by its own module."""
import argparse
import importlib
import sys

from . import __version__
from .errors import DeepBeatError

# Modules that register subcommands; none imports TensorFlow or ONNX Runtime at import time.
COMMAND_MODULES = (
    "deepbeat.commands",  # data, grid
    "deepbeat.training.commands",  # train, eval, bench train
    "deepbeat.export.commands",  # export, bench generate
    "deepbeat.bridge.commands",  # generate
    "deepbeat.bridge.live_commands",  # bridge, ports, bench bridge
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="deepbeat",
        description="DeepBeat: an LSTM drum sketcher that continues the bar you play, offline or live over MIDI.",
    )
    parser.add_argument("--version", action="version", version=f"deepbeat {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    bench = subparsers.add_parser(
        "bench", help="run a benchmark and write its figures to a results file",
        description="Benchmarks print their figures and write them as JSON (default under docs/benchmarks/).",
    )
    benchmarks = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, benchmarks)
    return parser


def main(argv=None):
    """Run one subcommand; bad input ends in one line on stderr and a non-zero exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except DeepBeatError as error:
        message = " ".join(str(error).splitlines())  # one line even if a wrapped library message had more
        print(f"deepbeat {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"deepbeat {args.command}: interrupted", file=sys.stderr)
        return 130
