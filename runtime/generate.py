"""The generation use case behind `deepbeat generate`: continue a primer, write each beat as a MIDI file."""
import os
import time
from dataclasses import dataclass
from pathlib import Path

from deepbeat.errors import DeepBeatError, PrimerError
from deepbeat.midifiles import write_midi

from .beam import beam_search
from .sampler import DrumSampler
from .steering import Feel


@dataclass(frozen=True)
class BeamOptions:
    """Magenta's beam search settings; the defaults (1, 1, 1) mean plain sampling."""

    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1

    def __post_init__(self):
        for name, value in (("beam size", self.beam_size), ("branch factor", self.branch_factor),
                            ("steps per iteration", self.steps_per_iteration)):
            if value < 1:
                raise DeepBeatError(f"{name} is {value}; expected at least 1")

    @property
    def searching(self):
        return self.beam_size > 1 or self.branch_factor > 1


def continue_primer(model, primer, new_steps, steering, *, num_outputs=1, seed=None, beam=BeamOptions()):
    """`num_outputs` beats: the primer followed by `new_steps` generated steps each."""
    if new_steps < 1:
        raise PrimerError(f"{new_steps} steps to generate after the primer; expected at least 1")
    if beam.searching:
        continuations = beam_search(
            model, primer, new_steps, steering, num_outputs=num_outputs, beam_size=beam.beam_size,
            branch_factor=beam.branch_factor, steps_per_iteration=beam.steps_per_iteration, seed=seed,
        )
    else:
        sampler = DrumSampler(model, num_outputs=num_outputs, seed=seed)
        sampler.prime(primer, steering)
        continuations = sampler.sample(new_steps, steering)
    return [primer.concat(continuation) for continuation in continuations]


def write_beats(beats, folder, note_map, first=0, feel=Feel(), quantize=False, stamp=None):
    """Write each beat to FOLDER/<date>_<time>_<NN>.mid (Magenta's naming); the paths written.

    The steps from `first` on (the continuation) are placed by `feel` (swing, humanize or groove); the
    steps before it (the primer) sound as played. With `quantize` every hit sits exactly on its step.
    A name already taken gets a suffix (-2, -3, ...): no file is ever overwritten, also when two runs
    write into one folder within the same second.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeepBeatError(f"output folder {folder}: cannot create ({error.strerror})") from None
    stamp = stamp or time.strftime("%Y-%m-%d_%H%M%S")
    paths = []
    for number, beat in enumerate(beats, start=1):
        placement = {} if quantize else {"onsets": feel.onsets(beat, first), "velocities": feel.velocities(beat, first)}
        paths.append(_write_new(folder, f"{stamp}_{number:02d}",
                                lambda path: write_midi(beat, path, note_map=note_map, **placement)))
    return paths


def _write_new(folder, stem, write):
    """Call write(path) for the first free name STEM.mid, STEM-2.mid, ... (created exclusively)."""
    for attempt in range(1, 10_000):
        path = folder / (f"{stem}.mid" if attempt == 1 else f"{stem}-{attempt}.mid")
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as error:
            raise DeepBeatError(f"{path}: cannot write ({error.strerror})") from None
        os.close(descriptor)
        write(path)
        return path
    raise DeepBeatError(f"{folder}: no free name for {stem}.mid")
