"""The timing loop: the one place where time meets notes.

It reads incoming messages (bytes plus arrival time) from a queue, follows or makes the
MIDI clock, places the user's hits on the grid, and plays the notes of step k at its tick
plus each note's delay (its timing, swing and groove, from the session; a negative delay is
before the tick), less `latency_offset`: a step whose notes are due before its tick is taken
that much ahead, at its tick time predicted by the tempo fit's line, and notes due later wait in a
queue of their own. A late or lost step tick plays at its expected time. Each note ends
after a gate; everything is silenced (queued notes dropped) on Stop, dropout, panic, error
and exit. Every message sent carries the moment it belongs to (a
transport that can, such as JACK, plays it at that moment plus a fixed latency). Waits are
`queue.get(timeout=...)` until the next deadline; nothing busy-waits. Everything queued is
handled before a deadline is judged, so a dropout is judged by arrival times, never by
when the loop got to them.
"""
import heapq
import queue
import time
from collections import deque
from dataclasses import dataclass, field

from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR
from deepbeat.midibytes import (
    ALL_NOTES_OFF, CLOCK, CONTINUE, CONTROL_CHANGE, DRUM_CHANNEL, MAX_DATA, NOTE_OFF, NOTE_ON, SONG_POSITION, START,
    STATUS_CHANNEL, STATUS_KIND, STOP, SYSEX, control_change, note_off, note_on,
)
from deepbeat.notemaps import GM
from deepbeat.runtime.steering import Range
from deepbeat.tempo import DEFAULT_BPM

from .clock import TICKS_PER_STEP, ClockCorrections, ClockFollower
from .controls import Control, ControlMap
from .tempofit import JITTER_MISSES, interval_of_bpm

WAKE = object()  # put on the inbox to make the loop look at its stop flag and errors
GATE = Range("gate", 0.0, 1.0, 0.5, above_low=True)  # note length, a fraction of a 16th
LATENCY_OFFSET_MS = Range("latency offset", 0.0, 100.0, 0.0)  # send ahead of the tick; capped at a 16th
AUTO = "auto"  # the latency offset that covers the transport's output latency
CLOSE_TICK = TICKS_PER_STEP // 2  # a bar stops listening half a step before the next one
TICKS_PER_BAR = TICKS_PER_STEP * STEPS_PER_BAR
KEPT_RECORDS = 100_000  # latencies and missed steps kept: over 2 hours of 16ths at 180 BPM
LATE_TICK_GRACE_S = 0.002  # a step tick this late (and a few jitters more) is assumed: its step plays on time
CATCH_UP_BARS = 4  # a clock coming back further on than this many bars starts listening again


