"""TensorFlow's own output while a command runs: held back unless asked for.

TensorFlow's C++ core, Keras, absl and tf2onnx print start-up and device messages a user cannot act
on (oneDNN, CUDA drivers, `failed call to cuInit` on a machine without a GPU, CPU instructions,
grappler sessions). While `tensorflow_output()` is active they are held back: C++ log lines by
TF_CPP_MIN_LOG_LEVEL (unless the user set it) and, since lines logged before absl logging is
initialised ignore it, by a filter on the process's stderr that drops every I, W and E line in that
log format; the libraries' Python loggers by level, their Python warnings by filter. Everything else
on stderr (DeepBeat's own messages, tracebacks, a fatal F line) gets through. Verbose changes
nothing. GPUs stay visible either way: a machine with a GPU trains on it.
"""
import contextlib
import logging
import os
import re
import sys
import threading
import warnings

LIBRARIES = ("tensorflow", "keras", "absl", "tf2onnx", "onnx", "h5py")
# C++ log lines as absl writes them: severity I/W/E, MMDD, time (epoch seconds before absl is initialised),
# thread id, file:line]
_CPP_LOG = re.compile(rb"[IWE]\d{4} [\d:.]+ +\d+ [^\s:\]]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


@contextlib.contextmanager
def tensorflow_output(verbose=False):
    """While the block runs, hold back the libraries' own messages; `verbose` lets them all through."""
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read when TensorFlow loads; F lines always print
    loggers = {name: logging.getLogger(name) for name in LIBRARIES}
    levels = {name: logger.level for name, logger in loggers.items()}
    try:
        with warnings.catch_warnings(), _filtered_stderr():
            for name, logger in loggers.items():
                warnings.filterwarnings("ignore", module=name)
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


def is_library_log(line):
    """Whether a line of stderr (bytes, no newline) is one of TensorFlow's C++ log lines."""
    return _CPP_LOG.match(line) is not None or line == _ABSL_PREAMBLE


@contextlib.contextmanager
def _filtered_stderr():
    """Route file descriptor 2 through a thread that passes on every line but the C++ library logs."""
    sys.stderr.flush()
    try:
        original = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pass_on, args=(read_end, original), name="stderr filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last write end closes: the thread reads to its end and stops
        thread.join(timeout=5)
        os.close(original)


def _pass_on(read_end, target):
    """Copy the pipe to `target` line by line, leaving out library logs; drain it to the end in any case,
    so that no writer to stderr ever blocks on a full pipe."""
    pending, passing = b"", True
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            passing = passing and _write(target, b"".join(line + b"\n" for line in lines if not is_library_log(line)))
    if passing and pending and not is_library_log(pending):
        _write(target, pending)


def _write(descriptor, data):
    """Write all of `data`; False once the descriptor no longer takes it (a closed terminal or pipe)."""
    try:
        while data:
            data = data[os.write(descriptor, data):]
    except OSError:
        return False
    return True
