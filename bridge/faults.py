"""`deepbeat bench faults`: the fault-injection suite, over JACK with a scripted clock and notes.

Each scenario runs a fresh `deepbeat bridge` process on JACK, played by a SimulatedDaw script
with a fault in it: lost, repeated or jittered ticks, a gap, SysEx, garbage, a stall, signals,
a closed stdout, a dying JACK server... What the bridge should have played is the reference:
the script without the fault, replayed in this process through the same scheduler, session
and model on a simulated clock (replay.py). A note counts as played when one with its pitch
and velocity comes back within 3 ms (plus the scenario's own jitter) of its reference time
plus the two-period path; a note that comes back matching nothing is a wrong note. Some
scenarios excuse a window (a gap, a stall, the end after a signal) from the reference.
"""
import bisect
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

from deepbeat.benchresults import machine, write_results
from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import CLOCK, CONTINUE, NOTE_ON, SONG_POSITION, STATUS_KIND, STOP, SYSEX

from .clock import TICKS_PER_STEP
from .jackclient import server_realtime
from .replay import InlineWorker, SimulatedClock, replay
from .simdaw import (
    BACK_BEAT, FILL, SimulatedDaw, clock_script, percentiles_ms, start_bridge_process, stop_bridge_process,
)
from .tempofit import interval_of_bpm

TOLERANCE_S = 0.003  # a note within this of its reference time plus the path is on time
OWN_RATE, OWN_PERIOD = 48000, 256  # the suite's own servers, as CI's: 5.33 ms periods
OWN_PERIOD_S = OWN_PERIOD / OWN_RATE
TAIL_S = 0.6  # the DAW listens this long after its script ends
BUNCH_SPACING_S = 0.00005  # ticks sent back to back after being held up
TROUBLE_S = 0.1  # notes this close to an xrun, or to an event JACK ran the DAW late for, are not judged
TICKS_PER_BAR = TICKS_PER_STEP * STEPS_PER_BAR
# Malformed or meaningless messages: none of them may change what is played.
GARBAGE = ([0x45, 0x12], [0x99], [0x99, 36], [0xF2, 0x10], [0xF4], [0xF5], [0xF9], [0xFD], [0xF7], [0xB9, 20],
           [0x00], [0x99, 200, 100], [0x99, 36, 128], [0xF1, 0x10], [0xF3, 0x01], [0xF6], [0xFE], [0xFF],
           [0x7F, 0x7F, 0x7F, 0x7F], [SYSEX, 0x7E, 0x7F, 0x09, 0x01, 0xF7])


@dataclass
class Run:
    """What a scenario's actions reach while it plays: the bridge process, and its own JACK server if any."""

    process: subprocess.Popen
    server: subprocess.Popen = None  # the scenario's own JACK server
    stdout_reader: int = None  # the read end of the bridge's stdout, when the scenario closes it


@dataclass(frozen=True)
class Scenario:
    """One fault-injection run: the script, the fault, what is excused and how the run ends."""

    name: str
    covers: str  # the issue items or conditions it covers
    tempo_map: tuple = ((8, 120),)
    flags: tuple = ("--mode", "continuous")
    script: object = None  # script(tempo_map, patterns) -> (events, ticks); default clock_script
    fault: object = None  # fault(events, ticks, rng) -> the events the DAW really plays
    actions: object = None  # actions(ticks) -> [(seconds, action(run))] done while the script plays
    excused: object = None  # excused(ticks) -> [(from, to)] seconds whose reference notes may be missing
    jitter_s: float = 0.0  # added to the timing tolerance
    stop_signals: tuple = (signal.SIGINT,)  # sent after the script, when the bridge still runs
    backend: str = "jack"
    own_server: bool = False  # on a JACK server of its own (which the scenario may kill)
    realtime_server: bool = False  # on a real-time JACK server of its own, as a producer runs JACK (when allowed)
    close_stdout: bool = False
    exit_code: int = 0
    path_periods: float = 2.0  # the path of a note, in JACK periods after its tick
    path_tolerance_periods: float = 0.0  # ... give or take this many (rtmidi does not time its output)
    on_grid: bool = False  # every note is played on its step's tick (no model timing): each is timed against it


