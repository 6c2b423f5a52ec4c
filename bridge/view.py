"""The terminal view: tempo, state, bar counter, the primer and the bar being played."""
import sys

_HOME_AND_CLEAR = "\x1b[{lines}F\x1b[J"  # ANSI: cursor up to the block's first line, clear below


def render(view, bpm, ports):
    """The view as text lines."""
    tempo = f"{bpm:6.1f} BPM" if bpm else "  --.- BPM"
    lines = [
        f"DeepBeat bridge  {ports}",
        f"{tempo}   bar {view.bar + 1:<5} {view.state:<10} mode {view.mode}   "
        f"temperature {view.steering.temperature:.2f}",
        "primer:",
        *view.primer.to_text().splitlines()[1:],
        "playing:",
        *view.playing.to_text().splitlines()[1:],
    ]
    label_width = lines[-1].index(":")
    lines.append(" " * (label_width + 2 + view.step) + "^")  # the playhead under the step being played
    return lines


class TerminalView:
    """Redraws the view in place on a terminal; on anything else prints a line per bar."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._tty = self.stream.isatty()
        self._drawn = 0
        self._last = None

    def update(self, view, bpm, ports):
        if self._tty:
            lines = render(view, bpm, ports)
            if lines == self._last:
                return
            self._last = lines
            prefix = _HOME_AND_CLEAR.format(lines=self._drawn) if self._drawn else ""
            self.stream.write(prefix + "\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            key = (view.bar, view.state)
            if key == self._last:
                return
            self._last = key
            tempo = f"{bpm:.1f} BPM" if bpm else "tempo unknown"
            self.stream.write(f"bar {view.bar + 1} {view.state} ({tempo})\n")
        self.stream.flush()

