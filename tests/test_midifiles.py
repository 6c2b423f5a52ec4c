"""MIDI <-> drum grid: quantization, meters, tempos, channels, bad files, round trip, fuzz."""
import random
from collections import Counter

import mido
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepbeat import smf
from deepbeat.drums import NUM_DRUM_CLASSES, TD11_PITCHES, PitchTable, class_index
from deepbeat.errors import MidiFileError
from deepbeat.grid import DrumGrid, steps_per_bar
from deepbeat.midifiles import MAX_SECTION_STEPS, read_drum_grids, read_first_bars, write_midi
from deepbeat.notemaps import load_note_map

KICK, SNARE, HAT, CRASH = (class_index(n) for n in ("kick", "snare", "closed_hihat", "crash"))
TPB = 480
STEP = TPB // 4  # ticks per 16th at 480 ticks per beat


def hits(grid, drum):
    """Steps where `drum` is hit."""
    return np.flatnonzero(grid.velocities[:, drum]).tolist()


def only_grid(path, **options):
    found = read_drum_grids(path, **options)
    assert len(found.grids) == 1
    return found.grids[0]


# --- the bundled GMD files ---------------------------------------------------------------


def test_gmd_hiphop_beat(hiphop_midi):
    found = read_drum_grids(hiphop_midi, TD11_PITCHES)
    assert found.dropped_pitches == Counter() and found.skipped_sections == Counter()
    (grid,) = found.grids
    assert (grid.num_bars, grid.bpm, grid.time_signature) == (2, 92.0, (4, 4))
    assert hits(grid, KICK) == [0, 16, 18]
    assert hits(grid, SNARE) == [4, 12, 20, 28, 31]
    assert hits(grid, CRASH) == [18]
    assert grid.velocities.max() <= 127 and (np.abs(grid.offsets) <= 0.5).all()
    assert grid.offsets[grid.velocities > 0].std() > 0  # human timing kept, not zeros


def test_gmd_six_eight_file_is_one_section(six_eight_midi):
    grid = only_grid(six_eight_midi, pitches=TD11_PITCHES)
    assert (grid.time_signature, grid.steps_per_bar, grid.num_bars, grid.bpm) == ((6, 8), 12, 9, 80.0)
    found = read_drum_grids(six_eight_midi, TD11_PITCHES, meters={(4, 4)}.union({(6, 8)}))
    assert len(found.grids) == 1


def test_pitches_outside_the_table_are_counted_per_pitch(hiphop_midi):
    kick_only = PitchTable("kick-only", ((36,),) + ((),) * 8)
    found = read_drum_grids(hiphop_midi, kick_only)
    played = Counter(m.note for m in mido.MidiFile(hiphop_midi) if m.type == "note_on" and m.velocity > 0)
    del played[36]
    assert found.dropped_pitches == played and len(played) >= 4


# --- quantization ------------------------------------------------------------------------


