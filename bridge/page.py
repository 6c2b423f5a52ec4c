"""The bridge as the live page's LiveSource: what the page shows of a running bridge, and its controls.

The bridge's main thread publishes a snapshot with every view redraw (`publish`); the web server's
threads only hand out the newest one and put the page's controls on the timing thread's inbox as
Controls, next to the MIDI coming in: a page never touches the session from its own threads, and a
CC moved on a controller shows on the page with the next snapshot.
"""
import itertools
import time

import numpy as np

from deepbeat.drums import class_index
from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.runtime.steering import LOCK_GROUPS
from deepbeat.web.controls import settings_json
from deepbeat.web.gridjson import grid_json
from deepbeat.web.live import LIVE_PORT, LiveSource, serve_live
from deepbeat.web.server import LOOPBACK

from .controls import Control
from .session import ANSWER, HOLD, LISTEN, MODES

HISTORY_BARS = 16  # answered bars the page keeps, newest first
LATENCY_WINDOW = 2000  # the newest tick-to-send latencies the page's figures are taken over


def serve_page(bridge, host=LOOPBACK, port=LIVE_PORT):
    """Serve the live page of `bridge` (a Bridge, which then publishes to it); the running LiveServer."""
    scheduler = bridge.scheduler
    bridge.page = BridgePage(scheduler, bridge.inbox, scheduler.session.composer.sampler.encoding.styles)
    return serve_live(bridge.page, host, port)


class BridgePage(LiveSource):
    """The live page's view of a Bridge: `publish(bridge)` from its main thread, the rest from the server's."""

    def __init__(self, scheduler, inbox, styles):
        self.note_map = scheduler.note_map
        self._inbox = inbox
        self._styles = list(styles)
        self._history = []  # {"id", "bar", "grid"}: answered bars as played, newest first (objects kept)
        self._shown_bar = None  # (bar, state, grid json) of the bar last published
        self._locks = frozenset()
        self._published = None
        self.publish(scheduler)

    def describe(self):
        return {"title": "DeepBeat live", "styles": self._styles, "modes": list(MODES)}

    def snapshot(self):
        return self._published

    def apply(self, name, value):
        if name == "lock":  # the page toggles a group; the session is told on or off
            drums = {class_index(drum) for drum in LOCK_GROUPS[value]}
            value = (value, not drums <= self._locks)
        elif name == "loop" and value is not None and value not in {item["id"] for item in self._published["history"]}:
            raise DeepBeatError(f"bar {value + 1} is no longer in the history")
        elif name in ("reprime", "fill", "panic"):
            value = True
        self._inbox.put_nowait((time.perf_counter(), Control(name, value)))

    def publish(self, scheduler):
        """Make a new snapshot of the scheduler's session (called from the bridge's main thread)."""
        view, stats, follower, master = scheduler.session.view(), scheduler.stats, scheduler.follower, scheduler.master
        heard = grid_json(view.primer)
        if view.state in (ANSWER, HOLD):
            answer = grid_json(view.playing, 0, view.feel)
        else:  # listening: the answer before, if any
            answer = self._history[0]["grid"] if self._history else grid_json(DrumGrid.silent(STEPS_PER_BAR))
        self._remember(view.bar, view.state, answer)
        latencies = list(itertools.islice(reversed(stats.latencies), LATENCY_WINDOW))
        figures = ({} if not latencies else
                   dict(zip(("p50", "p99", "max"), (round(float(x) * 1000, 3) for x in
                                                    (*np.percentile(latencies, [50, 99]), max(latencies))))))
        self._locks = view.steering.locks
        self._published = {
            "state": view.state, "bar": view.bar,
            "position": None if view.state == "stopped" else
            {"part": "heard" if view.state == LISTEN else "answer", "step": view.step},
            "clock": {"source": master.source if master else "midi", "running": follower.running,
                      "bpm": master.bpm if master else follower.tempo.bpm, "peers": master.peers if master else None},
            "latency_ms": figures, "missed_steps": stats.steps_missed,
            "heard": heard, "answer": answer, "settings": settings_json(view.steering, view.feel),
            "mode": view.mode, "hold": view.hold, "history": list(self._history), "looping": view.looping,
            "notice": view.notice,
        }

    def _remember(self, bar, state, answer):
        """When the bar played changes, the bar before it joins the history if it was answered."""
        shown = self._shown_bar
        if shown is not None and shown[0] != bar and shown[1] in (ANSWER, HOLD):
            self._history.insert(0, {"id": shown[0], "bar": shown[0], "grid": shown[2]})
            del self._history[HISTORY_BARS:]
        self._shown_bar = (bar, state, answer)
