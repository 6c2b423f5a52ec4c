"""`deepbeat generate`: continue a primer with an exported step model, write MIDI, print grids.

Runs on onnxruntime alone; TensorFlow is never imported here.
"""
import dataclasses
import os
import time
from pathlib import Path

from deepbeat.errors import DeepBeatError, ModelFileError, PrimerError

# Magenta's drums_rnn_generate starts from one bass drum hit when no primer is given.
DEFAULT_PRIMER = "[(36,)]"
# Offline generate may take two cores: they halve the step time (docs/benchmarks/generate.json, a 2-core machine).
DEFAULT_THREADS = min(2, os.cpu_count() or 1)


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "generate",
        help="continue a primer beat with the model and write MIDI files",
        description="Continue a primer (a pitch-tuple list, a MIDI file or step text) with an exported "
        "model, writing one MIDI file per output (primer + continuation, tempo set, velocities from "
        "the model) and printing each as a drum grid. Without --model it uses the shipped model. "
        "The primer's first step is taken to be on a bar line.",
    )
    primer = p.add_mutually_exclusive_group()
    primer.add_argument("--primer-drums", "--primer_drums", dest="primer_drums", metavar="TEXT",
                        help=f'MIDI pitches per step, Magenta style, e.g. "[(36,),(),(36,42)]" '
                        f'(default {DEFAULT_PRIMER})')
    primer.add_argument("--primer-midi", "--primer_midi", dest="primer_midi", metavar="FILE",
                        help="MIDI file whose first 4/4 drum bars are the primer")
    primer.add_argument("--primer-grid", "--primer_grid", dest="primer_grid", metavar="TEXT",
                        help='step text, e.g. "kick: x...x...; snare: ....x..." (a printed grid reads back)')
    p.add_argument("--primer-bars", "--primer_bars", dest="primer_bars", type=int, default=1,
                   help="bars taken from --primer-midi (default 1)")
    p.add_argument("--num-outputs", "--num_outputs", dest="num_outputs", type=int, default=1,
                   help="variations to generate, together in one batch (default 1)")
    p.add_argument("--num-steps", "--num_steps", dest="num_steps", type=int, default=128,
                   help="length of each output in 16th steps, primer included (default 128 = 8 bars)")
    add_sampling_arguments(p)
    p.add_argument("--beam-size", "--beam_size", dest="beam_size", type=int, default=1,
                   help="beam search: sequences kept per iteration (default 1: plain sampling)")
    p.add_argument("--branch-factor", "--branch_factor", dest="branch_factor", type=int, default=1,
                   help="beam search: branches grown from each kept sequence (default 1)")
    p.add_argument("--steps-per-iteration", "--steps_per_iteration", dest="steps_per_iteration", type=int, default=1,
                   help="beam search: steps between prunings (default 1)")
    p.add_argument("--qpm", type=float, help="tempo in quarter notes per minute (default: the primer MIDI's, else 120)")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", default="generated",
                   help="folder for the MIDI files (default ./generated)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    model.add_argument("--run-dir", "--run_dir", dest="run_dir",
                       help="training run folder holding an exported model ('deepbeat export --run-dir RUN')")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                   help="CPU threads for the model (default: 2, or 1 on a one-core machine)")
    p.add_argument("--note-map", "--note_map", dest="note_map", default="gm",
                   help="notes to read the primer and write drums with: gm, mpc-legacy, mpc-chromatic, "
                   "drum-rack or a JSON file (default gm)")
    p.set_defaults(run=_generate, command="generate")


def add_sampling_arguments(parser):
    """The sampling options `generate` and `bridge` share: temperature, top-k, top-p, seed, style."""
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature: above 1 wilder, below 1 safer, 0 always the likeliest (default 1)")
    parser.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=0,
                        help="sample only among the k likeliest steps (default 0: all)")
    parser.add_argument("--top-p", "--top_p", dest="top_p", type=float, default=1.0,
                        help="sample only among the likeliest steps holding this probability (default 1: all)")
    parser.add_argument("--seed", type=int, help="random seed: the same seed gives the same beats")
    parser.add_argument("--style", default="any", help="style to condition on, e.g. hiphop, funk, rock (default any)")


def sampling_options(args):
    """DrumSampler keyword arguments from the options of add_sampling_arguments."""
    return dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed, style=args.style)


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

    if args.primer_midi:
        if args.primer_bars < 1:
            raise PrimerError(f"--primer-bars is {args.primer_bars}; expected at least 1")
        return primer_from_midi(args.primer_midi, args.primer_bars, pitches=note_map.inputs)
    if args.primer_grid:
        return parse_step_text(args.primer_grid)
    return parse_primer_drums(args.primer_drums or DEFAULT_PRIMER, pitches=note_map.inputs)


def _generate(args):
    from deepbeat.midifiles import write_midi
    from deepbeat.notemaps import load_note_map

    from .sampler import DrumSampler, beam_search
    from .stepmodel import StepModel

    note_map = load_note_map(args.note_map)
    if args.threads < 1:
        raise DeepBeatError(f"--threads {args.threads}: expected at least 1")
    model = StepModel.load(_model_path(args), threads=args.threads)
    try:
        model.encoding.style_id(args.style)
    except ValueError as error:
        raise DeepBeatError(f"--style: {error}") from None
    primer = _primer(args, note_map)
    primer = dataclasses.replace(primer, qpm=args.qpm or primer.qpm)
    if primer.num_steps >= args.num_steps:
        raise PrimerError(
            f"--num-steps {args.num_steps}: the primer already has {primer.num_steps} steps; "
            "ask for more steps than the primer holds"
        )
    sampling = dict(sampling_options(args), qpm=primer.qpm)
    new_steps = args.num_steps - primer.num_steps
    if args.beam_size > 1 or args.branch_factor > 1:
        continuations = beam_search(
            model, primer, new_steps, num_outputs=args.num_outputs, beam_size=args.beam_size,
            branch_factor=args.branch_factor, steps_per_iteration=args.steps_per_iteration, **sampling,
        )
    else:
        sampler = DrumSampler(model, num_outputs=args.num_outputs, **sampling)
        sampler.prime(primer)
        continuations = sampler.sample(new_steps)

    folder = Path(args.output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeepBeatError(f"--output-dir {folder}: cannot create ({error.strerror})") from None
    stamp = time.strftime("%Y-%m-%d_%H%M%S")  # Magenta's file naming: date, time, output number
    for number, continuation in enumerate(continuations, start=1):
        beat = primer.concat(continuation)
        path = folder / f"{stamp}_{number:02d}.mid"
        write_midi(beat, path, note_map=note_map)
        print(f"{path}: {beat.num_bars} bars at {beat.qpm:g} BPM, style {args.style}, "
              f"primer {primer.num_steps} steps")
        print(beat.to_text())
        print()
