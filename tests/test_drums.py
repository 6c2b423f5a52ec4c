"""The drum vocabulary: classes and the pitch tables."""

import pytest

from deepbeat.drums import DRUM_CLASSES, GM_PITCHES, TD11_PITCHES, class_index, pitch_table


def test_nine_classes_in_the_seed_order():
    assert DRUM_CLASSES == (
        "kick", "snare", "closed_hihat", "open_hihat", "low_tom", "mid_tom", "high_tom", "crash", "ride",
    )


def test_class_index_names_the_choices():
    with pytest.raises(ValueError, match="expected one of kick, snare"):
        class_index("cowbell")


# The issue's tables, written out once more so a typo in either copy fails.
GM_EXPECTED = {
    "kick": (36, 35),
    "snare": (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
    "closed_hihat": (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
    "open_hihat": (46, 67, 72, 74, 79, 81, 26),
    "low_tom": (45, 29, 41, 43, 61, 64, 84),
    "mid_tom": (48, 47, 60, 63, 77, 86, 87),
    "high_tom": (50, 30, 62, 76, 83),
    "crash": (49, 52, 55, 57, 58),
    "ride": (51, 53, 59, 82),
}
TD11_EXPECTED = {
    "kick": (36,),
    "snare": (38, 37, 40),
    "closed_hihat": (42, 22, 44),
    "open_hihat": (46, 26),
    "low_tom": (43, 58),
    "mid_tom": (47, 45),
    "high_tom": (50, 48),
    "crash": (49, 52, 55, 57),
    "ride": (51, 53, 59),
}


@pytest.mark.parametrize("table, expected", [(GM_PITCHES, GM_EXPECTED), (TD11_PITCHES, TD11_EXPECTED)])
def test_pitch_tables_match_the_issue(table, expected):
    for name, pitches in expected.items():
        for pitch in pitches:
            assert table.drum_of(pitch) == class_index(name), (table.name, pitch)
    known = {p for pitches in expected.values() for p in pitches}
    assert all(table.drum_of(p) is None for p in range(128) if p not in known)


def test_td11_differs_from_gm_where_the_kit_does():
    # GMD's TD-11 puts 58 on the low tom rim and 45 on mid tom; GM has them as vibraslap/low tom.
    assert TD11_PITCHES.drum_of(58) == class_index("low_tom")
    assert GM_PITCHES.drum_of(58) == class_index("crash")
    assert TD11_PITCHES.drum_of(45) == class_index("mid_tom")
    assert GM_PITCHES.drum_of(45) == class_index("low_tom")


def test_pitch_table_by_name():
    assert pitch_table("td11") is TD11_PITCHES
    with pytest.raises(ValueError, match="expected one of gm, td11"):
        pitch_table("roland")
