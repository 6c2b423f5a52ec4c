"""MIDI transports: real ports (JACK through JACK-Client, or any system through python-rtmidi), and an
in-memory one for tests.

A transport delivers each incoming message to an inbox queue as (arrival time, bytes), sends
outgoing messages (each with the moment it belongs to), says how long after that moment its messages
reach whoever reads them (`output_latency_s`, 0 when it cannot tell), says when it can no longer work
(`failure`) and what keeps its music from being heard (`health`). Input callbacks run on the
MIDI system's thread (JACK's real-time thread): they only timestamp and enqueue.
"""
import contextlib
import os
import sys
import time

from deepbeat.errors import DeepBeatError
from deepbeat.midibytes import ACTIVE_SENSING, SYSEX, SYSEX_END

# "jack" is one JACK-Client client with both ports (jacktransport.py); "jack-rtmidi" is rtmidi's JACK
# backend, a client per port, kept as a fallback.
BACKENDS = ("alsa", "jack", "jack-rtmidi", "coremidi", "winmm")
_RTMIDI_APIS = {"alsa": "API_LINUX_ALSA", "jack-rtmidi": "API_UNIX_JACK", "coremidi": "API_MACOSX_CORE",
                "winmm": "API_WINDOWS_MM"}
PROBED = ("alsa", "jack-rtmidi")  # rtmidi backends whose ports a probe client can watch
DEFAULT_IN, DEFAULT_OUT = "DeepBeat In", "DeepBeat Out"
LOOPMIDI = "https://www.tobias-erichsen.de/software/loopmidi.html"
UNAVAILABLE = {
    "jack": "no JACK server is running: start one (e.g. `jackd -d alsa`, QjackCtl, or PipeWire's pipewire-jack) "
            "or choose another MIDI backend",
    "alsa": "the ALSA sequencer is not available (/dev/snd/seq): load it with `sudo modprobe snd-seq` "
            "or choose the JACK backend",
    "coremidi": "CoreMIDI could not be opened",
    "winmm": "Windows MIDI could not be opened",
}
UNAVAILABLE["jack-rtmidi"] = UNAVAILABLE["jack"]
# rtmidi's JACK input treats every event after an unterminated SysEx as its continuation, until one ends in
# F7: the probe sends this complete SysEx (non-commercial ID 7D) to the input every check, which ends that.
SYSEX_RESET = [SYSEX, 0x7D, SYSEX_END]
DEAF_CHECKS = 3  # probe checks in a row the input heard nothing of the probe before it is said on screen


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
def quiet_stderr():
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
        with quiet_stderr():
            return getattr(rtmidi, kind)(api, name)
    except Exception:  # rtmidi raises its own SystemError kinds when the backend cannot start
        raise PortError(f"MIDI backend {backend}: {UNAVAILABLE[backend]}") from None


def list_ports(backend):
    """(input port names, output port names) of a backend."""
    if backend == "jack":
        from .jackclient import close_client, open_client

        client = open_client("DeepBeat ports")
        try:
            return ([p.name for p in client.get_ports(is_midi=True, is_output=True)],
                    [p.name for p in client.get_ports(is_midi=True, is_input=True)])
        finally:
            close_client(client)
    inputs = midi_client("MidiIn", backend, "DeepBeat ports")
    outputs = midi_client("MidiOut", backend, "DeepBeat ports")
    try:
        return inputs.get_ports(), outputs.get_ports()
    finally:
        inputs.delete()
        outputs.delete()


