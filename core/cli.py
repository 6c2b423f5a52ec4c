"""The `deepbeat` command: one subcommand per stage, each registered by its own module."""
import argparse
import copy
import importlib
import importlib.util
import sys

from . import __version__
from .errors import DeepBeatError

# Modules that register subcommands; none imports TensorFlow or ONNX Runtime at import time.
# The core imports no stage: each stage's commands are found here by name, at run time (the one
# exception to the downward-only imports, checked by tests/test_layers.py).
COMMAND_MODULES = (
    "deepbeat.commands",  # data, grid
    "deepbeat.training.commands",  # train, eval, bench train
    "deepbeat.export.commands",  # export, bench generate
    "deepbeat.runtime.commands",  # generate
    "deepbeat.bridge.live_commands",  # bridge, ports, bench bridge
    "deepbeat.web.commands",  # studio
)


# A command that needs more than the runtime install names the modules in set_defaults(needs=...), or
# gives a function of its parsed arguments that names them; every one comes with this extra ([train]).
EXTRA_INSTALL = 'pip install "deepbeat[train]"'


class UsageError(Exception):
    """A command line that does not parse; the message is argparse's, naming the option."""

    def __init__(self, prog, message):
        super().__init__(message)
        self.prog = prog


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad command line in one line (no usage block) and lets main exit.

    A subcommand's parser may set `handover`: a function of what it parsed that returns another parser
    to parse the same command line instead, or None (the seed's --modo_trabajo switches train and eval).
    """

    handover = None

    def error(self, message):
        raise UsageError(self.prog, message)

    def parse_known_args(self, args=None, namespace=None):
        parsed, unknown = super().parse_known_args(args, copy.copy(namespace))
        other = self.handover and self.handover(parsed)
        return other.parse_known_args(args, namespace) if other else (parsed, unknown)


def build_parser():
    parser = OneLineParser(
        prog="deepbeat",
        description="DeepBeat: an LSTM drum sketcher that continues the bar you play, offline or live over MIDI.",
    )
    parser.add_argument("--version", action="version", version=f"deepbeat {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    bench = subparsers.add_parser(
        "bench", help="run a benchmark and write its figures to a results file",
        description="Benchmarks print their figures and write them as JSON: to --output FILE, by default "
        "deepbeat-bench/NAME.json in the working folder.",
    )
    benchmarks = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, benchmarks)
    return parser


def _installed(module):
    """Whether a top-level module can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module entry without a spec
        return False


def main(argv=None):
    """Run one subcommand; bad input ends in one line on stderr and a non-zero exit code."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # named by the subcommand they were given to, not by the top-level parser
            raise UsageError(f"deepbeat {args.command}", f"unrecognized arguments: {' '.join(unknown)}")
    except UsageError as error:
        print(f"{error.prog}: error: {error} (see {error.prog} --help)", file=sys.stderr)
        return 2
    needs = getattr(args, "needs", ())
    missing = [name for name in (needs(args) if callable(needs) else needs) if not _installed(name)]
    if missing:
        print(f"deepbeat {args.command}: error: needs {', '.join(missing)}, which this install lacks; "
              f"install the training extra: {EXTRA_INSTALL}", file=sys.stderr)
        return 2
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
