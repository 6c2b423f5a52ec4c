"""A running bridge: ports open, the timing loop on its own thread, the view and the checks on the main one."""
import gc
import os
import sys
import threading

from deepbeat.errors import DeepBeatError
from deepbeat.grid import STEPS_PER_BAR

from .clock import TICKS_PER_STEP
from .scheduler import WAKE

VIEW_PERIOD_S = 0.1  # view redraws and port checks, on the main thread
PORT_CHECK_PERIOD_S = 1.0  # transport failure (a vanished port or server) and health checks
SWITCH_INTERVAL_S = 0.0005  # hand the GIL over often, so the generation thread cannot hold up a tick
# SCHED_FIFO priorities (1-99): above every normal thread, under audio servers (JACK is usually set higher).
# Generation sits just under timing: its bursts (a few ms a bar) are not held up by busy programs,
# and it is never preempted while holding the GIL the timing thread is waiting for. The main thread
# (view and checks) sits under both, for the same reason: every thread that takes the GIL must run
# before busy programs, or JACK's real-time thread waits for the GIL behind them.
TIMING_PRIORITY, GENERATION_PRIORITY, MAIN_PRIORITY = 5, 4, 3


def request_realtime(priority=TIMING_PRIORITY):
    """Ask the OS to run the calling thread first (SCHED_FIFO); True when granted.

    Needs CAP_SYS_NICE or an rtprio limit (e.g. the `audio` group); otherwise nothing changes.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False


def drop_realtime():
    """Back to normal scheduling for the calling thread."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def clock_notes(follower):
    """What the follower has put right in the incoming clock, as view lines."""
    summary = follower.corrections.summary()
    if not summary:
        return ()
    latest = follower.latest
    where = f" (bar {latest.position // (TICKS_PER_STEP * STEPS_PER_BAR) + 1})" if latest else ""
    return (f"clock: {summary}; newest: {latest.what}{where}" if latest else f"clock: {summary}",)


def clock_words(master):
    """The master clock for the view: 'internal clock', 'Link, 2 peers'; '' when following MIDI clock."""
    if master is None:
        return ""
    if master.peers is None:
        return f"{master.source} clock"
    return f"Link, {master.peers} peer{'' if master.peers == 1 else 's'}"


class Bridge:
    """Wires a transport, a Scheduler and a generation worker; `run` serves until `stop` is set.

    `inbox` is the queue the transport fills and the scheduler drains; the worker wakes it on error.
    `view` (a TerminalView, or None) is redrawn from the main thread.
    With `realtime` the timing and generation threads ask for real-time scheduling (granted only
    where permitted). With `cover_latency` the scheduler sends early by the transport's output latency,
    asked again at every port check (it changes as ports are connected).
    """

    def __init__(self, transport, scheduler, worker, inbox, view, realtime=True, page=None, cover_latency=False):
        self.transport, self.scheduler, self.worker = transport, scheduler, worker
        self.cover_latency = cover_latency
        self.inbox, self.view = inbox, view
        self.page = page  # a BridgePage the live page is served from, or None
        self._failure = None
        self._want_realtime = realtime
        self.realtime = False  # whether the timing thread got real-time scheduling
        self.generation_realtime = False  # and the generation thread

    def run(self, stop):
        """Serve until `stop` (a threading.Event) is set or something fails; returns 0 after a clean stop.

        Every note is off and the ports are closed when it returns. A DeepBeatError (a port
        that vanished) is raised; any other failure is raised as a DeepBeatError naming it.
        """
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        timing = threading.Thread(target=self._serve, args=(stop,), name="deepbeat-timing")
        main_realtime = False
        # What start-up made (modules, the model, the session: some 27,000 objects) is left out of every later
        # collection: a full one walked them for 7-9 ms holding the GIL, longer than a JACK period, while the
        # process callback waited for it. Now a collection walks only what the session makes.
        gc.collect()
        gc.freeze()
        try:
            self.transport.open(self.inbox)
            if self.cover_latency:
                self.scheduler.cover(self.transport.output_latency_s)
            # Over a JACK server that is not real-time itself, threads of ours above its threads would starve them
            self._want_realtime = self._want_realtime and getattr(self.transport, "server_realtime", None) is not False
            if self._want_realtime:
                self.worker.submit(self._generation_realtime)
                main_realtime = request_realtime(MAIN_PRIORITY)
            timing.start()
            self._watch(timing, stop)
        except Exception as error:  # reported below, after the cleanup
            self._failure = self._failure or error
        finally:
            stop.set()
            self.inbox.put_nowait(WAKE)
            if timing.ident is not None:
                timing.join()
            self.worker.close()
            self.transport.close()
            # a server that died as we were stopping (closing waits for its last cycles) is a failure all the same
            self._failure = self._failure or self.transport.failure()
            sys.setswitchinterval(previous_interval)
            gc.unfreeze()
            if main_realtime:
                drop_realtime()
        if self._failure is not None:
            if isinstance(self._failure, DeepBeatError):
                raise self._failure
            message = f"stopped with every note off after an internal error: {self._failure!r}"
            raise DeepBeatError(message) from self._failure
        return 0

    def _watch(self, timing, stop):
        """Redraw the view and check the transport until the timing thread ends, `stop` is set or the
        transport fails (a port or the JACK server gone)."""
        since_check = PORT_CHECK_PERIOD_S
        health = ()
        while timing.is_alive() and not stop.wait(VIEW_PERIOD_S):
            since_check += VIEW_PERIOD_S
            if since_check >= PORT_CHECK_PERIOD_S:
                since_check = 0.0
                self._failure = self._failure or self.transport.failure()
                if self._failure is not None:
                    return
                health = self.transport.health()
                if self.cover_latency:
                    self.scheduler.cover(self.transport.output_latency_s)
            if self.view is not None:
                master = self.scheduler.master
                bpm = master.bpm if master else self.scheduler.follower.tempo.bpm
                self.view.update(self.scheduler.session.view(), bpm, self.transport.description,
                                 clock_notes(self.scheduler.follower) + tuple(health), clock_words(master))
            if self.page is not None:
                self.page.publish(self.scheduler)

    def _generation_realtime(self):
        self.generation_realtime = request_realtime(GENERATION_PRIORITY)

    def _serve(self, stop):
        self.realtime = self._want_realtime and request_realtime()
        try:
            self.scheduler.run(self.inbox, stop.is_set, lambda: self.worker.error)
        except Exception as error:  # reported by run() on the main thread, after the cleanup
            self._failure = error
            stop.set()