@dataclass
class Outcome:
    """One scenario's row of the table."""

    name: str
    covers: str
    expected: int
    played: int
    wrong: int
    hanging: object  # count, or None when it cannot be known (the server died)
    exceptions: int
    exit_code: int
    clock: str = ""  # what the bridge said it put right
    notes: list = field(default_factory=list)  # why the row is not clean
    ok: bool = False
    path_ms: dict = field(default_factory=dict)  # min/max of the played notes' distance from the path
    error_ms: dict = field(default_factory=dict)  # p50/p99/max of that distance, unsigned
    grid_error_ms: dict = field(default_factory=dict)  # with on_grid: every note's distance from its step's tick
    period_ms: float = 0.0  # the JACK period
    troubles: int = 0  # moments JACK itself lost time (xruns, DAW events late), around which nothing is judged
    server_log: dict = None  # on a server of the suite's own: what its log blames each xrun on (xrun_causes)


# --- scripts and faults ------------------------------------------------------------------


def patterns_for(tempo_map, flags):
    """The beat in bar 0; in continuous mode a fill every 4th bar as well, to re-prime."""
    bars = sum(b for b, _ in tempo_map)
    patterns = {0: BACK_BEAT}
    if "continuous" in flags:
        patterns.update({bar: FILL for bar in range(3, bars, 4)})
    return patterns


def is_clock(data):
    """Whether a scripted message is a clock tick."""
    return list(data) == [CLOCK]


def lossy(drop, repeat):
    """A fault: each tick lost with probability `drop`, else repeated (0-1 ms later) with probability `repeat`."""
    def fault(events, ticks, rng):
        played = []
        for when, data in events:
            if is_clock(data) and rng.random() < drop:
                continue
            played.append((when, data))
            if is_clock(data) and rng.random() < repeat:
                played.append((when + rng.uniform(0.0, 0.001), data))
        return played
    return fault


def jitter(seconds):
    """A fault: each tick moved by up to +-`seconds`."""
    def fault(events, ticks, rng):
        return [(when + rng.uniform(-seconds, seconds), data) if is_clock(data) else (when, data)
                for when, data in events]
    return fault


def clock_gap(bar, seconds):
    """A fault: no ticks for `seconds` from bar `bar`, step 5 (the clock goes on behind the gap)."""
    def fault(events, ticks, rng):
        begin = ticks[bar * TICKS_PER_BAR + TICKS_PER_STEP * 5] + 0.0001
        return [(w, d) for w, d in events if not (is_clock(d) and begin <= w < begin + seconds)]
    return fault


def held_start(seconds):
    """A fault: the ticks of the first `seconds` after the first one held back, then sent back to back."""
    def fault(events, ticks, rng):
        release = ticks[0] + seconds
        held = [(w, d) for w, d in events if is_clock(d) and w < release]
        return ([(w, d) for w, d in events if not (is_clock(d) and w < release)]
                + [(release + k * BUNCH_SPACING_S, d) for k, (_, d) in enumerate(held)])
    return fault


def inserted(messages):
    """A fault adding messages(ticks, rng) -> [(seconds, bytes)] to the script."""
    def fault(events, ticks, rng):
        return events + messages(ticks, rng)
    return fault


def at_bar(bar, step=0):
    """The time of a step's tick, as a function of the script's tick times."""
    return lambda ticks: ticks[(bar * STEPS_PER_BAR + step) * TICKS_PER_STEP]


