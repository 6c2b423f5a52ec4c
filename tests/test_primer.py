"""Primers: Magenta's pitch-tuple string, step-sequencer text and the first bars of a MIDI file."""
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from deepbeat import midifiles
from deepbeat.drums import GM_PITCHES, TD11_PITCHES, class_index
from deepbeat.errors import MidiFileError, PrimerError
from deepbeat.grid import DEFAULT_VELOCITY, SYMBOL_VELOCITIES
from deepbeat.midifiles import read_drum_grids
from deepbeat.primer import MAX_PRIMER_CHARS, MAX_PRIMER_STEPS, parse_primer_drums, parse_step_text, primer_from_midi

from conftest import write_test_midi

KICK, SNARE, HAT = class_index("kick"), class_index("snare"), class_index("closed_hihat")


# --- the pitch-tuple string ----------------------------------------------------------------


def test_seed_primer():
    grid = parse_primer_drums("[(36,),(),(36,42),()]")
    assert grid.steps.tolist() == [1, 0, 0b101, 0]
    assert grid.velocities.max() == DEFAULT_VELOCITY and grid.time_signature == (4, 4)


@pytest.mark.parametrize(
    "text, steps",
    [
        ("[]", []),
        (" [ ( 36 , 38 ) , ( ) ] ", [0b11, 0]),
        ("[(36,),]", [1]),
        ("[(36, 35)]", [1]),  # two kick pitches are one kick
        ("[(0036,)]", [1]),
        ("[\n(42,)\n,\n(46,)\n]\n", [4, 8]),
    ],
)
def test_whitespace_trailing_commas_and_merges(text, steps):
    assert parse_primer_drums(text).steps.tolist() == steps


def test_pitch_table_and_velocity_options():
    grid = parse_primer_drums("[(58,)]", pitches=TD11_PITCHES, velocity=77)
    assert grid.velocities[0, class_index("low_tom")] == 77
    with pytest.raises(PrimerError, match="position 9: pitch 90 is not a drum in the gm table"):
        parse_primer_drums("[(36,),(90,)]", pitches=GM_PITCHES)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "primer position 1: expected '[' to open the list of steps, found the end of the text"),
        ("(36,)", "primer position 1: expected '[' to open the list of steps, found '('"),
        ("[(36,),(x)]", "primer position 9: expected a MIDI pitch 0-127 or ')', found 'x'"),
        ("[(36,", "primer position 6: expected ')' to close the step, found the end of the text"),
        ("[(36 38)]", "primer position 6: expected ',' or ')', found '38'"),
        ("[(36,)(38,)]", "primer position 7: expected ',' or ']', found '('"),
        ("[(36,)] x", "primer position 9: expected nothing after ']', found 'x'"),
        ("[36]", "primer position 2: expected '(' to open a step, or ']', found '36'"),
        ("[(128,)]", "primer position 3: pitch 128 is outside 0-127"),
        ("[(" + "9" * 5000 + ",)]", "primer position 3: pitch 99999999 is outside 0-127"),
        ("[(²,)]", "primer position 3: expected a MIDI pitch 0-127 or ')', found '²'"),
        ("[(٣,)]", "primer position 3: expected a MIDI pitch 0-127 or ')', found '٣'"),
        ("[(-36,)]", "primer position 3: expected a MIDI pitch 0-127 or ')', found '-'"),
        ("[(36.0,)]", "primer position 5: expected ',' or ')', found '.'"),
        ("[(__import__('os'),)]", "primer position 3: expected a MIDI pitch 0-127 or ')', found '_'"),
        ("[(0,)]", "primer position 3: pitch 0 is not a drum in the gm table"),
    ],
)
def test_errors_name_the_position_and_what_is_allowed(text, message):
    with pytest.raises(PrimerError) as caught:
        parse_primer_drums(text)
    assert str(caught.value) == message


def test_position_counts_characters_from_one():
    text = "[(36,), (38,), (42,), (?)]"
    with pytest.raises(PrimerError) as caught:
        parse_primer_drums(text)
    where = int(str(caught.value).split()[2].rstrip(":"))
    assert text[where - 1] == "?"


def test_overlong_primers_are_refused():
    with pytest.raises(PrimerError, match=f"at most {MAX_PRIMER_CHARS} are allowed"):
        parse_primer_drums("[" + " " * MAX_PRIMER_CHARS + "]")
    with pytest.raises(PrimerError, match=f"more than {MAX_PRIMER_STEPS} steps"):
        parse_primer_drums("[" + "()," * (MAX_PRIMER_STEPS + 1) + "]")
    assert len(parse_primer_drums("[" + "()," * MAX_PRIMER_STEPS + "]")) == MAX_PRIMER_STEPS


GM_DRUM_PITCHES = sorted(p for p in range(128) if GM_PITCHES.drum_of(p) is not None)
primer_steps = st.lists(st.lists(st.sampled_from(GM_DRUM_PITCHES), max_size=5), max_size=40)
spaces = st.sampled_from(["", " ", "\n", "  \t"])


