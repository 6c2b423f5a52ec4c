"""DrumGrid: steps, bars, slicing, the drum-machine text view and its JSON form."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepbeat.drums import NUM_DRUM_CLASSES, class_index
from deepbeat.grid import DrumGrid, steps_per_bar, velocity_symbol
from deepbeat.primer import parse_step_text

KICK, SNARE, HAT = class_index("kick"), class_index("snare"), class_index("closed_hihat")
METERS = [(4, 4), (3, 4), (6, 8), (7, 8), (5, 4), (2, 2), (12, 8), (7, 16)]


@pytest.mark.parametrize(
    "meter, steps", [((4, 4), 16), ((3, 4), 12), ((6, 8), 12), ((7, 8), 14), ((2, 2), 16), ((7, 16), 7)]
)
def test_steps_per_bar(meter, steps):
    assert steps_per_bar(*meter) == steps


@pytest.mark.parametrize("meter", [(5, 32), (0, 4), (3, 64)])
def test_meters_without_whole_steps_have_none(meter):
    assert steps_per_bar(*meter) is None


def test_from_steps_and_steps_agree():
    grid = DrumGrid.from_steps([1, 0, 0b110, 511], velocity=90)
    assert grid.steps.tolist() == [1, 0, 6, 511]
    assert grid.velocities[2].tolist() == [0, 90, 90, 0, 0, 0, 0, 0, 0]
    assert grid.offsets.shape == (4, NUM_DRUM_CLASSES) and not grid.offsets.any()


def test_bars_padding_slicing_and_concat():
    grid = DrumGrid.from_steps([1] * 20, bpm=95.0, time_signature=(3, 4))
    assert grid.steps_per_bar == 12 and grid.num_bars == 2
    padded = grid.padded_to_bars()
    assert len(padded) == 24 and padded.steps[20:].tolist() == [0] * 4
    assert padded.bpm == 95.0 and padded.time_signature == (3, 4)
    assert padded.padded_to_bars() is padded
    head = grid.slice(0, 12)
    assert len(head) == 12 and head.time_signature == (3, 4)
    joined = head.concat(grid.slice(12, 20))
    assert joined == grid


def test_equality_covers_velocity_offsets_and_tempo():
    base = DrumGrid.from_steps([1, 2])
    assert base == DrumGrid.from_steps([1, 2])
    assert base != DrumGrid.from_steps([1, 2], velocity=99)
    assert base != DrumGrid.from_steps([1, 2], bpm=121.0)
    shifted = DrumGrid(base.velocities, np.full(base.velocities.shape, 0.1, np.float32))
    assert base != shifted


@pytest.mark.parametrize(
    "velocity, symbol", [(0, "."), (1, "o"), (49, "o"), (50, "x"), (99, "x"), (100, "X"), (127, "X")]
)
def test_velocity_symbols(velocity, symbol):
    assert velocity_symbol(velocity) == symbol


def test_text_view_layout():
    velocities = np.zeros((32, NUM_DRUM_CLASSES), np.uint8)
    velocities[[0, 16], KICK] = 110
    velocities[[4, 12, 20, 28], SNARE] = 80
    velocities[::2, HAT] = 30
    lines = DrumGrid(velocities).to_text().splitlines()
    assert lines[0] == "# bar 1      |1   2   3   4   |1   2   3   4   |"
    assert lines[1] == "kick        :|X...............|X...............|"
    assert lines[2] == "snare       :|....x.......x...|....x.......x...|"
    assert lines[3] == "closed_hihat:|o.o.o.o.o.o.o.o.|o.o.o.o.o.o.o.o.|"
    assert len(lines) == 10 and len({len(line) for line in lines}) == 1


def test_text_view_wraps_into_bar_blocks():
    text = DrumGrid.from_steps([1] * 16 * 6).to_text(bars_per_line=4)
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    assert blocks[1].startswith("# bar 5 ")
    assert blocks[1].splitlines()[1].count("|") == 3  # bars 5 and 6


@pytest.mark.parametrize("meter", [(4, 32), (8, 64), (16, 16)])
def test_text_view_of_short_beat_meters_keeps_one_column_per_step(meter):
    grid = DrumGrid.from_steps([1] * (2 * steps_per_bar(*meter)), time_signature=meter)
    lines = grid.to_text().splitlines()
    assert len({len(line) for line in lines}) == 1
    assert parse_step_text(grid.to_text()).steps.tolist() == grid.steps.tolist()


def test_json_dict():
    velocities = np.zeros((16, NUM_DRUM_CLASSES), np.uint8)
    velocities[0, [KICK, HAT]] = [100, 64]
    velocities[4, SNARE] = 90
    data = DrumGrid(velocities, bpm=92.0).to_json_dict()
    assert data["steps_per_quarter"] == 4 and data["steps_per_bar"] == 16 and data["bpm"] == 92.0
    assert data["steps"][0] == [KICK, HAT] and data["velocities"][0] == [100, 64]
    assert data["steps"][4] == [SNARE] and data["velocities"][4] == [90]
    assert data["steps"][1] == [] and len(data["steps"]) == 16


@st.composite
def drum_grids(draw, max_bars=6):
    """Random grids: any whole-step meter, 0..max_bars bars, sparse hits of any velocity."""
    meter = draw(st.sampled_from(METERS))
    num_steps = draw(st.integers(0, max_bars)) * steps_per_bar(*meter)
    cells = draw(st.lists(st.integers(0, 127), min_size=num_steps * 9, max_size=num_steps * 9))
    velocities = np.array(cells, np.uint8).reshape(num_steps, NUM_DRUM_CLASSES)
    velocities[velocities < 64] = 0  # about half the cells silent
    return DrumGrid(velocities, time_signature=meter)


@given(drum_grids(max_bars=9), st.integers(1, 8))
def test_text_round_trip(grid, bars_per_line):
    """to_text -> parse_step_text keeps every hit (velocity as its symbol), in every block."""
    back = parse_step_text(grid.to_text(bars_per_line=bars_per_line))
    assert back.steps.tolist() == grid.steps.tolist()
    symbols = np.array([velocity_symbol(v) for v in range(128)])
    assert (symbols[back.velocities] == symbols[grid.velocities]).all()
    if grid.time_signature == (4, 4):  # parsed text is 4/4, so the printed view is the same
        assert back.to_text(bars_per_line=bars_per_line) == grid.to_text(bars_per_line=bars_per_line)
