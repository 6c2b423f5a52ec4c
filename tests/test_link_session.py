"""`--clock link` in a real Ableton Link session: the bridge and a test DAW peer (bridge/linkpeer.py), both in a
network namespace of their own with only loopback, so that Link's discovery never reaches a real network.

Needs aalink, and root (or user namespaces) for `unshare -n`; without them these tests skip, unless
DEEPBEAT_REQUIRE_LINK=1 (CI), when they fail.
"""
import importlib.util
import os

import pytest

from deepbeat.bridge.linkpeer import LoopbackUnavailable, run_isolated

from conftest import TINY_MODEL

REQUIRED = os.environ.get("DEEPBEAT_REQUIRE_LINK") == "1"
BPM, NEW_BPM = 120.0, 140.0


def unavailable(reason):
    if REQUIRED:
        pytest.fail(f"DEEPBEAT_REQUIRE_LINK=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def session():
    """The figures of one session: Play, the user's beat, 3 bars, a tempo change, 3 bars, Stop, Play, Stop."""
    if importlib.util.find_spec("aalink") is None:
        unavailable("aalink is not installed (pip install 'deepbeat[link]')")
    try:
        return run_isolated({"model": str(TINY_MODEL), "bpm": BPM, "new_bpm": NEW_BPM})
    except LoopbackUnavailable as error:
        unavailable(str(error))


def test_tempo_and_beat_phase_are_shared(session):
    assert session["bridge_bpm"] == pytest.approx(session["peer_bpm"], rel=1e-5)
    assert session["first_tick_from_bar_line_beats"] == pytest.approx([0.0, 0.0], abs=1e-4)  # bars line up
    assert session["tick_error_ms"]["p50"] <= 0.05


def test_answers_land_on_the_peers_beat_timeline(session):
    assert session["notes"] > 100
    assert session["note_error_ms"]["p99"] <= 1.0, session


def test_a_tempo_change_by_the_peer_is_followed_within_a_beat(session):
    beat_ms = 60_000 / NEW_BPM
    assert session["tempo_follow_ms"] is not None and session["tempo_follow_ms"] <= beat_ms, session
    assert session["bpm_after_change"] == pytest.approx(NEW_BPM, rel=1e-3)


def test_start_and_stop_are_followed_within_a_beat_and_leave_no_note_hanging(session):
    beat_ms = 60_000 / NEW_BPM
    assert all(abs(ms) <= beat_ms for ms in session["start_follow_ms"]), session
    assert all(0 <= ms <= beat_ms for ms in session["stop_follow_ms"]), session
    assert session["hanging_notes"] == []


def test_outside_a_loopback_only_namespace_link_is_never_enabled():
    from deepbeat.bridge.linkpeer import only_loopback, play_session
    from deepbeat.errors import DeepBeatError

    if only_loopback():
        pytest.skip("this process is itself in a loopback-only namespace")
    with pytest.raises(DeepBeatError, match="only in a network namespace with nothing but loopback"):
        play_session(model=str(TINY_MODEL))
