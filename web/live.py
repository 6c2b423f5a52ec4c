"""The live page: the LiveSource interface a live session implements, and the server that shows and steers it.

The server never runs on the session's timing thread and never makes it wait: it reads snapshots the
source makes available (from the server's threads, at SNAPSHOT_RATE while a page watches) and hands
controls to `apply`, which the source queues or applies as it sees fit. Pages get snapshots as a
Server-Sent Events stream that keeps only the latest snapshot per reader: a slow reader skips, a
stalled one is disconnected after the server's stream timeout.
"""
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from deepbeat.drums import DRUM_CLASSES, DRUM_LABELS
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midifiles import write_midi
from deepbeat.notemaps import GM
from deepbeat.runtime.steering import SettingError

from .broadcast import SNAPSHOT_RATE, Broadcast
from .controls import SETTINGS, catalog, check_lock_group, check_preset, check_setting, lock_groups_json, presets_json
from .gridjson import MAX_PLACED_OFFSET, grid_from_json
from .server import LOOPBACK, STREAM_WRITE_TIMEOUT_S, RequestError, Response, WebServer

LIVE_PORT = 8766
EVENTS_PATH = "/api/live/events"
KEEPALIVE_S = 10.0  # a comment line on a quiet stream, so a reader that left is noticed
# Actions besides the settings of controls.SETTINGS, and the values they take.
ACTIONS = {
    "preset": "a preset name",
    "lock": "a lock group, toggled",
    "mode": "one of the session's modes",
    "hold": "true or false",
    "reprime": "null",
    "fill": "null",
    "panic": "null",
    "loop": "a history id, or null to stop looping",
}


class LiveSource(ABC):
    """What the live page shows and steers. A live session (the bridge) implements it.

    Every method is called from the web server's threads, never from the session's own: each must return
    at once, without waiting on the session's timing thread (e.g. snapshot() hands out the latest dict
    the session published, replaced whole and never changed afterwards; apply() puts the change where
    the session picks it up). Several server threads may call them at the same time. A snapshot's parts
    that did not change (a history item, a grid) may be the very objects of the snapshot before: the
    server then does not encode them again.
    """

    note_map = GM  # the NoteMap a history item is saved with (the session's output map)

    def describe(self):
        """What does not change during a session: {"title": str, "styles": [style names the model knows],
        "modes": [mode names the "mode" action accepts]}."""
        return {"title": "DeepBeat live", "styles": ["any"], "modes": []}

    @abstractmethod
    def snapshot(self):
        """The session now, as plain JSON-ready data (see `snapshot_problems` for the keys)::

            {"state": "listening" | "answering" | "holding" | "stopped" (or the session's own word),
             "bar": the bar being played, counted from 0 at start (pages show it from 1),
             "position": {"part": "heard" | "answer", "step": step being played within that part's grid}
                         or None when stopped,
             "clock": {"source": e.g. "midi" | "internal" | "link", "running": bool, "bpm": float or None,
                       "peers": Link peers (int) or None},
             "latency_ms": {"p50": float, "p99": float, "max": float} (tick to send; {} before any),
             "missed_steps": int,
             "heard": the bar(s) being heard, "answer": the bar(s) being answered: each a grid as
                      gridjson.grid_json makes it (velocities and offsets as played),
             "settings": controls.settings_json(steering, feel) (locks included),
             "mode": str, "hold": bool,
             "history": [{"id": int (stable), "bar": the bar it was played in (from 0), "grid": grid}]:
                        the last answers, newest first,
             "looping": the id of the history item being looped, or None}
        """

    @abstractmethod
    def apply(self, name, value):
        """Change the session: `name` is a setting of controls.SETTINGS (the value checked: a float, int, style
        or FillPlan) or an action of ACTIONS: "preset" (a runtime.steering.Preset), "lock" (a group of
        LOCK_GROUPS to toggle), "mode" (one of describe()'s modes), "hold" (bool), "reprime", "fill" (a fill
        on the next bar), "panic" (value None), "loop" (a history id, or None to stop). Raise a DeepBeatError
        to refuse; its message reaches the page."""


def snapshot_problems(snapshot):
    """What a snapshot lacks or has of the wrong kind, one line each ([] for a good one)."""
    expected = {"state": str, "bar": int, "position": (dict, type(None)), "clock": dict, "latency_ms": dict,
                "missed_steps": int, "heard": dict, "answer": dict, "settings": dict, "mode": str, "hold": bool,
                "history": list, "looping": (int, type(None))}
    problems = [f"{key}: missing" for key in expected if key not in snapshot]
    problems += [f"{key}: {type(snapshot[key]).__name__}, expected {kinds}" for key, kinds in expected.items()
                 if key in snapshot and not isinstance(snapshot[key], kinds)]
    if isinstance(snapshot.get("settings"), dict):
        problems += [f"settings.{name}: missing" for name in (*SETTINGS, "locks") if name not in snapshot["settings"]]
    for part in ("heard", "answer"):
        if isinstance(snapshot.get(part), dict) and "velocities" not in snapshot[part]:
            problems.append(f"{part}: not a grid (no velocities)")
    for item in snapshot.get("history", []) if isinstance(snapshot.get("history"), list) else []:
        if not isinstance(item, dict) or not {"id", "bar", "grid"} <= set(item):
            problems.append(f"history item {item!r:.40}: expected id, bar and grid")
    return problems


