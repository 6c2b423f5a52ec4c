"""Standard MIDI Files, read as a stream: the events DeepBeat uses, decoded one at a time in time order.

A file's bytes are read whole up to MAX_FILE_BYTES, but events are decoded only as far as a caller
consumes them, so the first bars of a long file cost what those bars cost. Format: Standard MIDI
Files 1.0 — an MThd header, then MTrk chunks of delta-timed events with running status; meta events
(FF), SysEx (F0, F7); other chunk kinds are skipped, as the standard asks.
"""
import heapq
import struct
from dataclasses import dataclass
from operator import itemgetter

from .errors import MidiFileError
from .userfiles import read_bounded

# A drum file is kilobytes (GMD's largest is 152 KiB); sixteen MiB hold about four million events.
MAX_FILE_BYTES = 16 * 1024 * 1024
# The events a stream yields, as (tick, kind, a, b): a note-on with velocity above 0 (a = channel,
# b = (note, velocity)), a tempo (a = microseconds per quarter note) or a time signature
# (a = numerator, b = the denominator's power of two).
NOTE, TEMPO, METER = "note", "tempo", "meter"

_NOTE_ON = 0x9
_META, _SYSEX, _SYSEX_ESCAPE = 0xFF, 0xF0, 0xF7
_SET_TEMPO, _TIME_SIGNATURE = 0x51, 0x58
# Data bytes after each status: channel messages by their high nibble, system common and real-time messages
# by status (F4, F5, F9 and FD are undefined).
_CHANNEL_DATA = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}


class _Broken(Exception):
    """The bytes of a track stop making sense; the message says how."""


@dataclass(frozen=True)
class MidiStream:
    """An opened Standard MIDI File: its header and where its tracks lie; `events()` decodes them lazily."""

    path: str
    ticks_per_beat: int
    data: bytes
    tracks: tuple  # (start, end) byte offsets of each MTrk chunk's events

    def events(self):
        """(tick, kind, a, b) of NOTE, TEMPO and METER events, all tracks merged in time order.

        Events at the same tick keep file order: earlier tracks first, as mido.merge_tracks has them.
        Raises MidiFileError when decoding reaches bytes that are not MIDI.
        """
        streams = [_track_events(self, number, start, end) for number, (start, end) in enumerate(self.tracks)]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=itemgetter(0))

    def broken(self, detail):
        """The MidiFileError for bytes of this file that are not MIDI."""
        return MidiFileError(f"{self.path}: not a readable MIDI file ({detail})", reason="not MIDI")


def open_midi(path):
    """A MidiStream of a type 0 or 1 file with ticks-per-beat timing, or MidiFileError naming the file and the fault.

    Only the header and the chunk layout are checked here; events are checked as they are decoded.
    """
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise MidiFileError(f"{path}: no such file", reason="missing") from None
    except IsADirectoryError:
        raise MidiFileError(f"{path}: is a folder, expected a MIDI file", reason="missing") from None
    except OSError as error:
        raise MidiFileError(f"{path}: cannot read ({error.strerror})", reason="unreadable") from None
    if data is None:
        raise MidiFileError(
            f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; expected a MIDI file of drum parts",
            reason="too large",
        )
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiFileError(f"{path}: not a readable MIDI file (no MThd header)", reason="not MIDI")
    header_size = struct.unpack_from(">L", data, 4)[0]
    if header_size < 6:
        raise MidiFileError(f"{path}: not a readable MIDI file (MThd header of {header_size} bytes)", reason="not MIDI")
    midi_type, declared_tracks, division = struct.unpack_from(">hhh", data, 8)
    if midi_type not in (0, 1):
        raise MidiFileError(
            f"{path}: MIDI type {midi_type} is not supported (expected type 0 or 1)", reason="unsupported type"
        )
    if division <= 0:  # read signed: SMPTE timing is negative
        raise MidiFileError(
            f"{path}: time division {division} is not ticks per beat (SMPTE timing is not supported)",
            reason="not MIDI",
        )
    tracks, position = [], 8 + header_size
    while len(tracks) < declared_tracks and position + 8 <= len(data):
        name, size = struct.unpack_from(">4sL", data, position)
        if name == b"MTrk":
            tracks.append((position + 8, position + 8 + size))
        position += 8 + size
    if len(tracks) < declared_tracks:
        raise MidiFileError(
            f"{path}: not a readable MIDI file (the header promises {declared_tracks} tracks, {len(tracks)} found)",
            reason="not MIDI",
        )
    return MidiStream(str(path), division, data, tuple(tracks))


def _track_events(stream, number, start, end):
    """The events of one MTrk chunk, with absolute ticks (a generator: decodes only what is taken)."""
    data = stream.data
    position, tick, running = start, 0, None
    try:
        while position < end:
            delta = data[position]
            position += 1
            if delta & 0x80:  # a variable-length quantity: at most 4 bytes
                delta &= 0x7F
                for _ in range(3):
                    byte = data[position]
                    position += 1
                    delta = (delta << 7) | (byte & 0x7F)
                    if byte < 0x80:
                        break
                else:
                    raise _Broken("a delta time longer than 4 bytes")
            tick += delta
            status = data[position]
            if status < 0x80:  # running status: the data bytes of another message like the last
                if running is None:
                    raise _Broken("data bytes without a status byte")
                status = running
            else:
                position += 1
            if status < 0xF0:
                running = status
                size = _CHANNEL_DATA[status >> 4]
                values = data[position:position + size]
                position += size
                if len(values) < size:
                    raise IndexError
                if max(values) > 0x7F:
                    raise _Broken(f"a data byte above 127 at tick {tick}")
                if status >> 4 == _NOTE_ON and values[1]:
                    yield tick, NOTE, status & 0x0F, (values[0], values[1])
            elif status == _META:  # leaves running status as it was, as common writers expect
                kind = data[position]
                length, position = _length(data, position + 1)
                body = data[position:position + length]
                position += length
                if kind == _SET_TEMPO:
                    if length < 3:
                        raise _Broken(f"a tempo event at tick {tick} of {length} bytes, expected 3")
                    yield tick, TEMPO, (body[0] << 16) | (body[1] << 8) | body[2], None
                elif kind == _TIME_SIGNATURE:
                    if length < 4:
                        raise _Broken(f"a time signature at tick {tick} of {length} bytes, expected 4")
                    yield tick, METER, body[0], body[1]
            elif status in (_SYSEX, _SYSEX_ESCAPE):
                running = None
                length, position = _length(data, position)
                position += length
            elif status in _SYSTEM_DATA:
                running = None
                position += _SYSTEM_DATA[status]
            else:
                raise _Broken(f"undefined status byte 0x{status:02X} at tick {tick}")
            if position > end:
                raise _Broken(f"an event at tick {tick} runs past the end of track {number + 1}")
    except IndexError:
        raise stream.broken(f"track {number + 1} is cut short") from None
    except _Broken as error:
        raise stream.broken(str(error)) from None


def _length(data, position):
    """(a variable-length quantity of at most 4 bytes, the position after it)."""
    value = 0
    for _ in range(4):
        byte = data[position]
        position += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position
    raise _Broken("a length longer than 4 bytes")