@given(primer_steps, spaces, st.booleans())
def test_random_well_formed_primers_round_trip(steps, space, trailing_comma):
    """Any primer written the way Magenta prints one (any spacing) parses to exactly its steps."""
    def tuple_text(pitches):
        inner = f",{space}".join(map(str, pitches))
        return f"({space}{inner}{',' if len(pitches) == 1 or (pitches and trailing_comma) else ''}{space})"

    text = f"[{space}" + f",{space}".join(tuple_text(p) for p in steps) + f"{space}]"
    grid = parse_primer_drums(text)
    expected = [sorted({GM_PITCHES.drum_of(p) for p in pitches}) for pitches in steps]
    assert [np.flatnonzero(row).tolist() for row in grid.velocities] == expected
    # Python's own repr of a list of tuples is the seed's format
    assert parse_primer_drums(str([tuple(p) for p in steps])).steps.tolist() == grid.steps.tolist()


PRIMER_PIECES = st.sampled_from(list("[](),0123456789 \n\t;x.-") + ["²", "٣", "\x00", "é", "999999", "36,"])


@given(st.lists(PRIMER_PIECES, max_size=60).map("".join) | st.text(max_size=80))
def test_random_strings_raise_only_primer_error(text):
    try:
        grid = parse_primer_drums(text)
    except PrimerError as error:
        assert str(error).startswith("primer ") and "\n" not in str(error)
    else:
        assert grid.velocities.shape[1] == 9


STEP_TEXT_CHARACTERS = st.sampled_from(list("kick:snare;hh|xXo.-_ \n#bar") + ["²", "\x00"])


@given(st.text(STEP_TEXT_CHARACTERS, max_size=80) | st.text(max_size=80))
def test_random_step_text_raises_only_primer_error(text):
    try:
        parse_step_text(text)
    except PrimerError as error:
        assert str(error).startswith("step text ") and "\n" not in str(error)


# --- step-sequencer text ---------------------------------------------------------------------


def test_step_text_rows_and_symbols():
    grid = parse_step_text("kick: X...x...\nsnare: ....o...; hh: x-x_x.x.|x.x.")
    assert len(grid) == 12
    assert grid.velocities[[0, 4], KICK].tolist() == [SYMBOL_VELOCITIES["X"], SYMBOL_VELOCITIES["x"]]
    assert grid.velocities[4, SNARE] == SYMBOL_VELOCITIES["o"]
    assert np.flatnonzero(grid.velocities[:, HAT]).tolist() == [0, 2, 4, 6, 8, 10]
    assert grid.velocities[8:, KICK].tolist() == [0] * 4  # short rows are padded with rests


def test_step_text_row_names():
    for name, drum in [("BD", "kick"), ("sd", "snare"), ("Closed_HiHat", "closed_hihat"), ("ohh", "open_hihat"),
                       ("tom", "mid_tom"), ("cymbal", "crash"), ("RD", "ride")]:
        assert parse_step_text(f"{name}: x").velocities[0, class_index(drum)] > 0, name


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "step text has no rows"),
        ("# only a comment", "step text has no rows"),
        ("kick x...", "step text row 1: expected 'drum: pattern', found 'kick x...'"),
        ("kick: x...\ncowbell: x", "step text row 2: unknown drum 'cowbell'; expected one of kick, snare"),
        ("kick: x...; BD: ..x.", "step text row 2: kick appears twice"),
        ("kick: x.?.", "step text row 1, column 9: '?' is not a cell; expected X, x, o (hits) or . - _ (rests)"),
        ("  snare:|x.|.7", "step text row 1, column 14: '7' is not a cell"),
        ("kick: " + "x" * (MAX_PRIMER_STEPS + 1), f"step text row 1: more than {MAX_PRIMER_STEPS} steps"),
    ],
)
def test_step_text_errors(text, message):
    with pytest.raises(PrimerError) as caught:
        parse_step_text(text)
    assert str(caught.value).startswith(message)


def test_step_text_total_length_is_capped_across_blocks():
    block = "# bar\nkick: " + "x" * 600 + "\n"
    with pytest.raises(PrimerError, match=f"1200 steps; at most {MAX_PRIMER_STEPS}"):
        parse_step_text(block * 2)


def test_bar_headers_continue_in_time():
    text = "# bar 1\nkick: x...\nsnare: ..\n\n# bar 2\nsnare: ..x.\n# a remark, not a block\nkick: ...x"
    grid = parse_step_text(text)
    assert np.flatnonzero(grid.velocities[:, KICK]).tolist() == [0, 7]
    assert np.flatnonzero(grid.velocities[:, SNARE]).tolist() == [6]


# --- MIDI primers ----------------------------------------------------------------------------


def test_primer_from_midi_takes_the_first_bars(hiphop_midi):
    one, dropped = primer_from_midi(hiphop_midi, bars=1, pitches=TD11_PITCHES)
    two, _ = primer_from_midi(hiphop_midi, bars=2, pitches=TD11_PITCHES)
    assert len(one) == 16 and len(two) == 32 and not dropped
    assert one == two.slice(0, 16)
    assert one.bpm == 92.0


