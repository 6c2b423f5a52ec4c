"""The terminal view: tempo, state, bar counter, what the bridge put right, the primer and the bar being played."""
import os
import shutil
import sys

from deepbeat.drums import DRUM_CLASSES

# ANSI: cursor up to the first line of the block drawn before (CPL), or to the top left (CUP); each line is
# then cleared to its end (EL) as it is written, and what is left below the block is cleared (ED). Never
# the whole screen at once: some terminals (tmux) push a fully cleared screen into the scrollback.
_UP = "\x1b[{lines}F"
_HOME = "\x1b[H"
_CLEAR_LINE_END, _CLEAR_BELOW = "\x1b[K", "\x1b[J"


def render(view, bpm, ports, notes=(), clock=""):
    """The view as text lines; `notes` are lines about the clock and the ports (corrections, warnings), `clock`
    the master clock in words (e.g. its Link peers; '' when following MIDI clock)."""
    tempo = (f"{bpm:6.1f} BPM" if bpm else "  --.- BPM") + (f" ({clock})" if clock else "")
    lines = [
        f"DeepBeat bridge  {ports}",
        f"{tempo}   bar {view.bar + 1:<5} {view.state:<10} mode {view.mode}{'   HOLD' if view.hold else ''}"
        + (f"   looping bar {view.looping + 1}" if view.looping is not None else ""),
        *steering_lines(view.steering, view.feel),
        *(f"! {note}" for note in ((view.notice,) if view.notice else ()) + tuple(notes)),
        "primer:",
        *view.primer.to_text().splitlines()[1:],
        "playing:",
        *view.playing.to_text().splitlines()[1:],
    ]
    label_width = lines[-1].index(":")
    lines.append(" " * (label_width + 2 + view.step) + "^")  # the playhead under the step being played
    return lines


def steering_lines(steering, feel):
    """The live controls' values, two lines."""
    locks = ",".join(DRUM_CLASSES[drum] for drum in sorted(steering.locks)) or "none"
    groove = "   groove heard" if feel.groove is not None else ""
    return (f"style {steering.style} x{steering.style_strength:.2f}   temperature {steering.temperature:.2f}   "
            f"variation {steering.variation:.2f}   density {steering.density:+.2f}   fills {steering.fills}",
            f"swing {feel.swing:.0f}% on {feel.swing_unit}ths   humanize {feel.humanize:.2f}{groove}   locked {locks}")


class TerminalView:
    """Redraws the view in place on a terminal; on anything else prints a line per bar and per note.

    On a terminal the block is cut to its size (a line shorter than its width, a line fewer than its
    height), so a redraw never wraps or scrolls: moving up the lines drawn lands on the block's first
    line every time. When the stream cannot be written any more (a closed pipe or terminal), the view
    stops and later writes to it go nowhere; the music goes on.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._tty = self.stream.isatty()
        self._drawn = 0
        self._size = None
        self._last = None
        self._notes = ()
        self.closed = False

    def update(self, view, bpm, ports, notes=(), clock=""):
        if self.closed:
            return
        try:
            if self._tty:
                self._redraw(render(view, bpm, ports, notes, clock))
            else:
                self._log(view, bpm, notes, clock)
        except (OSError, ValueError):  # ValueError: a stream closed under us
            self._close()

    def _redraw(self, lines):
        size = _terminal_size(self.stream)
        columns, rows = size
        lines = [line[:max(columns - 1, 1)] for line in lines][:max(rows - 1, 1)]
        if lines == self._last and size == self._size:
            return
        if not self._drawn:
            prefix = ""  # the first drawing starts where the cursor is
        elif size != self._size:
            prefix = _HOME  # resized: the old block may have wrapped, so start from the top
        else:
            prefix = _UP.format(lines=self._drawn)
        self.stream.write(prefix + "".join(line + _CLEAR_LINE_END + "\n" for line in lines) + _CLEAR_BELOW)
        self.stream.flush()
        self._last, self._size, self._drawn = lines, size, len(lines)

    def _log(self, view, bpm, notes, clock):
        key = (view.bar, view.state)
        written = []
        if key != self._last:
            self._last = key
            tempo = (f"{bpm:.1f} BPM" if bpm else "tempo unknown") + (f", {clock}" if clock else "")
            written.append(f"bar {view.bar + 1} {view.state} ({tempo})")
        news = ((view.notice,) if view.notice else ()) + tuple(notes)
        written += [f"! {note}" for note in news if note not in self._notes]
        self._notes = news
        if written:
            self.stream.write("\n".join(written) + "\n")
            self.stream.flush()

    def _close(self):
        """The stream is gone: stop drawing, and send whatever else is written to it nowhere."""
        self.closed = True
        try:
            descriptor = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, descriptor)
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass


def _terminal_size(stream):
    """(columns, rows) of the terminal `stream` writes to."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        size = shutil.get_terminal_size()
    return size.columns, size.lines
