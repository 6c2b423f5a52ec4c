"""`deepbeat generate`, and the steering options it shares with `deepbeat bridge`.

Runs on onnxruntime alone; TensorFlow is never imported here.
"""
import dataclasses
import os
import sys

from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.options import bpm, count, ranged

from .steering import TEMPERATURE, TOP_P, Steering

# Magenta's drums_rnn_generate starts from one bass drum hit when no primer is given.
DEFAULT_PRIMER = "[(36,)]"
DEFAULT_NUM_STEPS = 128  # Magenta's default: 8 bars, primer included
# Offline generate may take two cores: they halve the step time (docs/benchmarks/generate.json, a 2-core machine).
DEFAULT_THREADS = min(2, os.cpu_count() or 1)


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "generate",
        help="continue a primer beat with the model and write MIDI files",
        description="Continue a primer (a pitch-tuple list, a MIDI file or step text) with an exported "
        "model, writing one MIDI file per output (primer + continuation, tempo set, velocities from "
        "the model) and printing each as a drum grid. Without --model it uses the shipped model. "
        "The primer's first step is taken to be on a bar line. Files are never overwritten.",
    )
    primer = p.add_mutually_exclusive_group()
    primer.add_argument("--primer-drums", "--primer_drums", dest="primer_drums", metavar="TEXT",
                        help=f'MIDI pitches per step, Magenta style, e.g. "[(36,),(),(36,42)]" '
                        f'(default {DEFAULT_PRIMER})')
    primer.add_argument("--primer-midi", "--primer_midi", dest="primer_midi", metavar="FILE",
                        help="MIDI file whose first 4/4 drum bars are the primer")
    primer.add_argument("--primer-grid", "--primer_grid", dest="primer_grid", metavar="TEXT",
                        help='step text, e.g. "kick: x...x...; snare: ....x..." (a printed grid reads back)')
    p.add_argument("--primer-bars", "--primer_bars", dest="primer_bars", type=count(1), default=1,
                   help="bars taken from --primer-midi (default 1)")
    p.add_argument("--num-outputs", "--num_outputs", dest="num_outputs", type=count(1), default=1,
                   help="variations to generate, together in one batch (default 1)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--bars", type=count(1),
                        help="bars to generate after the primer (the primer's last bar is completed first)")
    length.add_argument("--num-steps", "--num_steps", dest="num_steps", type=count(2),
                        help=f"Magenta's length: 16th steps of each output, primer included "
                        f"(default {DEFAULT_NUM_STEPS} = 8 bars)")
    add_steering_arguments(p)
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same beats")
    p.add_argument("--beam-size", "--beam_size", dest="beam_size", type=count(1), default=1,
                   help="beam search: sequences kept per iteration (default 1: plain sampling)")
    p.add_argument("--branch-factor", "--branch_factor", dest="branch_factor", type=count(1), default=1,
                   help="beam search: branches grown from each kept sequence (default 1)")
    p.add_argument("--steps-per-iteration", "--steps_per_iteration", dest="steps_per_iteration", type=count(1),
                   default=1, help="beam search: steps between prunings (default 1)")
    p.add_argument("--bpm", "--qpm", dest="bpm", type=bpm,
                   help="tempo in BPM, 20-400 (default: the primer MIDI's, else 120); --qpm is Magenta's name")
    p.add_argument("--quantize", action="store_true",
                   help="write every hit exactly on its 16th (default: each hit keeps the model's timing, and a MIDI "
                   "primer its own)")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", default="generated",
                   help="folder for the MIDI files (default ./generated)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    model.add_argument("--run-dir", "--run_dir", dest="run_dir",
                       help="training run folder holding an exported model ('deepbeat export --run-dir RUN')")
    p.add_argument("--threads", type=count(1), default=DEFAULT_THREADS,
                   help="CPU threads for the model (default: 2, or 1 on a one-core machine)")
    p.add_argument("--note-map", "--note_map", dest="note_map", default="gm",
                   help="notes to read the primer and write drums with: gm, mpc-legacy, mpc-chromatic, "
                   "drum-rack or a JSON file (default gm)")
    p.set_defaults(run=_generate, command="generate")


