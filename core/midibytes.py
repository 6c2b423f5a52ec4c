"""MIDI 1.0 byte values DeepBeat reads and sends: status bytes, controller numbers, the drum channel.

Values from the MIDI 1.0 Detailed Specification (channel voice messages, system real-time and
system common messages, channel mode messages); channels count from 0, as mido and rtmidi do.
"""

# Channel voice messages: the kind in the high nibble of the status byte, the channel in the low one.
NOTE_OFF, NOTE_ON, CONTROL_CHANGE = 0x80, 0x90, 0xB0
STATUS_KIND, STATUS_CHANNEL = 0xF0, 0x0F
# System common and real-time messages.
SYSEX, SONG_POSITION, SYSEX_END = 0xF0, 0xF2, 0xF7
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
ACTIVE_SENSING = 0xFE
ALL_NOTES_OFF = 123  # channel mode message: a Control Change with this controller number
DRUM_CHANNEL = 9  # General MIDI percussion: channel 10
MAX_DATA = 0x7F  # data bytes (notes, velocities, controller values) are 7-bit


def note_on(channel, note, velocity):
    return [NOTE_ON | channel, note, velocity]


def note_off(channel, note):
    return [NOTE_OFF | channel, note, 0]


def control_change(channel, number, value):
    return [CONTROL_CHANGE | channel, number, value]