def check_action(name, value, description):
    """The value `apply(name, ...)` gets for what a page sent, checked; SettingError when it is not allowed."""
    if name in SETTINGS:
        return check_setting(name, value, description.get("styles", ["any"]))
    if name == "preset":
        return check_preset(value)
    if name == "lock":
        return check_lock_group(value)
    modes = description.get("modes", [])
    allowed = {
        "mode": value in modes,
        "hold": isinstance(value, bool),
        "reprime": value is None, "fill": value is None, "panic": value is None,
        "loop": value is None or (isinstance(value, int) and not isinstance(value, bool)),
    }
    if allowed.get(name):
        return value
    if name == "mode":
        raise SettingError(f"mode {value!r}: expected one of {', '.join(modes) or 'none (this session has no modes)'}")
    if name in ACTIONS:
        raise SettingError(f"{name} {value!r}: expected {ACTIONS[name]}")
    raise SettingError(f"unknown control {name!r}; expected one of {', '.join((*SETTINGS, *ACTIONS))}")


def history_midi(source, item_id):
    """(bytes, file name) of history item `item_id` of the source's snapshot, written as it was played."""
    items = [item for item in source.snapshot().get("history", []) if item.get("id") == item_id]
    if not items:
        raise RequestError(f"answer {item_id} is no longer in the history", 404)
    grid = grid_from_json(items[0]["grid"], "history item", max_offset=MAX_PLACED_OFFSET)
    onsets = np.arange(grid.num_steps)[:, None] + grid.offsets
    with tempfile.TemporaryDirectory(prefix="deepbeat-live-") as folder:
        path = Path(folder) / "answer.mid"
        write_midi(grid, path, note_map=source.note_map, onsets=onsets)
        return path.read_bytes(), f"deepbeat-bar{items[0]['bar'] + 1}-answer{item_id}.mid"


def live_routes(source, broadcast):
    """The live page's API: setup, the snapshot stream, controls, saving a history item."""
    def setup(request):
        description = source.describe()
        return Response.json({
            "title": description.get("title", "DeepBeat live"), "modes": description.get("modes", []),
            "drums": list(DRUM_CLASSES), "labels": list(DRUM_LABELS), "steps_per_bar": STEPS_PER_BAR,
            "controls": catalog(description.get("styles", ["any"])), "presets": presets_json(),
            "lock_groups": lock_groups_json(),
        })

    def events(request):
        def stream(write):
            write(b"retry: 1000\n\n")
            number = 0
            with broadcast.watching():
                while not broadcast.closed:
                    latest = broadcast.next_after(number, KEEPALIVE_S)
                    try:
                        if latest is None:
                            write(b": still here\n\n")
                            continue
                        number, data = latest
                        write(b"data: " + data + b"\n\n")
                    except TimeoutError:  # the reader took nothing for the whole stream timeout
                        broadcast.count("watchers_dropped")
                        raise
                    broadcast.count("snapshots_sent")
        return Response(content_type="text/event-stream", stream=stream)

    def control(request):
        body = request.json()
        name = body.get("name")
        source.apply(name, check_action(name, body.get("value"), source.describe()))
        return Response.json({"ok": True})

    def save(request):
        data, name = history_midi(source, request.whole_number("id", 0, 2**63 - 1))
        return Response.download(data, name)

    return {
        ("GET", "/api/live/setup"): setup,
        ("GET", EVENTS_PATH): events,
        ("POST", "/api/live/control"): control,
        ("GET", "/api/live/history.mid"): save,
    }


class LiveServer:
    """The live page's server, running: `url` (token included), `stats()`, `close()`."""

    def __init__(self, source, host, port, token, rate, stream_timeout):
        self.broadcast = Broadcast(source.snapshot, rate)
        try:
            self.web = WebServer(live_routes(source, self.broadcast), "live.html", host, port, token,
                                 name="deepbeat live", stream_timeout=stream_timeout).start()
        except Exception:
            self.broadcast.close()
            raise

    @property
    def url(self):
        return self.web.url

    def stats(self):
        """Counts so far: snapshots_taken, snapshots_sent (events written to pages), watchers (streams open now),
        watchers_dropped (streams closed because their reader stopped reading)."""
        return self.broadcast.stats()

    def close(self):
        self.broadcast.close()
        self.web.close()


def serve_live(source, host=LOOPBACK, port=LIVE_PORT, token=None, rate=SNAPSHOT_RATE,
               stream_timeout=STREAM_WRITE_TIMEOUT_S):
    """Serve the live page of `source` (a LiveSource) on its own threads; the running LiveServer.

    Port 0 picks a free port; token None makes a fresh one (in `url`). ServerError when the address is taken.
    """
    return LiveServer(source, host, port, token, rate, stream_timeout)
