"""`deepbeat studio`, and the address options any command serving a page shares (the bridge's --web too)."""
import argparse
import sys

from deepbeat.options import count
from deepbeat.runtime.commands import DEFAULT_THREADS

from .server import LOOPBACK, exposure_warning
from .studio import STUDIO_PORT

MAX_PORT = 65535


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "studio",
        help="the studio page in your browser: sketch a primer, steer, generate, listen, download MIDI",
        description="Serve the studio page on this machine and print its address (with the run's token; "
        "open it in a browser). On the page: click or type a one-bar primer on the drum grid, or drop a "
        "MIDI file; set the style and every steering control; generate beats; hear them (drums synthesized "
        "in the page) and download each as a MIDI file. Ctrl-C stops.",
    )
    p.add_argument("--model", help="exported .onnx model (default: the shipped model)")
    p.add_argument("--threads", type=count(1), default=DEFAULT_THREADS,
                   help="CPU threads for the model (default: 2, or 1 on a one-core machine)")
    p.add_argument("--note-map", "--note_map", dest="note_map", default="gm",
                   help="notes to read dropped MIDI files and write beats with: gm, mpc-legacy, mpc-chromatic, "
                   "drum-rack or a JSON file (default gm)")
    add_address_arguments(p, STUDIO_PORT)
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(run=_studio, command="studio")


def port(text):
    """A TCP port 0-65535 (0: any free port)."""
    if not text.isdigit() or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port 0-{MAX_PORT}")
    return int(text)


def add_address_arguments(parser, default_port, prefix=""):
    """--host and --port (named --PREFIXhost, --PREFIXport, e.g. prefix "web-" for the bridge's page)."""
    parser.add_argument(f"--{prefix}host", default=LOOPBACK,
                        help=f"address to serve the page on (default {LOOPBACK}, this machine only; any other "
                        "address lets the network in and prints a warning)")
    parser.add_argument(f"--{prefix}port", type=port, default=default_port,
                        help=f"port to serve the page on (default {default_port}; 0: any free port)")


def announce(command, server, host):
    """Print where the page is (token included) and, off loopback, the warning."""
    warning = exposure_warning(host)
    if warning:
        print(f"deepbeat {command}: warning: {warning}", file=sys.stderr)
    print(f"deepbeat {command}: open {server.url}", flush=True)


def _studio(args):
    from deepbeat.notemaps import load_note_map
    from deepbeat.runtime.stepmodel import StepModel

    from .studio import Studio, serve_studio

    note_map = load_note_map(args.note_map)
    model = StepModel.load(args.model, threads=args.threads)
    studio = Studio(model, note_map)
    try:
        server = serve_studio(studio, args.host, args.port)
        announce("studio", server, args.host)
        if args.open:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_until_interrupted()
        print("deepbeat studio: stopped")
    finally:
        studio.close()