def relocating_script(tempo_map, patterns):
    """Stop in bar 3, Song Position Pointer to bar 5, Continue: ticks resume from bar 5."""
    events, ticks = clock_script(tempo_map, patterns)
    stop_tick = 3 * TICKS_PER_BAR + 8 * TICKS_PER_STEP
    resume_tick = 5 * TICKS_PER_BAR
    interval = ticks[1] - ticks[0]
    stop_at = ticks[stop_tick] + 0.001
    shift = stop_at + 0.5 - ticks[resume_tick]  # Continue half a second after the stop
    kept = [(w, d) for w, d in events if w < stop_at and list(d) != [STOP]]
    later = [(w + shift, d) for w, d in events if w >= ticks[resume_tick] - interval / 2]
    sixteenths = resume_tick // TICKS_PER_STEP
    moved = [(stop_at, [STOP]), (stop_at + 0.1, [SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7]),
             (stop_at + 0.5 - interval / 2, [CONTINUE])]
    new_ticks = ticks[:stop_tick + 1] + [None] * (resume_tick - stop_tick - 1)
    new_ticks += [t + shift for t in ticks[resume_tick:]]
    return sorted(kept + moved + later, key=lambda e: e[0]), new_ticks


def restarting_script(tempo_map, patterns):
    """Start again (no Stop) after the first half: the second half is a new song, the beat played again."""
    half = sum(b for b, _ in tempo_map) // 2
    bpm = tempo_map[0][1]
    first, ticks = clock_script(((half, bpm),), patterns, stop=False)
    restart = ticks[-1] + interval_of_bpm(bpm) / 2
    second, more = clock_script(((half, bpm),), {0: BACK_BEAT}, start_at=interval_of_bpm(bpm) / 2)
    return first + [(w + restart, d) for w, d in second], ticks + [t + restart for t in more]


def late_first_tick_script(tempo_map, patterns):
    """Start, then the first tick 600 ms later."""
    return clock_script(tempo_map, patterns, start_at=0.6)


def signal_mid_run(*numbers):
    """Actions: the signals (50 ms apart) in bar 3, step 6, as the bridge plays."""
    def actions(ticks):
        first = at_bar(3, 6)(ticks)
        return [(first + 0.05 * k, lambda run, n=number: run.process.send_signal(n))
                for k, number in enumerate(numbers)]
    return actions


def after_signal(ticks):
    """Excused: everything from the signal on (the bridge writes out what it sent before it closes)."""
    return [(at_bar(3, 6)(ticks), float("inf"))]


def after_server_death(ticks):
    """Excused: everything from the server's death on, and the notes still on their way to the DAW then (sent
    up to the two-period path before it, they die with the server)."""
    return [(at_bar(3, 6)(ticks) - 2 * OWN_PERIOD_S - TOLERANCE_S, float("inf"))]


def stall(run):
    """The whole bridge process stopped for 250 ms (its timing thread, its JACK thread, everything)."""
    run.process.send_signal(signal.SIGSTOP)
    time.sleep(0.25)
    run.process.send_signal(signal.SIGCONT)


def stalled_at(ticks):
    """Excused: the stall, and the notes due in it (they go out late)."""
    begin = at_bar(3)(ticks)
    return [(begin - 0.02, begin + 0.4)]


def kill_server(run):
    """The scenario's own JACK server killed."""
    run.server.kill()


def close_reader(run):
    """The reader of the bridge's stdout gone, as when `tee` ends."""
    os.close(run.stdout_reader)
    run.stdout_reader = None


