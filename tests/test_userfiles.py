"""Users' files read with bounds: JSON nesting and size, bytes up to a size; one domain error naming the file."""
import pytest

from deepbeat.cli import main
from deepbeat.errors import DeepBeatError, NoteMapError
from deepbeat.notemaps import load_note_map
from deepbeat.userfiles import MAX_JSON_BYTES, MAX_JSON_DEPTH, parse_json, read_bounded, read_json


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000])
def test_deep_nesting_is_refused_before_decoding(text):
    with pytest.raises(DeepBeatError, match=r"^map.json: JSON nested 100000 levels deep; at most 64 are read$"):
        parse_json(text, "map.json")


def test_nesting_up_to_the_bound_reads_and_brackets_in_strings_do_not_count():
    value = parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x")
    for _ in range(MAX_JSON_DEPTH - 1):
        value, = value
    assert value == []
    assert parse_json('{"a": "[[[[{{{{\\"]]"}', "x") == {"a": '[[[[{{{{"]]'}
    with pytest.raises(DeepBeatError, match="nested 65 levels"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "x")


def test_read_json_errors_name_the_file_in_the_callers_domain(tmp_path):
    cases = {"absent.json": None, "broken.json": b"{notes: 1", "latin.json": b'{"a": "\xe9"}',
             "deep.json": b"[" * 100_000}
    expected = {"absent.json": "not found; expected the note map", "broken.json": "not valid JSON (Expecting",
                "latin.json": "not valid JSON (not UTF-8 text", "deep.json": "note map nested 100000 levels deep"}
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(NoteMapError) as caught:
            read_json(tmp_path / name, NoteMapError, "note map")
        assert str(caught.value).startswith(f"{tmp_path / name}: {expected[name]}"), caught.value


def test_a_file_over_the_bound_is_refused_unread(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as file:
        file.truncate(MAX_JSON_BYTES + 1)  # sparse: refused by its stated size
    with pytest.raises(DeepBeatError, match="huge.json: larger than 8 MiB; expected the JSON file"):
        read_json(path)
    path.write_bytes(b"12345")
    assert read_bounded(path, 5) == b"12345" and read_bounded(path, 4) is None


@pytest.mark.parametrize("option", ["--note-map", "--note_map"])
def test_generate_with_a_deeply_nested_note_map_is_one_line(tmp_path, capsys, option):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    assert main(["generate", option, str(deep), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"deepbeat generate: error: {deep}: note map nested 100000 levels deep; at most 64 are read\n"
    assert not (tmp_path / "out").exists()
    with pytest.raises(NoteMapError, match="nested 100000 levels"):  # the bridge's --input-map and --output-map
        load_note_map(str(deep))
