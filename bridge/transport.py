"""MIDI transports: real ports through python-rtmidi, and an in-memory one for tests.

A transport delivers each incoming message to an inbox queue as (arrival time, bytes)
and sends outgoing messages. The rtmidi input callback runs on the MIDI system's thread
(JACK's real-time thread): it only timestamps and enqueues.
"""
import contextlib
import os
import sys
import time

from deepbeat.errors import DeepBeatError

BACKENDS = ("alsa", "jack", "coremidi", "winmm")
_RTMIDI_APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK", "coremidi": "API_MACOSX_CORE",
                "winmm": "API_WINDOWS_MM"}
DEFAULT_IN, DEFAULT_OUT = "DeepBeat In", "DeepBeat Out"
LOOPMIDI = "https://www.tobias-erichsen.de/software/loopmidi.html"
_UNAVAILABLE = {
    "jack": "no JACK server is running: start one (e.g. `jackd -d alsa`, QjackCtl, or PipeWire's pipewire-jack) "
            "or choose another MIDI backend",
    "alsa": "the ALSA sequencer is not available (/dev/snd/seq): load it with `sudo modprobe snd-seq` "
            "or choose the JACK backend",
    "coremidi": "CoreMIDI could not be opened",
    "winmm": "Windows MIDI could not be opened",
}


class PortError(DeepBeatError):
    """A MIDI backend or port is missing, or a port went away."""


def default_backend(platform=sys.platform):
    """The backend of this platform: CoreMIDI on macOS, WinMM on Windows, ALSA elsewhere."""
    if platform == "darwin":
        return "coremidi"
    if platform.startswith("win"):
        return "winmm"
    return "alsa"


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C libraries' own messages (libjack prints several lines when no server runs)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def midi_client(kind, backend, name):
    """An rtmidi MidiIn/MidiOut on a backend; PortError saying what to install or start."""
    import rtmidi

    if backend not in _RTMIDI_APIS:
        raise PortError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    api = getattr(rtmidi, _RTMIDI_APIS[backend])
    if api not in rtmidi.get_compiled_api():
        built = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api()) or "none"
        raise PortError(f"MIDI backend {backend}: this python-rtmidi was built without it (it has: {built})")
    os.environ.setdefault("JACK_NO_START_SERVER", "1")  # report a missing server instead of spawning one
    try:
        with _quiet_stderr():
            return getattr(rtmidi, kind)(api, name)
    except Exception:  # rtmidi raises its own SystemError kinds when the backend cannot start
        raise PortError(f"MIDI backend {backend}: {_UNAVAILABLE[backend]}") from None


def list_ports(backend):
    """(input port names, output port names) of a backend."""
    inputs = midi_client("MidiIn", backend, "DeepBeat ports")
    outputs = midi_client("MidiOut", backend, "DeepBeat ports")
    try:
        return inputs.get_ports(), outputs.get_ports()
    finally:
        inputs.delete()
        outputs.delete()


def find_port(names, wanted, option):
    """The index of port `wanted` among `names`: exact name, else the only one containing it."""
    if wanted in names:
        return names.index(wanted)
    matches = [i for i, name in enumerate(names) if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    listed = "; ".join(names) or "none"
    if not matches:
        raise PortError(f"{option} {wanted!r}: no such port (available: {listed})")
    raise PortError(f"{option} {wanted!r} matches several ports: {'; '.join(names[i] for i in matches)}")


class RtMidiTransport:
    """Ports on an rtmidi backend: virtual `DeepBeat In`/`DeepBeat Out`, or named existing ports."""

    def __init__(self, backend, input_name=None, output_name=None, client_name="DeepBeat"):
        if backend == "winmm" and not (input_name and output_name):
            raise PortError(
                "Windows MIDI cannot create virtual ports: create two loopMIDI ports "
                f"({LOOPMIDI}) and name them as the input and output ports"
            )
        self.backend = backend
        self.input_name, self.output_name = input_name, output_name
        self.client_name = client_name
        self._in = self._out = self._probe = None
        self.description = ""

    def open(self, inbox):
        """Open both ports; every incoming message goes to `inbox` as (perf_counter time, bytes)."""
        self._in = midi_client("MidiIn", self.backend, self.client_name)
        self._out = midi_client("MidiOut", self.backend, self.client_name)
        self._in.ignore_types(sysex=True, timing=False, active_sense=True)
        put = inbox.put_nowait
        clock = time.perf_counter
        self._in.set_callback(lambda event, _data: put((clock(), event[0])))
        self.input_name = _open_port(self._in, self.input_name, "input port", DEFAULT_IN)
        self.output_name = _open_port(self._out, self.output_name, "output port", DEFAULT_OUT)
        if self.input_name or self.output_name:
            # a client of its own, so that looking for vanished ports never races the sender
            self._probe = (midi_client("MidiIn", self.backend, self.client_name + " probe"),
                           midi_client("MidiOut", self.backend, self.client_name + " probe"))
        self.description = (f"{self.backend}: in {self.input_name or repr(DEFAULT_IN)}, "
                            f"out {self.output_name or repr(DEFAULT_OUT)}")

    def send(self, data):
        self._out.send_message(data)

    def missing_port(self):
        """The name of a connected port that has disappeared, or None."""
        if self._probe is None:
            return None
        if self.input_name and self.input_name not in self._probe[0].get_ports():
            return self.input_name
        if self.output_name and self.output_name not in self._probe[1].get_ports():
            return self.output_name
        return None

    def close(self):
        for port in (self._in, self._out) + (self._probe or ()):
            if port is not None:
                port.close_port()
                port.delete()
        self._in = self._out = self._probe = None


def _open_port(port, wanted, option, own_name):
    """Connect an rtmidi port to the existing port `wanted` names, or open a virtual one;
    the full name of the port connected to (None for a virtual port)."""
    if not wanted:
        port.open_virtual_port(own_name)
        return None
    names = port.get_ports()
    index = find_port(names, wanted, option)
    port.open_port(index, own_name)
    return names[index]


class MemoryTransport:
    """An in-memory transport: `inject` plays the DAW, `sent` records (time, bytes) sent."""

    description = "memory"

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.sent = []
        self.opened = self.closed = False
        self._inbox = None

    def open(self, inbox):
        self._inbox = inbox
        self.opened = True

    def inject(self, data, arrival=None):
        self._inbox.put_nowait((self.clock() if arrival is None else arrival, list(data)))

    def send(self, data):
        self.sent.append((self.clock(), tuple(data)))

    def missing_port(self):
        return None

    def close(self):
        self.closed = True
