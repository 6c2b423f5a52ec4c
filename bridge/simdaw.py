"""A simulated DAW for benchmarks and tests: clock master and drummer on real MIDI ports.

It sends Start, clock and drum hits to a bridge's `DeepBeat In`, records what comes back from
its `DeepBeat Out`, and times the MIDI system alone on a loopback port. Not part of the live
bridge: `deepbeat bench bridge` and the real-port tests drive the bridge process with it.
"""
import queue
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import (
    ALL_NOTES_OFF, CLOCK, CONTROL_CHANGE, DRUM_CHANNEL, NOTE_OFF, NOTE_ON, START, STATUS_KIND, STOP, note_off,
    note_on,
)

from .clock import TICKS_PER_STEP, interval_of_bpm
from .transport import DEFAULT_IN, DEFAULT_OUT, find_port, midi_client

# One bar of kick (1, 3), snare (2, 4) and closed hat on 8ths, GM notes: {step: [(note, velocity)]}
BACK_BEAT = {s: [(42, 70)] + [(36, 110)] * (s in (0, 8)) + [(38, 95)] * (s in (4, 12)) for s in range(0, 16, 2)}
FILL = {12: [(38, 80)], 13: [(38, 90)], 14: [(38, 100)], 15: [(38, 110)]}  # played to make continuous re-prime