def add_steering_arguments(parser):
    """The options `generate` and `bridge` share: how to sample and the style."""
    parser.add_argument("--temperature", type=ranged(TEMPERATURE), default=TEMPERATURE.default,
                        help=f"sampling temperature {TEMPERATURE.low:g}-{TEMPERATURE.high:g}: above 1 wilder, "
                        "below 1 safer, 0 always the likeliest step (default 1)")
    parser.add_argument("--top-k", "--top_k", dest="top_k", type=count(0), default=0,
                        help="sample only among the k likeliest steps (default 0: all)")
    parser.add_argument("--top-p", "--top_p", dest="top_p", type=ranged(TOP_P), default=TOP_P.default,
                        help="sample only among the likeliest steps holding this share of the probability, "
                        f"{TOP_P.expected} (default 1: all)")
    parser.add_argument("--style", default="any",
                        help="style to condition on (default any); the shipped model knows: "
                        + ", ".join(shipped_styles()))


def shipped_styles():
    """The styles the shipped model was trained on, read from its metadata file without loading it."""
    import json

    from .stepmodel import default_model_path

    try:
        return json.loads(default_model_path().with_suffix(".json").read_text())["encoding"]["styles"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["any"]


def steering_from_args(args):
    """The Steering the options of add_steering_arguments ask for (the style is checked against the model later)."""
    return Steering(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, style=args.style)


def _model_path(args):
    from .stepmodel import run_model_path

    if not args.run_dir:
        return args.model
    path = run_model_path(args.run_dir)
    if not path.is_file():
        raise ModelFileError(
            f"--run-dir {args.run_dir}: no exported {path.name}; run 'deepbeat export --run-dir "
            f"{args.run_dir}' first, or pass --model FILE"
        )
    return path


def _primer(args, note_map):
    from deepbeat.primer import parse_primer_drums, parse_step_text, primer_from_midi

    if args.primer_midi is not None:
        primer, dropped = primer_from_midi(args.primer_midi, args.primer_bars, pitches=note_map.inputs)
        if dropped:
            notes = ", ".join(f"{pitch} (x{n})" for pitch, n in sorted(dropped.items()))
            _note(f"primer: left out notes the {note_map.name} note map has no drum for: {notes}")
        return primer
    if args.primer_grid is not None:
        return parse_step_text(args.primer_grid)
    return parse_primer_drums(args.primer_drums or DEFAULT_PRIMER, pitches=note_map.inputs)


def _note(text):
    """A one-line note on stderr: worth knowing, not an error (stdout keeps only the files and their grids)."""
    print(f"deepbeat generate: note: {text}", file=sys.stderr)


def _new_steps(args, primer):
    """Steps to generate after the primer: to the end of its last bar and --bars more, or up to --num-steps in all."""
    if args.bars is not None:
        return (primer.num_bars + args.bars) * STEPS_PER_BAR - primer.num_steps
    total = args.num_steps or DEFAULT_NUM_STEPS
    if primer.num_steps >= total:
        raise DeepBeatError(
            f"--num-steps {total}: the primer already has {primer.num_steps} steps and --num-steps counts them; "
            "ask for more, or give --bars for the length after the primer"
        )
    return total - primer.num_steps


def _generate(args):
    from deepbeat.notemaps import load_note_map

    from .generate import BeamOptions, continue_primer, write_beats
    from .stepmodel import StepModel

    steering = steering_from_args(args)
    beam = BeamOptions(args.beam_size, args.branch_factor, args.steps_per_iteration)
    note_map = load_note_map(args.note_map)
    model = StepModel.load(_model_path(args), threads=args.threads)
    try:
        model.encoding.style_id(steering.style)
    except ValueError as error:
        raise DeepBeatError(f"--style: {error}") from None
    primer = _primer(args, note_map)
    primer = dataclasses.replace(primer, bpm=args.bpm or primer.bpm)
    new_steps = _new_steps(args, primer)
    if not args.quantize and not model.encoding.offset_bins:
        _note(f"{model.path}: a format-{model.metadata.format_version} model without a timing head; "
              "its hits sit on the grid")
    beats = continue_primer(model, primer, new_steps, steering, num_outputs=args.num_outputs, seed=args.seed,
                            beam=beam)
    for path, beat in zip(write_beats(beats, args.output_dir, note_map, micro_timing=not args.quantize), beats):
        print(f"{path}: {beat.num_bars} bars at {beat.bpm:g} BPM, style {steering.style} "
              f"(primer {primer.num_steps} step{'s' * (primer.num_steps != 1)}, then {new_steps} generated)")
        print(beat.to_text())
        print()
