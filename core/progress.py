"""A dependency-free progress bar on stderr (drawn only on a terminal)."""
import sys
import time


class Progress:
    """`with Progress(total, "label") as bar: bar.advance()` draws `label [####   ] n/total`."""

    WIDTH = 30

    def __init__(self, total, label, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn = 0.0
        self._extra = ""

    def advance(self, count=1, extra=""):
        self.done += count
        self._extra = extra
        now = time.monotonic()
        if self.live and (now - self._drawn > 0.1 or self.done >= self.total):
            self._drawn = now
            filled = int(self.WIDTH * self.done / max(self.total, 1))
            bar = "#" * filled + " " * (self.WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {self._extra}\033[K")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