def make_transport(backend, input_name=None, output_name=None, client_name="DeepBeat"):
    """The transport of a backend, not yet open."""
    if backend == "jack":
        from .jacktransport import JackTransport

        return JackTransport(input_name, output_name, client_name)
    return RtMidiTransport(backend, input_name, output_name, client_name)


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
    """Ports on an rtmidi backend: virtual `DeepBeat In`/`DeepBeat Out`, or named existing ports.

    On ALSA and rtmidi's JACK backend a probe client listens to `DeepBeat Out` and plays into
    `DeepBeat In` once per check: an output that delivers nothing and an input that hears nothing
    are said on screen, and on JACK the probe's complete SysEx ends an unterminated one that would
    leave rtmidi's input deaf (within a check).
    """

    output_latency_s = 0.0  # rtmidi sends at once and cannot tell what lies beyond the port

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
        self._inbox = None
        self.description = ""
        self.sent = self.sensed = 0  # messages sent; Active Sensing messages heard (the probe's among them)
        self._probe_heard = 0  # of our output, by the probe
        self._checked = (0, 0, 0)  # (sent, probe heard, sensed) at the previous check
        self._silent_checks = self._deaf_checks = 0

    @property
    def server_realtime(self):
        """On rtmidi's JACK backend, whether the JACK server runs real-time (None when it cannot be told)."""
        if self.backend != "jack-rtmidi":
            return None
        from .jackclient import server_realtime
        return server_realtime()

    def open(self, inbox):
        """Open both ports; every incoming message goes to `inbox` as (perf_counter time, bytes)."""
        self._inbox = inbox
        self._out = midi_client("MidiOut", self.backend, self.client_name)
        self._open_input()
        self.output_name = _open_port(self._out, self.output_name, "output port", DEFAULT_OUT)
        if self.backend in PROBED or self.input_name or self.output_name:
            # a client of its own, so that watching the ports never races the sender
            self._probe = (midi_client("MidiIn", self.backend, self.client_name + " probe"),
                           midi_client("MidiOut", self.backend, self.client_name + " probe"))
            if self.backend in PROBED:
                self._connect_probe()
        self.description = (f"{self.backend}: in {self.input_name or repr(DEFAULT_IN)}, "
                            f"out {self.output_name or repr(DEFAULT_OUT)}")

    def _open_input(self):
        self._in = midi_client("MidiIn", self.backend, self.client_name)
        self._in.ignore_types(sysex=True, timing=False, active_sense=False)
        put, clock = self._inbox.put_nowait, time.perf_counter

        def received(event, _data):
            put((clock(), event[0]))
            if event[0][0] == ACTIVE_SENSING:
                self.sensed += 1

        self._in.set_callback(received)
        self.input_name = _open_port(self._in, self.input_name, "input port", DEFAULT_IN)

    def _connect_probe(self):
        """Connect the probe to our own ports (each when it is found once among the probe's ports)."""
        listen, play = self._probe
        own_out = _own_port(listen.get_ports(), self.output_name or DEFAULT_OUT, self.client_name)
        if own_out is not None:
            listen.ignore_types(sysex=True, timing=False, active_sense=False)
            listen.set_callback(lambda event, _data: self._heard_by_probe())
            listen.open_port(own_out, "listens")
        own_in = _own_port(play.get_ports(), self.input_name or DEFAULT_IN, self.client_name)
        if own_in is not None:
            play.open_port(own_in, "plays")

    def _heard_by_probe(self):
        self._probe_heard += 1

    def send(self, data, at=None):
        """Send `data` now (rtmidi has no timed sending: `at`, the moment it belongs to, is not used)."""
        self._out.send_message(data)
        self.sent += 1

    def failure(self):
        """A PortError when a connected port has disappeared, else None."""
        if self._probe is None:
            return None
        if self.input_name and self.input_name not in self._probe[0].get_ports():
            return PortError(f"port {self.input_name!r} went away; stopped with every note off")
        if self.output_name and self.output_name not in self._probe[1].get_ports():
            return PortError(f"port {self.output_name!r} went away; stopped with every note off")
        return None

    def health(self):
        """Warnings for the view from the probe: an output delivering nothing, an input hearing nothing. Called
        once per check; plays the probe's Active Sensing (and, on JACK, a complete SysEx) into the input."""
        if self._probe is None:
            return ()
        listen, play = self._probe
        warnings = []
        sent, heard, sensed = self.sent, self._probe_heard, self.sensed
        sent_before, heard_before, sensed_before = self._checked
        self._checked = (sent, heard, sensed)
        silent = listen.is_port_open() and sent > sent_before and heard == heard_before
        self._silent_checks = self._silent_checks + 1 if silent else 0
        if self._silent_checks >= 2:
            warnings.append(f"{DEFAULT_OUT} delivers nothing ({sent - sent_before} messages sent since the last "
                            "check arrived nowhere): restart the bridge, or use the JACK backend")
        if play.is_port_open():
            self._deaf_checks = self._deaf_checks + 1 if sensed == sensed_before else 0
            if self._deaf_checks >= DEAF_CHECKS:
                warnings.append(f"{DEFAULT_IN} hears nothing, not even the bridge's own probe: restart the bridge, "
                                "or use the JACK backend")
            if self.backend == "jack-rtmidi":
                play.send_message(SYSEX_RESET)
            play.send_message([ACTIVE_SENSING])
        return tuple(warnings)

    def close(self):
        for port in (self._in, self._out) + (self._probe or ()):
            if port is not None:
                port.close_port()
                port.delete()
        self._in = self._out = self._probe = None


def _own_port(names, port, client_name):
    """The index of our port `port` (a virtual port's own name, or a connected port's full name) among a
    probe's `names`, or None when it is not there exactly once."""
    if ":" in port and port in names:
        return names.index(port)
    ours = [i for i, name in enumerate(names) if name.startswith(client_name) and f":{port}" in name]
    return ours[0] if len(ours) == 1 else None


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
    """An in-memory transport: `inject` plays the DAW, `sent` records (time, bytes) sent, the time being
    the moment each message belongs to (when it was sent, unless the sender said otherwise)."""

    description = "memory"
    output_latency_s = 0.0  # a sent message is where it belongs

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

    def send(self, data, at=None):
        self.sent.append((self.clock() if at is None else at, tuple(data)))

    def failure(self):
        return None

    def health(self):
        return ()

    def close(self):
        self.closed = True
