"""The web stage's server and its JSON: token, loopback, error replies, and grids and steering controls as
pages see them."""
import http.client
import json

import numpy as np
import pytest

from deepbeat.drums import DRUM_CLASSES
from deepbeat.errors import DeepBeatError
from deepbeat.grid import DrumGrid
from deepbeat.runtime.steering import (
    LOCK_GROUPS, PRESETS, STYLE_STRENGTH, SWING, TEMPERATURE, TOP_P, Feel, FillPlan, SettingError, Steering,
)
from deepbeat.web.controls import catalog, presets_json, settings_from_json, settings_json
from deepbeat.web.gridjson import grid_from_json, grid_json
from deepbeat.web.server import (
    LOOPBACK, MAX_BODY_BYTES, TOKEN_HEADER, Response, WebServer, exposure_warning, is_loopback,
)


def call(server, method, path, body=None, token=None, headers=None):
    """(status, headers, body bytes) of one request to a running server."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    sent = dict(headers or {})
    if token:
        sent[TOKEN_HEADER] = token
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


@pytest.fixture
def echo_server():
    """A WebServer with one POST route echoing its JSON body, and a GET route that fails inside."""
    routes = {
        ("POST", "/api/echo"): lambda request: Response.json(request.json()),
        ("GET", "/api/broken"): lambda request: 1 / 0,
    }
    server = WebServer(routes, "studio.html", port=0).start()
    yield server
    server.close()


def test_the_server_listens_on_loopback_by_default_and_prints_a_tokened_url(echo_server):
    assert echo_server.host == LOOPBACK == "127.0.0.1"
    assert echo_server.url == f"http://127.0.0.1:{echo_server.port}/?token={echo_server.token}"
    assert len(echo_server.token) >= 20
    assert WebServer({}, "studio.html", port=0).token != echo_server.token  # a fresh token each run


def test_static_files_need_no_token_but_the_api_does(echo_server):
    status, headers, page = call(echo_server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"DeepBeat" in page
    assert call(echo_server, "GET", "/static/style.css")[0] == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for token in (None, "wrong", echo_server.token[:-1]):
        status, _, body = call(echo_server, "POST", "/api/echo", b"{}", token=token)
        assert status == 403 and "token" in json.loads(body)["error"]
    status, _, body = call(echo_server, "POST", "/api/echo", b'{"a": 1}', token=echo_server.token)
    assert status == 200 and json.loads(body) == {"a": 1}
    status, _, body = call(echo_server, "POST", f"/api/echo?token={echo_server.token}", b'{"b": 2}')
    assert status == 200 and json.loads(body) == {"b": 2}


def test_bad_requests_get_one_line_json_errors_never_a_traceback(echo_server, capsys):
    token = echo_server.token
    cases = [
        ("POST", "/api/echo", b"{not json", 400, "not valid JSON"),
        ("POST", "/api/echo", b"[1, 2]", 400, "not a JSON object"),
        ("POST", "/api/echo", b"\xff\xfe", 400, "not UTF-8"),
        ("GET", "/api/echo", None, 405, "not allowed"),
        ("GET", "/api/nothing", None, 404, "no such endpoint"),
        ("GET", "/static/../server.py", None, 404, "no such file"),
        ("GET", "/api/broken", None, 500, "internal error (ZeroDivisionError)"),
    ]
    for method, path, body, status, words in cases:
        got, headers, data = call(echo_server, method, path, body, token=token)
        error = json.loads(data)["error"]
        assert (got, headers["Content-Type"]) == (status, "application/json"), path
        assert words in error and "\n" not in error and "Traceback" not in error
    assert "internal error on GET /api/broken: ZeroDivisionError" in capsys.readouterr().err


def test_a_body_over_the_limit_is_refused_unread(echo_server):
    connection = http.client.HTTPConnection(echo_server.host, echo_server.port, timeout=10)
    connection.putrequest("POST", "/api/echo")
    connection.putheader(TOKEN_HEADER, echo_server.token)
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "at most" in json.loads(response.read())["error"]
    connection.close()


def test_a_foreign_host_name_is_refused_on_loopback(echo_server):
    """A page elsewhere that rebinds its own name to 127.0.0.1 gets nothing, not even the page."""
    assert call(echo_server, "GET", "/", headers={"Host": "evil.example:80"})[0] == 403
    assert call(echo_server, "GET", "/", headers={"Host": f"localhost:{echo_server.port}"})[0] == 200


def test_binding_beyond_loopback_comes_with_a_warning():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert exposure_warning("127.0.0.1") is None
    assert "beyond this machine" in exposure_warning("0.0.0.0")


def test_a_taken_port_is_one_clear_error(echo_server):
    from deepbeat.web.server import ServerError

    with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{echo_server.port}"):
        WebServer({}, "studio.html", port=echo_server.port)


def test_grid_json_shows_hits_as_placed_and_reads_back():
    velocities = np.zeros((16, 9), np.uint8)
    velocities[0, 0], velocities[2, 2], velocities[4, 1] = 110, 80, 40
    offsets = np.zeros((16, 9), np.float32)
    offsets[2, 2] = -0.1
    grid = DrumGrid(velocities, offsets, bpm=92)
    data = grid_json(grid)
    assert data["velocities"][2][2] == 80 and data["offsets"][2][2] == pytest.approx(-0.1)
    assert grid_from_json(data) == grid
    swung = grid_json(grid, first=0, feel=Feel(swing=66, humanize=0))
    # the off-beat 16th (step 2 is on the beat's 8th, step 1/3 would swing): step 2 stays, offsets of 0 stay 0
    assert swung["offsets"][0][0] == 0 and swung["offsets"][2][2] == 0
    velocities[3, 2] = 90
    swung = grid_json(DrumGrid(velocities, bpm=92), first=0, feel=Feel(swing=66, humanize=0))
    assert swung["offsets"][3][2] == pytest.approx(0.32)  # 66% of a pair of 16ths: 0.32 steps late


@pytest.mark.parametrize("data, words", [
    ([1, 2], "expected an object"),
    ({"velocities": []}, "list of 1-1024 steps"),
    ({"velocities": [[0] * 8]}, "must list 9 drums"),
    ({"velocities": [[0] * 8 + [128]]}, "whole number 0-127"),
    ({"velocities": [[0] * 8 + [True]]}, "whole number 0-127"),
    ({"velocities": [[0] * 9], "offsets": [[0.9] + [0] * 8]}, "within ±0.5"),
    ({"velocities": [[0] * 9], "offsets": [[0] * 9] * 2}, "2 steps of offsets for 1"),
    ({"velocities": [[0] * 9], "bpm": 1000}, "outside 20-400 BPM"),
])
def test_a_malformed_grid_is_named(data, words):
    with pytest.raises(DeepBeatError, match=words):
        grid_from_json(data, "primer")


def test_the_catalog_takes_every_range_and_default_from_the_runtime():
    controls = {control["name"]: control for control in catalog(["any", "jazz"])}
    assert controls["temperature"]["low"] == TEMPERATURE.low and controls["temperature"]["high"] == TEMPERATURE.high
    assert controls["style_strength"]["default"] == STYLE_STRENGTH.default
    assert controls["swing"]["label"] == SWING.name and controls["top_p"]["above_low"] is TOP_P.above_low
    assert controls["style"]["options"] == [["any", "any"], ["jazz", "jazz"]]
    assert all(control["default"] == settings_json(Steering(), Feel())[name] for name, control in controls.items())
    for name in ("temperature", "style_strength", "swing", "density"):
        control = controls[name]
        steps = (control["high"] - control["low"]) / control["step"]
        assert steps == pytest.approx(round(steps)) and 100 <= steps <= 500
        for preset in presets_json().values():  # every preset's value lies on its slider
            assert (preset["values"][name] - control["low"]) / control["step"] == pytest.approx(
                round((preset["values"][name] - control["low"]) / control["step"]), abs=1e-6)


def test_presets_are_the_runtimes_resolved():
    presets = presets_json()
    assert set(presets) == set(PRESETS)
    trap = presets["trap"]["values"]
    steering, feel = PRESETS["trap"].apply(Steering(), Feel())
    assert trap["density"] == steering.density and trap["fills"] == str(steering.fills) == "every:8"
    assert trap["humanize"] == feel.humanize


def test_settings_from_a_page_preset_first_then_each_value():
    steering, feel = settings_from_json({"preset": "lofi", "temperature": 0.5, "locks": ["kick", "hats"],
                                         "fills": "phrase", "swing_unit": 8}, ["any", "hiphop"])
    assert steering.temperature == 0.5 and steering.style == "hiphop"  # style from the preset
    assert steering.locks == {DRUM_CLASSES.index(d) for d in ("kick", *LOCK_GROUPS["hats"])}
    assert steering.fills == FillPlan(4) and feel.swing == 62.0 and feel.swing_unit == 8
    round_trip = settings_json(steering, feel)
    assert settings_from_json(round_trip, ["any", "hiphop"]) == (steering, feel)


@pytest.mark.parametrize("values, words", [
    ({"temperature": 3}, "temperature 3 is outside the range; expected 0-2"),
    ({"temperature": "hot"}, "not a number"),
    ({"temperature": True}, "not a number"),
    ({"top_k": -1}, "top-k"),
    ({"style": "polka"}, "style 'polka' is not one the model knows"),
    ({"fills": "sometimes"}, "fills 'sometimes'"),
    ({"swing_unit": 4}, "swing on 4ths"),
    ({"locks": ["cowbell"]}, "cannot lock 'cowbell'"),
    ({"locks": "kick"}, "locks: expected a list"),
    ({"preset": "polka"}, "preset 'polka'"),
    ({"loudness": 1}, "unknown setting 'loudness'"),
])
def test_a_bad_setting_is_one_clear_error(values, words):
    with pytest.raises(SettingError, match=words):
        settings_from_json(values, ["any", "hiphop"])
