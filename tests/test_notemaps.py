"""Note maps: the built-in playback layouts and validated JSON maps."""
import json

import pytest

from deepbeat.drums import DRUM_CLASSES, GM_PITCHES, class_index
from deepbeat.errors import DeepBeatError, NoteMapError
from deepbeat.notemaps import NOTE_MAPS, load_note_map, note_map_from_dict

MPC_BANK_A = (37, 36, 42, 82, 40, 38, 46, 44, 48, 47, 45, 43, 49, 55, 51, 53)


def test_gm_notes_as_the_issue_lists():
    assert load_note_map("gm").notes == (36, 38, 42, 46, 45, 48, 50, 49, 51)


def test_builtin_maps_are_valid_and_distinct():
    assert set(NOTE_MAPS) == {"gm", "mpc-legacy", "mpc-chromatic", "drum-rack"}
    for note_map in NOTE_MAPS.values():
        assert len(note_map.notes) == len(DRUM_CLASSES)
        assert len(set(note_map.notes)) == len(DRUM_CLASSES), note_map.name
        assert all(0 <= note <= 127 for note in note_map.notes)
        # every output note is heard back as its own class
        for drum, note in enumerate(note_map.notes):
            assert note_map.inputs.drum_of(note) == drum, (note_map.name, note)


def test_mpc_legacy_uses_bank_a_pads():
    mpc = load_note_map("mpc-legacy")
    assert set(mpc.notes) <= set(MPC_BANK_A)
    assert all(mpc.inputs.drum_of(pad) is not None for pad in MPC_BANK_A)
    assert mpc.inputs.drum_of(35) is None  # not a bank A pad


def test_mpc_chromatic_pads_count_up_from_c1():
    assert load_note_map("mpc-chromatic").notes == tuple(range(36, 45))


def test_drum_rack_hears_its_16_pads_as_gm():
    rack = load_note_map("drum-rack")
    assert all(rack.inputs.drum_of(n) == GM_PITCHES.drum_of(n) for n in range(36, 52))
    assert rack.inputs.drum_of(35) is None and rack.inputs.drum_of(52) is None


NOTES = {drum: 60 + i for i, drum in enumerate(DRUM_CLASSES)}


def test_json_map_with_inputs(tmp_path):
    path = tmp_path / "kit.json"
    path.write_text(json.dumps({"notes": NOTES, "inputs": {"35": "kick", "61": "snare"}}))
    note_map = load_note_map(str(path))
    assert note_map.notes == tuple(range(60, 69))
    assert note_map.inputs.drum_of(35) == class_index("kick")
    assert note_map.inputs.drum_of(60) is None  # inputs given: only those are heard


def test_json_map_without_inputs_hears_its_own_notes(tmp_path):
    path = tmp_path / "kit.json"
    path.write_text(json.dumps({"notes": NOTES}))
    note_map = load_note_map(str(path))
    assert [note_map.inputs.drum_of(n) for n in range(60, 69)] == list(range(9))


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "expected a JSON object"),
        ({"notes": {**NOTES, "kick": 128}}, "notes.kick: expected a MIDI note 0-127, got 128"),
        ({"notes": {**NOTES, "kick": -1}}, "notes.kick: expected a MIDI note 0-127"),
        ({"notes": {**NOTES, "kick": "36"}}, "notes.kick: expected a MIDI note 0-127, got '36'"),
        ({"notes": {**NOTES, "kick": True}}, "notes.kick: expected a MIDI note"),
        ({"notes": {k: v for k, v in NOTES.items() if k != "ride"}}, "missing ride"),
        ({"notes": {**NOTES, "cowbell": 56}}, "unknown class cowbell"),
        ({"notes": {**NOTES, "snare": 60}}, "each drum class needs its own note"),
        ({"notes": NOTES, "inputs": {"x": "kick"}}, "inputs key 'x' is not a MIDI note number"),
        ({"notes": NOTES, "inputs": {"200": "kick"}}, "inputs: expected a MIDI note 0-127, got 200"),
        ({"notes": NOTES, "inputs": {"36": "cowbell"}}, "inputs.36 is 'cowbell'"),
        ({"notes": NOTES, "inputs": [36]}, "must be an object"),
    ],
)
def test_invalid_maps_fail_with_one_line(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NoteMapError) as caught:
        load_note_map(str(path))
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_unknown_name_lists_the_choices():
    with pytest.raises(NoteMapError, match="expected one of gm, mpc-legacy, mpc-chromatic, drum-rack"):
        load_note_map("tr808")


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(NoteMapError, match="absent.json: not found; expected the note map"):
        load_note_map(str(tmp_path / "absent.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{notes: 1")
    with pytest.raises(NoteMapError, match="not valid JSON"):
        load_note_map(str(broken))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DeepBeatError, match="not valid JSON"):
        load_note_map(str(binary))


def test_note_map_from_dict_names_its_source():
    with pytest.raises(NoteMapError, match="^mine: "):
        note_map_from_dict("mine", {})
