"""Live subcommands: `deepbeat bridge`, `deepbeat ports` and `deepbeat bench bridge`."""
import queue
import signal
import threading

from deepbeat.errors import DeepBeatError
from deepbeat.options import add_results_option, bpm, count, ranged
from deepbeat.runtime.commands import add_steering_arguments, steering_from_args
from deepbeat.runtime.steering import LOCK_GROUPS
from deepbeat.web.commands import add_address_arguments
from deepbeat.web.live import LIVE_PORT

from .controls import DEFAULT_CCS, PRESET_ORDER, SWEPT, ControlMap
from .scheduler import AUTO, GATE, LATENCY_OFFSET_MS
from .session import MODES, ON_SILENCE
from .transport import BACKENDS, default_backend

# A closed terminal (HUP), Ctrl-\ (QUIT), kill (TERM) and Ctrl-C (INT) all stop the bridge cleanly, every note off.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
                     if hasattr(signal, name))
BACKEND_HELP = ("MIDI system: jack (one JACK client with both ports), jack-rtmidi (rtmidi's JACK backend, a client "
                "per port), alsa, coremidi, winmm (default here: {})")


def register(subparsers, benchmarks):
    p = subparsers.add_parser(
        "bridge",
        help="play along live: follow the DAW's MIDI clock, hear a bar, answer in time",
        description="Open MIDI ports (virtual 'DeepBeat In' and 'DeepBeat Out' unless --input/--output name "
        "existing ones), follow the MIDI clock coming in (or be the clock with --clock internal, or join an "
        "Ableton Link session with --clock link), listen to the "
        "drums played in and answer with the model's continuation, on the 16th grid. Ctrl-C stops with every "
        "note off.",
    )
    ports = p.add_argument_group("ports")
    ports.add_argument("--backend", choices=BACKENDS, default=default_backend(),
                       help=BACKEND_HELP.format(default_backend()))
    ports.add_argument("--input", metavar="NAME", help="connect to this existing input port instead of a virtual one")
    ports.add_argument("--output", metavar="NAME", help="connect to this existing output port instead of a virtual one")
    ports.add_argument("--client-name", default="DeepBeat", help="MIDI client name (default DeepBeat)")
    timing = p.add_argument_group("clock and timing")
    timing.add_argument("--clock", choices=("external", "internal", "link"), default="external",
                        help="follow the incoming MIDI clock (default), be the master and send it, or join the "
                        "Ableton Link session on the local network (tempo, bars and Start/Stop shared with Live, "
                        "an MPC, ...; needs aalink: pip install 'deepbeat[link]')")
    timing.add_argument("--bpm", type=bpm, default=120.0,
                        help="tempo with --clock internal, or proposed with --clock link while no one else is in "
                        "the session, 20-400 (default 120)")
    timing.add_argument("--latency-offset-ms", type=latency_offset, default=LATENCY_OFFSET_MS.default,
                        help="send each step this much before its tick, by the tempo estimate, "
                        f"{LATENCY_OFFSET_MS.expected} ms (at most a 16th is used), or {AUTO}: the output "
                        "latency the ports report, so that notes reach the DAW on their tick (JACK; rtmidi "
                        "ports report none)")
    timing.add_argument("--gate", type=ranged(GATE), default=GATE.default,
                        help=f"note length as a fraction of a 16th, {GATE.expected} (default {GATE.default:g})")
    timing.add_argument("--no-realtime", action="store_true",
                        help="do not ask the OS to run the timing thread real-time (it asks by default; "
                        "granted to root or members of a group with an rtprio limit, e.g. audio)")
    session = p.add_argument_group("session")
    session.add_argument("--mode", choices=MODES, default="call-response",
                         help="call-response: listen, answer, repeat; continuous: keep playing, re-primed by "
                         "what you play (default call-response)")
    session.add_argument("--listen-bars", type=count(1), default=1, help="bars to listen to (default 1)")
    session.add_argument("--answer-bars", type=count(1), default=1,
                         help="bars to answer with in call-response (default 1)")
    session.add_argument("--on-silence", choices=ON_SILENCE, default=ON_SILENCE[0],
                         help="when nothing is played in a listening bar (the model is never primed with silence): "
                         "answer the previous primer again (reuse-primer, default) or play the previous answer again "
                         "(repeat-answer; in continuous mode the answer carries on)")
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
    add_steering_arguments(p, groove_source="heard")
    model.add_argument("--seed", type=int, help="random seed: the same seed and playing give the same answers")
    controls = p.add_argument_group("live controls (Control Change numbers)")
    for name, number in DEFAULT_CCS.items():
        controls.add_argument(f"--cc-{name}", type=int, default=number, metavar="CC",
                              help=f"CC for {_CONTROL_HELP[name]} (default {number})")
    p.add_argument("--quiet", action="store_true", help="no terminal view")
    page = p.add_argument_group("live page (in a browser)")
    page.add_argument("--web", action="store_true",
                      help="serve the live page: the beat heard and answered, every control, the last answers to "
                      "save or loop; its address (with this run's token) is printed at start")
    add_address_arguments(page, LIVE_PORT, prefix="web-")
    p.set_defaults(run=_bridge, command="bridge")

    p = subparsers.add_parser("ports", help="list the MIDI ports of a backend",
                              description="List the input and output ports the chosen MIDI backend sees.")
    p.add_argument("--backend", choices=BACKENDS, default=default_backend(),
                   help=BACKEND_HELP.format(default_backend()))
    p.set_defaults(run=_ports, command="ports")

    p = benchmarks.add_parser(
        "bridge",
        help="tick-to-send latency of the bridge, in process and through JACK",
        description="Drive the bridge with a simulated clock at --bpm while another process keeps a core busy, "
        "and measure how long after each tick its notes are sent (p50/p99/max) and how many steps were missed; "
        "then, through JACK ports against a sample-accurate simulated DAW: one long run, repeated fresh starts and "
        "a lossy clock, every note checked within 3 ms of the two-period path, and a run with the output latency "
        "covered (--latency-offset-ms auto), its notes against the DAW's ticks; then --clock link against a test "
        "DAW peer on Ableton Link, in a loopback-only network namespace.",
    )
    p.add_argument("--seconds", type=float, default=300.0, help="in-process run length (default 300)")
    p.add_argument("--jack-seconds", type=float, default=30.0, help="JACK run length, 0 to skip (default 30)")
    p.add_argument("--controls-seconds", type=float, default=60.0,
                   help="length of each in-process run with every steering control on: without the live page, "
                   "with it open in headless Chromium, with a reader that stalls; 0 to skip (default 60)")
    p.add_argument("--starts", type=int, default=20,
                   help="fresh bridges started and checked through JACK (93 BPM, +-1 ms jitter), 0 to skip "
                   "(default 20)")
    p.add_argument("--lossy-starts", type=int, default=5,
                   help="starts with 1%% of clock ticks lost and 0.5%% repeated, 0 to skip (default 5)")
    p.add_argument("--auto-seconds", type=float, default=60.0,
                   help="run with --latency-offset-ms auto through JACK (93 BPM, +-1 ms jitter), its notes timed "
                   "against the DAW's ticks, 0 to skip (default 60)")
    p.add_argument("--link-bars", type=int, default=3,
                   help="bars at each tempo of a Link session with a test DAW peer, in a loopback-only network "
                   "namespace (needs unshare and ip), 0 to skip (default 3)")
    p.add_argument("--bpm", type=float, default=180.0, help="clock tempo (default 180)")
    p.add_argument("--model", help="ONNX step model (default: the shipped model)")
    p.add_argument("--no-load", action="store_true", help="do not start the busy process")
    p.add_argument("--normal-seconds", type=float, default=60.0,
                   help="length of a second in-process run without real-time scheduling, 0 to skip (default 60)")
    add_results_option(p, "bridge")
    p.set_defaults(run=_bench, command="bench bridge")

    p = benchmarks.add_parser(
        "faults",
        help="fault injection over JACK: lost, repeated and jittered clock, gaps, SysEx, signals, ...",
        description="Run `deepbeat bridge` on JACK against a scripted DAW once per fault (lost, repeated and jittered "
        "ticks, tempo jumps, a clock gap, a late first tick, SysEx, garbage, Song Position Pointer, Start twice, "
        "30 and 300 BPM, a stall, SIGHUP/SIGQUIT/double SIGINT, a closed stdout, a dying JACK server, the rtmidi "
        "fallback) and a soak at 180 BPM with the other core busy; compare every note with a reference replay of "
        "the script without the fault, and print the table of notes expected, played and wrong, hanging notes, "
        "exceptions and exit codes.",
    )
    p.add_argument("--model", help="ONNX step model (default: the shipped model)")
    p.add_argument("--soak-minutes", type=float, default=1.0, help="soak length, 0 to skip (default 1; 10 for the "
                   "figures in docs/BENCHMARKS.md)")
    p.add_argument("--only", metavar="TEXT", help="run only the scenarios whose name contains TEXT")
    p.add_argument("--no-load", action="store_true", help="do not keep the other core busy during the soak")
    p.add_argument("--realtime-server", action="store_true", help="run every scenario on a real-time JACK server "
                   "of the suite's own, as jackd runs by default (the soak always does)")
    add_results_option(p, "faults")
    p.set_defaults(run=_bench_faults, command="bench faults")