def test_magenta_rounding_half_steps_go_up(make_midi):
    # int(x + 0.5): 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (Python's round() would give 0, 2, 2)
    path = make_midi([(STEP // 2, 36, 100), (3 * STEP // 2, 38, 100), (5 * STEP // 2, 42, 100), (STEP * 7 - 1, 49, 90)])
    grid = only_grid(path)
    assert hits(grid, KICK) == [1] and hits(grid, SNARE) == [2] and hits(grid, HAT) == [3] and hits(grid, CRASH) == [7]
    assert grid.offsets[1, KICK] == pytest.approx(-0.5)
    assert grid.offsets[7, CRASH] == pytest.approx(-1 / STEP)
    assert len(grid) == 16  # padded to a whole bar


def test_offsets_are_fractions_of_a_step(make_midi):
    path = make_midi([(10, 36, 100), (4 * STEP - 30, 38, 100), (8 * STEP + 59, 42, 100)])
    grid = only_grid(path)
    assert grid.offsets[0, KICK] == pytest.approx(10 / STEP)
    assert grid.offsets[4, SNARE] == pytest.approx(-30 / STEP)
    assert grid.offsets[8, HAT] == pytest.approx(59 / STEP)
    assert grid.offsets[1].tolist() == [0.0] * NUM_DRUM_CLASSES


def test_merged_hits_keep_the_loudest_velocity_and_its_timing(make_midi):
    # 42 and 44 are both closed hi-hat in GM; 44 is louder, 10 ticks late
    path = make_midi([(0, 42, 50), (10, 44, 90), (4 * STEP, 44, 70), (4 * STEP + 5, 42, 30)])
    grid = only_grid(path)
    assert grid.velocities[0, HAT] == 90 and grid.offsets[0, HAT] == pytest.approx(10 / STEP)
    assert grid.velocities[4, HAT] == 70 and grid.offsets[4, HAT] == 0.0


@pytest.mark.parametrize(
    "ticks_per_beat, beats",
    [(96, [0, 1, 1.25, 2.75, 7.5]), (220, [0, 1.25, 2.75, 7.5]), (960, [0.25, 3.75, 7.5]), (1, [0, 1, 7])],
)
def test_any_ticks_per_beat(make_midi, ticks_per_beat, beats):
    path = make_midi([(round(b * ticks_per_beat), 36, 100) for b in beats], ticks_per_beat=ticks_per_beat)
    grid = only_grid(path)
    assert hits(grid, KICK) == [int(b * 4) for b in beats]
    assert len(grid) == 32


@pytest.mark.parametrize("midi_type", [0, 1])
def test_type_0_and_1_read_the_same(make_midi, midi_type):
    notes = [(0, 36, 100), (4 * STEP, 38, 90), (6 * STEP, 42, 40)]
    grid = only_grid(make_midi(notes, midi_type=midi_type, tempos=((0, 97.0),)))
    assert mido.MidiFile(make_midi(notes, name="check.mid", midi_type=midi_type)).type == midi_type
    assert grid.steps.tolist()[:7] == [1, 0, 0, 0, 2, 0, 4]
    assert grid.bpm == 97.0


def test_tempo_changes_keep_musical_time(make_midi):
    # tempo halves at beat 4: a note on beat 6 is still step 24, and the grid keeps the first tempo
    path = make_midi([(0, 36, 100), (6 * TPB, 38, 100)], tempos=((0, 120.0), (4 * TPB, 60.0)))
    grid = only_grid(path)
    assert hits(grid, SNARE) == [24] and grid.bpm == 120.0


def test_each_section_takes_the_tempo_in_force_at_its_start(make_midi):
    path = make_midi(
        [(0, 36, 100), (4 * TPB, 36, 100)],
        tempos=((0, 100.0), (2 * TPB, 140.0)),
        meters=((0, (4, 4)), (4 * TPB, (3, 4))),
    )
    first, second = read_drum_grids(path).grids
    assert (first.bpm, second.bpm) == (100.0, 140.0)


def test_time_signature_changes_split_sections_at_bar_lines(make_midi):
    # one bar of 4/4, two bars of 3/4, one bar of 6/8
    three_four, six_eight = 4 * TPB, 10 * TPB
    notes = [(0, 36, 100), (2 * TPB, 38, 100), (three_four, 36, 100), (three_four + 4 * TPB, 38, 100),
             (six_eight + TPB // 2, 42, 100)]
    path = make_midi(notes, meters=((0, (4, 4)), (three_four, (3, 4)), (six_eight, (6, 8))))
    grids = read_drum_grids(path).grids
    assert [g.time_signature for g in grids] == [(4, 4), (3, 4), (6, 8)]
    assert [len(g) for g in grids] == [16, 24, 12]
    assert hits(grids[0], SNARE) == [8]
    assert hits(grids[1], KICK) == [0] and hits(grids[1], SNARE) == [16]
    assert hits(grids[2], HAT) == [2]


def test_a_downbeat_played_early_belongs_to_the_next_section(make_midi):
    change = 4 * TPB
    path = make_midi([(0, 36, 100), (change - 20, 49, 100), (change + 3 * STEP, 38, 100)],
                     meters=((0, (4, 4)), (change, (3, 4))))
    first, second = read_drum_grids(path).grids
    assert len(first) == 16 and hits(first, CRASH) == []
    assert hits(second, CRASH) == [0] and second.offsets[0, CRASH] == pytest.approx(-20 / STEP)


def test_silent_sections_keep_the_timeline(make_midi):
    path = make_midi([(0, 36, 100, 0), (1920, 38, 90)], meters=((0, (4, 4)), (1920, (3, 4))))
    assert [g.time_signature for g in read_drum_grids(path).grids] == [(3, 4)]
    grids = read_drum_grids(path, silent_sections=True).grids
    assert [(g.time_signature, len(g), bool(g.velocities.any())) for g in grids] == [
        ((4, 4), 16, False), ((3, 4), 12, True),
    ]
    with pytest.raises(MidiFileError, match="no drum notes in the gm pitch table"):
        read_drum_grids(make_midi([(0, 90, 100)], name="silent.mid"), silent_sections=True)


def test_repeated_meter_events_do_not_split(make_midi):
    path = make_midi([(0, 36, 100), (20 * TPB, 36, 100)], meters=((0, (4, 4)), (8 * TPB, (4, 4))))
    assert [len(g) for g in read_drum_grids(path).grids] == [96]


def test_meter_filter_skips_and_counts_other_sections(make_midi):
    path = make_midi([(0, 36, 100), (4 * TPB, 38, 100)], meters=((0, (4, 4)), (4 * TPB, (3, 4))))
    found = read_drum_grids(path, meters={(4, 4)})
    assert [g.time_signature for g in found.grids] == [(4, 4)]
    assert found.skipped_sections == Counter({"3/4": 1})


def test_file_with_only_other_meters_fails_but_reports_what_it_found(make_midi):
    path = make_midi([(0, 36, 100), (0, 90, 100)], meters=((0, (3, 4)),))
    with pytest.raises(MidiFileError, match="only 3/4 sections, expected 4/4") as caught:
        read_drum_grids(path, meters={(4, 4)})
    assert caught.value.reason == "meter 3/4"
    assert caught.value.found.skipped_sections == Counter({"3/4": 1})


def test_drum_channel_and_all_channels(make_midi):
    path = make_midi([(0, 36, 100, 9), (4 * STEP, 38, 100, 0), (8 * STEP, 42, 100, 3)])
    assert only_grid(path).steps.tolist()[:9] == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert only_grid(path, channel=None).steps.tolist()[:9] == [1, 0, 0, 0, 2, 0, 0, 0, 4]
    assert only_grid(path, channel=0).steps.tolist()[:9] == [0, 0, 0, 0, 2, 0, 0, 0, 0]


def test_note_on_with_velocity_zero_is_a_note_off(make_midi):
    path = make_midi([(0, 36, 100), (STEP, 38, 0)])
    assert only_grid(path).steps.tolist()[:2] == [1, 0]


def test_dropped_pitches_are_counted_per_pitch(make_midi):
    path = make_midi([(0, 36, 100), (STEP, 90, 100), (2 * STEP, 90, 90), (3 * STEP, 21, 80)])
    found = read_drum_grids(path)
    assert found.dropped_pitches == Counter({90: 2, 21: 1})
    assert hits(found.grids[0], KICK) == [0]


# --- bad files ---------------------------------------------------------------------------


def expect_error(path, reason, fragment, **options):
    with pytest.raises(MidiFileError) as caught:
        read_drum_grids(path, **options)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    assert fragment in message, message
    assert caught.value.reason == reason
    return caught.value


def test_missing_file_and_folder(tmp_path):
    expect_error(tmp_path / "absent.mid", "missing", "no such file")
    expect_error(tmp_path, "missing", "is a folder")


@pytest.mark.parametrize("data", [b"", b"hello, not MIDI", b"MThd\x00\x00\x00\x06\x00\x01", b"RIFF" + bytes(40)])
def test_non_midi_bytes(tmp_path, data):
    path = tmp_path / "bad.mid"
    path.write_bytes(data)
    expect_error(path, "not MIDI", "not a readable MIDI file")


def test_truncated_file(tmp_path, hiphop_midi):
    path = tmp_path / "cut.mid"
    path.write_bytes(hiphop_midi.read_bytes()[:200])
    expect_error(path, "not MIDI", "not a readable MIDI file")


def test_type_2_is_refused(tmp_path, make_midi):
    path = make_midi([(0, 36, 100)])
    data = bytearray(path.read_bytes())
    data[9] = 2  # header format word
    path.write_bytes(bytes(data))
    expect_error(path, "unsupported type", "MIDI type 2 is not supported")


def test_smpte_division_is_refused(make_midi):
    path = make_midi([(0, 36, 100)])
    data = bytearray(path.read_bytes())
    data[12:14] = b"\xe7\x28"  # -25 frames per second, 40 ticks per frame
    path.write_bytes(bytes(data))
    expect_error(path, "not MIDI", "SMPTE")


@pytest.mark.parametrize("bpm", [10.0, 1000.0])
def test_absurd_tempo(make_midi, bpm):
    expect_error(make_midi([(0, 36, 100)], tempos=((0, bpm),)), "absurd tempo", "is outside 20-400")


def test_tempo_zero(tmp_path):
    midi = mido.MidiFile(type=0)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=0),
                                       mido.Message("note_on", channel=9, note=36, velocity=100)]))
    path = tmp_path / "zero.mid"
    midi.save(path)
    expect_error(path, "absurd tempo", "is outside 20-400")


@pytest.mark.parametrize("numerator, exponent", [(0, 2), (4, 7), (4, 255)])
def test_corrupt_time_signature(make_midi, numerator, exponent):
    path = make_midi([(0, 36, 100)])
    data = bytearray(path.read_bytes())
    at = data.index(b"\xff\x58\x04") + 3  # time signature meta: nn dd cc bb
    data[at:at + 2] = bytes([numerator, exponent])
    path.write_bytes(bytes(data))
    expected = f"time signature at tick 0 is not a meter (numerator {numerator}, denominator 2^{exponent};"
    expect_error(path, "bad meter", expected)


def test_no_drum_notes(make_midi):
    expect_error(make_midi([]), "no drum notes", "no notes on channel 10")
    expect_error(make_midi([(0, 36, 100, 0)]), "no drum notes", "no notes on channel 10")
    error = expect_error(make_midi([(0, 90, 100)], name="piano.mid"), "no drum notes", "gm pitch table")
    assert error.found.dropped_pitches == Counter({90: 1})


def test_a_huge_delta_time_is_refused_not_allocated(make_midi):
    far = (MAX_SECTION_STEPS + 16) * STEP
    expect_error(make_midi([(0, 36, 100), (far, 36, 100)]), "too long", "more than")


# --- writing -----------------------------------------------------------------------------


def test_write_midi_meta_channel_velocity_and_length(tmp_path):
    velocities = np.zeros((12, NUM_DRUM_CLASSES), np.uint8)
    velocities[0, KICK], velocities[3, SNARE] = 101, 57
    path = tmp_path / "out.mid"
    write_midi(DrumGrid(velocities, bpm=87.0, time_signature=(3, 4)), path, note_length=2)
    midi = mido.MidiFile(path)
    assert midi.type == 0 and midi.ticks_per_beat == 480
    messages, tick, timed = list(midi.tracks[0]), 0, []
    for message in messages:
        tick += message.time
        timed.append((tick, message))
    tempo = next(m for _, m in timed if m.type == "set_tempo")
    meter = next(m for _, m in timed if m.type == "time_signature")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(87.0, abs=1e-3)
    assert (meter.numerator, meter.denominator) == (3, 4)
    notes = [(t, m.type, m.note, m.velocity, m.channel) for t, m in timed if m.type in ("note_on", "note_off")]
    assert notes == [
        (0, "note_on", 36, 101, 9), (240, "note_off", 36, 0, 9),
        (360, "note_on", 38, 57, 9), (600, "note_off", 38, 0, 9),
    ]
    assert timed[-1][0] == 12 * 120  # end of track at the grid's end


def test_write_midi_uses_the_note_map(tmp_path):
    path = tmp_path / "mpc.mid"
    write_midi(DrumGrid.from_steps([0b111111111]), path, note_map=load_note_map("mpc-chromatic"))
    notes = sorted(m.note for m in mido.MidiFile(path) if m.type == "note_on")
    assert notes == list(range(36, 45))


def test_write_to_a_bad_place(tmp_path):
    with pytest.raises(MidiFileError, match="cannot write"):
        write_midi(DrumGrid.from_steps([1]), tmp_path / "no" / "such" / "folder.mid")


# --- properties --------------------------------------------------------------------------

METERS = [(4, 4), (3, 4), (6, 8), (5, 4), (7, 8), (2, 2)]


@st.composite
def written_grids(draw):
    """Grids that survive a trip through MIDI: at least one hit in the last bar (a file ends at
    its last note), qpm with two decimals inside 20-400, offsets inside [-0.5, 0.5).

    Hypothesis draws meter, length, density, tempo and a seed; the cells come from the seed
    (drawing hundreds of cells one by one would exhaust hypothesis's example buffer).
    """
    meter = draw(st.sampled_from(METERS))
    per_bar = steps_per_bar(*meter)
    num_steps = draw(st.integers(1, 4)) * per_bar
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.02, 0.2, 0.6, 1.0]))
    velocities = (rng.integers(1, 128, (num_steps, NUM_DRUM_CLASSES)) * (rng.random((num_steps, 9)) < density))
    velocities[draw(st.integers(num_steps - per_bar, num_steps - 1)), draw(st.integers(0, 8))] = draw(
        st.sampled_from([1, 127]) | st.integers(1, 127)
    )
    offsets = rng.uniform(-0.5, 0.5, velocities.shape).astype(np.float32) * (velocities > 0)
    qpm = draw(st.integers(2000, 40000)) / 100
    return DrumGrid(velocities.astype(np.uint8), offsets, bpm=qpm, time_signature=meter)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("roundtrip") / "grid.mid"


