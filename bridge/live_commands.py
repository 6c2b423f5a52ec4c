"""Live subcommands: `deepbeat bridge`, `deepbeat ports` and `deepbeat bench bridge`."""
import argparse
import queue
import signal
import threading

from deepbeat.errors import DeepBeatError

from .commands import add_sampling_arguments, sampling_options
from .controls import DEFAULT_CCS, ControlMap
from .session import MODES
from .transport import BACKENDS, default_backend


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "bridge",
        help="play along live: follow the DAW's MIDI clock, hear a bar, answer in time",
        description="Open MIDI ports (virtual 'DeepBeat In' and 'DeepBeat Out' unless --input/--output name "
        "existing ones), follow the MIDI clock coming in (or be the clock with --clock internal), listen to the "
        "drums played in and answer with the model's continuation, on the 16th grid. Ctrl-C stops with every "
        "note off.",
    )
    ports = p.add_argument_group("ports")
    ports.add_argument("--backend", choices=BACKENDS, default=default_backend(),
                       help=f"MIDI system (default here: {default_backend()})")
    ports.add_argument("--input", metavar="NAME", help="connect to this existing input port instead of a virtual one")
    ports.add_argument("--output", metavar="NAME", help="connect to this existing output port instead of a virtual one")
    ports.add_argument("--client-name", default="DeepBeat", help="MIDI client name (default DeepBeat)")
    timing = p.add_argument_group("clock and timing")
    timing.add_argument("--clock", choices=("external", "internal"), default="external",
                        help="follow the incoming MIDI clock (default) or be the master and send it")
    timing.add_argument("--bpm", type=float, default=120.0, help="tempo with --clock internal (default 120)")
    timing.add_argument("--latency-offset-ms", type=float, default=0.0,
                        help="send each step this much before its tick, by the tempo estimate (at most a 16th)")
    timing.add_argument("--gate", type=float, default=0.5, help="note length as a fraction of a 16th (default 0.5)")
    timing.add_argument("--no-realtime", action="store_true",
                        help="do not ask the OS to run the timing thread real-time (it asks by default; "
                        "granted to root or members of a group with an rtprio limit, e.g. audio)")
    session = p.add_argument_group("session")
    session.add_argument("--mode", choices=MODES, default="call-response",
                         help="call-response: listen, answer, repeat; continuous: keep playing, re-primed by "
                         "what you play (default call-response)")
    session.add_argument("--listen-bars", type=int, default=1, help="bars to listen to (default 1)")
    session.add_argument("--answer-bars", type=int, default=1, help="bars to answer with in call-response (default 1)")
    session.add_argument("--input-map", default="gm",
                         help="note map of the drums played in: gm, mpc-legacy, mpc-chromatic, drum-rack or a .json")
    session.add_argument("--output-map", default="gm", help="note map of the drums sent out (same choices)")
    session.add_argument("--input-channel", type=int, choices=range(1, 17), metavar="1-16",
                         help="listen to this channel only (default: all)")
    session.add_argument("--output-channel", type=int, choices=range(1, 17), metavar="1-16", default=10,
                         help="channel of the notes sent (default 10)")
    session.add_argument("--thru", action="store_true", help="pass the notes played in through to the output")
    model = p.add_argument_group("model")
    model.add_argument("--model", help="ONNX step model (default: the shipped model)")
    add_sampling_arguments(model)
    controls = p.add_argument_group("live controls (Control Change numbers)")
    for name, number in DEFAULT_CCS.items():
        controls.add_argument(f"--cc-{name}", type=int, default=number, metavar="CC",
                              help=f"CC for {_CONTROL_HELP[name]} (default {number})")
    p.add_argument("--quiet", action="store_true", help="no terminal view")
    p.set_defaults(run=_bridge, command="bridge")

    p = subparsers.add_parser("ports", help="list the MIDI ports of a backend",
                              description="List the input and output ports the chosen MIDI backend sees.")
    p.add_argument("--backend", choices=BACKENDS, default=default_backend(),
                   help=f"MIDI system (default here: {default_backend()})")
    p.set_defaults(run=_ports, command="ports")

    p = benchmarks.add_parser(
        "bridge",
        help="tick-to-send latency of the bridge, in process and through JACK",
        description="Drive the bridge with a simulated clock at --bpm while another process keeps a core busy, "
        "and measure how long after each tick its notes are sent (p50/p99/max) and how many steps were missed; "
        "then, when a JACK server is reachable, the same end to end through JACK ports.",
    )
    p.add_argument("--seconds", type=float, default=300.0, help="in-process run length (default 300)")
    p.add_argument("--jack-seconds", type=float, default=30.0, help="JACK run length, 0 to skip (default 30)")
    p.add_argument("--bpm", type=float, default=180.0, help="clock tempo (default 180)")
    p.add_argument("--model", help="ONNX step model (default: the shipped model)")
    p.add_argument("--no-load", action="store_true", help="do not start the busy process")
    p.add_argument("--normal-seconds", type=float, default=60.0,
                   help="length of a second in-process run without real-time scheduling, 0 to skip (default 60)")
    p.add_argument("--out", default="docs/benchmarks/bridge.json", help="results file")
    p.set_defaults(run=_bench, command="bench bridge")


