"""The one error type DeepBeat raises for bad input, and its kinds."""


class DeepBeatError(Exception):
    """Bad input or environment; the message is one line naming what and where."""


class MidiFileError(DeepBeatError):
    """A MIDI file could not be read, or holds nothing usable; `reason` is a short key for tallies.

    `found` is what was read before giving up (a midifiles.MidiDrums without hits), so the
    pitches and sections left out still get counted; None when the file did not parse.
    """

    def __init__(self, message, reason="invalid", found=None):
        super().__init__(message)
        self.reason = reason
        self.found = found


class PrimerError(DeepBeatError):
    """A primer string, text grid or primer file is malformed."""


class NoteMapError(DeepBeatError):
    """A note map name or file is unknown or invalid."""


class DatasetError(DeepBeatError):
    """A dataset folder, archive or prepared array file is missing or invalid."""


class ModelFileError(DeepBeatError):
    """A model file is missing, not ours, or of an unsupported format version."""
