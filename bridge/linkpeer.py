"""A test "DAW" on Ableton Link, and a session of it with the bridge: the Link tests and benchmark.

Link finds its peers by multicast on every network interface, so a test must never enable it where
a real network is reachable: `run_isolated` runs a session in a network namespace of its own with
only loopback (`unshare -n`, then loopback up with multicast on), and `play_session` refuses to
enable Link anywhere else. In there, the peer (a Link of its own, with start/stop sync) and the
bridge (built as `deepbeat bridge --clock link` builds it, on an in-memory transport that keeps
the moment of every message) share a session: the peer starts on a bar line, the user's beat is
played in, the peer changes tempo, stops and starts again; every tick and note the bridge sent
is then placed on the peer's own beat timeline, which it sampled every millisecond.
"""
import bisect
import datetime
import json
import math
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np

from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import CLOCK, DRUM_CHANNEL, NOTE_ON, STATUS_KIND, STOP, note_on
from deepbeat.runtime.steering import Feel

from .linkclock import MINUTE_S, QUANTUM, open_link
from .simdaw import BACK_BEAT, Transcript, percentiles_ms, sleep_until
from .tempofit import TICKS_PER_QUARTER

NAMESPACE_SETUP = 'ip link set lo up && ip link set lo multicast on && exec "$@"'
SAMPLE_PERIOD_S = 0.001  # how often the peer reads its own beat timeline
ON_TIME_S = 0.001  # a tick this close to the peer's timeline is on it
STEPS_PER_BEAT = STEPS_PER_BAR // QUANTUM


class LoopbackUnavailable(DeepBeatError):
    """No network namespace with only loopback can be made here (unshare or ip missing, or not permitted)."""


def only_loopback():
    """Whether loopback is the only network interface this process can reach."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run_isolated(settings, timeout=120):
    """`play_session(**settings)` in a network namespace of its own with only loopback; its figures.
    LoopbackUnavailable when no such namespace can be made here."""
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        raise LoopbackUnavailable(f"a loopback-only network namespace needs {' and '.join(missing)} "
                                  "(util-linux, iproute2)")
    command = ["unshare", "-n", "sh", "-c", NAMESPACE_SETUP, "sh", sys.executable, "-m", __name__,
               json.dumps(settings)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode and not result.stdout.strip():
        error = (result.stderr.strip().splitlines() or ["no output"])[-1]
        if "unshare" in error or "Operation not permitted" in error:
            raise LoopbackUnavailable(f"cannot make a loopback-only network namespace: {error}")
        raise DeepBeatError(f"the Link session failed: {result.stderr.strip()[-600:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class LinkPeer:
    """The test DAW: a Link peer with start/stop sync and a quantum of 4 that samples its own beat timeline
    (perf_counter time, beat, tempo) every millisecond on a thread of its own."""

    def __init__(self, bpm):
        self.link = open_link(bpm)
        self.link.quantum = QUANTUM
        self.link.start_stop_sync_enabled = True
        self.link.enabled = True
        self._times, self._samples = [], []  # the sample times, and (beat, tempo) at each
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="link-peer")
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(SAMPLE_PERIOD_S):
            before, beat, tempo, after = time.perf_counter(), self.link.beat, self.link.tempo, time.perf_counter()
            self._times.append((before + after) / 2)
            self._samples.append((beat, tempo))

    def beat_at(self, moment):
        """(beat, tempo) of the peer's timeline at perf_counter `moment`, from the sample before it."""
        index = max(bisect.bisect_right(self._times, moment) - 1, 0)
        beat, tempo = self._samples[index]
        return beat + (moment - self._times[index]) * tempo / MINUTE_S, tempo

    def time_of(self, beat):
        """When the timeline reaches `beat`, at the tempo now (perf_counter seconds)."""
        before, now_beat, after = time.perf_counter(), self.link.beat, time.perf_counter()
        return (before + after) / 2 + (beat - now_beat) * MINUTE_S / self.link.tempo

    def start_on_next_bar(self, lead_beats=0.25):
        """Press Play as a DAW on Link does: playing from the next bar line (at least `lead_beats` away, the
        time the other peers have to hear of it); its perf_counter time and its beat."""
        beat, tempo, link_now = self.link.beat, self.link.tempo, self.link.time
        bar = math.ceil((beat + lead_beats) / QUANTUM) * QUANTUM
        # Link maps the beat to the first time at or after `at` in phase with it: just before the bar line, so
        # that the microseconds between reading the beat and the time never push it a bar on
        at = link_now + datetime.timedelta(seconds=(bar - beat) * MINUTE_S / tempo - ON_TIME_S)
        self.link.set_is_playing_and_request_beat_at_time(True, at, bar)
        return self.time_of(bar), bar

    def stop(self):
        """Press Stop; its perf_counter time."""
        self.link.playing = False
        return time.perf_counter()

    def set_tempo(self, bpm):
        """A new tempo from now on; its perf_counter time."""
        self.link.tempo = bpm
        return time.perf_counter()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.link.enabled = False


