"""The studio's API over HTTP: primers typed or dropped, generation with steering, MIDI downloads that match
the grid shown, and one-line errors for bad input."""
import io
import json
import tempfile
from pathlib import Path

import mido
import numpy as np
import pytest

from deepbeat.drums import DRUM_CLASSES
from deepbeat.midifiles import OUTPUT_TICKS_PER_BEAT
from deepbeat.notemaps import GM
from deepbeat.primer import parse_step_text, primer_from_midi
from deepbeat.runtime.stepmodel import StepModel
from deepbeat.web import studio as studio_module
from deepbeat.web.studio import Studio, serve_studio

from conftest import TINY_MODEL_V2
from test_web_server import call

BACK_BEAT = "kick: X.......X.......; snare: ....X.......X...; hh: x.x.x.x.x.x.x.x."


@pytest.fixture(scope="module")
def tiny_model():
    return StepModel.load(TINY_MODEL_V2)


@pytest.fixture
def studio(tiny_model):
    studio = Studio(tiny_model)
    server = serve_studio(studio, port=0).start()
    studio.server = server
    yield studio
    server.close()
    studio.close()


def api(studio, method, path, data=None, raw=None):
    """(status, decoded JSON) of an API call with the run's token."""
    body = raw if raw is not None else None if data is None else json.dumps(data).encode()
    status, _, reply = call(studio.server, method, path, body, token=studio.server.token)
    return status, json.loads(reply)


def midi_notes(data):
    """(tick, note, velocity) of every note-on of a MIDI file's bytes."""
    notes, tick = [], 0
    for message in mido.merge_tracks(mido.MidiFile(file=io.BytesIO(data)).tracks):
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            notes.append((tick, message.note, message.velocity))
    return sorted(notes)


def shown_notes(grid, note_map=GM):
    """(tick, note, velocity) of every hit of a page grid, where its offset places it (a file starts at tick 0)."""
    ticks_per_step = OUTPUT_TICKS_PER_BEAT / 4
    return sorted((max(0, round((step + grid["offsets"][step][drum]) * ticks_per_step)), note_map.note_of(drum),
                   velocity)
                  for step, row in enumerate(grid["velocities"]) for drum, velocity in enumerate(row) if velocity)


def assert_same_notes(played, shown):
    assert len(played) == len(shown) > 0
    for (tick, note, velocity), (shown_tick, shown_note, shown_velocity) in zip(
            sorted(played, key=lambda n: (n[1], n[0])), sorted(shown, key=lambda n: (n[1], n[0]))):
        assert (note, velocity) == (shown_note, shown_velocity)
        assert abs(tick - shown_tick) <= 1  # the page's offsets are rounded to a thousandth of a step


def generate(studio, **request):
    primer = {"velocities": parse_step_text(BACK_BEAT).velocities.tolist()}
    status, reply = api(studio, "POST", "/api/studio/generate", {"primer": primer, "bpm": 90, **request})
    assert status == 200, reply
    return reply


def test_setup_comes_from_the_runtime_and_the_model(studio, tiny_model):
    status, setup = api(studio, "GET", "/api/studio/setup")
    assert status == 200
    assert setup["drums"] == list(DRUM_CLASSES) and setup["model"] == TINY_MODEL_V2.name
    style = next(control for control in setup["controls"] if control["name"] == "style")
    assert [value for value, _ in style["options"]] == list(tiny_model.encoding.styles)
    assert setup["cell_velocities"] == [0, 40, 80, 110]  # off, ghost, hit, accent as step text reads them


def test_a_typed_primer_is_read_and_padded_to_a_bar(studio):
    status, reply = api(studio, "POST", "/api/studio/text", {"text": "kick: X...x...; snare: ..o."})
    assert status == 200
    velocities = np.array(reply["primer"]["velocities"])
    assert velocities.shape == (16, 9)
    assert velocities[[0, 4], 0].tolist() == [110, 80] and velocities[2, 1] == 40 and velocities.sum() == 230
    status, reply = api(studio, "POST", "/api/studio/text", {"text": "kick: X..?"})
    assert status == 400 and reply["error"].startswith("step text row 1, column 10: '?' is not a cell")


def test_a_dropped_midi_file_becomes_the_primer(studio, hiphop_midi):
    status, reply = api(studio, "POST", "/api/studio/midi?bars=2&name=groove.mid", raw=hiphop_midi.read_bytes())
    assert status == 200, reply
    primer, _ = primer_from_midi(hiphop_midi, 2)
    assert reply["primer"]["velocities"] == primer.velocities.tolist()
    assert np.allclose(reply["primer"]["offsets"], primer.offsets, atol=0.001)
    assert reply["bpm"] == 92 and isinstance(reply["dropped"], dict)


def test_a_bad_upload_is_one_line_naming_the_users_file(studio, hiphop_midi):
    status, reply = api(studio, "POST", "/api/studio/midi?name=my%20loop.mid", raw=b"RIFF, not MIDI")
    assert status == 400 and reply["error"].startswith("my loop.mid: not a readable MIDI file")
    assert studio.folder.name not in reply["error"]
    status, reply = api(studio, "POST", "/api/studio/midi?bars=9", raw=hiphop_midi.read_bytes())
    assert status == 400 and reply["error"] == "bars '9': expected a whole number 1-4"
    status, reply = api(studio, "POST", "/api/studio/midi?bars=3&name=groove.mid", raw=hiphop_midi.read_bytes())
    assert status == 400 and "groove.mid: its first 4/4 drum section has 2 bars; 3 bars asked for" in reply["error"]
    assert list((studio.folder / "upload").iterdir()) == []  # the temporary copies are gone


