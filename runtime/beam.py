"""Beam search over a DrumSampler, as Magenta's drums_rnn_generate does it."""
import numpy as np

from deepbeat.errors import DeepBeatError

from .sampler import DrumSampler


def beam_search(model, primer, num_steps, steering, *, num_outputs=1, beam_size=1, branch_factor=1,
                steps_per_iteration=1, first_position=0, seed=None):
    """Continuations of `primer` by Magenta's beam search (magenta/common/beam_search.py).

    Per output, beam_size x branch_factor sampled branches run in one batch; every
    `steps_per_iteration` steps the beam_size likeliest are kept and each is copied
    branch_factor times; the likeliest at the end wins. Returns one DrumGrid of
    `num_steps` steps per output.
    """
    for name, value in (("beam size", beam_size), ("branch factor", branch_factor),
                        ("steps per iteration", steps_per_iteration), ("steps to generate", num_steps)):
        if value < 1:
            raise DeepBeatError(f"{name} is {value}; expected at least 1")
    width = beam_size * branch_factor
    sampler = DrumSampler(model, num_outputs=num_outputs * width, seed=seed)
    sampler.prime(primer, steering, first_position)
    # The first iteration takes the odd steps so that the later ones are all equal (as Magenta does).
    first = (num_steps - 1) % steps_per_iteration + 1
    history = sampler.sample_rows(first, steering)
    for _ in range((num_steps - first) // steps_per_iteration):
        groups = sampler.scores.reshape(num_outputs, width)
        best = np.argsort(-groups, axis=1, kind="stable")[:, :beam_size] + width * np.arange(num_outputs)[:, None]
        rows = np.tile(best, (1, branch_factor)).reshape(-1)
        sampler.reorder(rows)
        history = history.rows(rows).then(sampler.sample_rows(steps_per_iteration, steering))
    winners = sampler.scores.reshape(num_outputs, width).argmax(axis=1) + width * np.arange(num_outputs)
    return history.rows(winners).grids(sampler.bpm)
