"""`deepbeat generate`, and the steering options it shares with `deepbeat bridge`.

Runs on onnxruntime alone; TensorFlow is never imported here.
"""
import dataclasses
import os
import sys

from deepbeat.errors import DeepBeatError, ModelFileError
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.options import add_results_option, bpm, checked, count, ranged

from .steering import (
    DENSITY, HUMANIZE, LOCK_GROUPS, PRESETS, STYLE_STRENGTH, SWING, SWING_UNITS, TEMPERATURE, TOP_P, VARIATION,
    Feel, FillPlan, Groove, Steering, parse_locks,
)

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

    b = benchmarks.add_parser(
        "steering", help="each steering control swept against the figure it moves; bar time with all on",
        description="On one model (default: the shipped one) and the first bars of a prepared split's beat files: "
        "variation against adherence, style strength against the ride's share after a kick-and-snare skeleton, "
        "density against onsets per bar, fills against the fill-like share, swing as measured where notes are "
        "placed, humanize against the mean offset, each beside the real figure; and the time to generate a bar "
        "with every control on. Prints tables and writes JSON.",
    )
    b.add_argument("--data", required=True, help="prepared data folder ('deepbeat data prepare --out')")
    b.add_argument("--split", choices=("validation", "test"), default="validation", help="split (default validation)")
    b.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    b.add_argument("--continuations", type=count(1), default=2, help="continuations per primer and value (default 2)")
    add_results_option(b, "steering")
    b.set_defaults(run=_bench_steering, command="bench steering")