@given(written_grids())
def test_grid_midi_grid_is_identity(scratch, grid):
    write_midi(grid, scratch)
    back = only_grid(scratch)
    assert np.array_equal(back.velocities, grid.velocities)
    assert back.steps.tolist() == grid.steps.tolist()
    assert (back.bpm, back.time_signature) == (grid.bpm, grid.time_signature)
    assert not back.offsets.any()


@given(written_grids())
def test_micro_timing_survives_within_a_tick(scratch, grid):
    write_midi(grid, scratch, micro_timing=True)
    back = only_grid(scratch)
    assert np.array_equal(back.velocities, grid.velocities)
    # nothing sounds before the file starts, and the last tick of a step's window is 59 of 120
    expected = np.minimum(grid.offsets, 59 / STEP)
    expected[0] = np.maximum(expected[0], 0)
    assert np.abs(back.offsets - expected).max() <= 0.5 / STEP + 1e-6


def test_offsets_on_whole_ticks_come_back_exactly(scratch):
    offsets = np.zeros((16, NUM_DRUM_CLASSES), np.float32)
    velocities = np.zeros_like(offsets, dtype=np.uint8)
    velocities[[1, 5, 9, 15], KICK] = 100
    offsets[[1, 5, 9, 15], KICK] = [-60 / STEP, -7 / STEP, 59 / STEP, 0.499]  # 0.499 rounds to tick 60: held at 59
    write_midi(DrumGrid(velocities, offsets), scratch, micro_timing=True)
    back = only_grid(scratch)
    assert hits(back, KICK) == [1, 5, 9, 15]
    assert back.offsets[[1, 5, 9, 15], KICK] == pytest.approx([-0.5, -7 / STEP, 59 / STEP, 59 / STEP])


