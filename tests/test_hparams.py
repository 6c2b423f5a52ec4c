"""HParams: the seed's --hparams syntax, Magenta's dropout_keep_prob, round trips, one-line errors."""
import pytest

from deepbeat.errors import DeepBeatError
from deepbeat.training.hparams import HParams


def test_defaults_are_the_seeds_drum_kit_settings():
    h = HParams()
    assert (h.batch_size, h.rnn_layer_sizes, h.dropout_rate, h.learning_rate, h.clip_norm) == (
        64, (256, 256), 0.5, 0.001, 3.0)


def test_parse_overrides_scalars_lists_and_bools():
    h = HParams().parse("batch_size=32, rnn_layer_sizes=[128,64,32],learning_rate=0.01,use_tempo=false")
    assert (h.batch_size, h.rnn_layer_sizes, h.learning_rate, h.use_tempo) == (32, (128, 64, 32), 0.01, False)
    assert HParams().parse("") == HParams()


def test_dropout_keep_prob_is_magentas_name_for_one_minus_the_rate():
    assert HParams().parse("dropout_keep_prob=0.75").dropout_rate == pytest.approx(0.25)


def test_dict_round_trip_and_json():
    h = HParams().parse("rnn_layer_sizes=[16],window_bars=4")
    assert HParams.from_dict(h.to_dict()) == h
    assert HParams.from_dict({**h.to_dict(), "unknown_old_field": 1}) == h


@pytest.mark.parametrize("text, message", [
    ("batch=3", "'batch=3' is not name=value with a known name"),
    ("batch_size", "'batch_size' is not name=value"),
    ("batch_size=many", "batch_size='many' is not a non-negative int"),
    ("learning_rate=-1", "learning_rate='-1' is not a non-negative float"),
    ("rnn_layer_sizes=[0]", "is not a list like [256,256]"),
    ("use_tempo=maybe", "use_tempo='maybe' is not true/false"),
    ("dropout_keep_prob=x", "dropout_keep_prob='x' is not a number"),
])
def test_bad_overrides_are_one_line_errors(text, message):
    with pytest.raises(DeepBeatError) as error:
        HParams().parse(text)
    assert message in str(error.value) and "\n" not in str(error.value)
