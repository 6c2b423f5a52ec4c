"""Broadcast: a source's latest snapshot, taken at a fixed rate while anyone watches, handed to every watcher.

Only the latest snapshot is kept: a watcher that falls behind skips to it, so nothing queues up for a
slow reader, and the source is called from the broadcast's own thread only (never from a reader's).
Snapshots are encoded piece by piece (SnapshotEncoder), so that no single call holds Python's global
lock for long while a timing thread in the same process waits for it.
"""
import json
import sys
import threading
from contextlib import contextmanager

SNAPSHOT_RATE = 15.0  # snapshots a second: a step at 180 BPM lasts 83 ms, so the playing step shows within one


class SnapshotEncoder:
    """JSON bytes of snapshot dicts, encoded piece by piece: each top-level value, and each item of a top-level
    list, is its own call of the JSON encoder (which holds the global lock for its whole run, however long),
    and a piece that is the very same object as in the last snapshot is not encoded again."""

    def __init__(self):
        self._last = {}  # id of a piece -> (the piece, its JSON), for the pieces of the last snapshot

    def _piece(self, value, pieces):
        known = self._last.get(id(value))
        if known is None or known[0] is not value:
            known = (value, json.dumps(value, separators=(",", ":"), allow_nan=False))
        pieces[id(value)] = known
        return known[1]

    def encode(self, snapshot):
        pieces, parts = {}, []
        for key, value in snapshot.items():
            if isinstance(value, list):
                text = "[" + ",".join(self._piece(item, pieces) for item in value) + "]"
            else:
                text = self._piece(value, pieces)
            parts.append(json.dumps(str(key)) + ":" + text)
        self._last = pieces  # only what this snapshot holds: what it dropped is let go
        return ("{" + ",".join(parts) + "}").encode()


class Broadcast:
    """Calls `take()` (a JSON-ready dict) `rate` times a second on its own thread while watched; watchers wait
    for a snapshot newer than the one they have with `next_after`. Parts of a snapshot that are the same
    objects as in the one before are not encoded again: a source that keeps them saves the work."""

    def __init__(self, take, rate=SNAPSHOT_RATE, name="deepbeat snapshots"):
        self.take, self.period = take, 1.0 / rate
        self.counts = {"snapshots_taken": 0, "snapshots_sent": 0, "watchers": 0, "watchers_dropped": 0}
        self._changed = threading.Condition()
        self._number, self._data = 0, None  # the latest snapshot's number and its encoded JSON
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self):
        failed = None
        encoder = SnapshotEncoder()
        while not self._closed.is_set():
            with self._changed:
                while self.counts["watchers"] == 0 and not self._closed.is_set():
                    self._changed.wait()
            try:
                data = encoder.encode(self.take())
            except Exception as error:  # a fault of the source's: said once, and the last good snapshot stays
                if repr(error) != failed:
                    print(f"deepbeat web: cannot take a snapshot: {type(error).__name__}: {error}", file=sys.stderr)
                failed = repr(error)
            else:
                with self._changed:
                    self.counts["snapshots_taken"] += 1
                    if data != self._data:
                        self._number, self._data = self._number + 1, data
                        self._changed.notify_all()
            self._closed.wait(self.period)

    @contextmanager
    def watching(self):
        """While inside, snapshots are taken."""
        with self._changed:
            self.counts["watchers"] += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self.counts["watchers"] -= 1

    def next_after(self, number, timeout):
        """(number, JSON bytes) of the first snapshot newer than `number`; None after `timeout` seconds
        without one, or when the broadcast is closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._number > number or self._closed.is_set(), timeout)
            if self._closed.is_set() or self._number <= number:
                return None
            return self._number, self._data

    def count(self, name):
        with self._changed:
            self.counts[name] += 1

    def stats(self):
        """A copy of the counts: snapshots_taken, snapshots_sent, watchers, watchers_dropped."""
        with self._changed:
            return dict(self.counts)

    @property
    def closed(self):
        return self._closed.is_set()

    def close(self):
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join()