# --- fuzz: only MidiFileError may come out -------------------------------------------------


def read_or_midi_error(path):
    try:
        read_first_bars(path, 2)
    except MidiFileError as error:
        assert str(error) and "\n" not in str(error)
    try:
        found = read_drum_grids(path)
    except MidiFileError as error:
        assert str(error) and "\n" not in str(error)
        return None
    assert found.grids and all(g.velocities.shape[1] == NUM_DRUM_CLASSES for g in found.grids)
    return found


@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(scratch, data):
    scratch.write_bytes(data)
    read_or_midi_error(scratch)


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_after_a_valid_header(scratch, data):
    scratch.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk" + data)
    read_or_midi_error(scratch)


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=64)),
)


def mutate(data, mutation):
    data = bytearray(data)
    if not data and mutation[0] != "insert":  # an earlier truncation left nothing to flip or cut
        return b""
    if mutation[0] == "flip":
        for position, mask in mutation[1]:
            data[position % len(data)] ^= mask
    elif mutation[0] == "truncate":
        del data[mutation[1] % len(data):]
    else:
        position = mutation[1] % (len(data) + 1)
        data[position:position] = mutation[2]
    return bytes(data)


@pytest.fixture(scope="module")
def gmd_bytes(hiphop_midi, fill_midi, six_eight_midi):
    return [path.read_bytes() for path in (hiphop_midi, fill_midi, six_eight_midi)]


