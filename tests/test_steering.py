"""Steering a beat: style strength, variation, drum locks, density, fills, swing, humanize, groove and
presets, on the tiny format-2 model (no TensorFlow) and through `deepbeat generate`."""
import dataclasses

import mido
import numpy as np
import pytest

from deepbeat.cli import main
from deepbeat.drums import class_index
from deepbeat.encoding import STEP_HITS
from deepbeat.errors import DeepBeatError
from deepbeat.grid import DrumGrid
from deepbeat.midifiles import read_drum_grids
from deepbeat.musical import jaccard
from deepbeat.notemaps import GM
from deepbeat.primer import parse_step_text
from deepbeat.runtime.generate import continue_primer, write_beats
from deepbeat.runtime.sampler import DrumSampler, Figure, Shaping
from deepbeat.runtime.steering import (
    PRESETS, STYLE_STRENGTH, Feel, FillPlan, Groove, Range, Steering, parse_locks,
)
from deepbeat.runtime.stepmodel import StepModel

from conftest import TINY_MODEL, TINY_MODEL_V2

PRIMER = parse_step_text("kick: X.....x...x.....; snare: ....X.......X...; hh: x.x.x.x.x.x.x.x.")
KICK, SNARE = class_index("kick"), class_index("snare")


@pytest.fixture(scope="module")
def model():
    return StepModel.load(TINY_MODEL_V2)


def bars_of(beats, skip=1):
    """The generated bars of beats (primer bars skipped): [n, 16, 9] velocities."""
    return np.concatenate([b.velocities[16 * skip:].reshape(-1, 16, 9) for b in beats])


def test_ranges_refuse_what_is_outside_them():
    for options, fragment in [({"style_strength": 4.5}, "style strength 4.5"), ({"variation": -0.1}, "variation"),
                              ({"density": 2}, "density 2"), ({"temperature": float("nan")}, "temperature nan")]:
        with pytest.raises(DeepBeatError, match=fragment):
            Steering(**options)
    with pytest.raises(DeepBeatError, match="swing 49"):
        Feel(swing=49)
    assert Range("x", 0, 4, 1).at(0.5) == 2 and STYLE_STRENGTH.check("2") == 2.0


def test_locked_drums_come_back_bit_for_bit_and_the_rest_still_varies(model):
    steering = Steering(locks=parse_locks("kick,snare"), variation=1.0)
    beats = continue_primer(model, PRIMER, 64, steering, num_outputs=6, seed=3)
    played = bars_of(beats)
    expected = np.tile(PRIMER.velocities[None], (len(played), 1, 1))
    np.testing.assert_array_equal(played[..., [KICK, SNARE]], expected[..., [KICK, SNARE]])  # velocities too
    others = played[..., [d for d in range(9) if d not in (KICK, SNARE)]] > 0
    assert len({bar.tobytes() for bar in others}) > len(others) // 2  # the other drums are still generated
    assert parse_locks("hats,toms") == {2, 3, 4, 5, 6} and parse_locks("none") == frozenset()


def test_locked_drums_follow_the_figure_heard_last(model):
    """Live, the player's next bar replaces the one locked drums keep: the sampler must not go on with the old."""
    steering = Steering(locks=parse_locks("kick,snare"), variation=1.0)
    sampler = DrumSampler(model, num_outputs=4, seed=1)
    sampler.prime(PRIMER, steering)
    first = sampler.sample_rows(16, steering).velocities
    moved = parse_step_text("kick: ..X...X...X...X.; snare: X.......X.......")
    sampler.feed(moved, steering)
    second = sampler.sample_rows(16, steering).velocities
    for played, heard in ((first, PRIMER), (second, moved)):
        np.testing.assert_array_equal(played[..., [KICK, SNARE]],
                                      np.broadcast_to(heard.velocities[:, [KICK, SNARE]], (4, 16, 2)))


def test_shaping_rules_out_steps_that_change_locked_drums_and_leaves_time_keeping_to_the_style():
    heard = Figure(PRIMER.steps, PRIMER.velocities, PRIMER.offsets)
    shaping = Shaping.of(Steering(locks=parse_locks("kick,snare"), density=0.5), heard)
    for position in range(16):
        keeps = (STEP_HITS[:, [KICK, SNARE]] == (PRIMER.velocities[position, [KICK, SNARE]] > 0)).all(axis=1)
        np.testing.assert_array_equal(np.isfinite(shaping.lock[position]), keeps)
    assert np.all(np.diff(shaping.bias[0][[0, 1, 3, 7, 15]]) > 0)  # density: each hit more raises the bias
    assert not shaping.keeping_open and list(shaping.locked.nonzero()[0]) == [KICK, SNARE]
    odds = np.ones((16, 512), np.float32)
    skeleton = Figure(heard.steps & ~4, heard.velocities * (np.arange(9) != 2), heard.offsets)
    assert Shaping.of(Steering(style="jazz"), skeleton, odds).keeping_open  # no hats or ride heard: the style's
    assert not Shaping.of(Steering(style="jazz"), heard, odds).keeping_open  # the player's hats are kept
    assert Shaping.of(Steering(), heard).bias is None and Shaping.of(Steering(), heard).lock is None


