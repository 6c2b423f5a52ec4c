"""Shared test fixtures: bundled GMD files, the shared full dataset, MIDI files made on the spot."""
import os
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, settings

# Property tests: no per-example deadline (CI machines are slow and shared) and modest example
# counts so the suite stays quick; HYPOTHESIS_PROFILE=thorough runs many more locally. The
# profile builds on hypothesis's current default, which under CI=true is its derandomized
# "ci" profile (same examples every run, no example database).
settings.register_profile(
    "deepbeat", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("thorough", parent=settings.get_profile("deepbeat"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deepbeat"))

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GMD_FIXTURE = FIXTURES / "gmd"
# untrained runtime test models of model formats 1 and 2, see fixtures/README-models.md
TINY_MODEL, TINY_MODEL_V2 = FIXTURES / "tiny_model.onnx", FIXTURES / "tiny_model_v2.onnx"
# CI clones the repository with ../shared beside it; tests using it skip when it is absent.
SHARED_GROOVE = REPO_ROOT.parent / "shared" / "data" / "groove"

HIPHOP_BEAT = "drummer3/session2/33_hiphop_92_beat_4-4.mid"  # 2 bars of 4/4, train split
SAMBA_FILL = "drummer1/session1/29_latin-samba_116_fill_4-4.mid"  # 1 bar, snare only, test split
FUNK_FILL = "drummer1/session1/133_funk-fast_125_fill_4-4.mid"  # 1 bar with toms, validation split
ROCK_6_8 = "drummer6/session1/3_rock_80_beat_6-8.mid"  # 9 bars of 6/8, train split


@pytest.fixture(scope="session")
def gmd_fixture_dir():
    """A small Groove MIDI Dataset folder: info.csv and four of its MIDI files (TD-11 pitches)."""
    return GMD_FIXTURE


@pytest.fixture(scope="session")
def hiphop_midi():
    """A 2-bar GMD hiphop beat (92 BPM, kick, snare, hats, one crash)."""
    return GMD_FIXTURE / HIPHOP_BEAT


@pytest.fixture(scope="session")
def fill_midi():
    """A 1-bar GMD funk fill (125 BPM, kick, snare, toms)."""
    return GMD_FIXTURE / FUNK_FILL


@pytest.fixture(scope="session")
def six_eight_midi():
    """A 9-bar GMD rock beat in 6/8 (skipped by 4/4-only preparation)."""
    return GMD_FIXTURE / ROCK_6_8


@pytest.fixture(scope="session")
def groove_root():
    """The full Groove MIDI Dataset at ../shared/data/groove; skips the test when it is absent."""
    if not (SHARED_GROOVE / "info.csv").is_file():
        pytest.skip(f"{SHARED_GROOVE} is absent")
    return SHARED_GROOVE


@pytest.fixture(scope="session")
def prepared_fixture(tmp_path_factory, gmd_fixture_dir):
    """`deepbeat data prepare` output of the bundled GMD files (read-only: shared by tests)."""
    from deepbeat.prepare import prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare(gmd_fixture_dir, out, log=lambda line: None)
    return out


def write_test_midi(path, notes, ticks_per_beat=480, tempos=((0, 120.0),), meters=((0, (4, 4)),), midi_type=1):
    """Write a MIDI file; notes are (tick, pitch, velocity) or (tick, pitch, velocity, channel).

    Channel defaults to 9 (MIDI channel 10). Type 1 puts the meta events on their own track.
    Returns the path.
    """
    meta = [(tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for tick, bpm in tempos]
    meta += [
        (tick, mido.MetaMessage("time_signature", numerator=num, denominator=den)) for tick, (num, den) in meters
    ]
    events = []
    for note in notes:
        tick, pitch, velocity, channel = (*note, 9) if len(note) == 3 else note
        events.append((tick, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((tick + 30, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    meta_events = [(tick, 0, message) for tick, message in meta]
    tracks = [meta_events, events] if midi_type == 1 else [meta_events + events]
    for timed in tracks:
        track = mido.MidiTrack()
        now = 0
        for tick, _, message in sorted(timed, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


@pytest.fixture
def make_midi(tmp_path):
    """Factory: make_midi(notes, name="test.mid", **write_test_midi options) -> path in tmp_path."""
    def make(notes, name="test.mid", **options):
        return write_test_midi(tmp_path / name, notes, **options)

    return make
