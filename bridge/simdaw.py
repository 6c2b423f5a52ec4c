"""A simulated DAW for benchmarks and tests: a scripted clock and drummer on JACK, sample-accurate.

One JACK client plays a script (MIDI messages at seconds from its start) into a bridge's
`DeepBeat In`, each at its exact frame, and records what arrives from its `DeepBeat Out` with
its exact frame. Not part of the live bridge: `deepbeat bench bridge`, `deepbeat bench faults`
and the real-port tests drive the bridge process with it.

The two clients form a loop (DAW -> bridge -> DAW), which JACK breaks by handing the bridge's
output to the DAW one cycle later. A note the bridge sends on a tick therefore comes back two
periods after that tick (the bridge's one-period output latency, then the loop's cycle): the
"two-period path" every answer is measured against.
"""
import collections
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import (
    ALL_NOTES_OFF, CLOCK, CONTROL_CHANGE, DRUM_CHANNEL, NOTE_OFF, NOTE_ON, START, STATUS_KIND, STOP, note_off, note_on,
)

from .clock import TICKS_PER_STEP
from .jackclient import FrameClock, close_client, frames_after, open_client
from .live import MAIN_PRIORITY, drop_realtime, request_realtime
from .tempofit import interval_of_bpm
from .transport import DEFAULT_IN, DEFAULT_OUT

# One bar of kick (1, 3), snare (2, 4) and closed hat on 8ths, GM notes: {step: [(note, velocity)]}
BACK_BEAT = {s: [(42, 70)] + [(36, 110)] * (s in (0, 8)) + [(38, 95)] * (s in (4, 12)) for s in range(0, 16, 2)}
FILL = {12: [(38, 80)], 13: [(38, 90)], 14: [(38, 100)], 15: [(38, 110)]}  # played to make continuous re-prime
HIT_LENGTH_S = 0.02  # each drum hit the DAW plays is ended this much later
LEAD_IN_S = 0.2  # the script starts this long after `perform` is called


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


def clock_script(tempo_map, patterns=None, start_at=0.1, stop=True):
    """A DAW playing: Start at 0 s, clock ticks from `start_at` following `tempo_map` ((bars, bpm) pairs),
    patterns[bar] = {step: [(note, velocity)]} on their ticks (each hit ended HIT_LENGTH_S later), and
    Stop just after the last tick. Returns (events, tick_times): events are (seconds, bytes) in time
    order, tick_times the time of every tick by song position."""
    tick_times = []
    now = start_at
    for bars, bpm in tempo_map:
        for _ in range(bars * STEPS_PER_BAR * TICKS_PER_STEP):
            tick_times.append(now)
            now += interval_of_bpm(bpm)
    events = [(0.0, [START])] + [(t, [CLOCK]) for t in tick_times]
    bars = len(tick_times) // (STEPS_PER_BAR * TICKS_PER_STEP)
    for bar, pattern in (patterns or {}).items():
        for step, notes in pattern.items() if bar < bars else ():
            when = tick_times[(bar * STEPS_PER_BAR + step) * TICKS_PER_STEP]
            for note, velocity in notes:
                events += [(when, note_on(DRUM_CHANNEL, note, velocity)),
                           (when + HIT_LENGTH_S, note_off(DRUM_CHANNEL, note))]
    if stop:
        events.append((tick_times[-1] + 0.001, [STOP]))
    return sorted(events, key=lambda event: event[0]), tick_times


@dataclass
class Transcript:
    """One simulated-DAW run: the script played and what came back, in seconds from the script's start."""

    period_s: float
    played: list = field(default_factory=list)  # (seconds, bytes) sent to the bridge
    received: list = field(default_factory=list)  # (seconds, bytes) from the bridge
    late: int = 0  # events the DAW itself wrote after their frame (JACK ran it late)
    xruns: int = 0  # xruns JACK reported to the DAW during the run
    troubles: list = field(default_factory=list)  # seconds at which JACK itself lost time (xruns, late events)

    def note_ons(self):
        """(seconds, note, velocity) of every note-on received."""
        return [(t, m[1], m[2]) for t, m in self.received
                if len(m) == 3 and m[0] & STATUS_KIND == NOTE_ON and m[2] > 0]

    def unended_notes(self):
        """Notes switched on and never off (by a note-off or All Notes Off)."""
        sounding = set()
        for _, message in self.received:
            kind = message[0] & STATUS_KIND
            if kind == NOTE_ON and len(message) == 3 and message[2] > 0:
                sounding.add(message[1])
            elif kind == NOTE_OFF or (kind == NOTE_ON and len(message) == 3):
                sounding.discard(message[1])
            elif kind == CONTROL_CHANGE and message[1:2] == bytes([ALL_NOTES_OFF]):
                sounding.clear()
        return sorted(sounding)

    def all_notes_off_after(self, seconds):
        return any(t >= seconds and m[0] & STATUS_KIND == CONTROL_CHANGE and m[1:2] == bytes([ALL_NOTES_OFF])
                   for t, m in self.received)


