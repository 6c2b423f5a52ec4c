"""The live page's server against a LiveSource in memory: the snapshot contract, controls checked and applied,
history saved as MIDI, the snapshot stream, and a reader that stops reading."""
import http.client
import json
import threading
from dataclasses import fields, replace

import numpy as np
import pytest

from deepbeat.errors import DeepBeatError
from deepbeat.grid import DrumGrid
from deepbeat.runtime.steering import LOCK_GROUPS, PRESETS, Feel, FillPlan, Steering
from deepbeat.drums import class_index
from deepbeat.web.broadcast import SnapshotEncoder
from deepbeat.web.browser import stalled_reader
from deepbeat.web.controls import SETTINGS, settings_json
from deepbeat.web.gridjson import grid_json
from deepbeat.web.live import EVENTS_PATH, LiveSource, serve_live, snapshot_problems
from deepbeat.web.server import ServerError

from test_web_server import call
from test_web_studio import assert_same_notes, midi_notes, shown_notes

_FEEL_FIELDS = {field.name for field in fields(Feel)}


class FakeSession(LiveSource):
    """A live session in memory, driven by the test: it hears notes, answers bars, moves its playhead. Every
    control a page sends is recorded in `applied` and changes the session as a bridge would. snapshot()
    hands out the dict last published, replaced whole, as the interface asks; history items stay the same
    objects from one snapshot to the next."""

    STYLES = ("any", "hiphop", "jazz")
    MODES = ("call-response", "continuous")

    def __init__(self, bpm=92.0, padding=0):
        self._lock = threading.Lock()
        self.steering, self.feel = Steering(), Feel()
        self.mode, self.hold, self.looping = "call-response", False, None
        self.heard = DrumGrid.silent(16, bpm=bpm)
        self.answer = DrumGrid.silent(16, bpm=bpm)
        self.history = []  # {"id", "bar", "grid" as played}, oldest first
        self.bar, self.position, self.state = 0, None, "stopped"
        self.applied = []
        self.refusal = None  # a DeepBeatError apply raises, when set
        self.padding = "x" * padding  # makes snapshots large (a stalled reader's buffers fill sooner)
        self.changes = 0
        self._publish()

    def describe(self):
        return {"title": "fake session", "styles": list(self.STYLES), "modes": list(self.MODES)}

    def snapshot(self):
        return self._published

    def _publish(self):
        self.changes += 1
        self._published = {
            "state": self.state, "bar": self.bar, "position": self.position,
            "clock": {"source": "midi", "running": self.state != "stopped", "bpm": self.heard.bpm, "peers": None},
            "latency_ms": {"p50": 0.21, "p99": 0.48, "max": 0.93}, "missed_steps": 0,
            "heard": grid_json(self.heard), "answer": grid_json(self.answer, 0, self.feel),
            "settings": settings_json(self.steering, self.feel), "mode": self.mode, "hold": self.hold,
            "history": self.history[::-1],
            "looping": self.looping, "change": self.changes, "padding": self.padding,
        }

    def apply(self, name, value):
        if self.refusal:
            raise self.refusal
        with self._lock:
            self.applied.append((name, value))
            if name in _FEEL_FIELDS:
                self.feel = replace(self.feel, **{name: value})
            elif name in SETTINGS:
                self.steering = self.steering.with_changes(**{name: value})
            elif name == "lock":
                group = {class_index(drum) for drum in LOCK_GROUPS[value]}
                locks = self.steering.locks - group if group <= self.steering.locks else self.steering.locks | group
                self.steering = self.steering.with_changes(locks=locks)
            elif name == "preset":
                self.steering, self.feel = value.apply(self.steering, self.feel)
            elif name in ("mode", "hold"):
                setattr(self, name, value)
            elif name == "loop":
                self.looping = value
            self._publish()

    # --- what the session does on its own --------------------------------------------------------------

    def turn(self, name, value):
        """A controller's CC: a setting changed from elsewhere."""
        with self._lock:
            if name in _FEEL_FIELDS:
                self.feel = replace(self.feel, **{name: value})
            else:
                self.steering = self.steering.with_changes(**{name: value})
            self._publish()

    def hear(self, step, drum, velocity=100, offset=0.0):
        with self._lock:
            velocities, offsets = self.heard.velocities.copy(), self.heard.offsets.copy()
            velocities[step, drum], offsets[step, drum] = velocity, offset
            self.heard = replace(self.heard, velocities=velocities, offsets=offsets)
            self.state, self.position = "listening", {"part": "heard", "step": step}
            self._publish()

    def answer_with(self, grid):
        """The next bar is answered with `grid`; it joins the history as played (the Feel applied)."""
        with self._lock:
            self.bar += 1
            self.answer = grid
            self.history.append({"id": len(self.history) + 1, "bar": self.bar, "grid": grid_json(grid, 0, self.feel)})
            self.state, self.position = "answering", {"part": "answer", "step": 0}
            self._publish()

    def play(self, step, part="answer"):
        with self._lock:
            self.position = {"part": part, "step": step}
            self._publish()


