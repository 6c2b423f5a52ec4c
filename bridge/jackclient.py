"""A JACK client through the JACK-Client package, and time in its frames.

JACK-Client loads libjack when it is imported, so it is imported here, only when a JACK
client is opened; a missing package or library is one line saying what to install.
"""
import contextlib
import ctypes
import ctypes.util
import functools
import math
import os
import time

from .transport import UNAVAILABLE, PortError, quiet_stderr

FRAMES_WRAP = 1 << 32  # JACK frame times are unsigned 32-bit
PLAYBACK_LATENCY = 1  # jack_latency_callback_mode_t: JackPlaybackLatency (from a port to where it is heard)


def jack_module():
    """The `jack` module (JACK-Client); PortError naming what to install when it or libjack is missing."""
    try:
        import jack
    except ImportError:
        raise PortError("the JACK backend needs the JACK-Client package: pip install 'deepbeat[jack]'") from None
    except OSError:  # raised by JACK-Client when libjack cannot be found
        raise PortError("the JACK backend needs the JACK library (libjack): install JACK, e.g. "
                        "`apt install libjack-jackd2-0`, or PipeWire's pipewire-jack") from None
    jack.set_error_function(lambda message: None)  # libjack's own chatter; failures are raised as PortError
    jack.set_info_function(lambda message: None)
    return jack


def open_client(name, server=None):
    """An inactive jack.Client named `name` (JACK may add a suffix) on `server` (default: JACK's default
    server); PortError when no server runs."""
    jack = jack_module()
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        with quiet_stderr():
            return jack.Client(name, no_start_server=True, servername=server)
    except jack.JackError:
        raise PortError(f"MIDI backend jack: {UNAVAILABLE['jack']}") from None


def server_realtime(server=None):
    """Whether the JACK server runs real-time, asked by a client of a moment; None when JACK-Client or the
    server cannot tell."""
    try:
        client = open_client("DeepBeat query", server)
    except PortError:
        return None
    try:
        return client.realtime
    finally:
        close_client(client)


def close_client(client):
    """Deactivate and close, whatever state the server is in."""
    with contextlib.suppress(Exception):
        client.deactivate()
    with contextlib.suppress(Exception):
        client.close()


class _LatencyRange(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


@functools.lru_cache(maxsize=None)
def _latency_range_function():
    """libjack's jack_port_get_latency_range (JACK-Client does not wrap it), from the library it loaded."""
    function = ctypes.CDLL(ctypes.util.find_library("jack")).jack_port_get_latency_range
    function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_LatencyRange)]
    function.restype = None
    return function


def playback_latency_frames(port):
    """The most frames JACK says lie between an output port of ours and where its data is heard (its
    playback latency range, set by the clients and the driver downstream)."""
    jack = jack_module()
    latency = _LatencyRange()
    _latency_range_function()(int(jack._ffi.cast("uintptr_t", port._ptr)), PLAYBACK_LATENCY, ctypes.byref(latency))
    return latency.max


def frames_after(frame, start):
    """Frames from `start` to `frame` (negative when before), across the 32-bit wrap."""
    return (frame - start + FRAMES_WRAP // 2) % FRAMES_WRAP - FRAMES_WRAP // 2


class FrameClock:
    """perf_counter seconds and JACK frames of one client, for use inside its process callback.

    `cycle()` is called first in every process callback. It reads when the cycle began (the
    callback's wake-up time, which jitters) and filters it with a delay-locked loop (F. Adriaensen,
    "Using a DLL to filter time", 2005), so a frame maps to a smooth perf_counter time even
    when the audio clock runs off the system clock (a sound card's crystal, a late dummy driver).
    """

    BANDWIDTH_HZ = 1.0

    def __init__(self, client):
        self._client = client
        self.rate = client.samplerate
        self.start = 0  # the current cycle's first frame
        self._frames = 0  # the current cycle's length
        self._began = self._ends = None  # filtered perf_counter times of this cycle's start and the next's
        self._period = None  # filtered seconds per cycle

    def cycle(self):
        now = time.perf_counter()
        client = self._client
        start, frames = client.last_frame_time, client.blocksize
        if self._began is None or frames != self._frames:
            self._period = frames / self.rate  # first cycle, or a new buffer size: start again
            self._began, self._ends = now, now + self._period
        elif frames_after(start, self.start) != self._frames:  # cycles skipped (an xrun): carry the line on
            self._began = self._began + frames_after(start, self.start) * self._period / self._frames
            self._ends = self._began + self._period
        else:
            omega = 2 * math.pi * self.BANDWIDTH_HZ * self._period
            # a wake-up later than a quarter period is the machine's delay, not the audio clock's: cap it
            error = min(max(now - self._ends, -self._period / 4), self._period / 4)
            self._began = self._ends
            self._ends += math.sqrt(2) * omega * error + self._period
            self._period += omega * omega * error
        self.start, self._frames = start, frames

    def time_of(self, frame):
        """perf_counter seconds of a frame."""
        return self._began + frames_after(frame, self.start) * (self._ends - self._began) / self._frames

    def frame_of(self, seconds):
        """The frame of a perf_counter moment."""
        return (self.start + round((seconds - self._began) * self._frames / (self._ends - self._began))) % FRAMES_WRAP