def play_session(model=None, bpm=120.0, new_bpm=140.0, bars=3, seed=0):
    """The bridge and a LinkPeer in one session: Play, the user's beat in the first bar, `bars` bars, a tempo
    change to `new_bpm` in the middle of a bar, `bars` more, Stop, Play again, a bar, Stop. Its figures."""
    if not only_loopback():
        raise DeepBeatError("Link tests run only in a network namespace with nothing but loopback (run_isolated)")
    from .assembly import BridgeOptions, build_bridge
    from .transport import MemoryTransport

    peer = LinkPeer(bpm)
    transport, inbox, stop = MemoryTransport(), queue.Queue(), threading.Event()
    options = BridgeOptions(model=model, mode="continuous", seed=seed, link=True, master_bpm=bpm,
                            feel=Feel(humanize=0.0))
    bridge = build_bridge(options, transport, None, inbox)
    runner = threading.Thread(target=bridge.run, args=(stop,), name="bridge")
    runner.start()
    events = {}
    try:
        deadline = time.monotonic() + 10
        while bridge.scheduler.master.peers < 1 or not transport.opened:
            if time.monotonic() > deadline:
                raise DeepBeatError("the bridge never saw the peer in the Link session")
            time.sleep(0.01)
        time.sleep(0.2)
        events["start"], first_bar = peer.start_on_next_bar()
        beat_s = MINUTE_S / bpm
        for step, notes in sorted(BACK_BEAT.items()):  # the user's beat, in the first bar
            moment = events["start"] + step / STEPS_PER_BEAT * beat_s
            sleep_until(moment)
            for note, velocity in notes:
                transport.inject(note_on(DRUM_CHANNEL, note, velocity), moment)
        sleep_until(peer.time_of(first_bar + QUANTUM * bars + 1.5))  # half way through a beat
        events["tempo"] = peer.set_tempo(new_bpm)
        sleep_until(peer.time_of(first_bar + QUANTUM * (2 * bars + 1) + 0.3))
        events["stop"] = peer.stop()
        time.sleep(0.5)
        events["restart"], second_bar = peer.start_on_next_bar()
        sleep_until(peer.time_of(second_bar + QUANTUM) + 0.01)
        events["stop again"] = peer.stop()
        time.sleep(0.3)
        shared = {"peer_bpm": round(peer.link.tempo, 6), "bridge_bpm": round(bridge.scheduler.master.bpm, 6)}
    finally:
        stop.set()
        runner.join(10)
        peer.close()
    return {**judge(peer, transport.sent, events, new_bpm), **shared,
            "tick_to_send_ms": percentiles_ms(bridge.scheduler.stats.latencies),
            "notes_sent": bridge.scheduler.stats.notes_sent}


def followed_from(ticks):
    """The first of (time, error) ticks from which a whole beat of ticks lies on the peer's new timeline: where
    the bridge took up the new tempo (one tick made late by the machine after that is not a lost tempo, and
    tick_error_ms reports it); None if it never did."""
    beat = TICKS_PER_QUARTER
    on_time = [error <= ON_TIME_S for _, error in ticks]
    return next((t for i, (t, _) in enumerate(ticks[:len(ticks) - beat + 1]) if all(on_time[i:i + beat])), None)


def judge(peer, sent, events, new_bpm):
    """The bridge's messages placed on the peer's timeline: its figures."""
    def off_grid(moment, per_beat):
        """Seconds from `moment` to the nearest 1/per_beat of a beat on the peer's timeline."""
        beat, tempo = peer.beat_at(moment)
        return (beat * per_beat - round(beat * per_beat)) / per_beat * MINUTE_S / tempo

    ticks = [t for t, m in sent if m == (CLOCK,)]
    notes = [t for t, m in sent if m[0] & STATUS_KIND == NOTE_ON and m[2] > 0]
    stops = [t for t, m in sent if m == (STOP,)]
    tick_errors = [abs(off_grid(t, TICKS_PER_QUARTER)) for t in ticks]
    first_ticks = [next(t for t in ticks if t >= events[name] - ON_TIME_S) for name in ("start", "restart")]
    after_change = [(t, e) for t, e in zip(ticks, tick_errors) if t > events["tempo"]]
    following_from = followed_from(after_change)
    intervals = np.diff([t for t, _ in after_change if t < events["stop"]])
    return {
        "notes": len(notes),
        "note_error_ms": percentiles_ms([abs(off_grid(t, STEPS_PER_BEAT)) for t in notes]),
        "tick_error_ms": percentiles_ms(tick_errors),
        "first_tick_from_bar_line_beats": [round(abs((peer.beat_at(t)[0] + QUANTUM / 2) % QUANTUM - QUANTUM / 2), 6)
                                           for t in first_ticks],
        "start_follow_ms": [round((t - events[name]) * 1000, 3) for t, name in zip(first_ticks, ("start", "restart"))],
        "tempo_follow_ms": None if following_from is None else round((following_from - events["tempo"]) * 1000, 3),
        "bpm_after_change": round(float(MINUTE_S / TICKS_PER_QUARTER / np.median(intervals)), 3),
        "new_bpm": new_bpm,
        "stop_follow_ms": [round((next(t for t in stops if t >= events[name]) - events[name]) * 1000, 3)
                           for name in ("stop", "stop again")],
        "hanging_notes": Transcript(0.0, received=[(t, bytes(m)) for t, m in sent]).unended_notes(),
    }


if __name__ == "__main__":  # run_isolated's child, inside the namespace: the figures as one line of JSON
    print(json.dumps(play_session(**json.loads(sys.argv[1]))), flush=True)