def test_primer_from_midi_refuses_more_bars_than_the_file_has(hiphop_midi):
    with pytest.raises(PrimerError, match="has 2 bars; 8 bars asked for"):
        primer_from_midi(hiphop_midi, bars=8, pitches=TD11_PITCHES)


def test_primer_from_midi_counts_notes_it_has_no_drum_for(make_midi):
    path = make_midi([(0, 36, 100), (120, 100, 90), (240, 100, 90), (480, 38, 100)])
    grid, dropped = primer_from_midi(path)
    assert dropped == {100: 2} and grid.steps[:5].tolist() == [1, 0, 0, 0, 2]


def test_primer_from_midi_skips_to_the_first_4_4_section(make_midi):
    path = make_midi([(0, 36, 100), (1440, 38, 100)], meters=((0, (3, 4)), (1440, (4, 4))))
    grid, _ = primer_from_midi(path)
    assert grid.time_signature == (4, 4) and grid.steps[0] == 2


def test_primer_from_midi_errors(tmp_path, six_eight_midi):
    with pytest.raises(PrimerError, match="no such file"):
        primer_from_midi(tmp_path / "absent.mid")
    with pytest.raises(PrimerError, match="only 6/8 sections, expected 4/4"):
        primer_from_midi(six_eight_midi, pitches=TD11_PITCHES)
    for bars in (0, -1, 1.5, True):
        with pytest.raises(PrimerError, match="primer bars must be a whole number of at least 1"):
            primer_from_midi(six_eight_midi, bars=bars)


def test_primer_from_midi_reads_only_the_bars_it_needs(make_midi, tmp_path):
    """A long file whose tail is not MIDI: the primer's bars read, the whole file does not."""
    notes = [(tick, (36, 42, 38, 42)[n % 4], 100) for n, tick in enumerate(range(0, 480 * 4 * 200, 480))]
    data = make_midi(notes).read_bytes()
    broken = tmp_path / "long.mid"
    broken.write_bytes(data[:-2000] + b"\xf4" * 2000)  # an undefined status byte, bars before the end
    with pytest.raises(MidiFileError, match="undefined status byte 0xF4"):
        read_drum_grids(broken)
    grid, dropped = primer_from_midi(broken, bars=4)
    assert grid.num_bars == 4 and grid.steps[:8].tolist() == [1, 0, 0, 0, 4, 0, 0, 0] and not dropped


def test_primer_from_midi_counts_left_out_notes_only_in_its_bars(make_midi):
    path = make_midi([(0, 36, 100), (240, 100, 90), (1920, 100, 90), (2040, 101, 90), (1920 * 2, 38, 90)])
    assert primer_from_midi(path, bars=1)[1] == {100: 1}
    assert primer_from_midi(path, bars=2)[1] == {100: 2, 101: 1}


METERS = st.sampled_from([(4, 4), (4, 4), (3, 4), (6, 8)])
TIMELINES = st.tuples(
    st.lists(st.tuples(st.integers(0, 4 * 16), st.sampled_from([36, 38, 42, 90]), st.integers(1, 127)),
             min_size=4, max_size=40),
    st.lists(st.tuples(st.integers(0, 4), METERS), max_size=2),
    st.integers(1, 3),
)


@pytest.fixture(scope="module")
def scratch_midi(tmp_path_factory):
    return tmp_path_factory.mktemp("primers") / "primer.mid"


@given(TIMELINES)
@example(([(0, 36, 100), (4, 38, 100), (8, 36, 100), (12, 38, 100)], [], 1))  # more notes after a bar has begun
@example(([(0, 36, 100), (4, 38, 100), (36, 36, 100), (37, 42, 100)], [], 2))  # a silent bar inside the primer
def test_primer_from_midi_is_the_start_of_the_whole_file_read(scratch_midi, timeline):
    """Read tick by tick, the primer is the first 4/4 section's first bars, or the same error, as a full read has."""
    notes, meters, bars = timeline
    # hits up to a quarter step early or late (the velocity decides), meter changes on 4/4 bar lines
    write_test_midi(scratch_midi, [(max(0, step * 120 + velocity % 61 - 30), pitch, velocity)
                                   for step, pitch, velocity in notes],
                    meters=[(bar * 1920, meter) for bar, meter in meters])
    try:
        whole = read_drum_grids(scratch_midi, meters={(4, 4)}).grids[0]
        expected = whole.slice(0, 16 * bars) if whole.num_bars >= bars else None
    except MidiFileError:
        expected = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(midifiles, "FIRST_BATCH_EVENTS", 1)  # decide after every tick, not after 256 events
        try:
            primer = primer_from_midi(scratch_midi, bars=bars)[0]
        except PrimerError:
            primer = None
    assert (primer is None) == (expected is None)
    if primer is not None:
        assert primer == expected and primer.bpm == expected.bpm
