"""A timeline replayed through a Scheduler on a simulated clock: the reference of the fault suite, and the tests' rig.

Messages are delivered at their times and every deadline in between is met exactly, as the
timing loop would on an ideal machine; generation runs at once, on the caller's thread.
"""
from .controls import Control


class SimulatedClock:
    """A clock that reads `now`, which only `replay` (or a test) moves."""

    def __init__(self, now=0.0):
        self.now = now

    def __call__(self):
        return self.now


class InlineWorker:
    """A GenerationWorker stand-in that runs each job at once on the caller's thread: deterministic."""

    error = None

    def submit(self, job, *args):
        job(*args)

    def close(self, timeout=None):
        pass


def advance(scheduler, clock, until):
    """Meet every deadline of `scheduler` up to `until`, moving `clock` to each, then to `until`."""
    while True:
        deadline = scheduler.next_deadline()
        if deadline is None or deadline > until:
            break
        clock.now = max(clock.now, deadline)
        scheduler.on_deadlines(clock.now)
    clock.now = max(clock.now, until)


def replay(scheduler, clock, timeline, until=None):
    """Deliver (time, bytes) messages in time order (stable), each after the deadlines before it; then meet
    the deadlines up to `until`."""
    for when, data in sorted(timeline, key=lambda event: event[0]):
        advance(scheduler, clock, when)
        scheduler.on_message(when, data if isinstance(data, Control) else list(data))
        scheduler.on_deadlines(clock.now)
    if until is not None:
        advance(scheduler, clock, until)
