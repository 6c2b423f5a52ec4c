"""The timing loop: the one place where time meets notes.

It reads incoming messages (bytes plus arrival time) from a queue, follows or makes the
MIDI clock, places the user's hits on the grid, sends the notes of step k when its tick
arrives (or `latency_offset` earlier, by the tempo estimate), ends each note after a
gate, and silences everything on Stop, dropout, panic, error and exit. Waits are
`queue.get(timeout=...)` until the next deadline; nothing busy-waits.
"""
import queue
import time
from collections import deque
from dataclasses import dataclass, field

from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import (
    ALL_NOTES_OFF, CLOCK, CONTINUE, CONTROL_CHANGE, DRUM_CHANNEL, MAX_DATA, NOTE_OFF, NOTE_ON, SONG_POSITION, START,
    STATUS_CHANNEL, STATUS_KIND, STOP, SYSEX, control_change, note_off, note_on,
)
from deepbeat.notemaps import GM
from deepbeat.runtime.steering import Range
from deepbeat.tempo import DEFAULT_BPM

from .clock import TICKS_PER_STEP, ClockFollower, interval_of_bpm
from .controls import ControlMap

WAKE = object()  # put on the inbox to make the loop look at its stop flag and errors
GATE = Range("gate", 0.0, 1.0, 0.5, above_low=True)  # note length, a fraction of a 16th
LATENCY_OFFSET_MS = Range("latency offset", 0.0, 100.0, 0.0)  # send ahead of the tick; capped at a 16th
CLOSE_TICK = TICKS_PER_STEP // 2  # a bar stops listening half a step before the next one
TICKS_PER_BAR = TICKS_PER_STEP * STEPS_PER_BAR
KEPT_RECORDS = 100_000  # latencies and missed steps kept: over 2 hours of 16ths at 180 BPM


@dataclass
class BridgeStats:
    """What the loop did: steps played and missed, and tick-to-send latencies in seconds (of steps with notes)."""

    ticks: int = 0
    steps_played: int = 0
    steps_missed: int = 0  # steps whose generated bar was not ready on their tick
    notes_sent: int = 0
    # the latest ones only, so that a session of hours stays small (a few MB at most)
    missed: deque = field(default_factory=lambda: deque(maxlen=KEPT_RECORDS))
    latencies: deque = field(default_factory=lambda: deque(maxlen=KEPT_RECORDS))


