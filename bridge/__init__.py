"""The live MIDI bridge: follows the clock, hears the bar played, answers in time (no TensorFlow)."""
