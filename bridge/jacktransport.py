"""The bridge's ports on JACK: one client with `DeepBeat In` and `DeepBeat Out` (through JACK-Client).

The process callback only moves prepared events: each incoming event goes to the inbox
stamped with its exact frame time (as perf_counter seconds); each outgoing message, queued
by `send` with the moment it belongs to, is written at that moment's frame plus one period
(the fixed output latency that lets every note keep its exact place), or at once when that
frame has passed. Its output latency (`output_latency_s`) is that period, the playback latency JACK
reports downstream, and one more period when the output feeds a client that also feeds its input
(the DAW sending the clock and hearing the notes: JACK breaks such a loop by a cycle). SysEx is
dropped at the port: JACK delivers each event whole, so an unterminated SysEx cannot make the input
deaf, as it does in rtmidi's JACK input.
"""
import collections
import time

from deepbeat.midibytes import SYSEX

from .jackclient import FrameClock, close_client, frames_after, open_client, playback_latency_frames
from .transport import DEFAULT_IN, DEFAULT_OUT, PortError, find_port

STALL_S = 1.0  # JACK not running our process callback for this long is said on screen
FLUSH_S = 0.5  # closing waits at most this long for the messages sent to be written


class JackTransport:
    """`DeepBeat In`/`DeepBeat Out` on one JACK client, or connected to named existing ports.

    `failure()` says when the JACK server has gone or a named port has vanished; `health()` says
    what keeps the output from being heard (connected to nothing, not run by JACK). Xruns and
    messages written late are counted.
    """

    backend = "jack"

    def __init__(self, input_name=None, output_name=None, client_name="DeepBeat"):
        self.input_name, self.output_name = input_name, output_name
        self.client_name = client_name
        self._ports = ""
        self.xruns = 0
        self.late = 0  # messages written later than their moment plus one period
        self._client = self._clock = self._in = self._out = None
        self._put = None
        self._outbox = collections.deque()  # (moment, bytes) from `send`; appended and popped atomically
        self._pending = collections.deque()  # (frame, bytes) waiting for their cycle, in send order
        self._last_frame = None  # frame of the newest message queued for writing: never written out of order
        self._cycles = 0
        self._seen_cycles = (0, time.monotonic())  # (cycle count, when the main thread last saw it change)
        self._shutdown = None  # the server's reason, once it has shut this client down

    @property
    def server_realtime(self):
        """Whether the JACK server runs real-time (None before the client is open)."""
        return None if self._client is None else self._client.realtime

    def open(self, inbox):
        """Open the client and its ports; every incoming message goes to `inbox` as (perf_counter time, bytes)."""
        self._client = client = open_client(self.client_name)
        try:
            self._in = client.midi_inports.register(DEFAULT_IN)
            self._out = client.midi_outports.register(DEFAULT_OUT)
            self._clock = FrameClock(client)
            self._put = inbox.put_nowait
            client.set_process_callback(self._process)
            client.set_xrun_callback(self._on_xrun)
            client.set_shutdown_callback(self._on_shutdown)
            client.activate()
            if self.input_name:
                sources = client.get_ports(is_midi=True, is_output=True)
                self.input_name = sources[find_port([p.name for p in sources], self.input_name, "input port")].name
                client.connect(self.input_name, self._in)
            if self.output_name:
                targets = client.get_ports(is_midi=True, is_input=True)
                self.output_name = targets[find_port([p.name for p in targets], self.output_name, "output port")].name
                client.connect(self._out, self.output_name)
        except Exception:
            self.close()
            raise
        self._ports = f"in {self.input_name or repr(DEFAULT_IN)}, out {self.output_name or repr(DEFAULT_OUT)}"

    @property
    def description(self):
        """The client and its ports, and the xruns so far (for the view)."""
        if self._client is None:
            return ""
        return f"jack: {self._client.name}, {self._ports}, xruns {self.xruns}"

    @property
    def output_latency_s(self):
        """Seconds from the moment a message belongs to until the clients connected to our output read it (the
        main thread's question; it changes with the connections)."""
        client = self._client
        if client is None:
            return 0.0
        period = client.blocksize
        frames = period + playback_latency_frames(self._out)
        feeding = {port.name.split(":")[0] for port in self._in.connections}
        if any(port.name.split(":")[0] in feeding for port in self._out.connections):
            frames += period  # the loop back to a client that runs before us
        return frames / client.samplerate

    def send(self, data, at=None):
        """Queue a message for the output, as belonging to perf_counter moment `at` (default now)."""
        self._outbox.append((time.perf_counter() if at is None else at, bytes(data)))

    # --- the process callback (JACK's real-time thread) ------------------------------

    def _process(self, frames):
        try:
            self._cycles += 1
            clock = self._clock
            clock.cycle()
            for offset, event in self._in.incoming_midi_events():
                data = bytes(event)
                if data and data[0] != SYSEX:
                    self._put((clock.time_of(clock.start + offset), list(data)))
            out = self._out
            out.clear_buffer()
            while self._outbox:
                moment, data = self._outbox.popleft()
                frame = clock.frame_of(moment) + frames
                if self._last_frame is not None and frames_after(frame, self._last_frame) < 0:
                    frame = self._last_frame
                self._last_frame = frame
                self._pending.append((frame, data))
            while self._pending and frames_after(self._pending[0][0], clock.start) < frames:
                frame, data = self._pending.popleft()
                offset = frames_after(frame, clock.start)
                if offset < 0:
                    self.late += 1
                out.write_midi_event(max(offset, 0), data)
        except Exception:  # never into JACK's thread; a message that cannot be written is dropped
            pass

    def _on_xrun(self, delay_us):
        self.xruns += 1

    def _on_shutdown(self, status, reason):
        self._shutdown = reason or "no reason given"

    # --- checks (main thread) ----------------------------------------------------------

    def failure(self):
        """A PortError when the JACK server has shut the client down or a named port has vanished, else None."""
        if self._shutdown is not None:
            return PortError(f"the JACK server stopped ({self._shutdown}); its notes could not be switched off")
        if self._client is None:
            return None
        names = {p.name for p in self._client.get_ports(is_midi=True)}
        for name in (self.input_name, self.output_name):
            if name and name not in names:
                return PortError(f"port {name!r} went away; stopped with every note off")
        return None

    def health(self):
        """Short warnings for the view about what keeps the music from being heard, and the xruns."""
        if self._client is None or self._shutdown is not None:
            return ()
        warnings = []
        cycles, seen_at = self._seen_cycles
        now = time.monotonic()
        if self._cycles != cycles:
            self._seen_cycles = (self._cycles, now)
        elif now - seen_at > STALL_S:
            warnings.append(f"JACK has not run DeepBeat for {now - seen_at:.0f} s: nothing goes in or out")
        if not self._out.connections:
            warnings.append(f"{DEFAULT_OUT} is connected to nothing: connect it to a drum rack to hear the answers")
        return tuple(warnings)

    def close(self):
        """Close the client once everything sent has been written (the last notes-off above all) and two more
        cycles have run, so that a client reading our output a cycle later gets it too; FLUSH_S at most."""
        if self._client is None:
            return
        deadline = time.monotonic() + FLUSH_S
        while (self._outbox or self._pending) and self._shutdown is None and time.monotonic() < deadline:
            time.sleep(0.002)
        written = self._cycles
        while self._cycles < written + 2 and self._shutdown is None and time.monotonic() < deadline:
            time.sleep(0.002)
        close_client(self._client)
        self._client = None
