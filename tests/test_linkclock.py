"""LinkClock's logic on a stand-in Link session driven by a simulated clock (the real session, over a loopback-only
network namespace, is in test_link_session.py)."""
import pytest

from deepbeat.bridge.linkclock import LinkClock, open_link
from deepbeat.bridge.live import clock_words
from deepbeat.bridge.tempofit import interval_of_bpm
from deepbeat.bridge.view import render
from deepbeat.errors import DeepBeatError

from test_session import BEAT, NOTE_ON, Rig, assert_notes, expected_notes, hits

CLOCK, START, STOP = (0xF8,), (0xFA,), (0xFC,)


class FakeLink:
    """A Link session as one peer sees it: a beat timeline (anchored at a beat and a time), tempo, start/stop."""

    def __init__(self, clock, tempo=120.0, beat=0.0, peers=0, playing=False):
        self.clock = clock
        self.tempo_now = tempo
        self.anchor = (beat, clock())
        self.num_peers, self.playing = peers, playing
        self.quantum, self.enabled, self.start_stop_sync_enabled = 1, False, False

    @property
    def beat(self):
        beat, at = self.anchor
        return beat + (self.clock() - at) * self.tempo_now / 60

    @property
    def tempo(self):
        return self.tempo_now

    @tempo.setter
    def tempo(self, bpm):  # as Link does: the beat now stays where it is
        self.anchor = (self.beat, self.clock())
        self.tempo_now = bpm

    def request_beat(self, beat):
        self.anchor = (beat, self.clock())

    def time_of(self, beat):
        """When the timeline reaches `beat` at the present tempo."""
        anchor_beat, at = self.anchor
        return at + (beat - anchor_beat) * 60 / self.tempo_now


def link_rig(**link):
    rig = Rig()
    rig.clock.now = 10.0
    fake = FakeLink(rig.clock, **link)
    rig.scheduler.master = LinkClock(93, fake, clock=rig.clock)
    return rig, fake


def test_it_joins_with_quantum_4_and_start_stop_sync():
    rig, fake = link_rig()
    assert (fake.enabled, fake.quantum, fake.start_stop_sync_enabled) == (True, 4, True)
    rig.scheduler.shutdown()
    assert not fake.enabled  # left the session


def test_alone_it_plays_at_once_on_its_own_timeline_and_answers_on_its_ticks():
    rig, fake = link_rig(beat=2.7, tempo=93)
    rig.scheduler.on_deadlines(rig.clock.now)
    interval = interval_of_bpm(93)
    times = [10.0 + k * interval for k in range(96 * 2)]
    rig.play(hits(times, BEAT, bar=0), until=times[-1] + interval / 2)
    assert rig.times_of(START) == [10.0]
    assert rig.times_of(CLOCK) == pytest.approx(times, abs=1e-9)
    assert_notes(rig.sent(NOTE_ON), expected_notes(times, BEAT, bar=1))
    assert clock_words(rig.scheduler.master) == "Link, 0 peers"
    fake.num_peers = 1
    master = rig.scheduler.master
    line = render(rig.session.view(), master.bpm, "memory", clock=clock_words(master))[1]
    assert line.startswith("  93.0 BPM (Link, 1 peer)")


def test_with_peers_it_starts_on_the_sessions_next_bar_line_and_stops_with_it():
    rig, fake = link_rig(beat=5.3, tempo=120, peers=1)
    rig.scheduler.on_deadlines(rig.clock.now)
    rig.advance(11.0)
    assert rig.transport.sent == []  # the session is stopped: so is the bridge
    fake.playing = True  # at 11.0 s, beat 7.3: the bar starts at beat 8
    rig.advance(13.0)
    ticks = rig.times_of(CLOCK)
    assert ticks[0] == pytest.approx(fake.time_of(8.0), abs=1e-9)
    assert ticks[24] == pytest.approx(fake.time_of(9.0), abs=1e-9)
    fake.playing = False
    rig.advance(13.1)
    assert rig.times_of(STOP)[0] - 13.0 <= 0.005 + 1e-9  # within a check period
    assert rig.transport.sent[-1][1] == (0xB9, 123, 0)  # every note off
    assert max(rig.times_of(CLOCK)) < 13.0


def test_a_tempo_change_moves_the_very_next_tick():
    rig, fake = link_rig(tempo=120)
    rig.scheduler.on_deadlines(rig.clock.now)
    rig.advance(11.0)
    fake.tempo = 140
    rig.advance(12.0)
    after = [t for t in rig.times_of(CLOCK) if t > 11.0]
    beats = [fake.beat - (fake.time_of(fake.beat) - t) * 140 / 60 for t in after]
    assert [b * 24 for b in beats] == pytest.approx([round(b * 24) for b in beats], abs=1e-6)  # on the ticks
    assert after[1] - after[0] == pytest.approx(interval_of_bpm(140))


def test_a_timeline_jumping_on_plays_on_from_there_without_a_burst_of_old_ticks():
    rig, fake = link_rig(tempo=120)
    rig.scheduler.on_deadlines(rig.clock.now)
    rig.advance(11.0)
    fake.request_beat(fake.beat + 3.0)  # joining a session three beats further on
    rig.advance(11.5)
    later = [t for t in rig.times_of(CLOCK) if t > 11.0]
    assert len(later) == pytest.approx(0.5 / interval_of_bpm(120), abs=2)


def test_a_missing_aalink_is_one_line_saying_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_aalink(name, *args, **kwargs):
        if name == "aalink":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_aalink)
    with pytest.raises(DeepBeatError, match=r"needs the aalink package: pip install 'deepbeat\[link\]'$"):
        open_link(120)