@given(st.integers(0, 2), st.lists(MUTATIONS, min_size=1, max_size=3))
def test_fuzz_mutated_gmd_files(scratch, gmd_bytes, which, mutations):
    data = gmd_bytes[which]
    for mutation in mutations:
        data = mutate(data, mutation)
    scratch.write_bytes(data)
    read_or_midi_error(scratch)


def test_fuzz_many_seeded_mutations(scratch, hiphop_midi, six_eight_midi):
    """A fixed batch of byte flips on every position region, beyond hypothesis's example count."""
    rng = random.Random(20190704)
    sources = [hiphop_midi.read_bytes(), six_eight_midi.read_bytes()]
    read = 0
    for _ in range(400):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        scratch.write_bytes(bytes(data))
        read += read_or_midi_error(scratch) is not None
    assert 0 < read < 400  # some mutants still read, some fail: both paths ran


# --- the stream decoder ----------------------------------------------------------------------


CHANNEL_MESSAGES = st.one_of(
    st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 127)),
    st.builds(lambda c, n: mido.Message("note_off", channel=c, note=n), st.integers(0, 15), st.integers(0, 127)),
    st.builds(lambda c, v: mido.Message("control_change", channel=c, control=7, value=v),
              st.integers(0, 15), st.integers(0, 127)),
    st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p), st.integers(0, 15),
              st.integers(0, 127)),
    st.builds(lambda p: mido.Message("pitchwheel", channel=9, pitch=p), st.integers(-8192, 8191)),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(st.integers(0, 127), max_size=20)),
    st.builds(lambda t: mido.MetaMessage("set_tempo", tempo=t), st.integers(150_000, 3_000_000)),
    st.builds(lambda n, d: mido.MetaMessage("time_signature", numerator=n, denominator=d),
              st.integers(1, 12), st.sampled_from([1, 2, 4, 8, 16])),
    st.builds(lambda text: mido.MetaMessage("text", text=text), st.text("abc xyz", max_size=10)),
)
TRACKS = st.lists(st.lists(st.tuples(st.integers(0, 300), CHANNEL_MESSAGES), max_size=30), min_size=1, max_size=3)


