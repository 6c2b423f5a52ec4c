"""Reading drum grids from MIDI files and writing grids back to MIDI."""
from collections import Counter
from dataclasses import dataclass, field

import mido
import numpy as np

from .drums import GM_PITCHES, NUM_DRUM_CLASSES
from .errors import MidiFileError
from .grid import STEPS_PER_QUARTER, DrumGrid, steps_per_bar
from .midibytes import DRUM_CHANNEL
from .notemaps import GM
from .smf import NOTE, TEMPO, MidiStream, open_midi
from .tempo import DEFAULT_BPM, MAX_BPM, MIN_BPM

OUTPUT_TICKS_PER_BEAT = 480
# Longest grid a section may make: 16,384 bars of 4/4. GMD's longest file is about 10,200
# steps; the cap keeps a corrupt delta time from allocating gigabytes.
MAX_SECTION_STEPS = 1 << 18
# A file stores a meter's denominator as a power of two (one byte, so up to 2**255); 64ths
# are as short as notation goes, so larger ones only come from corrupt files.
MAX_METER_POWER = 6
# read_first_bars decodes this many events (a few bars), then twice as many at each look.
FIRST_BATCH_EVENTS = 256
MICROSECONDS_PER_MINUTE = 60_000_000  # a file's tempo is microseconds per quarter note


@dataclass(frozen=True)
class Section:
    """One time-signature section of a file: from a bar line to the next meter change."""

    start_tick: int
    end_tick: int  # None for the last section
    time_signature: tuple
    bpm: float


@dataclass
class MidiDrums:
    """What a MIDI file yields: grids per section, plus what was left out and why."""

    grids: list
    dropped_pitches: Counter  # pitch -> notes outside the pitch table
    skipped_sections: Counter  # "n/d" -> sections of a meter that was not asked for
    sections: list = field(default_factory=list)  # the Section each grid comes from


@dataclass
class _Timeline:
    """The tempos, meter changes and drum notes of a file, as far as its events have been read."""

    stream: MidiStream
    channel: int  # None: every channel
    tempos: list = field(default_factory=list)  # (tick, bpm)
    meter_changes: list = field(default_factory=list)  # (tick, (numerator, denominator))
    notes: list = field(default_factory=list)  # (tick, pitch, velocity) of note-ons on the channel

    def add(self, events):
        """Take in (tick, kind, a, b) events of the stream; MidiFileError for a tempo or meter no file means."""
        path = self.stream.path
        for tick, kind, a, b in events:
            if kind == NOTE:
                if self.channel is None or a == self.channel:
                    self.notes.append((tick, *b))
            elif kind == TEMPO:
                bpm = MICROSECONDS_PER_MINUTE / a if a > 0 else float("inf")
                if not MIN_BPM <= bpm <= MAX_BPM:
                    raise MidiFileError(
                        f"{path}: tempo {bpm:.1f} BPM at tick {tick} is outside {MIN_BPM:.0f}-{MAX_BPM:.0f}",
                        reason="absurd tempo",
                    )
                self.tempos.append((tick, bpm))
            elif a < 1 or b > MAX_METER_POWER:
                raise MidiFileError(
                    f"{path}: time signature at tick {tick} is not a meter (numerator {a}, "
                    f"denominator 2^{b}; expected 1-255 over 1-{2 ** MAX_METER_POWER})",
                    reason="bad meter",
                )
            else:
                self.meter_changes.append((tick, (a, 2 ** b)))

    def drums(self, pitches, meters, silent_sections):
        """MidiDrums of what has been read: a grid per section (of `meters`, None for all) with drum notes."""
        result = MidiDrums([], Counter(), Counter())
        # A note half a step or less before a section's bar line is that section's downbeat
        # played early, so sections take notes from half a step before their start.
        early = self.stream.ticks_per_beat / STEPS_PER_QUARTER / 2
        for section in _sections(self.meter_changes, self.tempos):
            in_section = [
                n for n in self.notes
                if n[0] >= section.start_tick - early and (section.end_tick is None or n[0] < section.end_tick - early)
            ]
            if not in_section and not silent_sections:
                continue
            per_bar = steps_per_bar(*section.time_signature)
            if per_bar is None or (meters is not None and section.time_signature not in meters):
                if in_section:
                    result.skipped_sections["%d/%d" % section.time_signature] += 1
                continue
            grid = _quantize(in_section, section, self.stream.ticks_per_beat, per_bar, pitches, result.dropped_pitches,
                             self.stream.path, silent_sections)
            if grid is not None:
                result.grids.append(grid)
                result.sections.append(section)
        return result

    def no_drums(self, found, pitches, meters):
        """The MidiFileError for a whole file in which `found` (its MidiDrums) has no hit."""
        path = self.stream.path
        if not self.notes:
            where = "any channel" if self.channel is None else f"channel {self.channel + 1}"
            return MidiFileError(f"{path}: no notes on {where}", reason="no drum notes")
        if found.skipped_sections:
            meters_found = ", ".join(found.skipped_sections)
            wanted = ", ".join("%d/%d" % m for m in sorted(meters)) if meters else "a whole-step meter"
            return MidiFileError(
                f"{path}: only {meters_found} sections, expected {wanted}", reason=f"meter {meters_found}", found=found
            )
        return MidiFileError(f"{path}: no drum notes in the {pitches.name} pitch table", reason="no drum notes",
                             found=found)


