"""`deepbeat bench bridge`: tick-to-send latency in process and end to end through JACK."""
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import CLOCK, DRUM_CHANNEL, START, STOP, note_on

from .assembly import BridgeOptions, build_bridge
from .clock import TICKS_PER_STEP, interval_of_bpm
from .simdaw import (
    BACK_BEAT, FILL, SimulatedDaw, jack_period_s, percentiles_ms, sleep_until, start_bridge_process,
    stop_bridge_process,
)
from .transport import MemoryTransport

GOALS_MS = {"p99": 1.0, "max": 3.0}  # issue 5: p99 <= 1 ms and max <= 3 ms in process, zero missed steps


def _in_process(seconds, bpm, model, realtime, log):
    """Drive the CLI-built bridge over a MemoryTransport with real threads; returns its figures."""
    from .live import request_realtime
    options = BridgeOptions(model=model, mode="continuous", seed=0, realtime=realtime)
    inbox = queue.Queue()
    transport = MemoryTransport()
    bridge = build_bridge(options, transport, None, inbox)
    stop = threading.Event()
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(bridge.run(stop)), name="bridge")
    runner.start()
    while not transport.opened:
        time.sleep(0.01)
    interval = interval_of_bpm(bpm)
    ticks = int(seconds / interval)
    lateness = []
    if realtime:
        request_realtime()  # this thread plays the MIDI system's input thread, which runs real-time under JACK
    transport.inject([START])
    start = time.perf_counter() + 0.05
    for tick in range(ticks):
        target = start + tick * interval
        sleep_until(target)
        transport.inject([CLOCK])
        lateness.append(time.perf_counter() - target)
        bar, step = divmod(tick // TICKS_PER_STEP, STEPS_PER_BAR)
        pattern = BACK_BEAT if bar == 0 else FILL if bar % 4 == 3 else {}
        if tick % TICKS_PER_STEP == 0:
            for note, velocity in pattern.get(step, []):
                transport.inject(note_on(DRUM_CHANNEL, note, velocity))
        if tick % (TICKS_PER_STEP * STEPS_PER_BAR * 16) == 0 and tick:
            log(f"  {tick * interval:6.0f} s: {bridge.scheduler.stats.steps_played} steps played")
    transport.inject([STOP])
    time.sleep(0.1)
    stop.set()
    runner.join(10)
    stats = bridge.scheduler.stats
    return {
        "seconds": round(ticks * interval, 1), "bpm": bpm, "mode": "continuous (re-primed every 4th bar)",
        "ticks": stats.ticks, "steps_played": stats.steps_played, "steps_missed": stats.steps_missed,
        "missed_steps_as_bar_step": [divmod(step, STEPS_PER_BAR) for step in list(stats.missed)[:20]],
        "notes_sent": stats.notes_sent, "tick_to_send_ms": percentiles_ms(stats.latencies),
        "clock_sender_lateness_ms": percentiles_ms(lateness), "timing_thread_realtime": bridge.realtime,
        "generation_thread_realtime": bridge.generation_realtime,
        "exit_code": outcome[0] if outcome else None,
    }


def _through_jack(seconds, bpm, model, log):
    """The bridge as its own process on JACK, clocked by a SimulatedDaw; None when JACK is unreachable."""
    from deepbeat.errors import DeepBeatError

    try:
        daw = SimulatedDaw("DeepBeatBench")
    except DeepBeatError as error:
        log(f"  JACK: skipped ({error})")
        return None
    process = start_bridge_process("DeepBeatBench", model, ["--mode", "continuous"])
    try:
        if not daw.connect():
            raise RuntimeError("the bridge's JACK ports never appeared")
        bars = max(2, int(seconds / (interval_of_bpm(bpm) * TICKS_PER_STEP * STEPS_PER_BAR)))
        patterns = {bar: BACK_BEAT if bar == 0 else FILL for bar in range(0, bars, 4)}
        transcript = daw.perform(bpm, bars, patterns)
    finally:
        code, out, err = stop_bridge_process(process)
        daw.close()
    errors = [e for _, e, _, _ in transcript.answer_notes()]
    period = jack_period_s()
    loopback = percentiles_ms(transcript.jack_alone)
    summary = [line for line in out.splitlines() if line.startswith("deepbeat bridge: steps")]
    return {
        "seconds": round(len(transcript.tick_times) * interval_of_bpm(bpm), 1), "bpm": bpm,
        "jack_period_ms": round(period * 1000, 3) if period else None,
        "jack_alone_port_to_port_ms": loopback, "jack_alone_lost": transcript.jack_alone_lost,
        "notes_received": len(errors), "tick_sent_to_note_received_ms": percentiles_ms(errors),
        "notes_left_hanging": len(transcript.unended_notes()),
        "all_notes_off_after_stop": transcript.all_notes_off_after_stop(),
        "bridge_summary": summary[-1] if summary else None, "bridge_exit_code": code,
        "bridge_stderr": err.strip().splitlines()[-3:],
    }


def run_benchmark(seconds, normal_seconds, jack_seconds, bpm, model, load, out, log=print):
    """Run the measurements and write the results JSON to `out`."""
    busy = None
    if load:  # keep the other core busy, as a DAW or a synth would
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        log(f"in process: {seconds:g} s at {bpm:g} BPM{' with a busy process' if load else ''}")
        in_process = _in_process(seconds, bpm, model, True, log)
        log(f"  {json.dumps(in_process)}")
        normal = None
        if normal_seconds > 0:
            log(f"in process without real-time scheduling: {normal_seconds:g} s")
            normal = _in_process(normal_seconds, bpm, model, False, log)
            log(f"  {json.dumps(normal)}")
        jack = None
        if jack_seconds > 0:
            log(f"through JACK: {jack_seconds:g} s at {bpm:g} BPM")
            jack = _through_jack(jack_seconds, bpm, model, log)
            if jack:
                log(f"  {json.dumps(jack)}")
    finally:
        if busy:
            busy.kill()
            busy.wait()
    latency = in_process["tick_to_send_ms"]
    results = {
        "benchmark": "bridge",
        "command": "deepbeat bench bridge " + " ".join(sys.argv[3:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": model or "shipped default",
        "other_core_loaded": load,
        "goals": {"in_process_p99_ms": GOALS_MS["p99"], "in_process_max_ms": GOALS_MS["max"], "missed_steps": 0},
        "met": {
            "p99": latency.get("p99", float("inf")) <= GOALS_MS["p99"],
            "max": latency.get("max", float("inf")) <= GOALS_MS["max"],
            "missed_steps": in_process["steps_missed"] == 0,
        },
        "in_process": in_process,
        "in_process_without_realtime": normal,
        "jack": jack,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {out}")
    return results