def test_downloaded_midi_is_the_grid_shown_placed_by_the_feel(studio):
    reply = generate(studio, bars=2, outputs=2, seed=5, settings={"swing": 62, "humanize": 0.5})
    assert len(reply["beats"]) == 2
    for beat in reply["beats"]:
        grid = beat["grid"]
        assert len(grid["velocities"]) == 48 and beat["primer_steps"] == 16 and grid["bpm"] == 90
        status, headers, data = call(studio.server, "GET", f"/api/studio/beat.mid?id={beat['id']}&token="
                                     f"{studio.server.token}")
        assert status == 200 and headers["Content-Type"] == "audio/midi"
        assert headers["Content-Disposition"] == f'attachment; filename="{beat["name"]}"'
        assert_same_notes(midi_notes(data), shown_notes(grid))
        assert mido.MidiFile(file=io.BytesIO(data)).ticks_per_beat == OUTPUT_TICKS_PER_BEAT
    assert Path(tempfile.gettempdir()) in studio.folder.parents  # files go to the studio's own temp folder


def test_a_seed_reproduces_and_a_missing_seed_is_chosen_and_said(studio):
    first = generate(studio, bars=1, outputs=2, seed=11)
    again = generate(studio, bars=1, outputs=2, seed=11)
    assert [b["grid"] for b in first["beats"]] == [b["grid"] for b in again["beats"]]
    chosen = generate(studio, bars=1, outputs=1)
    assert generate(studio, bars=1, outputs=1, seed=chosen["seed"])["beats"][0]["grid"] == chosen["beats"][0]["grid"]


def test_locked_kick_and_snare_keep_the_primers_rows(studio):
    reply = generate(studio, bars=3, outputs=2, seed=3, settings={"locks": ["kick", "snare"], "temperature": 1.5})
    primer = np.array(parse_step_text(BACK_BEAT).velocities) > 0
    varied = False
    for beat in reply["beats"]:
        hits = np.array(beat["grid"]["velocities"]).reshape(-1, 16, 9) > 0
        assert (hits[:, :, :2] == primer[None, :, :2]).all()  # kick and snare: the primer's, every bar
        varied |= bool((hits[1:, :, 2:] != primer[None, :, 2:]).any())
    assert varied  # while the other drums are generated


def test_groove_takes_the_primers_timing(studio):
    primer = parse_step_text(BACK_BEAT)
    offsets = np.zeros((16, 9))
    offsets[2::4, 2] = 0.2  # the hats' off-beat 8ths played late
    status, reply = api(studio, "POST", "/api/studio/generate", {
        "primer": {"velocities": primer.velocities.tolist(), "offsets": offsets.tolist()}, "bpm": 90, "bars": 1,
        "outputs": 1, "seed": 1, "groove": True, "settings": {"locks": ["hats"], "humanize": 0}})
    assert status == 200, reply
    shown = np.array(reply["beats"][0]["grid"]["offsets"])
    assert np.allclose(shown[16 + 2::4, 2], 0.2)  # the answer's hats sit where the primer's did


@pytest.mark.parametrize("request_changes, words", [
    ({"bars": 0}, "bars 0: expected a whole number 1-16"),
    ({"outputs": 99}, "outputs 99: expected a whole number 1-8"),
    ({"seed": -1}, "seed -1"),
    ({"bpm": 1000}, "1000 BPM is outside 20-400 BPM"),
    ({"settings": {"temperature": 5}}, "temperature 5 is outside the range; expected 0-2"),
    ({"settings": {"style": "polka"}}, "style 'polka' is not one the model knows"),
    ({"primer": {"velocities": [[1] * 8]}}, "primer: step 1 of velocities must list 9 drums"),
    ({"primer": None}, "primer: expected an object"),
])
def test_a_bad_generate_request_is_400_with_one_line(studio, request_changes, words):
    request = {"primer": {"velocities": [[0] * 9] * 16}, "bpm": 90, "bars": 1, "outputs": 1, **request_changes}
    status, reply = api(studio, "POST", "/api/studio/generate", request)
    assert status == 400 and words in reply["error"] and "\n" not in reply["error"]


def test_only_the_latest_beats_stay_downloadable(studio, monkeypatch):
    monkeypatch.setattr(studio_module, "KEPT_BEATS", 2)
    first = generate(studio, bars=1, outputs=1, seed=1)["beats"][0]
    generate(studio, bars=1, outputs=2, seed=2)
    status, reply = api(studio, "GET", f"/api/studio/beat.mid?id={first['id']}")
    assert status == 404 and "not kept any more" in reply["error"]
    assert not (studio.folder / first["name"]).exists()
    assert len(list(studio.folder.glob("*.mid"))) == 2


def test_closing_the_studio_removes_its_files(tiny_model):
    studio = Studio(tiny_model)
    folder = studio.folder
    (folder / "x.mid").write_bytes(b"")
    studio.close()
    assert not folder.exists()