def read_drum_grids(path, pitches=GM_PITCHES, channel=DRUM_CHANNEL, meters=None, silent_sections=False):
    """The drum grids of a MIDI file (MidiDrums), one per meter section that has drum notes.

    Onsets land on 16ths as Magenta quantizes them, step = int(beats * 4 + 0.5), counted
    from the section's first bar line; beats come from ticks, so tempo changes are honoured.
    `channel` None takes all channels. `meters`, a set of (numerator, denominator), keeps
    only those sections. `silent_sections` keeps sections without drum notes as silent
    grids, so the grids add up to the file's timeline. Raises MidiFileError when no drum
    note is left.
    """
    stream = open_midi(path)
    timeline = _Timeline(stream, channel)
    timeline.add(stream.events())
    found = timeline.drums(pitches, meters, silent_sections)
    if not any(grid.velocities.any() for grid in found.grids):
        raise timeline.no_drums(found, pitches, meters)
    return found


def read_first_bars(path, bars, pitches=GM_PITCHES, channel=DRUM_CHANNEL, meter=(4, 4)):
    """(the first `bars` bars of a MIDI file's first `meter` section with drum notes, {pitch: notes in those
    bars the pitch table has no drum for}).

    Events are decoded in growing batches only until those bars are settled, so the first bars of a long
    file cost what they cost in a short one. MidiFileError when the file has no such section, or when
    the section has fewer bars than asked for.
    """
    stream = open_midi(path)
    timeline = _Timeline(stream, channel)
    ticks_per_step = stream.ticks_per_beat / STEPS_PER_QUARTER
    for batch, next_tick in _tick_batches(stream.events()):
        timeline.add(batch)
        found = timeline.drums(pitches, {meter}, silent_sections=False)
        if not found.grids:
            if next_tick is None:
                raise timeline.no_drums(found, pitches, {meter})
            continue
        grid, section = found.grids[0], found.sections[0]
        end = section.start_tick + bars * grid.steps_per_bar * ticks_per_step  # where the asked-for bars end
        # Every event before next_tick has been read: the bars are settled once the section reaches them
        # and they lie before next_tick, or once the section (or the file) has ended.
        if next_tick is None or section.end_tick is not None or (grid.num_bars >= bars and next_tick >= end):
            break
    if grid.num_bars < bars:
        raise MidiFileError(
            f"{path}: its first {'%d/%d' % meter} drum section has {grid.num_bars} "
            f"bar{'s' * (grid.num_bars != 1)}; {bars} bars asked for",
            reason="too short",
        )
    early = ticks_per_step / 2
    dropped = Counter(
        pitch for tick, pitch, _ in timeline.notes
        if section.start_tick - early <= tick < end - early and pitches.drum_of(pitch) is None
    )
    return grid.slice(0, bars * grid.steps_per_bar), dropped


def _tick_batches(events):
    """(events, tick of the next event or None at the end), in batches that double from FIRST_BATCH_EVENTS
    events and end between ticks: every event before the next tick is in the batches so far."""
    batch, size = [], FIRST_BATCH_EVENTS
    for event in events:
        if len(batch) >= size and event[0] != batch[-1][0]:
            yield batch, event[0]
            batch, size = [], size * 2
        batch.append(event)
    yield batch, None