@dataclass
class BridgeStats:
    """What the loop did: steps played and missed, and tick-to-send latencies in seconds (of steps with notes)."""

    ticks: int = 0
    steps_played: int = 0
    steps_missed: int = 0  # steps whose generated bar was not ready on their tick
    steps_skipped: int = 0  # steps whose ticks the clock lost (in a dropout or a gap)
    notes_sent: int = 0
    clock: ClockCorrections = field(default_factory=ClockCorrections)  # what the follower put right
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
        self.master = master  # an InternalClock or a LinkClock when the bridge is the clock master
        self.note_map, self.input_map = note_map, input_map
        self.output_channel, self.input_channel = output_channel, input_channel
        self.latency_offset_s, self.gate, self.thru = latency_offset_s, gate, thru
        self.controls = controls
        self.stats = BridgeStats(clock=self.follower.corrections)
        self._sounding = {}  # note -> time its note-off is due
        self._queued = []  # heap of (due, order, note, velocity) of notes placed after the moment of their step
        self._order = 0
        self._next_step = 0  # the next step to send
        self._waiting_for_tick = False  # the next step was due early but its bar was not ready
        self._closed_bar = -1  # the newest bar whose listening window has closed
        self._master_checked = None  # when the master's playing() was last read

    def cover(self, output_latency_s):
        """Send that much early (within LATENCY_OFFSET_MS): notes then reach the DAW at their moment over a
        transport with that output latency. Safe from another thread: the loop reads the offset afresh."""
        milliseconds = min(max(output_latency_s * 1000, LATENCY_OFFSET_MS.low), LATENCY_OFFSET_MS.high)
        self.latency_offset_s = milliseconds / 1000

    # --- the loop -------------------------------------------------------------------

    def run(self, inbox, should_stop, failure=lambda: None):
        """Serve `inbox` until should_stop() or failure() returns an error (raised here).

        Always ends with every note off (and Stop sent when master).
        """
        try:
            if self.master:
                self._follow_master(self.clock())
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
                while item is not None:  # everything that arrived is handled before any later deadline is judged
                    if item is not WAKE:
                        # what fell due before the message's moment goes first: a transport may hear a message
                        # ahead of its moment (JACK: a cycle's events carry their frames' times)
                        self.on_deadlines(item[0])
                        self.on_message(*item)
                    try:
                        item = inbox.get_nowait()
                    except queue.Empty:
                        item = None
                self.on_deadlines(self.clock())
        finally:
            self.shutdown()

    def next_deadline(self):
        """The earliest moment the loop must act without input, or None."""
        candidates = list(self._sounding.values())
        if self._queued:
            candidates.append(self._queued[0][0])
        if self.master and self.master.check_period_s is not None and self._master_checked is not None:
            candidates.append(self._master_checked + self.master.check_period_s)
        if self.master and self.follower.running:
            candidates.append(self.master.next_tick_time())
        elif self.follower.running:
            candidates.append(self.follower.dropout_deadline())
            candidates.append(self._late_tick_deadline())
        candidates.append(self._early_send_time())
        return min((c for c in candidates if c is not None), default=None)

    def on_deadlines(self, now):
        """Do whatever is due at `now`: master start/stop and ticks, late step ticks, early steps, note-offs,
        dropout."""
        if self.master and self.master.check_period_s is not None:
            self._follow_master(now)
        if self.master and self.follower.running:
            while self.master.next_tick_time() <= now:
                tick_time = self.master.next_tick_time()
                self.master.advance()
                self._send([CLOCK], tick_time)
                self.stats.ticks += 1
                self._reach(self.follower.own_tick(tick_time), tick_time)
        elif self.follower.running:
            late = self._late_tick_deadline()
            if late is not None and late <= now:  # the step's tick is late or lost: play it when it was due
                expected = self.follower.next_tick_time()
                position = self.follower.assume_tick()
                self._reach(range(position, position + 1), expected, arrived=False)
            dropout = self.follower.dropout_deadline()
            if dropout is not None and dropout <= now:
                self.follower.drop_out()  # the clock went silent: end the notes until it comes back
                self._all_notes_off(dropout)
        early = self._early_send_time()
        if early is not None and early <= now:
            predicted = self._tick_time(self._next_step * TICKS_PER_STEP)
            self._play_step(self._next_step, predicted, on_tick=False, now=early)
        while self._queued and self._queued[0][0] <= now:
            due, _, note, velocity = heapq.heappop(self._queued)
            self._note_on(note, velocity, due)
            self.stats.latencies.append(self.clock() - due)
        for note, due in list(self._sounding.items()):
            if due <= now:
                del self._sounding[note]
                self._send(note_off(self.output_channel, note), due)

    def shutdown(self):
        """All notes off; Stop to the slaves when master, and the master clock closed."""
        self._all_notes_off()
        if self.master and self.follower.running:
            self._send([STOP])
        self.follower.stop()
        self.session.running = False
        if self.master:
            self.master.close()

    # --- input ----------------------------------------------------------------------

    def on_message(self, arrival, data):
        """One incoming message (a sequence of byte values, or a Control from the live page) that arrived at
        `arrival`.

        Anything malformed, unknown or out of range is ignored.
        """
        if isinstance(data, Control):
            self._apply(data, arrival)
            return
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
            self._on_control(data[1], data[2], arrival)
        if self.thru and kind in (NOTE_ON, NOTE_OFF):
            self._send([kind | self.output_channel, data[1], data[2]], arrival)

    def _on_system(self, status, data, arrival):
        if self.master:
            return  # we are the clock; a loop-back of our own clock must not drive us
        if status == CLOCK:
            self._tick(arrival)
        elif status == START:
            self._all_notes_off(arrival)
            self.follower.start()
            self._relocate(0)
            self.session.running = True
        elif status == CONTINUE:
            self.follower.resume()
            self._locate_steps(-(-self.follower.position // TICKS_PER_STEP))
            self.session.running = True
        elif status == STOP:
            self._stop(arrival)
        elif status == SONG_POSITION and _data_bytes(data):
            sixteenths = data[1] | data[2] << 7
            self._all_notes_off(arrival)
            self.follower.locate(sixteenths)
            self._relocate(sixteenths)

    def start_master(self, now):
        """As clock master: send Start, and tick from now on."""
        self._send([START], now)
        self.follower.start()
        self._relocate(0)
        self.session.running = True
        self.master.start(now)

    def _follow_master(self, now):
        """Start or stop as the master clock says (a Link session's start/stop; an internal clock always plays)."""
        self._master_checked = now
        playing = self.master.playing()
        if playing and not self.follower.running:
            self.start_master(now)
        elif not playing and self.follower.running:
            self._send([STOP], now)
            self._stop(now)

    def _on_hit(self, pitch, velocity, arrival):
        drum = self.input_map.inputs.drum_of(pitch)
        if drum is None or not self.follower.running or self.follower.dropped:
            return
        position = self.follower.tick_position_at(arrival)
        self.session.hear(int(position + CLOSE_TICK) // TICKS_PER_STEP, drum, velocity)

    def _on_control(self, number, value, arrival):
        control = self.controls.interpret(number, value)
        if control is not None:
            self._apply(control, arrival)

    def _apply(self, control, arrival):
        if control.name == "panic":
            self._all_notes_off(arrival)
            return
        try:
            self.session.control(control)
        except DeepBeatError as refused:  # a loop of a bar no longer kept: said on screen, nothing changes
            self.session.notice = str(refused)

    # --- clock ----------------------------------------------------------------------

    def _tick(self, arrival):
        self.stats.ticks += 1
        self._reach(self.follower.tick(arrival), arrival)

    def _reach(self, positions, reference, arrived=True):
        """The clock reached `positions` (a range of ticks; the last one arrived at `reference`, or was due
        then and is assumed when not `arrived`): close
        the bars whose listening ends there and play the step of the newest tick, or of the one
        before it when that tick was lost. A clock coming back far on starts listening again."""
        if not positions:
            return
        newest = positions[-1]
        if newest // TICKS_PER_BAR - self._closed_bar > CATCH_UP_BARS:
            step = -(-newest // TICKS_PER_STEP)
            self.stats.steps_skipped += max(0, step - self._next_step)
            self._relocate(step)
            self.follower.report(f"clock back {newest // TICKS_PER_BAR - self._closed_bar} bars on: listening again")
            return
        for position in positions:
            bar = position // TICKS_PER_BAR
            if position % TICKS_PER_BAR == TICKS_PER_BAR - CLOSE_TICK and bar > self._closed_bar:
                self._closed_bar = bar
                # the model hears the tempo to the nearest BPM: clock jitter never changes what it plays
                self.session.close_bar(bar, round(self.follower.tempo.bpm or DEFAULT_BPM))
        step = -(-(newest - 1) // TICKS_PER_STEP)  # a step tick among the newest two
        if step * TICKS_PER_STEP in positions and step >= self._next_step:
            self.stats.steps_skipped += step - self._next_step
            self._next_step = step
            self._play_step(step, reference, on_tick=True, measured=arrived)

    def _late_tick_deadline(self):
        """When the next tick, if it is a step's with notes to play, is late enough to be assumed."""
        expected = self.follower.next_tick_time()
        position = self.follower.position
        if expected is None or position % TICKS_PER_STEP or position // TICKS_PER_STEP < self._next_step:
            return None
        if not self.session.hits_at(position // TICKS_PER_STEP):
            return None
        return expected + LATE_TICK_GRACE_S + JITTER_MISSES * self.follower.tempo.jitter

    def _stop(self, at=None):
        self.follower.stop()
        self.session.running = False
        self._all_notes_off(at)

    def _relocate(self, step):
        """Listening starts again from the first whole bar at or after `step` (Start, Song Position Pointer)."""
        self._queued.clear()
        self.session.restart(step)
        self._locate_steps(step)
        self._closed_bar = step // STEPS_PER_BAR - 1

    def _locate_steps(self, step):
        self._next_step = step
        self._waiting_for_tick = False

    def _step_seconds(self):
        interval = self.follower.tempo.interval
        return (interval or interval_of_bpm(DEFAULT_BPM)) * TICKS_PER_STEP

    # --- output ---------------------------------------------------------------------

    def _early_send_time(self):
        """When the next step is taken ahead of its tick (its notes due before it: a latency offset, or hits
        placed early), or None (nothing early, tempo unknown, its bar not ready, or more than a step ahead of
        the clock)."""
        if not self.follower.running or self._waiting_for_tick or self.follower.dropped:
            return None
        ticks_ahead = self._next_step * TICKS_PER_STEP - (self.follower.position - 1)
        if not 0 < ticks_ahead <= TICKS_PER_STEP:
            return None
        hits = self.session.hits_at(self._next_step)
        lead = self.latency_offset_s + max((-delay for _, _, delay in hits or ()), default=0.0) * self._step_seconds()
        if lead <= 0:
            return None
        predicted = self._tick_time(self._next_step * TICKS_PER_STEP)
        return None if predicted is None else predicted - lead

    def _tick_time(self, position):
        """When the tick at song position `position` is due: on the master's own timeline when the bridge is
        the clock, else by the tempo fit's line (None before a tempo is known)."""
        if self.master:
            return self.master.next_tick_time() + (position - self.master.next_tick) * interval_of_bpm(self.master.bpm)
        return self.follower.line_time(position)

    def _play_step(self, step, tick_time, on_tick, measured=True, now=None):
        """Play step `step`, whose tick arrived (or was due, or is predicted) at `tick_time`, at moment `now`
        (default `tick_time`): each note at the tick plus its delay less the latency offset, sent at once when
        that is now or past, else queued for then. The tick-to-send latency is measured from an arrival."""
        now = tick_time if now is None else now
        hits = self.session.hits_at(step)
        self.session.bar, self.session.step = divmod(step, STEPS_PER_BAR)
        if hits is None:
            if not on_tick:
                self._waiting_for_tick = True  # try again on the tick itself
                return
            self.stats.steps_missed += 1
            self.stats.missed.append(step)
        else:
            step_s = self._step_seconds()
            on_time = False
            # a transport may stamp a tick ahead of the clock (JACK: its cycle's frames run ahead of the wake-up),
            # so a note due before its tick may still be ahead of now: it keeps its moment
            earliest = min(now, self.clock())
            for drum, velocity, delay in hits:
                due = tick_time + delay * step_s - self.latency_offset_s
                if due <= now:
                    self._note_on(self.note_map.notes[drum], velocity, max(due, earliest))
                    on_time = True
                else:
                    heapq.heappush(self._queued, (due, self._order, self.note_map.notes[drum], velocity))
                    self._order += 1
            self.stats.steps_played += 1
            if on_tick and measured and on_time:
                self.stats.latencies.append(self.clock() - tick_time)
        self._next_step = step + 1
        self._waiting_for_tick = False

    def _note_on(self, note, velocity, at):
        """Send a note at moment `at`; it ends a gate later (one still sounding is ended first)."""
        if self._sounding.pop(note, None) is not None:
            self._send(note_off(self.output_channel, note), at)  # retrigger: end the old one first
        self._send(note_on(self.output_channel, note, velocity), at)
        self._sounding[note] = at + self.gate * self._step_seconds()
        self.stats.notes_sent += 1

    def _all_notes_off(self, at=None):
        """Note-offs for every sounding note, then All Notes Off on the output channel; queued notes are
        dropped."""
        self._queued.clear()
        for note in list(self._sounding):
            self._send(note_off(self.output_channel, note), at)
        self._sounding.clear()
        self._send(control_change(self.output_channel, ALL_NOTES_OFF, 0), at)


def _data_bytes(data):
    """Whether a message has the two data bytes (0-127) that note, CC and song position messages need."""
    return len(data) >= 3 and all(isinstance(b, int) and 0 <= b <= MAX_DATA for b in data[1:3])
