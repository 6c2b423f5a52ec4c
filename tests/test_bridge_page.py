"""`deepbeat bridge --web`: the live page of a real bridge (the tiny model v2, real threads) in headless Chromium,
over the in-memory transport and, as its own process, over JACK.

The page must show what the bridge hears and answers, steer it (a click on a drum row locks it in the bridge),
show a CC moved on a controller, and save an answer as the notes the bridge played.
"""
import os
import queue
import re
import threading
import time
from pathlib import Path

import pytest

from deepbeat.bridge.assembly import BridgeOptions, build_bridge
from deepbeat.bridge.controls import DEFAULT_CCS
from deepbeat.bridge.page import serve_page
from deepbeat.bridge.simdaw import BACK_BEAT, SimulatedDaw, clock_script, start_bridge_process, stop_bridge_process
from deepbeat.bridge.transport import MemoryTransport, PortError
from deepbeat.drums import class_index
from deepbeat.midibytes import DRUM_CHANNEL, note_on
from deepbeat.notemaps import GM
from deepbeat.runtime.steering import SWING, Feel
from deepbeat.web.live import snapshot_problems

from conftest import TINY_MODEL_V2
from test_web_browser import browser, chromium, page, shown_grid, wait_for, wait_until  # noqa: F401 (fixtures)
from test_web_studio import assert_same_notes, midi_notes, shown_notes

BPM = 240  # a bar a second


@pytest.fixture
def running_bridge():
    """A bridge (clock master at 240 BPM, continuous, kick and snare played into its first bar) with its page."""
    inbox, transport = queue.Queue(), MemoryTransport()
    options = BridgeOptions(model=str(TINY_MODEL_V2), mode="continuous", seed=3, master_bpm=BPM, realtime=False,
                            feel=Feel(swing=58.0))
    bridge = build_bridge(options, transport, None, inbox)
    server = serve_page(bridge, port=0)
    stop = threading.Event()
    runner = threading.Thread(target=bridge.run, args=(stop,))
    runner.start()
    while not transport.opened:
        time.sleep(0.01)
    for beat in range(4):  # bar 0: kick on the beats, snare on 2 and 4
        transport.inject(note_on(DRUM_CHANNEL, 38 if beat % 2 else 36, 100))
        time.sleep(60 / BPM)
    yield bridge, transport, server
    stop.set()
    runner.join(10)
    server.close()


def test_the_page_shows_the_bridge_steers_it_and_saves_what_it_played(page, running_bridge):  # noqa: F811
    bridge, transport, server = running_bridge
    assert snapshot_problems(bridge.page.snapshot()) == []
    assert bridge.page.snapshot()["clock"] | {"running": True} == {"source": "internal", "running": True, "bpm": BPM,
                                                                   "peers": None}
    page.goto(server.url)
    wait_until(page, "() => document.querySelector('#chips .state')?.innerText === 'answering'")
    heard = shown_grid(page, "#heard")["velocities"]
    assert any(row[class_index("kick")] for row in heard) and any(row[class_index("snare")] for row in heard)

    page.click("#answer .label[data-drum='snare']")  # lock the snare from the page
    deadline = time.monotonic() + 5
    while class_index("snare") not in bridge.scheduler.session.steering.locks and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bridge.scheduler.session.steering.locks == {class_index("snare")}
    wait_for(page, "#answer .label[data-drum='snare']", "label => label.classList.contains('locked')")

    # not the first answer: its bar is generated as it starts, so notes placed before their tick can go out late
    wait_until(page, "() => document.querySelectorAll('#history .item').length >= 3")
    item = bridge.page.snapshot()["history"][1]
    assert item["bar"] >= 2
    with page.expect_download() as download:
        page.click(f"#history .item[data-id='{item['id']}'] >> a.save")
    saved = midi_notes(Path(download.value.path()).read_bytes())
    assert_same_notes(saved, shown_notes(item["grid"]))
    # ... and those are the notes the bridge sent in that bar, where it sent them (swing and the model's timing)
    step_s, start = 15 / BPM, bridge.scheduler.master.start_time
    sent = [((at - start) / step_s - item["bar"] * 16, message[1], message[2]) for at, message in transport.sent
            if message[0] == 0x90 | DRUM_CHANNEL and message[2]]
    grid = item["grid"]
    shown = [(step, step + grid["offsets"][step][drum], GM.note_of(drum), velocity)
             for step, row in enumerate(grid["velocities"]) for drum, velocity in enumerate(row) if velocity]
    missed = {step - item["bar"] * 16 for step in bridge.scheduler.stats.missed}  # a loaded machine may miss some
    assert len(missed) < 8
    for step, position, note, velocity in shown:
        if step in missed:
            continue
        # at its place; one placed before its tick may go out late (its beat generated just in time), never
        # after the tick
        latest = max(position, step) + 0.01
        assert any(n == note and v == velocity and position - 0.01 < p < latest for p, n, v in sent), (position, note)

    transport.inject([0xB0 | DRUM_CHANNEL, DEFAULT_CCS["swing"], 127])  # a controller's swing knob, all the way
    wait_for(page, "#control-swing", f"slider => +slider.value === {SWING.high}")


def test_the_bridge_process_serves_its_page_over_jack(page):  # noqa: F811
    name = f"DeepBeatPage{os.getpid()}"
    try:
        daw = SimulatedDaw(name)
    except PortError as error:
        if os.environ.get("DEEPBEAT_REQUIRE_JACK") == "1":
            pytest.fail(f"DEEPBEAT_REQUIRE_JACK=1 but JACK is unreachable: {error}")
        pytest.skip(f"no JACK server reachable: {error}")
    process = start_bridge_process(name, TINY_MODEL_V2, ["--mode", "continuous", "--quiet", "--web", "--web-port", "0"])
    try:
        url = None
        while url is None and process.poll() is None:
            match = re.search(r"open (http://\S+)", process.stdout.readline())
            url = match and match.group(1)
        assert url, process.stderr.read()
        assert daw.connect(timeout=60)
        page.goto(url)
        events, _ = clock_script(((4, 120),), {0: BACK_BEAT})
        transcript = daw.perform(events, tail=0.3)
        heard = shown_grid(page, "#heard")["velocities"]
        assert any(row[class_index("kick")] for row in heard)
        wait_until(page, "() => document.querySelectorAll('#history .item').length >= 1")
        assert transcript.note_ons()
    finally:
        code, _, err = stop_bridge_process(process)
        daw.close()
    assert code == 0, err