def answer_grid(seed, bpm=92.0):
    """A bar of kick, snare and 16th hats, with velocities and timing that vary by seed."""
    generator = np.random.default_rng(seed)
    velocities = np.zeros((16, 9), np.uint8)
    velocities[[0, 6, 10], 0] = 110
    velocities[[4, 12], 1] = 100
    velocities[:, 2] = generator.integers(40, 110, 16)
    offsets = np.where(velocities > 0, generator.uniform(-0.2, 0.2, (16, 9)), 0.0)
    return DrumGrid(velocities, offsets, bpm=bpm)


@pytest.fixture
def session():
    return FakeSession()


@pytest.fixture
def live(session):
    server = serve_live(session, port=0)
    yield server
    server.close()


def control(live, name, value, token=True):
    status, _, body = call(live.web, "POST", "/api/live/control", json.dumps({"name": name, "value": value}).encode(),
                           token=live.web.token if token else None)
    return status, json.loads(body)


class EventReader:
    """The snapshot stream, read as a page would."""

    def __init__(self, live):
        self.connection = http.client.HTTPConnection(live.web.host, live.web.port, timeout=10)
        self.connection.request("GET", f"{EVENTS_PATH}?token={live.web.token}")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.headers["Content-Type"] == "text/event-stream"

    def next(self):
        """The next snapshot sent."""
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the stream ended")
            if line.startswith(b"data: "):
                return json.loads(line[len(b"data: "):])

    def close(self):
        self.connection.close()


def test_the_fake_session_keeps_the_snapshot_contract(session):
    assert snapshot_problems(session.snapshot()) == []
    session.answer_with(answer_grid(1))
    assert snapshot_problems(session.snapshot()) == []
    problems = snapshot_problems({"state": 3, "settings": {}, "heard": {}, "history": [{"id": 1}]})
    assert "bar: missing" in problems and "state: int, expected <class 'str'>" in problems
    assert "settings.temperature: missing" in problems and "heard: not a grid (no velocities)" in problems
    assert any(problem.startswith("history item") for problem in problems)


def test_setup_offers_the_sources_styles_and_modes(live):
    status, _, body = call(live.web, "GET", "/api/live/setup", token=live.web.token)
    setup = json.loads(body)
    assert status == 200 and setup["modes"] == list(FakeSession.MODES) and setup["title"] == "fake session"
    style = next(control for control in setup["controls"] if control["name"] == "style")
    assert [value for value, _ in style["options"]] == list(FakeSession.STYLES)
    assert setup["lock_groups"]["hats"] == list(LOCK_GROUPS["hats"])


def test_controls_are_checked_then_applied(live, session):
    sent = [("temperature", 0.5, 0.5), ("fills", "phrase", FillPlan(4)), ("swing", 58, 58.0), ("lock", "hats", "hats"),
            ("preset", "lofi", PRESETS["lofi"]), ("mode", "continuous", "continuous"), ("hold", True, True),
            ("reprime", None, None), ("fill", None, None), ("panic", None, None), ("loop", 1, 1), ("loop", None, None),
            ("style", "jazz", "jazz"), ("top_k", 5, 5)]
    for name, value, _ in sent:
        assert control(live, name, value) == (200, {"ok": True}), name
    assert session.applied == [(name, applied) for name, _, applied in sent]
    snapshot = session.snapshot()
    assert snapshot["mode"] == "continuous" and snapshot["hold"] is True
    assert set(snapshot["settings"]["locks"]) == set(LOCK_GROUPS["hats"]) and snapshot["settings"]["swing"] == 62.0