def mido_events(path):
    """What the stream decoder should yield, as mido reads and merges the file."""
    tick, events = 0, []
    for message in mido.merge_tracks(mido.MidiFile(path).tracks):
        tick += message.time
        if message.type == "note_on" and message.velocity:
            events.append((tick, smf.NOTE, message.channel, (message.note, message.velocity)))
        elif message.type == "set_tempo":
            events.append((tick, smf.TEMPO, message.tempo, None))
        elif message.type == "time_signature":
            events.append((tick, smf.METER, message.numerator, message.denominator.bit_length() - 1))
    return events


@given(TRACKS)
def test_the_stream_decoder_reads_what_mido_reads(scratch, tracks):
    """Running status, SysEx, meta events and tracks merged in time order, ties in track order."""
    midi = mido.MidiFile(type=1 if len(tracks) > 1 else 0)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(message.copy(time=delta) for delta, message in messages))
    midi.save(scratch)
    assert list(smf.open_midi(scratch).events()) == mido_events(scratch)


def test_a_file_over_the_size_bound_is_refused_unread(tmp_path):
    path = tmp_path / "huge.mid"
    with open(path, "wb") as file:
        file.truncate(smf.MAX_FILE_BYTES + 1)  # sparse: nothing is written, the stated size is all there is
    expect_error(path, "too large", "larger than 16 MiB")


def test_decoding_errors_name_what_broke(tmp_path, make_midi):
    data = make_midi([(0, 36, 100)]).read_bytes()
    path = tmp_path / "bad.mid"
    path.write_bytes(data[:data.rindex(b"MTrk")] + b"MTrk\x00\x00\x00\x04\x00\xf4\x00\x00")
    expect_error(path, "not MIDI", "undefined status byte 0xF4 at tick 0")
    path.write_bytes(data[:-3])
    expect_error(path, "not MIDI", "track 2 is cut short")
