"""Both pages in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright for Python.

Skips when Chromium or Playwright is missing, unless DEEPBEAT_REQUIRE_BROWSER=1, when it fails. With
DEEPBEAT_SCREENSHOTS=FOLDER the tests that reach a page's showcase state save it there (studio.png,
live.png; the README's are made with `DEEPBEAT_SCREENSHOTS=docs/images`).
"""
import os
import time
from pathlib import Path

import numpy as np
import pytest

from deepbeat.grid import STEPS_PER_BAR
from deepbeat.primer import parse_step_text, primer_from_midi
from deepbeat.runtime.generate import continue_primer
from deepbeat.runtime.steering import LOCK_GROUPS, PRESETS, Feel, Steering
from deepbeat.runtime.stepmodel import StepModel
from deepbeat.web.browser import chromium_page, find_chromium
from deepbeat.web.live import serve_live
from deepbeat.web.studio import Studio, serve_studio

from test_web_live import FakeSession, answer_grid
from test_web_studio import BACK_BEAT, assert_same_notes, midi_notes, shown_notes

VIEWPORT = {"width": 1440, "height": 1000}
WAIT_MS = 15_000


def unavailable(reason):
    if os.environ.get("DEEPBEAT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DEEPBEAT_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium():
    executable = find_chromium()
    if executable is None:
        unavailable("no Chromium on PATH (Debian: apt-get install chromium)")
    return executable


@pytest.fixture(scope="module")
def browser(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")
    root = getattr(os, "geteuid", lambda: 1)() == 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"] if root else [])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page; a script error on it fails the test."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def screenshot(page, name):
    folder = os.environ.get("DEEPBEAT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def shown_grid(page, container):
    """The grid a container shows, read back from its cells: {"velocities", "offsets"} per step and drum."""
    cells = page.eval_on_selector_all(f"{container} .cell", "cells => cells.map(c => [+c.dataset.step, "
                                      "+c.dataset.drum, +c.dataset.v, +c.dataset.o])")
    steps = max(step for step, *_ in cells) + 1
    velocities, offsets = np.zeros((steps, 9), int), np.zeros((steps, 9))
    for step, drum, velocity, offset in cells:
        velocities[step, drum], offsets[step, drum] = velocity, offset
    return {"velocities": velocities.tolist(), "offsets": offsets.tolist()}


def set_slider(page, name, value):
    page.eval_on_selector(f"#control-{name}", "(input, value) => { input.value = value; "
                          "input.dispatchEvent(new Event('input')); input.dispatchEvent(new Event('change')); }", value)


def wait_until(page, condition, argument=None):
    page.wait_for_function(condition, arg=argument, timeout=WAIT_MS)


def wait_for(page, selector, condition):
    """Wait until `condition` (a JavaScript function of an element) holds for the element at `selector`."""
    wait_until(page, f"([selector]) => {{ const node = document.querySelector(selector); "
               f"return !!node && ({condition})(node); }}", [selector])


# --- the studio page ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studio_server():
    studio = Studio(StepModel.load())  # the shipped model: what a producer gets
    server = serve_studio(studio, port=0).start()
    yield server
    server.close()
    studio.close()


@pytest.fixture
def studio_page(page, studio_server):
    page.goto(studio_server.url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def test_the_studio_page_needs_the_token_for_its_data(page, studio_server):
    page.goto(studio_server.url.split("?")[0])  # the page itself loads without the token ...
    page.wait_for_selector("#error:not([hidden])")  # ... but its API calls are refused, and it says so
    assert "token" in page.inner_text("#error")


def test_primer_cells_cycle_and_drum_names_lock(studio_page):
    cell = "#primer-grid .cell[data-step='1'][data-drum='0']"
    seen = []
    for _ in range(4):
        studio_page.click(cell)
        seen.append(int(studio_page.get_attribute(cell, "data-v")))
    assert seen == [40, 80, 110, 0]  # ghost, hit, accent, off
    studio_page.click("#primer-grid .label[data-drum='open_hihat']")
    locked = studio_page.eval_on_selector_all("#primer-grid .label.locked", "labels => labels.map(l => l.dataset.drum)")
    assert locked == list(LOCK_GROUPS["hats"])  # a drum locks with its group
    studio_page.click("#primer-grid .label[data-drum='closed_hihat']")
    assert studio_page.query_selector_all("#primer-grid .label.locked") == []


def test_the_studio_generates_plays_and_downloads_what_it_shows(studio_page):
    studio_page.fill("#primer-text", BACK_BEAT)
    studio_page.click("#read-text")
    studio_page.fill("#bars", "2")
    studio_page.fill("#outputs", "2")
    studio_page.fill("#seed", "7")
    set_slider(studio_page, "swing", 60)
    studio_page.click("#generate")
    studio_page.wait_for_selector(".beat-card >> nth=1")
    assert "seed 7" in studio_page.inner_text("#status")
    for index in range(2):
        card = f".beat-card >> nth={index}"
        grid = shown_grid(studio_page, f".beat-card:nth-child({index + 1})")
        assert len(grid["velocities"]) == 3 * STEPS_PER_BAR
        with studio_page.expect_download() as download:
            studio_page.click(f"{card} >> a.download")
        data = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename.endswith(f"_{index + 1:02d}.mid")
        assert_same_notes(midi_notes(data), shown_notes(grid))
        studio_page.click(f"{card} >> button.play")
        hits = int(np.count_nonzero(grid["velocities"]))
        wait_until(studio_page, "([n, hits]) => document.querySelectorAll('.beat-card')[n].dataset.scheduled == hits",
                   [index, hits])
    studio_page.click(".beat-card >> nth=1 >> button.play")  # the playing one stops
    assert studio_page.query_selector_all(".play.playing") == []


def test_locking_kick_and_snare_keeps_those_rows(studio_page):
    studio_page.fill("#primer-text", BACK_BEAT)
    studio_page.click("#read-text")
    studio_page.select_option("#control-preset", "boom-bap")
    for drum in ("kick", "snare"):
        studio_page.click(f"#primer-grid .label[data-drum='{drum}']")
    studio_page.fill("#bpm", "90")
    studio_page.fill("#bars", "4")
    studio_page.fill("#outputs", "3")
    studio_page.fill("#seed", "7")
    studio_page.click("#generate")
    studio_page.wait_for_selector(".beat-card >> nth=2")
    primer = parse_step_text(BACK_BEAT).velocities > 0
    for index in range(3):
        hits = np.array(shown_grid(studio_page, f".beat-card:nth-child({index + 1})")["velocities"]) > 0
        bars = hits.reshape(-1, STEPS_PER_BAR, 9)
        assert (bars[:, :, :2] == primer[None, :, :2]).all()
    assert float(studio_page.input_value("#control-swing")) == PRESETS["boom-bap"].values["swing"]
    screenshot(studio_page, "studio.png")


def test_a_dropped_midi_file_shows_as_the_primer(studio_page, hiphop_midi):
    studio_page.select_option("#primer-bars", "2")
    studio_page.set_input_files("#midi-file", str(hiphop_midi))
    wait_until(studio_page, "() => document.querySelectorAll('#primer-grid .cell').length === 2 * 16 * 9")
    primer, _ = primer_from_midi(hiphop_midi, 2)
    assert shown_grid(studio_page, "#primer-grid")["velocities"] == primer.velocities.tolist()
    assert studio_page.input_value("#bpm") == "92"


def test_the_studio_shows_a_refused_request(studio_page):
    studio_page.fill("#bpm", "1000")
    studio_page.click("#generate")
    studio_page.wait_for_selector("#error:not([hidden])")
    assert studio_page.inner_text("#error") == "tempo 1000 BPM is outside 20-400 BPM"
    studio_page.fill("#bpm", "90")
    studio_page.click("#generate")
    studio_page.wait_for_selector("#error", state="hidden")


# --- the live page -----------------------------------------------------------------------------------------


@pytest.fixture
def session():
    return FakeSession()


@pytest.fixture
def live_page(page, session):
    server = serve_live(session, port=0)
    page.goto(server.url)
    wait_until(page, "() => +(document.body.dataset.snapshots || 0) >= 1")
    page.server = server
    yield page
    server.close()


def test_the_live_grid_follows_notes_heard_and_answered(live_page, session):
    session.hear(0, 0, 110)
    session.hear(4, 1, 90, offset=0.12)
    wait_for(live_page, "#heard .cell[data-step='4'][data-drum='1']", "cell => cell.dataset.v == 90")
    assert float(live_page.get_attribute("#heard .cell[data-step='4'][data-drum='1']", "data-o")) == 0.12
    assert live_page.inner_text("#chips .state") == "listening"
    session.answer_with(answer_grid(1))
    session.play(5)
    column = "#answer .cell[data-step='5'][data-drum='0']"
    wait_for(live_page, "#answer .playhead", f"p => !p.hidden && p.offsetLeft === document.querySelector(\"{column}\")"
             ".offsetLeft")  # on step 5 of the answer
    assert shown_grid(live_page, "#answer")["velocities"] == answer_grid(1).velocities.tolist()
    assert len(live_page.query_selector_all("#history .item")) == 1
    assert live_page.eval_on_selector("#heard .playhead", "p => p.hidden")


def test_clicking_a_drum_row_toggles_its_lock_in_the_session(live_page, session):
    live_page.click("#heard .label[data-drum='snare']")
    wait_for(live_page, "#heard .label[data-drum='snare']", "label => label.classList.contains('locked')")
    assert session.applied == [("lock", "snare")] and session.steering.locks == {1}
    live_page.click("#answer .label[data-drum='ride']")
    wait_for(live_page, "#answer .label[data-drum='crash']", "label => label.classList.contains('locked')")
    assert session.applied[-1] == ("lock", "cymbals")


def test_a_change_made_elsewhere_shows_on_the_page(live_page, session):
    session.turn("temperature", 1.37)
    session.turn("swing", 58.5)
    wait_for(live_page, "#control-swing", "slider => slider.value === '58.5'")  # the later change
    assert live_page.inner_text("[data-control='temperature'] output") == "1.37"
    session.apply("hold", True)
    session.apply("mode", "continuous")
    wait_for(live_page, "#mode", "menu => menu.value === 'continuous'")  # the later change
    assert "on" in live_page.get_attribute("#hold", "class")


def test_the_page_sets_every_kind_of_control(live_page, session):
    set_slider(live_page, "density", 0.4)
    live_page.select_option("#control-fills", label="phrase")
    live_page.select_option("#control-style", "jazz")
    live_page.select_option("#control-preset", "trap")
    live_page.select_option("#mode", "continuous")
    for button in ("hold", "reprime", "fill", "panic"):
        live_page.click(f"#{button}")
    sent = ["density", "fills", "style", "preset", "mode", "hold", "reprime", "fill", "panic"]
    while len(session.applied) < len(sent):
        live_page.wait_for_timeout(20)
    assert [name for name, _ in session.applied] == sent  # one at a time, in the order set
    assert session.applied[0] == ("density", 0.4) and session.steering.style == "hiphop"  # trap's style, after jazz


def test_history_items_save_as_midi_and_loop(live_page, session):
    session.turn("swing", 62.0)
    for seed in (1, 2):
        session.answer_with(answer_grid(seed))
    wait_until(live_page, "() => document.querySelectorAll('#history .item').length === 2")
    item = session.snapshot()["history"][1]  # the older one, shown second
    with live_page.expect_download() as download:
        live_page.click("#history .item[data-id='1'] >> a.save")
    assert download.value.suggested_filename == "deepbeat-bar2-answer1.mid"
    assert_same_notes(midi_notes(Path(download.value.path()).read_bytes()), shown_notes(item["grid"]))
    live_page.click("#history .item[data-id='1'] >> button.loop")
    wait_for(live_page, "#history .item[data-id='1']", "item => item.classList.contains('looping')")
    live_page.click("#history .item[data-id='1'] >> button.loop")
    wait_until(live_page, "() => !document.querySelector('#history .looping')")
    assert session.applied[-2:] == [("loop", 1), ("loop", None)]


def test_the_live_page_mid_session(page, hiphop_midi):
    """The showcase: a drummer's bar heard, answered with the shipped model's bars, kick and snare locked."""
    model = StepModel.load()
    primer, _ = primer_from_midi(hiphop_midi, 1)
    steering, feel = PRESETS["boom-bap"].apply(Steering(), Feel())
    steering = steering.with_changes(locks=frozenset({0, 1}))
    beats = continue_primer(model, primer, 4 * STEPS_PER_BAR, steering, num_outputs=1, seed=4)[0]
    session = FakeSession(bpm=primer.bpm)
    session.steering, session.feel = steering, feel
    for bar in range(1, 5):
        session.answer_with(beats.slice(bar * STEPS_PER_BAR, (bar + 1) * STEPS_PER_BAR))
    session.heard = primer
    session.play(9)
    server = serve_live(session, port=0)
    try:
        page.goto(server.url)
        page.wait_for_selector("#history .item >> nth=3")
        assert page.inner_text("#chips .state") == "answering"
        screenshot(page, "live.png")
    finally:
        server.close()


# --- the benchmark's hook ----------------------------------------------------------------------------------


def test_a_chromium_page_opened_for_the_benchmark_reads_the_stream(chromium, session):
    server = serve_live(session, port=0)
    try:
        with chromium_page(server.url, chromium) as process:
            deadline, step = time.monotonic() + 60, 0
            while server.stats()["snapshots_sent"] < 3 and process.poll() is None and time.monotonic() < deadline:
                session.hear(step % 16, 2, 60)  # a new snapshot every 50 ms
                step += 1
                time.sleep(0.05)
            ended = process.poll()
        assert ended is None, f"Chromium ended early with exit code {ended}"
        assert server.stats()["snapshots_sent"] >= 3, server.stats()
    finally:
        server.close()