def _sections(meter_changes, tempos):
    """Meter sections from time-signature events; a file without one is 4/4 from tick 0."""
    starts = {}
    for tick, meter in meter_changes:
        starts[tick] = meter  # the last event at a tick wins
    if 0 not in starts:
        starts[0] = (4, 4)
    changes = []
    for tick in sorted(starts):
        if not changes or starts[tick] != changes[-1][1]:
            changes.append((tick, starts[tick]))
    sections = []
    for i, (tick, meter) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else None
        bpm = next((bpm for t, bpm in reversed(tempos) if t <= tick), DEFAULT_BPM)
        sections.append(Section(tick, end, meter, bpm))
    return sections


def _quantize(notes, section, ticks_per_beat, per_bar, pitches, dropped, path, keep_silent=False):
    """A DrumGrid of one section's notes; None when none is in the pitch table (unless
    `keep_silent`) or the section is empty."""
    ticks_per_step = ticks_per_beat / STEPS_PER_QUARTER
    placed = []
    for tick, pitch, velocity in notes:
        drum = pitches.drum_of(pitch)
        if drum is None:
            dropped[pitch] += 1
            continue
        exact = (tick - section.start_tick) / ticks_per_step
        step = int(exact + 0.5)
        placed.append((step, drum, velocity, exact - step))
    if not placed and not keep_silent:
        return None
    num_steps = max((p[0] for p in placed), default=-1) + 1
    if section.end_tick is not None:
        num_steps = max(num_steps, int(np.ceil((section.end_tick - section.start_tick) / ticks_per_step)))
    num_steps = -(-num_steps // per_bar) * per_bar
    if num_steps == 0:
        return None
    if num_steps > MAX_SECTION_STEPS:
        raise MidiFileError(
            f"{path}: a section at tick {section.start_tick} runs {num_steps} steps, more than the "
            f"{MAX_SECTION_STEPS} allowed",
            reason="too long",
        )
    velocities = np.zeros((num_steps, NUM_DRUM_CLASSES), np.uint8)
    offsets = np.zeros((num_steps, NUM_DRUM_CLASSES), np.float32)
    for step, drum, velocity, offset in placed:
        if velocity > velocities[step, drum]:  # merged hits keep the loudest and its timing
            velocities[step, drum] = velocity
            offsets[step, drum] = offset
    # Whole microseconds per quarter put 400 BPM within 0.0014 BPM of its value: two decimals
    # give back the tempo a file was written with.
    return DrumGrid(velocities, offsets, bpm=round(section.bpm, 2), time_signature=section.time_signature)


def write_midi(grid, path, note_map=GM, note_length=0.5, channel=DRUM_CHANNEL, micro_timing=False, onsets=None,
               velocities=None):
    """Write a grid as a type-0 MIDI file: tempo, time signature, one note per hit.

    note_length is in steps. Each hit sits on its step, or with micro_timing at its stored offset (kept
    inside the ticks that read back as its step), or where `onsets` [steps, 9] (in steps from the start,
    e.g. swung) puts it. `velocities` [steps, 9] replaces the grid's (e.g. a groove's accents).
    """
    midi = mido.MidiFile(type=0, ticks_per_beat=OUTPUT_TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    ticks_per_step = OUTPUT_TICKS_PER_BEAT / grid.steps_per_quarter
    events = []  # (tick, order, message); note-offs sort before note-ons at the same tick
    played = grid.velocities if velocities is None else velocities
    for step, drum in zip(*np.nonzero(grid.velocities)):
        if onsets is not None:
            on = max(0, round(float(onsets[step, drum]) * ticks_per_step))
        else:
            position = step + (grid.offsets[step, drum] if micro_timing else 0.0)
            # Stay inside the ticks that quantize back to this step: int(tick / tps + 0.5) == step.
            earliest, latest = np.ceil((step - 0.5) * ticks_per_step), np.ceil((step + 0.5) * ticks_per_step) - 1
            on = int(max(0, earliest, min(latest, round(position * ticks_per_step))))
        off = on + max(1, round(note_length * ticks_per_step))
        note, velocity = note_map.note_of(drum), int(played[step, drum])
        events.append((on, 1, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
        events.append((off, 0, mido.Message("note_off", channel=channel, note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(grid.bpm), time=0))
    numerator, denominator = grid.time_signature
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    end = max(now, round(grid.num_steps * ticks_per_step))
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    try:
        midi.save(path)
    except OSError as error:
        raise MidiFileError(f"{path}: cannot write ({error.strerror})", reason="unwritable") from None
