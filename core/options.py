"""Argument types shared by the commands: each turns a flag's text into a checked value, or
says in one line what was expected (argparse names the flag in front of it)."""
import argparse
from pathlib import Path

from .benchresults import default_results_path
from .errors import DeepBeatError
from .tempo import check_bpm


def count(minimum=1):
    """An int type accepting whole numbers of at least `minimum`."""
    def convert(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}; expected at least {minimum}")
        return value

    convert.__name__ = "count"
    return convert


def checked(check, name):
    """A type from a checking function that returns the value or raises DeepBeatError."""
    def convert(text):
        try:
            return check(text)
        except DeepBeatError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


def ranged(setting):
    """A float type for a setting with a `check` method and a `name` (e.g. a steering Range)."""
    return checked(setting.check, setting.name)


bpm = checked(check_bpm, "bpm")


def add_results_option(parser, name):
    """--output FILE (also --out): where benchmark `name` writes its results JSON, as `args.out`."""
    default = default_results_path(name)
    parser.add_argument("--output", "--out", dest="out", type=Path, default=default, metavar="FILE",
                        help=f"results JSON (default {default} in the working folder)")