class Scheduler:
    """Turns clock and notes in into timed notes out, for one Session and one output."""

    def __init__(self, session, send, *, clock=time.perf_counter, master=None, note_map=GM, input_map=GM,
                 output_channel=DRUM_CHANNEL, input_channel=None, latency_offset_s=0.0, gate=0.5, thru=False,
                 controls=ControlMap()):
        gate = GATE.check(gate)
        latency_offset_s = LATENCY_OFFSET_MS.check(latency_offset_s * 1000) / 1000
        self.session = session
        self._send = send  # callable taking a list of MIDI bytes
        self.clock = clock
        self.follower = ClockFollower()
        self.master = master  # an InternalClock when the bridge is the clock master
        self.note_map, self.input_map = note_map, input_map
        self.output_channel, self.input_channel = output_channel, input_channel
        self.latency_offset_s, self.gate, self.thru = latency_offset_s, gate, thru
        self.controls = controls
        self.stats = BridgeStats()
        self._sounding = {}  # note -> time its note-off is due
        self._next_step = 0  # the next step to send
        self._waiting_for_tick = False  # the next step was due early but its bar was not ready

    # --- the loop -------------------------------------------------------------------

    def run(self, inbox, should_stop, failure=lambda: None):
        """Serve `inbox` until should_stop() or failure() returns an error (raised here).

        Always ends with every note off (and Stop sent when master).
        """
        try:
            if self.master:
                self.start_master(self.clock())
            while not should_stop():
                deadline = self.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.clock())
                try:
                    item = inbox.get(timeout=timeout)
                except queue.Empty:
                    item = None
                error = failure()
                if error is not None:
                    raise error
                if item is not None and item is not WAKE:
                    self.on_message(*item)
                self.on_deadlines(self.clock())
        finally:
            self.shutdown()

    def next_deadline(self):
        """The earliest moment the loop must act without input, or None."""
        candidates = list(self._sounding.values())
        if self.master and self.follower.running:
            candidates.append(self.master.next_tick_time())
        elif self.follower.running:
            candidates.append(self.follower.dropout_deadline())
        early = self._early_send_time()
        if early is not None:
            candidates.append(early)
        return min(candidates, default=None)

    def on_deadlines(self, now):
        """Do whatever is due at `now`: master ticks, early steps, note-offs, dropout."""
        if self.master and self.follower.running:
            while self.master.next_tick_time() <= now:
                tick_time = self.master.next_tick_time()
                self.master.advance()
                self._send([CLOCK])
                self._tick(tick_time)
        elif self.follower.running and self.follower.dropout_deadline() <= now:
            self._stop()  # dropout: the clock went silent, as good as Stop
        early = self._early_send_time()
        if early is not None and early <= now:
            self._play_step(self._next_step, now, on_tick=False)
        for note, due in list(self._sounding.items()):
            if due <= now:
                del self._sounding[note]
                self._send(note_off(self.output_channel, note))

    def shutdown(self):
        """All notes off; Stop to the slaves when master."""
        self._all_notes_off()
        if self.master and self.follower.running:
            self._send([STOP])
        self.follower.stop()
        self.session.running = False

    # --- input ----------------------------------------------------------------------

    def on_message(self, arrival, data):
        """One incoming message (a sequence of byte values) that arrived at `arrival`.

        Anything malformed, unknown or out of range is ignored.
        """
        if not data or not isinstance(data[0], int):
            return
        status = data[0]
        if status >= SYSEX:
            self._on_system(status, data, arrival)
            return
        if status < NOTE_OFF or not _data_bytes(data):
            return
        kind, channel = status & STATUS_KIND, status & STATUS_CHANNEL
        if self.input_channel is not None and channel != self.input_channel:
            return
        if kind == NOTE_ON and data[2] > 0:
            self._on_hit(data[1], data[2], arrival)
        elif kind == CONTROL_CHANGE:
            self._on_control(data[1], data[2])
        if self.thru and kind in (NOTE_ON, NOTE_OFF):
            self._send([kind | self.output_channel, data[1], data[2]])

    def _on_system(self, status, data, arrival):
        if self.master:
            return  # we are the clock; a loop-back of our own clock must not drive us
        if status == CLOCK:
            self._tick(arrival)
        elif status == START:
            self._all_notes_off()
            self.follower.start(arrival)
            self.session.restart(0)
            self._locate_steps(0)
            self.session.running = True
        elif status == CONTINUE:
            self.follower.resume(arrival)
            self._locate_steps(-(-self.follower.position // TICKS_PER_STEP))
            self.session.running = True
        elif status == STOP:
            self._stop()
        elif status == SONG_POSITION and _data_bytes(data):
            sixteenths = data[1] | data[2] << 7
            self._all_notes_off()
            self.follower.locate(sixteenths)
            self.session.restart(sixteenths)
            self._locate_steps(sixteenths)

    def start_master(self, now):
        """As clock master: send Start, and tick from now on."""
        self._send([START])
        self.follower.start(now)
        self.session.restart(0)
        self._locate_steps(0)
        self.session.running = True
        self.master.start(now)

    def _on_hit(self, pitch, velocity, arrival):
        drum = self.input_map.inputs.drum_of(pitch)
        if drum is None or not self.follower.running:
            return
        position = self.follower.tick_position_at(arrival)
        self.session.hear(int(position + CLOSE_TICK) // TICKS_PER_STEP, drum, velocity)

    def _on_control(self, number, value):
        control = self.controls.interpret(number, value)
        if control is None:
            return
        if control.name == "panic":
            self._all_notes_off()
        else:
            self.session.control(control)

    # --- clock ----------------------------------------------------------------------

    def _tick(self, arrival):
        self.stats.ticks += 1
        position = self.follower.tick(arrival)
        if position is None:
            return
        if position % TICKS_PER_BAR == TICKS_PER_BAR - CLOSE_TICK:
            self.session.close_bar(position // TICKS_PER_BAR, self.follower.tempo.bpm or DEFAULT_BPM)
        if position % TICKS_PER_STEP == 0:
            step = position // TICKS_PER_STEP
            if step >= self._next_step:
                self._next_step = step
                self._play_step(step, arrival, on_tick=True)

    def _stop(self):
        self.follower.stop()
        self.session.running = False
        self._all_notes_off()

    def _locate_steps(self, step):
        self._next_step = step
        self._waiting_for_tick = False

    def _step_seconds(self):
        interval = self.follower.tempo.interval
        return (interval or interval_of_bpm(DEFAULT_BPM)) * TICKS_PER_STEP

    # --- output ---------------------------------------------------------------------

    def _early_send_time(self):
        """When the next step goes out ahead of its tick, or None (no offset, tempo unknown,
        its bar not ready, or more than a step ahead of the clock)."""
        if self.latency_offset_s <= 0 or not self.follower.running or self._waiting_for_tick:
            return None
        ticks_ahead = self._next_step * TICKS_PER_STEP - (self.follower.position - 1)
        if not 0 < ticks_ahead <= TICKS_PER_STEP:
            return None
        predicted = self.follower.tempo.predict(ticks_ahead)
        return None if predicted is None else predicted - self.latency_offset_s

    def _play_step(self, step, reference, on_tick):
        """Send step `step`'s notes now; `reference` is its tick's arrival (for the latency)."""
        hits = self.session.hits_at(step)
        self.session.bar, self.session.step = divmod(step, STEPS_PER_BAR)
        if hits is None:
            if not on_tick:
                self._waiting_for_tick = True  # try again on the tick itself
                return
            self.stats.steps_missed += 1
            self.stats.missed.append(step)
        else:
            now = self.clock()
            off_time = now + self.gate * self._step_seconds()
            for drum, velocity in hits:
                note = self.note_map.notes[drum]
                if self._sounding.pop(note, None) is not None:
                    self._send(note_off(self.output_channel, note))  # retrigger: end the old one first
                self._send(note_on(self.output_channel, note, velocity))
                self._sounding[note] = off_time
            self.stats.notes_sent += len(hits)
            self.stats.steps_played += 1
            if on_tick and hits:
                self.stats.latencies.append(self.clock() - reference)
        self._next_step = step + 1
        self._waiting_for_tick = False

    def _all_notes_off(self):
        """Note-offs for every sounding note, then All Notes Off on the output channel."""
        for note in list(self._sounding):
            self._send(note_off(self.output_channel, note))
        self._sounding.clear()
        self._send(control_change(self.output_channel, ALL_NOTES_OFF, 0))


def _data_bytes(data):
    """Whether a message has the two data bytes (0-127) that note, CC and song position messages need."""
    return len(data) >= 3 and all(isinstance(b, int) and 0 <= b <= MAX_DATA for b in data[1:3])