_CONTROL_HELP = {
    **{name: f"{setting.name} (0-127 over {setting.expected})" for name, setting in SWEPT.items()},
    "mode": "mode (<64 call-response, >=64 continuous)",
    "reprime": "re-prime now (listen again from the next bar)",
    "hold": "hold: loop the current answer while >=64",
    "panic": "panic: all notes off",
    "fill": "a fill on the next bar still to be generated",
    "preset": "preset (0-127 split among " + ", ".join(PRESET_ORDER) + ")",
    **{f"lock_{group}": f"lock {group} (>=64 locked: kept as last heard)" for group in LOCK_GROUPS},
}


def latency_offset(text):
    """--latency-offset-ms: milliseconds, or None for auto."""
    return None if text == AUTO else ranged(LATENCY_OFFSET_MS)(text)


def _ports(args):
    from .transport import list_ports

    inputs, outputs = list_ports(args.backend)
    print(f"{args.backend} inputs (play into DeepBeat from these):")
    for name in inputs or ["(none)"]:
        print(f"  {name}")
    print(f"{args.backend} outputs (DeepBeat can play to these):")
    for name in outputs or ["(none)"]:
        print(f"  {name}")


def bridge_options(args):
    """BridgeOptions from parsed `deepbeat bridge` options; DeepBeatError naming the option when one is wrong."""
    from .assembly import BridgeOptions

    try:
        controls = ControlMap({name: getattr(args, f"cc_{name}") for name in DEFAULT_CCS})
    except ValueError as error:
        raise DeepBeatError(f"--cc-*: {error}") from None
    steering, feel = steering_from_args(args)
    return BridgeOptions(
        model=args.model, steering=steering, feel=feel, groove_heard=args.groove == "heard", seed=args.seed,
        mode=args.mode,
        listen_bars=args.listen_bars, answer_bars=args.answer_bars, on_silence=args.on_silence,
        input_map=args.input_map,
        output_map=args.output_map, input_channel=None if args.input_channel is None else args.input_channel - 1,
        output_channel=args.output_channel - 1, master_bpm=args.bpm if args.clock in ("internal", "link") else None,
        link=args.clock == "link",
        latency_offset_s=None if args.latency_offset_ms is None else args.latency_offset_ms / 1000, gate=args.gate,
        thru=args.thru, controls=controls,
        realtime=not args.no_realtime,
    )