def add_steering_arguments(parser, groove_source="primer"):
    """The options `generate` and `bridge` share: how to sample (Steering) and how hits are placed (Feel).

    Every one defaults to None, so that options given beside --preset override it."""
    group = parser.add_argument_group("steering (each overrides --preset)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="named settings: " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()))
    group.add_argument("--temperature", type=ranged(TEMPERATURE),
                       help=f"sampling temperature {TEMPERATURE.expected}: above 1 wilder, below 1 safer, "
                       "0 always the likeliest step (default 1)")
    group.add_argument("--top-k", "--top_k", dest="top_k", type=count(0),
                       help="sample only among the k likeliest steps (default 0: all)")
    group.add_argument("--top-p", "--top_p", dest="top_p", type=ranged(TOP_P),
                       help="sample only among the likeliest steps holding this share of the probability, "
                       f"{TOP_P.expected} (default 1: all)")
    group.add_argument("--style", help="style to condition on (default any); the shipped model knows: "
                       + ", ".join(shipped_styles()))
    group.add_argument("--style-strength", type=ranged(STYLE_STRENGTH),
                       help=f"how strongly to follow --style, {STYLE_STRENGTH.expected}: 0 ignores it, 1 as trained, "
                       f"more leans further in (default {STYLE_STRENGTH.default:g})")
    group.add_argument("--variation", type=ranged(VARIATION),
                       help=f"{VARIATION.expected}: 0 stays with the figure last heard (small changes only), "
                       f"1 lets the model run free (default {VARIATION.default:g})")
    group.add_argument("--density", type=ranged(DENSITY),
                       help=f"{DENSITY.expected}: fewer (-1) or more (+1) hits (default 0)")
    group.add_argument("--lock", type=checked(parse_locks, "lock"),
                       help="drums kept exactly as last heard, the rest generated: drum classes or groups ("
                       + ", ".join(LOCK_GROUPS) + "), e.g. kick,snare (default none)")
    group.add_argument("--fills", type=checked(FillPlan.parse, "fills"),
                       help="off, phrase (the last bar of each 4-bar phrase) or every:N bars (default off)")
    group.add_argument("--swing", type=ranged(SWING),
                       help=f"MPC swing in %%, {SWING.expected}: 50 straight, 66 triplet feel (default 50)")
    group.add_argument("--swing-unit", type=int, choices=SWING_UNITS, help="swing 16ths or 8ths (default 16)")
    group.add_argument("--humanize", type=ranged(HUMANIZE),
                       help=f"{HUMANIZE.expected}: how much of the model's own timing is played, 0 on the grid "
                       "(default 1)")
    group.add_argument("--groove", choices=("none", groove_source),
                       help=f"{groove_source}: play the {groove_source}'s own timing and accents per position "
                       "(the MPC's groove quantize) instead of the model's timing (default none)")


_STEERING_OPTIONS = ("temperature", "top_k", "top_p", "style", "style_strength", "variation", "density", "locks",
                     "fills")
_FEEL_OPTIONS = ("swing", "swing_unit", "humanize")


def steering_from_args(args):
    """(Steering, Feel) the options of add_steering_arguments ask for: the preset's values, then every
    option given. The style is checked against the model later; a groove is taken from the primer later."""
    steering, feel = Steering(), Feel()
    if args.preset:
        steering, feel = PRESETS[args.preset].apply(steering, feel)
    given = {name: getattr(args, "lock" if name == "locks" else name) for name in _STEERING_OPTIONS}
    steering = steering.with_changes(**{name: value for name, value in given.items() if value is not None})
    feel = dataclasses.replace(feel, **{name: getattr(args, name) for name in _FEEL_OPTIONS
                                        if getattr(args, name) is not None})
    return steering, feel


def model_limits(model, steering, feel):
    """One line per control the model cannot follow (format-1 models have no fill label, no timing head)."""
    limits = []
    if steering.fills != FillPlan() and not model.encoding.labels:
        limits.append(f"{model.path}: no fill label (a format-{model.metadata.format_version} model), so fills "
                      "has no effect: every bar is a beat")
    if feel.humanize and feel.groove is None and not model.encoding.offset_bins:
        limits.append(f"{model.path}: no timing head (a format-{model.metadata.format_version} model), so "
                      "humanize has no effect: its hits sit on the grid")
    return limits


def shipped_styles():
    """The styles the shipped model was trained on, read from its metadata file without loading it."""
    import json

    from .stepmodel import default_model_path

    try:
        return json.loads(default_model_path().with_suffix(".json").read_text())["encoding"]["styles"]
    except (OSError, ValueError, KeyError, TypeError):
        return ["any"]


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

    steering, feel = steering_from_args(args)
    beam = BeamOptions(args.beam_size, args.branch_factor, args.steps_per_iteration)
    note_map = load_note_map(args.note_map)
    model = StepModel.load(_model_path(args), threads=args.threads)
    try:
        model.encoding.style_id(steering.style)
    except ValueError as error:
        raise DeepBeatError(f"--style: {error}") from None
    primer = _primer(args, note_map)
    primer = dataclasses.replace(primer, bpm=args.bpm or primer.bpm)
    if args.groove == "primer":
        feel = dataclasses.replace(feel, groove=Groove.of(primer))
    new_steps = _new_steps(args, primer)
    for limit in model_limits(model, steering, dataclasses.replace(feel, humanize=0) if args.quantize else feel):
        _note(limit)
    beats = continue_primer(model, primer, new_steps, steering, num_outputs=args.num_outputs, seed=args.seed,
                            beam=beam)
    written = write_beats(beats, args.output_dir, note_map, primer.num_steps, feel, args.quantize)
    for path, beat in zip(written, beats):
        print(f"{path}: {beat.num_bars} bars at {beat.bpm:g} BPM, style {steering.style} "
              f"(primer {primer.num_steps} step{'s' * (primer.num_steps != 1)}, then {new_steps} generated)")
        print(beat.to_text())
        print()


def _bench_steering(args):
    from deepbeat.benchresults import check_results_path, write_results

    from .sweeps import run_sweeps

    check_results_path(args.out)
    write_results(args.out, run_sweeps(args.model, args.data, args.split, args.continuations))
