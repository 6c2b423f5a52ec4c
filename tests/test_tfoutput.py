"""TensorFlow's own messages are held back while a training command runs; --verbose lets them through."""
import subprocess
import sys

import pytest

from deepbeat.training.tfoutput import is_library_log

# Lines as TensorFlow 2.21 writes them on a machine without a GPU (before and after absl logging is initialised).
LIBRARY_LINES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796167931.539418   14534 port.cc:153] oneDNN custom operations are on.",
    b"I0000 00:00:1796167931.539804   14534 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    b"not be used.",
    b"E0000 00:00:1796167936.023788   14534 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    b"W1201 23:31:02.512345 140213 tf2onnx_stub.cc:7] a warning",
]
OUR_LINES = [b"step 2/2: train loss 7.2756", b"deepbeat train: error: something", b"Traceback (most recent call last):",
             b"F0000 00:00:1796167936.023788   14534 check.cc:1] a fatal error TensorFlow dies of"]


def test_library_log_lines_are_recognised():
    assert all(is_library_log(line) for line in LIBRARY_LINES)
    assert not any(is_library_log(line) for line in OUR_LINES)


SCRIPT = """
import logging, os, sys, warnings
from deepbeat.training.tfoutput import tensorflow_output
with tensorflow_output(verbose=sys.argv[1] == "verbose"):
    os.write(2, sys.stdin.buffer.read())  # as C++ writes: straight to file descriptor 2
    print("deepbeat's own line", file=sys.stderr)
    logging.getLogger("tensorflow").warning("a tensorflow logger warning")
    warnings.warn_explicit("a keras warning", UserWarning, "layer.py", 1, module="keras.src.layers")
print("after the block", file=sys.stderr)
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_stderr_keeps_all_but_library_messages_unless_verbose(mode):
    text = b"\n".join(LIBRARY_LINES[:2] + OUR_LINES[:2] + LIBRARY_LINES[2:] + OUR_LINES[2:]) + b"\nno newline"
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], input=text, capture_output=True, timeout=60)
    lines = result.stderr.splitlines()
    assert result.returncode == 0
    ours = [b"deepbeat's own line", b"after the block"]
    if mode == "quiet":
        assert lines == OUR_LINES[:2] + OUR_LINES[2:] + [b"no newline" + ours[0]] + ours[1:]
    else:
        assert set(LIBRARY_LINES + OUR_LINES) <= set(lines)
        assert b"a tensorflow logger warning" in lines and any(b"a keras warning" in line for line in lines)