_CONTROL_HELP = {
    "temperature": "temperature (0-127 -> 0.1-2.0)",
    "mode": "mode (<64 call-response, >=64 continuous)",
    "reprime": "re-prime now (listen again from the next bar)",
    "hold": "hold: loop the current answer while >=64",
    "panic": "panic: all notes off",
}


def _ports(args):
    from .transport import list_ports

    inputs, outputs = list_ports(args.backend)
    print(f"{args.backend} inputs (play into DeepBeat from these):")
    for name in inputs or ["(none)"]:
        print(f"  {name}")
    print(f"{args.backend} outputs (DeepBeat can play to these):")
    for name in outputs or ["(none)"]:
        print(f"  {name}")


def build_bridge(args, transport, view, inbox):
    """A Bridge from parsed `deepbeat bridge` options, on `transport`, drawing `view` (or None)."""
    from deepbeat.notemaps import load_note_map

    from .clock import InternalClock
    from .live import Bridge
    from .sampler import DrumSampler
    from .scheduler import WAKE, Scheduler
    from .session import Session
    from .stepmodel import StepModel
    from .worker import Composer, GenerationWorker, Plan

    try:
        controls = ControlMap(args.cc_temperature, args.cc_mode, args.cc_reprime, args.cc_hold, args.cc_panic)
        master = InternalClock(args.bpm) if args.clock == "internal" else None
    except ValueError as error:
        raise DeepBeatError(str(error)) from None
    input_map, output_map = load_note_map(args.input_map), load_note_map(args.output_map)
    sampler = DrumSampler(StepModel.load(args.model), **sampling_options(args))
    plan = Plan()
    worker = GenerationWorker(on_error=lambda error: inbox.put_nowait(WAKE))
    try:
        session = Session(worker, Composer(sampler, plan), plan, mode=args.mode, listen_bars=args.listen_bars,
                          answer_bars=args.answer_bars, temperature=args.temperature)
        scheduler = Scheduler(
            session, transport.send, master=master, note_map=output_map, input_map=input_map,
            output_channel=args.output_channel - 1,
            input_channel=None if args.input_channel is None else args.input_channel - 1,
            latency_offset_s=args.latency_offset_ms / 1000, gate=args.gate, thru=args.thru, controls=controls,
        )
    except ValueError as error:
        worker.close()
        raise DeepBeatError(str(error)) from None
    return Bridge(transport, scheduler, worker, inbox, view, realtime=not args.no_realtime)


def _bridge(args):
    from .transport import RtMidiTransport
    from .view import TerminalView

    stop = threading.Event()
    # first of all, so that a signal while loading is a clean stop too
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        inbox = queue.Queue()
        transport = RtMidiTransport(args.backend, args.input, args.output, args.client_name)
        bridge = build_bridge(args, transport, None if args.quiet else TerminalView(), inbox)
        code = bridge.run(stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not args.quiet:
        stats = bridge.scheduler.stats
        print(f"deepbeat bridge: steps played {stats.steps_played}, missed {stats.steps_missed}, "
              f"notes sent {stats.notes_sent}; stopped with every note off")
    return code


def _bench(args):
    from .benchmark import run_benchmark

    run_benchmark(seconds=args.seconds, normal_seconds=args.normal_seconds, jack_seconds=args.jack_seconds,
                  bpm=args.bpm, model=args.model, load=not args.no_load, out=args.out)


def bridge_parser():
    """The `deepbeat bridge` parser alone (for building a bridge from a list of options)."""
    subparsers = argparse.ArgumentParser(prog="deepbeat").add_subparsers()
    register(subparsers, argparse.ArgumentParser().add_subparsers())
    return subparsers.choices["bridge"]
