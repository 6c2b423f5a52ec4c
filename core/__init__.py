"""DeepBeat: an LSTM drum sketcher for MIDI (TF-free core shared by every stage)."""

__version__ = "0.1.0"