def percentiles_ms(seconds):
    """p50/p99/max (and count) of durations in seconds, in milliseconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1000
    if values.size == 0:
        return {"count": 0}
    return {"count": int(values.size), "p50": round(float(np.percentile(values, 50)), 4),
            "p99": round(float(np.percentile(values, 99)), 4), "max": round(float(values.max()), 4)}


def sleep_until(moment):
    """Sleep (never spin) until perf_counter reaches `moment`."""
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


@dataclass
class Transcript:
    """One simulated-DAW run: what was sent (tick times, hits) and what came back."""

    bpm: float
    tick_times: list = field(default_factory=list)  # perf_counter when each tick was sent
    played: list = field(default_factory=list)  # (time, note, velocity) sent to the bridge
    received: list = field(default_factory=list)  # (time, message bytes) from the bridge
    jack_alone: list = field(default_factory=list)  # per tick, seconds through the MIDI system alone (loopback)
    jack_alone_lost: int = 0  # loopback ticks that never came back
    stop_time: float = None

    def answer_notes(self):
        """Received note-ons as (step, timing error in seconds after its tick, note, velocity).

        Each note belongs to the step whose tick went out nearest to its arrival (a note sent
        early by --latency-offset-ms can arrive before the tick).
        """
        notes = []
        for arrival, message in self.received:
            if len(message) == 3 and message[0] & STATUS_KIND == NOTE_ON and message[2] > 0:
                step = self._nearest_step(arrival)
                notes.append((step, arrival - self.tick_times[step * TICKS_PER_STEP], message[1], message[2]))
        return notes

    def unended_notes(self):
        """Notes switched on and never off (by a note-off or All Notes Off)."""
        sounding = set()
        for _, message in self.received:
            kind = message[0] & STATUS_KIND
            if kind == NOTE_ON and len(message) == 3 and message[2] > 0:
                sounding.add(message[1])
            elif kind == NOTE_OFF or (kind == NOTE_ON and len(message) == 3):
                sounding.discard(message[1])
            elif kind == CONTROL_CHANGE and message[1:2] == [ALL_NOTES_OFF]:
                sounding.clear()
        return sorted(sounding)

    def all_notes_off_after_stop(self):
        return any(t >= self.stop_time and m[0] & STATUS_KIND == CONTROL_CHANGE and m[1:2] == [ALL_NOTES_OFF]
                   for t, m in self.received)

    def text(self, period_s=None):
        """A human-readable transcript: the beat played, the notes that came back and their timing errors."""
        lines = [f"simulated DAW: Start, clock at {self.bpm:g} BPM, {len(self.tick_times)} ticks, then Stop"]
        lines.append("played (step: note/velocity):")
        by_step = {}
        for when, note, velocity in self.played:
            by_step.setdefault(self._nearest_step(when), []).append(f"{note}/{velocity}")
        lines += [f"  step {s:3d}: {' '.join(v)}" for s, v in sorted(by_step.items())]
        lines.append("came back (step: note/velocity, ms after its tick):")
        answer = {}
        for step, error, note, velocity in self.answer_notes():
            answer.setdefault(step, []).append(f"{note}/{velocity} {error * 1000:+.2f}")
        lines += [f"  step {s:3d}: {' '.join(v)}" for s, v in sorted(answer.items())]
        errors = [e for _, e, _, _ in self.answer_notes()]
        summary = percentiles_ms(errors)
        summary["min"] = round(float(min(errors)) * 1000, 4) if errors else None
        lines.append(f"timing error ms: {summary}" + (f" (JACK period {period_s * 1000:.2f} ms)" if period_s else ""))
        lines.append(f"JACK alone, port to port, during the run, ms: {percentiles_ms(self.jack_alone)}"
                     + (f", {self.jack_alone_lost} lost" if self.jack_alone_lost else ""))
        lines.append(f"notes left hanging: {self.unended_notes() or 'none'}; "
                     f"All Notes Off after Stop: {'yes' if self.all_notes_off_after_stop() else 'no'}")
        return "\n".join(lines)

    def _nearest_step(self, when):
        step_times = np.asarray(self.tick_times[::TICKS_PER_STEP])
        return int(np.abs(step_times - when).argmin())


class SimulatedDaw:
    """A DAW on JACK (or another rtmidi backend): sends Start, clock and drum hits to the bridge's
    `DeepBeat In`, and records what arrives from its `DeepBeat Out`."""

    def __init__(self, bridge_client, backend="jack", name="Simulated DAW"):
        self.bridge_client = bridge_client
        self.backend = backend
        self._out = midi_client("MidiOut", backend, name)
        self._in = midi_client("MidiIn", backend, name)
        self._in.ignore_types(sysex=True, timing=False, active_sense=True)
        self._inbox = queue.Queue()
        put, clock = self._inbox.put_nowait, time.perf_counter
        self._in.set_callback(lambda event, _data: put((clock(), event[0])))
        # a port wired back to ourselves: every tick also takes this path, timing the MIDI system alone
        self._loop_out = midi_client("MidiOut", backend, name + " loopback")
        self._loop_out.open_virtual_port("loopback")
        self._loop_in = midi_client("MidiIn", backend, name + " loopback")
        names = self._loop_in.get_ports()
        self._loop_in.open_port(names.index(next(n for n in names if n.startswith(name + " loopback")
                                                 and n.endswith(":loopback"))))
        self._loop_in.ignore_types(timing=False)
        self._loop_arrivals = queue.Queue()
        self._loop_in.set_callback(lambda event, _data: self._loop_arrivals.put_nowait(clock()))

    def connect(self, timeout=30.0):
        """Wait for the bridge's ports to appear, then connect to them; False on timeout."""
        deadline = time.monotonic() + timeout
        wanted_in, wanted_out = f"{self.bridge_client}:{DEFAULT_IN}", f"{self.bridge_client}"
        while time.monotonic() < deadline:
            inputs = [p for p in self._out.get_ports() if p == wanted_in]
            outputs = [p for p in self._in.get_ports() if p.startswith(wanted_out) and p.endswith(":" + DEFAULT_OUT)]
            if inputs and outputs:
                self._out.open_port(find_port(self._out.get_ports(), inputs[0], "bridge input"), "to DeepBeat")
                self._in.open_port(find_port(self._in.get_ports(), outputs[0], "bridge output"), "from DeepBeat")
                time.sleep(0.2)  # let the connections settle before the first message
                return True
            time.sleep(0.1)
        return False

    def perform(self, bpm, bars, patterns, lead_in=0.1, tail=0.4):
        """Start, `bars` bars of clock, patterns[bar] = {step: [(note, velocity)]} played on
        their ticks (each hit ended 20 ms later), Stop; returns the Transcript."""
        transcript = Transcript(bpm)
        interval = interval_of_bpm(bpm)
        send, loop = self._out.send_message, self._loop_out.send_message
        send([START])
        start = time.perf_counter() + lead_in
        offs = []
        for tick in range(bars * STEPS_PER_BAR * TICKS_PER_STEP):
            sleep_until(start + tick * interval)
            send([CLOCK])
            loop([CLOCK])
            now = time.perf_counter()
            transcript.tick_times.append(now)
            while offs and offs[0][0] <= now:
                send(note_off(DRUM_CHANNEL, offs.pop(0)[1]))
            if tick % TICKS_PER_STEP == 0:
                step = tick // TICKS_PER_STEP
                for note, velocity in patterns.get(step // STEPS_PER_BAR, {}).get(step % STEPS_PER_BAR, []):
                    send(note_on(DRUM_CHANNEL, note, velocity))
                    transcript.played.append((now, note, velocity))
                    offs.append((now + 0.02, note))
        for _, note in offs:
            send(note_off(DRUM_CHANNEL, note))
        send([STOP])
        transcript.stop_time = time.perf_counter()
        time.sleep(tail)
        transcript.received = [self._inbox.get_nowait() for _ in range(self._inbox.qsize())]
        looped = [self._loop_arrivals.get_nowait() for _ in range(self._loop_arrivals.qsize())]
        transcript.jack_alone = [after - before for before, after in zip(transcript.tick_times, looped)]
        transcript.jack_alone_lost = len(transcript.tick_times) - len(looped)
        return transcript

    def close(self):
        for port in (self._in, self._out, self._loop_in, self._loop_out):
            port.close_port()
            port.delete()


def start_bridge_process(client_name, model=None, extra=(), backend="jack"):
    """`deepbeat bridge` as a process of its own, with its output captured."""
    command = [sys.executable, "-m", "deepbeat", "bridge", "--backend", backend, "--client-name", client_name,
               "--seed", "1", *(["--model", str(model)] if model else []), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_bridge_process(process, timeout=10.0):
    """SIGINT, then wait; returns (exit code, stdout, stderr)."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def jack_period_s():
    """The JACK server's period in seconds (buffer size / sample rate), or None."""
    try:
        size = subprocess.run(["jack_bufsize"], capture_output=True, text=True, timeout=5).stdout
        rate = subprocess.run(["jack_samplerate"], capture_output=True, text=True, timeout=5).stdout
        return int(size.split()[-1]) / int(rate.split()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
