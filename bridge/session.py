"""The listening/answer state machine of a live session, in bars and steps (no time here).

Each bar gets a role when the bar before it closes: listen (the user's hits are kept as
the primer), answer (the plan's generated bar plays) or hold (an earlier answer bar
plays again). Generation is handed to the worker as jobs, a bar ahead where it can be.
The session owns the live Steering (how bars are sampled) and Feel (where their hits are
placed: swing, humanize, groove); controls change them between bars.
"""
from dataclasses import dataclass, replace

import numpy as np

from deepbeat.drums import NUM_DRUM_CLASSES, class_index
from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.runtime.composer import KEPT_BARS
from deepbeat.runtime.steering import FEEL_FIELDS, LOCK_GROUPS, STEERING_FIELDS, Feel, Groove, Steering
from deepbeat.tempo import DEFAULT_BPM

MODES = ("call-response", "continuous")
# What a listening window in which nothing was played leads to (the model is never primed with silence):
# an answer from the previous primer, or the previous answer again (continuous: the answer carries on).
ON_SILENCE = ("reuse-primer", "repeat-answer")
LISTEN, ANSWER, HOLD = "listening", "answering", "holding"
AHEAD_BARS = 1  # continuous mode samples this many bars beyond the one about to play


@dataclass(frozen=True)
class SessionView:
    """What the terminal view shows of a session."""

    state: str
    bar: int
    step: int  # within the bar
    mode: str
    steering: Steering
    primer: DrumGrid
    playing: DrumGrid
    notice: str = ""  # the newest thing the session decided on its own, e.g. after a silent listening bar
    feel: Feel = Feel()
    hold: bool = False
    looping: int = None  # the bar being looped at the page's request (as it was numbered when played), or None