@pytest.mark.parametrize("name, value, words", [
    ("temperature", 9, "temperature 9 is outside the range"),
    ("style", "polka", "style 'polka' is not one the model knows"),
    ("mode", "jam", "mode 'jam': expected one of call-response, continuous"),
    ("hold", "yes", "hold 'yes': expected true or false"),
    ("lock", "cowbell", "lock group 'cowbell'"),
    ("reprime", 1, "reprime 1: expected null"),
    ("loop", "first", "loop 'first': expected a history id"),
    ("cowbell", 1, "unknown control 'cowbell'"),
    (None, 1, "unknown control None"),
])
def test_a_bad_control_is_400_and_reaches_nothing(live, session, name, value, words):
    status, reply = control(live, name, value)
    assert status == 400 and words in reply["error"]
    assert session.applied == []


def test_controls_need_the_token_and_a_refusal_reaches_the_page(live, session):
    assert control(live, "hold", True, token=False)[0] == 403
    session.refusal = DeepBeatError("cannot hold: nothing answered yet")
    assert control(live, "hold", True) == (400, {"error": "cannot hold: nothing answered yet"})
    assert session.applied == []


def test_a_saved_history_item_is_the_answer_as_played(live, session):
    session.turn("swing", 60.0)
    for seed in (1, 2, 3):
        session.answer_with(answer_grid(seed))
    item = session.snapshot()["history"][1]
    assert item["id"] == 2
    status, headers, data = call(live.web, "GET", f"/api/live/history.mid?id=2&token={live.web.token}")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="deepbeat-bar3-answer2.mid"'
    assert_same_notes(midi_notes(data), shown_notes(item["grid"]))
    assert any(offset > 0.15 for row in item["grid"]["offsets"][1::2] for offset in row)  # swung, as played
    status, _, body = call(live.web, "GET", f"/api/live/history.mid?id=9&token={live.web.token}")
    assert status == 404 and "no longer in the history" in json.loads(body)["error"]


def test_the_stream_sends_each_change_of_the_session(live, session):
    reader = EventReader(live)
    try:
        first = reader.next()
        assert first["heard"]["velocities"][4][1] == 0
        session.hear(4, 1, velocity=90, offset=-0.1)
        heard = reader.next()
        assert heard["heard"]["velocities"][4][1] == 90 and heard["position"] == {"part": "heard", "step": 4}
        session.turn("temperature", 1.25)
        assert reader.next()["settings"]["temperature"] == 1.25
    finally:
        reader.close()


def test_a_stalled_reader_is_dropped_while_the_others_keep_up():
    """A reader that stops reading holds its own connection only: snapshots go on being taken and sent to the
    other reader all along, and once the stalled one has taken nothing for the stream timeout it is dropped."""
    session = FakeSession(padding=256 * 1024)
    live = serve_live(session, port=0, rate=50, stream_timeout=1.0)
    reader = EventReader(live)
    try:
        with stalled_reader(live.url):
            seen = []
            while live.stats()["watchers_dropped"] == 0:
                session.play(len(seen) % 16)
                seen.append(reader.next()["change"])
                assert len(seen) < 10_000, "the stalled reader was never dropped"
            assert live.stats()["watchers"] == 1  # the one still reading
            before = session.changes
            session.play(3)
            assert reader.next()["change"] > before - 1
        assert seen == sorted(seen) and len(seen) > 5  # every one newer than the last: latest only, in order
    finally:
        reader.close()
        live.close()


def test_snapshots_are_encoded_piece_by_piece_and_unchanged_pieces_once(monkeypatch, session):
    """No single call of the JSON encoder (which holds the global lock throughout) takes a whole snapshot; a
    history item kept from the snapshot before is not encoded again."""
    encoder = SnapshotEncoder()
    for seed in (1, 2):
        session.answer_with(answer_grid(seed))
    first = session.snapshot()
    assert json.loads(encoder.encode(first)) == first
    encoded = []
    dumps = json.dumps
    monkeypatch.setattr(json, "dumps", lambda value, **options: encoded.append(value) or dumps(value, **options))
    session.answer_with(answer_grid(3))
    second = session.snapshot()
    assert json.loads(encoder.encode(second)) == second
    assert not any(value is second for value in encoded)  # never the whole snapshot in one call
    assert any(value is second["history"][0] for value in encoded)  # the new answer
    assert not any(value is item for value in encoded for item in first["history"])  # the kept ones: not again


def test_a_taken_port_is_one_clear_error_and_leaves_no_thread(live, session):
    before = threading.active_count()
    with pytest.raises(ServerError, match="cannot listen"):
        serve_live(session, port=live.web.port)
    assert threading.active_count() == before