def _bridge(args):
    from .assembly import build_bridge
    from .transport import make_transport
    from .view import TerminalView

    stop = threading.Event()
    # First of all, so that a signal while loading is a clean stop too; a second one only asks again. After a
    # clean stop they are ignored while the process ends (Python would kill it with a signal that came during
    # its own shutdown): a second Ctrl-C 50 ms after the first cannot turn the clean exit into a kill. A failure
    # hands them back.
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in STOP_SIGNALS}
    try:
        inbox = queue.Queue()
        transport = make_transport(args.backend, args.input, args.output, args.client_name)
        bridge = build_bridge(bridge_options(args), transport, None if args.quiet else TerminalView(), inbox)
        server = _serve_page(bridge, args) if args.web else None
        try:
            code = bridge.run(stop)
        finally:
            if server is not None:
                server.close()
    except BaseException:
        for number, handler in previous.items():
            signal.signal(number, handler)
        raise
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if not args.quiet:
        print(exit_line(bridge), flush=True)
    return code


def _serve_page(bridge, args):
    """The live page of `bridge`, served at --web-host/--web-port; its address printed."""
    from deepbeat.web.commands import announce

    from .page import serve_page

    try:
        server = serve_page(bridge, args.web_host, args.web_port)
    except Exception:
        bridge.worker.close()
        raise
    announce("bridge", server, args.web_host)
    return server


def exit_line(bridge):
    """The one line the bridge ends with: steps, notes, what the clock needed put right, the transport's count."""
    stats = bridge.scheduler.stats
    clock = stats.clock.summary() or "nothing to put right"
    xruns = getattr(bridge.transport, "xruns", None)
    jack = f"; JACK xruns {xruns}, late {bridge.transport.late}" if xruns is not None else ""
    return (f"deepbeat bridge: steps played {stats.steps_played}, missed {stats.steps_missed}, skipped "
            f"{stats.steps_skipped}, notes sent {stats.notes_sent}; clock: {clock}{jack}; stopped with every note off")


def _bench(args):
    from .benchmark import run_benchmark

    run_benchmark(seconds=args.seconds, normal_seconds=args.normal_seconds, jack_seconds=args.jack_seconds,
                  bpm=args.bpm, model=args.model, load=not args.no_load, out=args.out, starts=args.starts,
                  lossy_starts=args.lossy_starts, controls_seconds=args.controls_seconds,
                  auto_seconds=args.auto_seconds, link_bars=args.link_bars)


def _bench_faults(args):
    from .faults import run_suite

    outcomes = run_suite(model=args.model, soak_minutes=args.soak_minutes, only=args.only, out=args.out,
                         load=not args.no_load, realtime_server=args.realtime_server)
    return 0 if all(outcome.ok for outcome in outcomes) else 1