class Session:
    """Decides, bar by bar, what is heard and what is played.

    The timing side calls `restart` (Start, Song Position Pointer), `hear` for each incoming
    hit, `close_bar` when a bar's listening window ends (half a step before the next bar)
    and `hits_at` when a step is due.
    """

    def __init__(self, worker, composer, plan, *, mode="call-response", listen_bars=1, answer_bars=1,
                 steering=Steering(), feel=Feel(), groove_heard=False, on_silence="reuse-primer"):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if on_silence not in ON_SILENCE:
            raise ValueError(f"unknown answer to silence {on_silence!r}; expected one of {', '.join(ON_SILENCE)}")
        if listen_bars < 1 or answer_bars < 1:
            raise ValueError(f"bars to listen and to answer must be at least 1, got {listen_bars} and {answer_bars}")
        self.worker, self.composer, self.plan = worker, composer, plan
        self.mode = mode
        self.listen_bars, self.answer_bars = listen_bars, answer_bars
        self.on_silence = on_silence
        self.steering = steering  # what every generation job samples with; live controls change it
        self.feel = feel  # where hits are placed; with groove_heard its groove is the newest primer's
        self.groove_heard = groove_heard
        self._placed = {}  # plan bar -> (grid, feel, per step (drum, velocity, delay in steps)) last placed
        self._loop_wanted = None  # (bar asked for, plan bar it played) to loop from the next bar on (the page's "loop")
        self.looping = None  # the bar being looped, as asked for
        self.bar = self.step = 0  # the bar being played, and the step within it
        self.running = False
        self._hold_wanted = False
        self._reprime_wanted = False
        self._roles = {}  # bar -> role
        self._sources = {}  # bar -> plan bar it plays (itself, or an earlier bar when holding)
        self._heard = {}  # bar -> [16, 9] velocities the user played
        self._primer = None  # the newest primer that was not silent
        self._previous_answer = []  # plan bars of the newest answer
        self._fresh = set()  # bars generated only when the bar before them closed (see hits_at)
        self.notice = ""
        self.restart(0)

    # --- transport ------------------------------------------------------------------

    def restart(self, step):
        """A new cycle: the first whole bar at or after `step` is listened to."""
        self._first_bar = -(-step // STEPS_PER_BAR)
        # bars before the one holding `step` keep their story; the rest is unwritten again
        for history in (self._roles, self._sources, self._heard):
            for bar in [b for b in history if b >= step // STEPS_PER_BAR]:
                del history[bar]
        self._fresh = {bar for bar in self._fresh if bar < step // STEPS_PER_BAR}
        self._roles[self._first_bar] = LISTEN
        self._listened = []  # bars listened to in this cycle
        self._answered = 0  # answer bars closed in this cycle
        self._answer_bars = []  # plan bars of this cycle's answer (what hold loops)
        self._loop = []
        self._reprime_wanted = False

    def role(self, bar):
        return self._roles.get(bar)

    # --- input ----------------------------------------------------------------------

    def hear(self, step, drum, velocity):
        """The user hit `drum` at `step`; kept when that bar listens (or is answered, in continuous)."""
        bar = step // STEPS_PER_BAR
        role = self._roles.get(bar, LISTEN if bar >= self._first_bar else None)
        if role == LISTEN or (role == ANSWER and self.mode == "continuous"):
            hits = self._heard.setdefault(bar, np.zeros((STEPS_PER_BAR, NUM_DRUM_CLASSES), np.uint8))
            row = step % STEPS_PER_BAR
            hits[row, drum] = max(hits[row, drum], velocity)

    def control(self, control):
        """Apply a live Control (see controls.py); panic is the timing side's. Settings and locks steer the
        bars generated from now on, feel settings the notes placed from now on. DeepBeatError when a loop is
        asked for a bar no longer kept."""
        name, value = control.name, control.value
        if name in STEERING_FIELDS:
            self.steering = self.steering.with_changes(**{name: value})
        elif name in FEEL_FIELDS - {"groove"}:
            self.feel = replace(self.feel, **{name: value})
        elif name == "preset":
            self.steering, self.feel = value.apply(self.steering, self.feel)
        elif name == "lock":
            group, on = value
            drums = frozenset(class_index(drum) for drum in LOCK_GROUPS[group])
            locks = self.steering.locks | drums if on else self.steering.locks - drums
            self.steering = self.steering.with_changes(locks=locks)
        elif name == "fill":
            bar = self._next_unsampled_bar()
            self.steering = self.steering.with_changes(fills=self.steering.fills.with_bar(bar))
            self.notice = f"fill asked for bar {bar + 1}"
        elif name == "mode":
            self.mode = value
        elif name == "hold":
            self._hold_wanted = value
            if not value:
                self._loop_wanted = self.looping = None
        elif name == "reprime":
            self._reprime_wanted = True
        elif name == "loop":
            source = None if value is None else self._sources.get(value, value)  # what that bar played
            if value is not None and self.plan.grid(source) is None:
                raise DeepBeatError(f"bar {value + 1} is no longer kept; only the last {KEPT_BARS} bars can loop")
            self._loop_wanted = None if value is None else (value, source)
            self._hold_wanted = value is not None
            if value is None:
                self.looping = None

    def _next_unsampled_bar(self):
        """The first bar whose generation has not been asked for yet (continuous answers run a bar ahead)."""
        ahead = AHEAD_BARS if self.mode == "continuous" and self._roles.get(self.bar) in (ANSWER, HOLD) else 0
        return self.bar + 1 + ahead

    # --- bars -----------------------------------------------------------------------

    def close_bar(self, bar, bpm):
        """Bar `bar` can hear no more: give bar+1 its role and queue the generation it needs."""
        role = self._roles.get(bar)
        if bar < self._first_bar - 1:
            return
        if role is None or self._reprime_wanted:  # before the first whole bar, or re-prime asked
            self.restart((bar + 1) * STEPS_PER_BAR)
            return
        if self._loop_wanted is not None:  # the page asked to loop an earlier bar
            (self.looping, source), self._loop_wanted = self._loop_wanted, None
            next_role = self._start_hold(bar, [source])
        elif role == LISTEN:
            next_role = self._after_listening(bar, bpm)
        elif role == ANSWER:
            next_role = self._after_answer(bar, bpm)
        else:
            next_role = self._after_hold(bar, bpm)
        self._roles[bar + 1] = next_role
        if next_role in (ANSWER, HOLD):
            self._sources.setdefault(bar + 1, bar + 1)
        for old in [b for b in self._roles if b < bar - KEPT_BARS]:
            del self._roles[old]
            self._sources.pop(old, None)
            self._heard.pop(old, None)
        self._fresh = {b for b in self._fresh if b >= bar - KEPT_BARS}

    def _after_listening(self, bar, bpm):
        self._listened.append(bar)
        if len(self._listened) < self.listen_bars:
            return LISTEN
        heard = self._heard_grid(self._listened, bpm)
        if not heard.velocities.any():
            return self._after_silence(bar, bpm)
        self._primer = heard
        if self.groove_heard:
            self.feel = replace(self.feel, groove=Groove.of(heard))
        return self._answer(heard, bar)

    def _generate_next(self, bar, job, *args):
        """Submit a generation job that writes bar+1 (and on), as bar `bar` closes."""
        self._fresh.add(bar + 1)
        self.worker.submit(job, *args)

    def _answer(self, primer, bar):
        last = bar + (self.answer_bars if self.mode == "call-response" else 1 + AHEAD_BARS)
        self._answer_bars = self._previous_answer = list(range(bar + 1, bar + 1 + self.answer_bars))
        self._generate_next(bar, self.composer.answer, primer, bar + 1, last, self.steering)
        self._answered = 0
        return ANSWER

    def _after_silence(self, bar, bpm):
        """Nothing was played while listening: answer as `on_silence` says, or listen again when there is
        nothing to answer from yet."""
        played_before = bar - len(self._listened)  # the bar before listening began
        self._listened = []
        repeat = self.on_silence == "repeat-answer" and self._previous_answer
        if repeat and self.mode == "continuous" and self._roles.get(played_before) in (ANSWER, HOLD):
            self.notice = f"bar {bar + 1} was silent: the answer carries on"
            last_played = played_before
            self._generate_next(bar, self.composer.reprime, last_played,
                                self._sources.get(last_played, last_played), None, bar + 1 + AHEAD_BARS, bpm,
                                self.steering)
            self._answered = 0
            return ANSWER
        if repeat and self.mode == "call-response":
            self.notice = f"bar {bar + 1} was silent: the previous answer again"
            self._answer_bars = list(self._previous_answer)
            for k in range(self.answer_bars):
                self._sources[bar + 1 + k] = self._previous_answer[k % len(self._previous_answer)]
            self._answered = 0
            return ANSWER
        if self._primer is not None:
            self.notice = f"bar {bar + 1} was silent: answering the previous primer again"
            return self._answer(replace(self._primer, bpm=bpm), bar)
        self.notice = f"bar {bar + 1} was silent: listening again"
        return LISTEN

    def _after_answer(self, bar, bpm):
        self._answered += 1
        if self.mode == "call-response":
            if self._answered < self.answer_bars:
                return ANSWER
            if self._hold_wanted:
                return self._start_hold(bar, self._answer_bars)
            self.restart((bar + 1) * STEPS_PER_BAR)
            return LISTEN
        if self._hold_wanted:
            return self._start_hold(bar, [self._sources.get(bar, bar)])
        user = self._heard.get(bar)
        if user is not None or self.plan.hits(bar + 1) is None:
            for later in range(bar + 1, bar + 2 + AHEAD_BARS):
                self.plan.drop(later)
            self._generate_next(bar, self.composer.reprime, bar, self._sources.get(bar, bar), user,
                                bar + 1 + AHEAD_BARS, bpm, self.steering)
        else:
            self.worker.submit(self.composer.extend, bar + 1 + AHEAD_BARS, bar + 1 + AHEAD_BARS, bpm, self.steering)
        return ANSWER

    def _start_hold(self, bar, loop):
        self._loop = list(loop)
        self._hold_start = bar + 1
        self._sources[bar + 1] = self._loop[0]
        return HOLD

    def _after_hold(self, bar, bpm):
        if self._hold_wanted:
            self._sources[bar + 1] = self._loop[(bar + 1 - self._hold_start) % len(self._loop)]
            return HOLD
        if self.mode == "call-response":
            self.restart((bar + 1) * STEPS_PER_BAR)
            return LISTEN
        # continuous: carry on from the bar just played, as if the user had played it
        for later in range(bar + 1, bar + 2 + AHEAD_BARS):
            self.plan.drop(later)
        self._generate_next(bar, self.composer.reprime, bar, self._sources[bar], None, bar + 1 + AHEAD_BARS, bpm,
                            self.steering)
        self._answered = 0
        return ANSWER

    # --- output ---------------------------------------------------------------------

    def hits_at(self, step):
        """The (drum, velocity, delay) of each hit step `step` plays, the delay in steps from its tick (the
        model's timing times humanize, or the groove's, plus swing; negative: before the tick): () when it
        plays nothing, None while its generated bar is not ready (or its role not yet decided).

        The first step of a bar generated only as the bar before it closed plays none of its hits before its
        tick: that bar closes half a step before the tick, too late to generate hits due earlier and send them
        ahead (at 300 BPM half a step is 25 ms), so they would go out late, and later the faster the tempo."""
        bar = step // STEPS_PER_BAR
        role = self._roles.get(bar)
        if role is None:
            return None if bar >= self._first_bar else ()
        if role == LISTEN:
            return ()
        source = self._sources.get(bar, bar)
        hits = self.plan.hits(source)
        if hits is None or step % STEPS_PER_BAR >= len(hits):
            return None
        placed = self._placed_hits(source)[step % STEPS_PER_BAR]
        if step % STEPS_PER_BAR == 0 and bar in self._fresh:
            return tuple((drum, velocity, max(delay, 0.0)) for drum, velocity, delay in placed)
        return placed

    def _placed_hits(self, source):
        """Per step of plan bar `source`, its hits placed by the feel; worked out once per grid and feel."""
        grid = self.plan.grid(source)
        kept = self._placed.get(source)
        if kept is not None and kept[0] is grid and kept[1] is self.feel:
            return kept[2]
        onsets, velocities = self.feel.onsets(grid), self.feel.velocities(grid)
        placed = tuple(tuple((int(drum), int(velocities[step, drum]), float(onsets[step, drum] - step))
                             for drum in np.flatnonzero(row)) for step, row in enumerate(grid.velocities))
        self._placed = {bar: entry for bar, entry in self._placed.items() if bar > source - KEPT_BARS}
        self._placed[source] = (grid, self.feel, placed)
        return placed

    def _heard_grid(self, bars, bpm=DEFAULT_BPM):
        """What the user played in `bars`, silent where nothing was heard."""
        silent = DrumGrid.silent(STEPS_PER_BAR).velocities
        return DrumGrid(np.concatenate([self._heard.get(b, silent) for b in bars]), bpm=bpm)

    def view(self):
        """A SessionView of the bar being played (state 'stopped' when not running)."""
        role = self._roles.get(self.bar)
        primer = self._heard_grid(self._listened[-self.listen_bars:] or [self.bar])
        playing = None
        if role in (ANSWER, HOLD):
            playing = self.plan.grid(self._sources.get(self.bar, self.bar))
            playing = playing and playing.padded_to_bars()
        if role == LISTEN or playing is None:
            playing = self._heard_grid([self.bar])
        state = (role or "waiting") if self.running else "stopped"
        return SessionView(state, self.bar, self.step, self.mode, self.steering, primer, playing, self.notice,
                           self.feel, self._hold_wanted, self.looping)