SCENARIOS = (
    Scenario("clean, 120 BPM, one JACK client", "baseline; 4 (one client)"),
    Scenario("1% of ticks lost, 0.5% repeated", "2", fault=lossy(0.01, 0.005)),
    Scenario("jitter +-5 ms", "19", fault=jitter(0.005), jitter_s=0.005),
    Scenario("jitter +-1 ms, 93 BPM (issue's run)", "2", tempo_map=((6, 93),), fault=jitter(0.001), jitter_s=0.001),
    # the output latency covered (issue 12 item 3): notes come back on the DAW's own ticks
    Scenario("latency auto, jitter +-1 ms, 93 BPM", "12.3", tempo_map=((6, 93),), fault=jitter(0.001),
             jitter_s=0.001, flags=("--mode", "continuous", "--latency-offset-ms", "auto", "--humanize", "0"),
             path_periods=0.0, on_grid=True),
    Scenario("unterminated SysEx F0 7D 01 02", "13",
             fault=inserted(lambda t, r: [(at_bar(1, 3)(t), [SYSEX, 0x7D, 1, 2])])),
    Scenario("garbage stream", "garbage", fault=inserted(lambda t, r: [(r.uniform(0.1, t[-1]), r.choice(GARBAGE))
                                                                       for _ in range(300)])),
    Scenario("Stop, Song Position Pointer, Continue", "SPP", script=relocating_script),
    Scenario("Start twice", "Start twice", script=restarting_script),
    Scenario("30 BPM", "30 BPM", tempo_map=((2, 30),)),
    Scenario("300 BPM", "300 BPM", tempo_map=((12, 300),)),
    Scenario("tempo jump 90 -> 140", "tempo jumps", tempo_map=((3, 90), (5, 140))),
    Scenario("tempo jump 140 -> 100", "tempo jumps", tempo_map=((3, 140), (5, 100))),
    Scenario("300 ms clock gap at 180 BPM", "11", tempo_map=((8, 180),), fault=clock_gap(3, 0.3),
             excused=lambda t: [(at_bar(3, 5)(t), at_bar(3, 5)(t) + 0.35)]),
    Scenario("first tick 600 ms after Start", "11", script=late_first_tick_script),
    Scenario("first 120 ms of ticks held up, then back to back", "2 (young fit)", fault=held_start(0.12)),
    Scenario("bridge stalled 250 ms (SIGSTOP)", "11", actions=lambda t: [(at_bar(3)(t) - 0.02, stall)],
             excused=stalled_at),
    Scenario("silent listening bars (call-response)", "3", tempo_map=((6, 120),), flags=("--mode", "call-response")),
    Scenario("SIGHUP while playing", "12", actions=signal_mid_run(signal.SIGHUP), excused=after_signal),
    Scenario("SIGQUIT while playing", "12", actions=signal_mid_run(signal.SIGQUIT), excused=after_signal),
    Scenario("two SIGINTs 50 ms apart", "12", actions=signal_mid_run(signal.SIGINT, signal.SIGINT),
             excused=after_signal),
    Scenario("stdout closed mid-run", "17", close_stdout=True, actions=lambda t: [(at_bar(1)(t), close_reader)]),
    Scenario("JACK server dies", "16", own_server=True, actions=lambda t: [(at_bar(3, 6)(t), kill_server)],
             excused=after_server_death, exit_code=2),
    # rtmidi stamps input on arrival and sends output at once: a note comes back 0-1 period after its tick
    Scenario("rtmidi JACK fallback, clean", "1 (fallback)", backend="jack-rtmidi", path_periods=0.5,
             path_tolerance_periods=0.5),
    Scenario("rtmidi JACK fallback, unterminated SysEx", "13 (fallback)", backend="jack-rtmidi", path_periods=0.5,
             path_tolerance_periods=0.5, fault=inserted(lambda t, r: [(at_bar(2, 3)(t), [SYSEX, 0x7D, 1, 2])]),
             excused=lambda t: [(at_bar(2, 3)(t), at_bar(2, 3)(t) + 2.5)]),
)


def soak(minutes):
    """The soak: continuous at 180 BPM for `minutes`, a fill every 4th bar (the other core busy: run_suite), on a
    real-time JACK server: with a busy core, a server without real-time scheduling loses time itself (the DAW's
    own events go out late), which is no test of the bridge."""
    return Scenario(f"soak, {minutes:g} min at 180 BPM, other core busy, real-time JACK", "soak",
                    tempo_map=((max(2, round(minutes * 45)), 180),), realtime_server=True)