class SimulatedDaw:
    """A DAW on JACK: one client that plays scripts into the bridge's `DeepBeat In` at their exact frames and
    records what arrives from its `DeepBeat Out`."""

    def __init__(self, bridge_client, name="Simulated DAW", server=None):
        self.bridge_client = bridge_client
        self._client = client = open_client(name, server)
        self._to = client.midi_outports.register("to DeepBeat")
        self._from = client.midi_inports.register("from DeepBeat")
        self._clock = FrameClock(client)
        self.period_s = client.blocksize / client.samplerate
        self._script = ()  # (frame, bytes) in time order, written by the process callback
        self._next = 0
        self._received = collections.deque()  # (frame, bytes)
        self._late = self._xruns = 0
        self._troubles = []  # perf_counter times of xruns and late events
        client.set_process_callback(self._process)
        client.set_xrun_callback(self._on_xrun)
        client.activate()

    def _on_xrun(self, delay_us):
        self._xruns += 1
        self._troubles.append(time.perf_counter())

    def connect(self, timeout=30.0):
        """Wait for the bridge's ports to appear, then connect to them; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wanted_in, wanted_out = (self._bridge_port(DEFAULT_IN), self._bridge_port(DEFAULT_OUT))
            if wanted_in and wanted_out:
                try:  # the ports exist before their client is active, and cannot be connected till then
                    if not self._to.is_connected_to(wanted_in):
                        self._client.connect(self._to, wanted_in)
                    self._client.connect(wanted_out, self._from)
                except Exception:
                    time.sleep(0.05)
                    continue
                time.sleep(0.2)  # let the connections settle before the first message
                return True
            time.sleep(0.05)
        return False

    def _bridge_port(self, port):
        """The full name of the bridge's port `port` (its client may carry a JACK suffix, as rtmidi's do), or None."""
        names = [p.name for p in self._client.get_ports(is_midi=True)]
        ours = [n for n in names if n.split(":")[0] in (self.bridge_client, *(f"{self.bridge_client}-{k:02d}"
                                                                            for k in range(1, 10)))
                and n.endswith(f":{port}")]
        return ours[0] if len(ours) == 1 else None

    def perform(self, events, tail=0.4, actions=()):
        """Play `events` ((seconds, bytes) in time order) and return the Transcript. `actions` are
        (seconds, callable) run from this thread at those moments of the script (e.g. signals to the bridge)."""
        # JACK's thread takes the GIL: this one must not be held up, nor above a JACK server that is not real-time
        realtime = self._client.realtime and request_realtime(MAIN_PRIORITY)
        try:
            return self._perform(events, tail, actions)
        finally:
            if realtime:
                drop_realtime()

    def _perform(self, events, tail, actions):
        rate = self._clock.rate
        self._received.clear()
        self._late = self._xruns = 0
        self._troubles = []
        start = (self._client.frame_time + round(LEAD_IN_S * rate)) % (1 << 32)
        self._next = 0
        self._script = [((start + round(t * rate)) % (1 << 32), bytes(data)) for t, data in events]
        begun = time.perf_counter() + LEAD_IN_S
        for at, action in sorted(actions, key=lambda a: a[0]):
            sleep_until(begun + at)
            action()
        sleep_until(begun + (events[-1][0] if events else 0.0) + tail)
        while self._next < len(self._script):  # a stalled server: wait a little for the rest to go out
            if time.perf_counter() > begun + events[-1][0] + tail + 5:
                break
            time.sleep(0.05)
        self._script = ()
        received = [(frames_after(frame, start) / rate, data) for frame, data in list(self._received)]
        troubles = [t - begun for t in self._troubles]
        return Transcript(self.period_s, [(t, bytes(d)) for t, d in events], received, self._late, self._xruns,
                          troubles)

    def _process(self, frames):
        try:
            clock = self._clock
            clock.cycle()
            out = self._to
            out.clear_buffer()
            script = self._script
            while self._next < len(script) and frames_after(script[self._next][0], clock.start) < frames:
                frame, data = script[self._next]
                offset = frames_after(frame, clock.start)
                if offset < 0:
                    self._late += 1
                    self._troubles.append(time.perf_counter())
                out.write_midi_event(max(offset, 0), data)
                self._next += 1
            for offset, event in self._from.incoming_midi_events():
                self._received.append(((clock.start + offset) % (1 << 32), bytes(event)))
        except Exception:  # never into JACK's thread
            pass

    def client_names(self):
        """The JACK clients that have a port, by name."""
        return {p.name.split(":")[0] for p in self._client.get_ports()}

    def close(self):
        close_client(self._client)


def start_bridge_process(client_name, model=None, extra=(), backend="jack", **popen):
    """`deepbeat bridge` as a process of its own, with its output captured (unless `popen` says otherwise)."""
    command = [sys.executable, "-m", "deepbeat", "bridge", "--backend", backend, "--client-name", client_name,
               "--seed", "1", *(["--model", str(model)] if model else []), *extra]
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen(command, **popen)


def stop_bridge_process(process, timeout=10.0, signals=(signal.SIGINT,)):
    """Send `signals` (50 ms apart), then wait; returns (exit code, stdout, stderr)."""
    for k, number in enumerate(signals):
        if k:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(number)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out or "", err or ""
