"""Core subcommands: `deepbeat data prepare|fetch-gmd` and `deepbeat grid`."""
import json

from .drums import PITCH_TABLES, pitch_table
from .gmd import GMD_URL, fetch_gmd
from .midibytes import DRUM_CHANNEL
from .midifiles import read_drum_grids
from .prepare import prepare


def register(subparsers, benchmarks):
    data = subparsers.add_parser("data", help="prepare training data or fetch the Groove MIDI Dataset")
    data_commands = data.add_subparsers(title="data commands", metavar="ACTION", required=True)

    p = data_commands.add_parser(
        "prepare",
        help="turn a MIDI folder into training arrays",
        description="Read a Groove MIDI Dataset folder (keeps its info.csv splits, styles, drummers) "
        "or any folder of MIDI files (seeded 80/10/10 split) and write OUT/{train,validation,test}.npz "
        "plus summary.json. Bad files are skipped and counted.",
    )
    p.add_argument("--source", required=True, help="GMD folder (with info.csv) or any folder of .mid files")
    p.add_argument("--out", required=True, help="folder for the prepared arrays")
    p.add_argument("--seed", type=int, default=0, help="split seed for a plain MIDI folder (default 0)")
    p.add_argument("--style", default="any", help="style label for a plain MIDI folder (default any)")
    p.add_argument("--all-meters", action="store_true", help="keep every meter, not only 4/4 sections")
    p.add_argument("--all-channels", action="store_true", help="take notes from every channel, not only 10")
    p.set_defaults(run=_prepare, command="data prepare")

    p = data_commands.add_parser(
        "fetch-gmd",
        help="download, verify and unpack the Groove MIDI Dataset",
        description="Download the official MIDI-only archive (groove-v1.0.0-midionly.zip), check every "
        "MIDI file against the v1.0.0 digest and unpack it to DEST/groove. The data is CC BY 4.0 "
        "(Gillick et al., 2019).",
    )
    p.add_argument("--dest", required=True, help="folder to unpack into (DEST/groove)")
    p.add_argument("--url", default=GMD_URL, help="archive address (default: Magenta's dataset storage)")
    p.add_argument("--archive", help="use this local copy of the zip instead of downloading")
    p.set_defaults(run=_fetch, command="data fetch-gmd")

    p = subparsers.add_parser(
        "grid",
        help="print a MIDI file's drums as a step grid",
        description="Print a MIDI file's drum notes quantized to 16ths, one row per drum and '|' between "
        "bars (X accent, x hit, o ghost), or as JSON with --json.",
    )
    p.add_argument("file", help="MIDI file")
    p.add_argument("--json", action="store_true",
                   help="print JSON: the drum classes, per step the classes hit (indices and names) and their "
                   "velocities")
    p.add_argument("--pitches", choices=sorted(PITCH_TABLES), default="gm",
                   help="pitch table: gm (General MIDI, default) or td11 (Groove MIDI Dataset kit)")
    p.add_argument("--all-channels", action="store_true", help="take notes from every channel, not only 10")
    p.set_defaults(run=_grid, command="grid")


def _prepare(args):
    prepare(
        args.source, args.out, seed=args.seed, style=args.style,
        meters=None if args.all_meters else ((4, 4),), channel=None if args.all_channels else DRUM_CHANNEL,
    )


def _fetch(args):
    fetch_gmd(args.dest, url=args.url, archive=args.archive)


def _grid(args):
    found = read_drum_grids(
        args.file, pitch_table(args.pitches), channel=None if args.all_channels else DRUM_CHANNEL,
        silent_sections=True,
    )
    if args.json:
        whole = found.grids[0]
        for grid in found.grids[1:]:
            whole = whole.concat(grid)
        print(json.dumps(whole.to_json_dict()))
        return
    # Notes are '#' lines, so the whole printout reads back as step text (parse_step_text).
    for number, grid in enumerate(found.grids, start=1):
        meter = "%d/%d" % grid.time_signature
        bars = f"{grid.num_bars} bar" + ("" if grid.num_bars == 1 else "s")
        print(f"# section {number}: {meter}, {grid.bpm:g} BPM, {bars}")
        print(grid.to_text())
    if found.dropped_pitches:
        print("# dropped pitches: " + ", ".join(f"{p} x{n}" for p, n in sorted(found.dropped_pitches.items())))