# --- running -----------------------------------------------------------------------------


def reference_notes(scenario, events, model):
    """(seconds, note, velocity) the bridge should send for `events`, replayed on a simulated clock."""
    from deepbeat.cli import build_parser

    from .assembly import build_scheduler
    from .live_commands import bridge_options

    args = build_parser().parse_args(["bridge", "--seed", "1", *(["--model", str(model)] if model else []),
                                      *scenario.flags])
    clock = SimulatedClock()
    sent = []

    def send(data, at=None):
        sent.append((clock.now if at is None else at, list(data)))

    scheduler = build_scheduler(bridge_options(args), send, InlineWorker(), clock)
    replay(scheduler, clock, events, until=events[-1][0] + 1)
    return [(t, m[1], m[2]) for t, m in sent if m[0] & STATUS_KIND == NOTE_ON and m[2] > 0]


def run_scenario(scenario, model=None, seed=0):
    """Run one scenario over JACK; its Outcome."""
    rng = random.Random(seed)
    clean, ticks = (scenario.script or clock_script)(scenario.tempo_map, patterns_for(scenario.tempo_map,
                                                                                        scenario.flags))
    events = sorted(scenario.fault(clean, ticks, rng), key=lambda e: e[0]) if scenario.fault else clean
    expected_notes = reference_notes(scenario, clean, model)
    server, server_name, server_log = (_start_server(realtime=scenario.realtime_server)
                                       if scenario.own_server or scenario.realtime_server else (None, None, None))
    realtime = server_realtime(server_name) if scenario.realtime_server else None
    name = f"DeepBeatFaults{os.getpid()}"
    popen = {"env": dict(os.environ, JACK_DEFAULT_SERVER=server_name)} if server else {}
    run = None
    try:
        daw = SimulatedDaw(name, server=server_name)
        if scenario.close_stdout:
            reader, writer = os.pipe()
            popen["stdout"] = writer
        run = Run(start_bridge_process(name, model, scenario.flags, backend=scenario.backend, **popen), server)
        if scenario.close_stdout:
            os.close(writer)
            run.stdout_reader = reader
        try:
            if not daw.connect(timeout=60):
                raise DeepBeatError(f"{scenario.name}: the bridge's JACK ports never appeared")
            clients = sorted(c for c in daw.client_names() if c.startswith(name))
            actions = [(when, lambda action=action: action(run)) for when, action in
                       (scenario.actions(ticks) if scenario.actions else [])]
            transcript = daw.perform(events, tail=TAIL_S, actions=actions)
        finally:
            signals = scenario.stop_signals if run.process.poll() is None else ()
            code, out, err = stop_bridge_process(run.process, signals=signals)
            daw.close()
    finally:
        if run is not None and run.stdout_reader is not None:
            os.close(run.stdout_reader)
        if server:
            server.kill()
            server.wait()
            with open(server_log) as log:
                causes = xrun_causes(log.read(), name)
            os.unlink(server_log)
    outcome = judge(scenario, ticks, expected_notes, transcript, code, out, err)
    if server:
        outcome.server_log = causes
        outcome.notes.append(f"JACK's log: {causes['bridge_running']} xruns with the bridge's callback still running, "
                             f"{causes['driver_woke_late']} with the dummy driver waking late")
    if scenario.realtime_server and not realtime:
        outcome.notes.append("JACK could not run real-time here: on a server without real-time scheduling")
    if scenario.backend == "jack" and len(clients) != 1:
        outcome.notes.append(f"the bridge showed up in JACK as {len(clients)} clients: {clients}")
        outcome.ok = False
    return outcome