@pytest.mark.parametrize("text", ["cowbell", "kick,gong"])
def test_unknown_locks_are_refused(text):
    with pytest.raises(DeepBeatError, match="cannot lock"):
        parse_locks(text)


def test_adherence_rises_as_variation_falls(model):
    def adherence(variation):
        beats = continue_primer(model, PRIMER, 64, Steering(variation=variation), num_outputs=16, seed=5)
        return np.mean([jaccard(bar, PRIMER.velocities) for bar in bars_of(beats)])

    figures = [adherence(v) for v in (1.0, 0.6, 0.3, 0.0)]
    assert figures == sorted(figures) and figures[-1] > 0.7 and figures[0] < 0.5, figures


def test_onsets_per_bar_follow_density(model):
    def onsets(density):
        beats = continue_primer(model, PRIMER, 64, Steering(density=density), num_outputs=8, seed=2)
        return (bars_of(beats) > 0).sum() / len(bars_of(beats))

    figures = [onsets(d) for d in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    assert figures == sorted(figures) and figures[-1] > 1.5 * figures[0], figures


def test_style_strength_mixes_the_style_with_any(model):
    def greedy(style, strength):
        steering = Steering(temperature=0, style=style, style_strength=strength)
        return continue_primer(model, PRIMER, 32, steering, seed=1)[0]

    assert greedy("jazz", 0.0) == greedy("any", 1.0)  # strength 0: the style is ignored
    assert greedy("jazz", 1.0) != greedy("any", 1.0)  # strength 1: the model as trained, unguided
    assert greedy("jazz", 3.0) != greedy("jazz", 1.0)
    assert not Steering(style="jazz", style_strength=1.0).guided and Steering(style="jazz", style_strength=2.0).guided
    assert not Steering(style="any", style_strength=2.0).guided


def test_guidance_switched_on_mid_stream_branches_from_the_current_state(model):
    sampler = DrumSampler(model, seed=4)
    sampler.prime(PRIMER, Steering(style="funk", style_strength=1.0))
    sampler.sample(8, Steering(style="funk", style_strength=1.0))
    grid = sampler.sample(8, Steering(style="funk", style_strength=3.0))[0]
    assert grid.num_steps == 8


def test_reordered_rows_take_their_any_style_branch_with_them(model):
    # two rows drawn apart under guidance, then both continue as row 1: greedy from one state (the style's and
    # the any-style branch's alike), they must draw the same steps; a branch row left behind would differ
    guided = Steering(style="jazz", style_strength=3.0)
    sampler = DrumSampler(model, num_outputs=2, seed=5)
    sampler.prime(PRIMER, guided)
    drawn = sampler.sample(16, guided)
    assert drawn[0] != drawn[1]
    sampler.reorder(np.array([1, 1]))
    first, second = sampler.sample(16, guided.with_changes(temperature=0))
    assert first == second


def test_fill_plans():
    assert [FillPlan.parse("phrase").is_fill(bar) for bar in range(8)] == [False, False, False, True] * 2
    assert [FillPlan.parse("every:2").is_fill(bar) for bar in range(4)] == [False, True, False, True]
    assert not any(FillPlan.parse("off").is_fill(bar) for bar in range(8))
    assert FillPlan().with_bar(5).is_fill(5) and str(FillPlan.parse("every:8")) == "every:8"
    for bad in ("every:1", "every:x", "always"):
        with pytest.raises(DeepBeatError, match="fills"):
            FillPlan.parse(bad)


def written_onsets(path):
    """(tick of each note-on, ticks per 16th) of a written file."""
    midi = mido.MidiFile(path)
    ticks, onsets = 0, []
    for message in midi.tracks[0]:
        ticks += message.time
        if message.type == "note_on" and message.velocity:
            onsets.append(ticks)
    return np.array(onsets), midi.ticks_per_beat / 4


@pytest.mark.parametrize("unit, swing", [(16, 54.0), (16, 66.0), (16, 75.0), (8, 58.0), (8, 70.0)])
def test_swing_measured_from_the_written_midi(tmp_path, unit, swing):
    """Hats on every 16th, no humanize: the off-beat note of each pair starts at `swing` % of the pair."""
    grid = DrumGrid.from_steps([4] * 64)
    path, = write_beats([grid], tmp_path, note_map=GM, feel=Feel(swing=swing, swing_unit=unit, humanize=0.0))
    onsets, per_step = written_onsets(path)
    pair = 2 if unit == 16 else 4
    steps = np.arange(64)
    offbeat = onsets[steps % pair == pair // 2]
    pair_start = steps[steps % pair == pair // 2] // pair * pair * per_step
    measured = 100 * (offbeat - pair_start) / (pair * per_step)
    assert abs(measured.mean() - swing) < 0.5 and np.ptp(measured) < 0.5
    on_beats = onsets[steps % pair == 0]
    np.testing.assert_allclose(on_beats, steps[steps % pair == 0] * per_step)  # the first of each pair stays


def test_humanize_scales_the_models_offsets_and_the_primer_keeps_its_own():
    offsets = np.where(PRIMER.velocities > 0, -0.2, 0.0)
    beat = DrumGrid(np.tile(PRIMER.velocities, (2, 1)), np.tile(offsets, (2, 1)))
    hits = beat.velocities > 0
    steps = np.arange(32)[:, None]
    for humanize in (0.0, 0.5, 1.0):
        onsets = Feel(humanize=humanize).onsets(beat, first=16)
        np.testing.assert_allclose((onsets - steps)[16:][hits[16:]], -0.2 * humanize, atol=1e-6)
        np.testing.assert_allclose((onsets - steps)[:16][hits[:16]], -0.2, atol=1e-6)  # the primer as played


def test_groove_takes_the_primers_timing_and_accents_per_position():
    velocities = PRIMER.velocities.copy()
    velocities[4, SNARE], velocities[12, SNARE] = 120, 60  # a loud 2, a soft 4
    offsets = np.where(velocities > 0, 0.0, 0.0)
    offsets[4, SNARE], offsets[12, SNARE] = 0.25, -0.1
    primer = DrumGrid(velocities, offsets)
    groove = Groove.of(primer)
    answer = DrumGrid(np.tile(PRIMER.velocities, (2, 1)))  # model velocities, on the grid
    feel = Feel(groove=groove)
    onsets = feel.onsets(answer) - np.arange(32)[:, None]
    assert onsets[4, SNARE] == pytest.approx(0.25) and onsets[28, SNARE] == pytest.approx(-0.1)
    played = feel.velocities(answer)
    assert played[4, SNARE] > played[12, SNARE] and played[20, SNARE] > played[28, SNARE]


def test_presets_bundle_values_and_options_override_them():
    steering, feel = PRESETS["lofi"].apply(Steering(), Feel())
    assert steering.style == "hiphop" and steering.temperature == 0.85 and feel.swing == 62.0
    for preset in PRESETS.values():
        preset.apply(Steering(), Feel())  # every preset is a valid setting


def test_generate_wires_every_control(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["generate", "--model", str(TINY_MODEL_V2), "--output-dir", str(out), "--bars", "2", "--seed", "3",
            "--primer-grid", "kick: X.....x...x.....; snare: ....X.......X...; hh: x.x.x.x.x.x.x.x.",
            "--preset", "boom-bap", "--swing", "60", "--lock", "kick,snare", "--variation", "0.5", "--density", "0.3",
            "--style-strength", "2", "--fills", "phrase", "--humanize", "0.5", "--groove", "primer"]
    assert main(argv) == 0, capsys.readouterr().err
    path, = out.glob("*.mid")
    grid = read_drum_grids(path).grids[0]
    assert grid.steps[16:48].tolist() != [] and "style hiphop" in capsys.readouterr().out
    np.testing.assert_array_equal(grid.velocities[16:48, [KICK, SNARE]] > 0,
                                  np.tile(PRIMER.velocities[:, [KICK, SNARE]] > 0, (2, 1)))


def test_a_format_1_model_says_in_one_line_each_control_it_cannot_follow(tmp_path, capsys):
    argv = ["generate", "--model", str(TINY_MODEL), "--output-dir", str(tmp_path), "--bars", "1", "--fills", "phrase",
            "--humanize", "0.7", "--lock", "kick", "--style-strength", "2", "--style", "funk"]
    assert main(argv) == 0
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 2 and "fills has no effect" in notes[0] and "humanize has no effect" in notes[1]


def test_steering_reproduces_under_a_seed(model):
    steering = dataclasses.replace(Steering(), variation=0.5, density=0.4, style="funk", style_strength=2.0)
    first, again = (continue_primer(model, PRIMER, 32, steering, num_outputs=2, seed=9) for _ in range(2))
    assert all(a == b for a, b in zip(first, again))
