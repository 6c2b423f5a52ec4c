"""The rtmidi transport's probe (issue 14 items 1 and 13): an output that delivers nothing and an input that hears
nothing are said on screen, and on rtmidi's JACK backend the probe's complete SysEx ends an unterminated one."""
import queue

import pytest

from deepbeat.bridge import transport
from deepbeat.bridge.transport import SYSEX_RESET, RtMidiTransport

ACTIVE_SENSING = [0xFE]


class FakePort:
    """An rtmidi MidiIn or MidiOut on a MIDI system with our two virtual ports."""

    PORTS = {"MidiIn": ["Drums:out", "DeepBeat:DeepBeat Out"], "MidiOut": ["Synth:in", "DeepBeat-01:DeepBeat In"]}

    def __init__(self, kind, name):
        self.kind, self.name = kind, name
        self.open = None
        self.callback = None
        self.sent = []

    def ignore_types(self, **kinds):
        pass

    def set_callback(self, callback):
        self.callback = callback

    def get_ports(self):
        return self.PORTS[self.kind]

    def open_virtual_port(self, name):
        self.open = name

    def open_port(self, index, name):
        self.open = self.PORTS[self.kind][index]

    def is_port_open(self):
        return self.open is not None

    def send_message(self, message):
        self.sent.append(list(message))

    def close_port(self):
        self.open = None

    def delete(self):
        pass


@pytest.fixture
def opened(monkeypatch):
    def make(backend):
        ports = []

        def midi_client(kind, backend, name):
            ports.append(FakePort(kind, name))
            return ports[-1]

        monkeypatch.setattr(transport, "midi_client", midi_client)
        bridge = RtMidiTransport(backend)
        bridge.open(queue.Queue())
        _, ours_in, listen, play = ports  # in the order they are opened
        assert (listen.open, play.open) == ("DeepBeat:DeepBeat Out", "DeepBeat-01:DeepBeat In")
        return bridge, ours_in, listen, play
    return make


def test_an_output_that_delivers_nothing_is_said(opened):
    bridge, _, listen, _ = opened("alsa")
    for check in range(3):
        for _ in range(5):
            bridge.send([0x99, 36, 100])
        warnings = bridge.health()
    assert any("DeepBeat Out delivers nothing (5 messages sent since the last check arrived nowhere)" in w
               for w in warnings)
    bridge.send([0x99, 36, 100])
    listen.callback(([0x99, 36, 100], 0.0), None)  # the probe hears it: delivered
    assert not any("delivers nothing" in w for w in bridge.health())


def test_an_input_that_hears_not_even_the_probe_is_said(opened):
    bridge, ours_in, _, play = opened("alsa")
    assert [bridge.health() for _ in range(3)][-1] == (
        "DeepBeat In hears nothing, not even the bridge's own probe: restart the bridge, or use the JACK backend",)
    assert play.sent == [ACTIVE_SENSING] * 3  # no SysEx on ALSA, whose input is not made deaf by one
    ours_in.callback((ACTIVE_SENSING, 0.0), None)
    assert bridge.health() == ()


def test_on_jack_the_probe_ends_an_unterminated_sysex_every_check(opened):
    bridge, ours_in, _, play = opened("jack-rtmidi")
    ours_in.callback((ACTIVE_SENSING, 0.0), None)
    bridge.health()
    assert play.sent == [SYSEX_RESET, ACTIVE_SENSING]
    assert SYSEX_RESET[0] == 0xF0 and SYSEX_RESET[-1] == 0xF7


def test_a_missing_jack_client_package_is_one_line_saying_what_to_install(monkeypatch, capsys):
    import sys

    from deepbeat.cli import main

    monkeypatch.setitem(sys.modules, "jack", None)  # as if JACK-Client were not installed
    assert main(["ports", "--backend", "jack"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "needs the JACK-Client package: pip install 'deepbeat[jack]'" in error