def judge(scenario, ticks, expected_notes, transcript, code, out, err):
    """Compare what came back with the reference: the Outcome."""
    path = scenario.path_periods * transcript.period_s
    tolerance = TOLERANCE_S + scenario.jitter_s + scenario.path_tolerance_periods * transcript.period_s
    excused = scenario.excused(ticks) if scenario.excused else []
    excused += [(t - TROUBLE_S, t + TROUBLE_S) for t in transcript.troubles]  # JACK itself lost time there
    # a note due within the clock's jitter of a Stop is played or not as the jitter falls, in the reference too
    excused += [(when - scenario.jitter_s, when + scenario.jitter_s) for when, data in transcript.played
                if scenario.jitter_s and list(data[:1]) == [STOP]]

    def excused_at(when):
        return any(begin <= when <= end for begin, end in excused)

    received = transcript.note_ons()
    unmatched = list(received)
    played = expected = 0
    offsets = []
    for when, note, velocity in expected_notes:
        due = when + path
        match = next((r for r in unmatched if r[1:] == (note, velocity) and abs(r[0] - due) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            offsets.append(match[0] - due)
        if excused_at(when):
            continue
        expected += 1
        played += match is not None
    wrong = sum(1 for when, _, _ in unmatched if not excused_at(when - path))
    hanging = None if scenario.own_server else len(transcript.unended_notes())
    exceptions = err.count("Traceback") + err.count("internal error") + err.count("Exception ignored")
    summary = [line for line in out.splitlines() if line.startswith("deepbeat bridge: steps")]
    clock = summary[-1].split("clock: ")[-1].split(";")[0] if summary else ""
    outcome = Outcome(scenario.name, scenario.covers, expected, played, wrong, hanging, exceptions, code, clock,
                      period_ms=round(transcript.period_s * 1000, 3))
    if offsets:
        outcome.path_ms = {"min": round(min(offsets) * 1000, 3), "max": round(max(offsets) * 1000, 3)}
        outcome.error_ms = percentiles_ms([abs(offset) for offset in offsets])
    if played < expected:
        outcome.notes.append(f"{expected - played} notes missing or off time")
    if wrong:
        outcome.notes.append(f"{wrong} wrong notes")
    if hanging:
        outcome.notes.append(f"notes left hanging: {transcript.unended_notes()}")
    if exceptions:
        outcome.notes.append("exceptions: " + " | ".join(err.strip().splitlines()[-3:]))
    if code != scenario.exit_code:
        outcome.notes.append(f"exit code {code}, expected {scenario.exit_code}: {err.strip()[-300:]}")
    if scenario.exit_code and err.strip().count("\n"):
        outcome.notes.append(f"more than one line on stderr: {err.strip()[-300:]}")
    if scenario.on_grid:  # against the DAW's own ticks, whatever the notes are: a wrong note is timed too
        steps = [t + path for t in ticks[::TICKS_PER_STEP] if t is not None]
        outcome.grid_error_ms = percentiles_ms([min(abs(when - step) for step in steps[max(0, k - 1):k + 1])
                                                for when, k in ((w, bisect.bisect(steps, w)) for w, _, _ in received
                                                                if not excused_at(w - path))])
    outcome.troubles = len(transcript.troubles)
    if transcript.troubles:
        outcome.notes.append(f"JACK itself lost time ({transcript.xruns} xruns, {transcript.late} events late): "
                             f"notes within {TROUBLE_S * 1000:.0f} ms of those not judged")
    outcome.ok = (played == expected and not wrong and not hanging and not exceptions and code == scenario.exit_code
                  and not (scenario.exit_code and err.strip().count("\n")))
    return outcome


def _start_server(realtime=False):
    """A JACK dummy server of its own, real-time (as jackd runs by default) or not: (process, name, path of its
    log). Each kind has one fixed name: JACK keeps eight server slots and frees a dead server's slot only for a
    server of the same name, so a name per run would use them up."""
    name = "deepbeat-faults-rt" if realtime else "deepbeat-faults"
    mode = ["--realtime"] if realtime else ["--no-realtime"]
    descriptor, log_path = tempfile.mkstemp(prefix="deepbeat-jackd-", suffix=".log")
    with os.fdopen(descriptor, "w") as log:
        process = subprocess.Popen(["jackd", "-n", name, *mode, "-d", "dummy", "-r", str(OWN_RATE), "-p",
                                    str(OWN_PERIOD), "-C", "0", "-P", "0"], stdout=log, stderr=subprocess.STDOUT)
    waited = subprocess.run(["jack_wait", "-w", "-s", name, "-t", "10"], capture_output=True)
    if waited.returncode:
        process.kill()
        process.wait()
        os.unlink(log_path)
        raise DeepBeatError(f"a JACK server of the fault suite's own ({name}) did not start")
    return process, name, log_path


def xrun_causes(log, bridge_client):
    """What a JACK server's log blames its xruns on: the driver waking late (the machine's timer, no client's
    doing), and per client, how often it had not finished its cycle in time: still running its callback (its
    own doing) or not yet run (waiting for the machine, or a client before it in the graph)."""
    causes = {"driver_woke_late": log.count("JackTimedDriver::Process XRun"),
              "bridge_running": 0, "bridge_not_yet_run": 0, "daw_running": 0, "daw_not_yet_run": 0}
    for match in re.finditer(r"client = (.+?) was not finished, state = (\w+)", log):
        who = "bridge" if match.group(1).startswith(bridge_client) else "daw"
        causes[f"{who}_{'running' if match.group(2) == 'Running' else 'not_yet_run'}"] += 1
    return causes


# --- the suite ---------------------------------------------------------------------------


def table(outcomes):
    """The outcomes as a Markdown table."""
    lines = ["| scenario | covers | notes expected | notes played | wrong notes | hanging notes | exceptions | "
             "exit code | clock corrections said | clean |", "|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        hanging = "n/a (server gone)" if o.hanging is None else o.hanging
        lines.append(f"| {o.name} | {o.covers} | {o.expected} | {o.played} | {o.wrong} | {hanging} | {o.exceptions} | "
                     f"{o.exit_code} | {o.clock} | {'yes' if o.ok else 'NO'}{': ' if o.notes else ''}"
                     f"{'; '.join(o.notes)} |")
    return "\n".join(lines)


def run_suite(model=None, soak_minutes=1.0, only=None, out=None, load=True, realtime_server=False, log=print):
    """Run the scenarios (those whose name contains `only`, if given) and the soak with the other core
    busy; print the table and write the JSON to `out`. Returns the outcomes. With `realtime_server` every
    scenario runs on a real-time JACK server of the suite's own, as the soak does."""
    scenarios = [replace(s, realtime_server=s.realtime_server or realtime_server)
                 for s in SCENARIOS if not only or only.lower() in s.name.lower()]
    outcomes = []
    for scenario in scenarios:
        log(f"{scenario.name} ...")
        outcomes.append(run_scenario(scenario, model))
        log(f"  {'clean' if outcomes[-1].ok else 'NOT CLEAN: ' + '; '.join(outcomes[-1].notes)}")
    if soak_minutes > 0 and (not only or only.lower() in "soak"):
        log(f"soak, {soak_minutes:g} min ...")
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load else None
        try:
            outcomes.append(run_scenario(soak(soak_minutes), model))
        finally:
            if busy:
                busy.kill()
                busy.wait()
    text = table(outcomes)
    log(text)
    if out:
        results = {
            "benchmark": "faults",
            "command": "deepbeat bench faults " + " ".join(sys.argv[3:]),
            "machine": machine(),
            "model": model or "shipped default",
            "tolerance_ms": TOLERANCE_S * 1000,
            "realtime_server": realtime_server,
            "all_clean": all(o.ok for o in outcomes),
            "scenarios": [o.__dict__ for o in outcomes],
        }
        write_results(out, results, log)
    return outcomes
