// The live page: follows the session's snapshots (an event stream) and sends every control back. What the
// page shows always comes from the latest snapshot, so a change made elsewhere (a CC) shows here too.

import { $, element, getJSON, guarded, postJSON, withToken } from "./api.js";
import { ControlPanel } from "./controls.js";
import { DrumGridView, lockGroupOf } from "./grid.js";

const setup = await guarded(() => getJSON("/api/live/setup"));
const pending = new Map(); // control -> value not sent yet, in the order asked
let sending = false;
let latest = null;
let historyKey = null;
let snapshots = 0;

/** Send a control to the session. One request at a time, in the order asked: a value asked for while one is
 *  on its way replaces any older value of the same control still waiting (a dragged slider sends as fast as
 *  the session takes it, and its last value arrives last). */
async function send(name, value) {
  pending.delete(name);
  pending.set(name, value);
  if (sending) return;
  sending = true;
  while (pending.size) {
    const [next, nextValue] = pending.entries().next().value;
    pending.delete(next);
    await guarded(() => postJSON("/api/live/control", { name: next, value: nextValue }));
  }
  sending = false;
}

let heardView;
let answerView;
let controls;

function build() {
  const toggleLock = (drum) => send("lock", lockGroupOf(setup, setup.drums[drum]));
  heardView = new DrumGridView($("heard"), setup, { onLabel: toggleLock });
  answerView = new DrumGridView($("answer"), setup, { onLabel: toggleLock });
  controls = new ControlPanel($("controls"), setup, {
    onChange: (name, value) => { controls.showPreset(""); send(name, value); },
    onPreset: (name) => send("preset", name),
  });
  document.title = setup.title;
  for (const mode of setup.modes) $("mode").append(new Option(mode, mode));
  $("mode").addEventListener("change", () => send("mode", $("mode").value));
  $("hold").addEventListener("click", () => send("hold", !(latest && latest.hold)));
  $("reprime").addEventListener("click", () => send("reprime", null));
  $("fill").addEventListener("click", () => send("fill", null));
  $("panic").addEventListener("click", () => send("panic", null));
}

function chip(text, value, className = "") {
  const node = element("span", `chip ${className}`, text ? `${text} ` : "");
  if (value !== undefined) node.append(element("b", null, value));
  return node;
}

function showChips(snap) {
  const { clock } = snap;
  const chips = [chip("", snap.state, `state ${snap.state}`), chip("bar", String(snap.bar + 1)),
    chip("tempo", clock.bpm ? `${clock.bpm.toFixed(1)} BPM` : "--.- BPM"),
    chip("clock", `${clock.source} ${clock.running ? "▶" : "■"}`)];
  if (clock.peers !== null && clock.peers !== undefined) {
    chips.push(chip("Link", `${clock.peers} peer${clock.peers === 1 ? "" : "s"}`));
  }
  const latency = snap.latency_ms;
  if (latency && latency.p99 !== undefined) {
    chips.push(chip("latency", `${latency.p50.toFixed(2)} / ${latency.p99.toFixed(2)} / ${latency.max.toFixed(2)} ms`));
    chips[chips.length - 1].title = "tick to send: median / 99th percentile / worst";
  }
  chips.push(chip("missed steps", String(snap.missed_steps), snap.missed_steps ? "warn" : ""));
  chips.push(chip("", "page", "link up"));
  $("chips").replaceChildren(...chips);
}

function showParts(snap) {
  const locked = new Set(snap.settings.locks.map((drum) => setup.drums.indexOf(drum)));
  heardView.render(snap.heard, { locked });
  answerView.render(snap.answer, { locked });
  const { position } = snap;
  heardView.setPlayhead(position && position.part === "heard" ? position.step : null);
  answerView.setPlayhead(position && position.part === "answer" ? position.step : null);
  const bars = (grid) => grid.velocities.length / grid.steps_per_bar;
  $("heard-hint").textContent = `${bars(snap.heard)} bar${bars(snap.heard) === 1 ? "" : "s"}`;
  $("answer-hint").textContent = `${bars(snap.answer)} bar${bars(snap.answer) === 1 ? "" : "s"}`;
}

function showControls(snap) {
  controls.set(snap.settings);
  if (document.activeElement !== $("mode")) $("mode").value = snap.mode;
  $("hold").classList.toggle("on", snap.hold);
  $("hold").setAttribute("aria-pressed", String(snap.hold));
}

function showHistory(snap) {
  const key = JSON.stringify([snap.history.map((item) => item.id), snap.looping]);
  if (key === historyKey) return;
  historyKey = key;
  if (!snap.history.length) {
    $("history").replaceChildren(element("p", "empty", "no answers yet"));
    return;
  }
  $("history").replaceChildren(...snap.history.map((item) => {
    const card = element("div", `item${snap.looping === item.id ? " looping" : ""}`);
    card.dataset.id = item.id;
    const head = element("div", "panel-head");
    const save = element("a", "button save", "⬇ Save MIDI");
    save.href = withToken(`/api/live/history.mid?id=${item.id}`);
    save.download = `deepbeat-bar${item.bar + 1}-answer${item.id}.mid`;
    const loop = element("button", `loop${snap.looping === item.id ? " on" : ""}`, snap.looping === item.id ? "Looping" : "Loop");
    loop.type = "button";
    loop.addEventListener("click", () => send("loop", latest.looping === item.id ? null : item.id));
    head.append(element("h3", null, `bar ${item.bar + 1}`), element("span", "spacer"), save, loop);
    const holder = element("div");
    card.append(head, holder);
    new DrumGridView(holder, setup, { compact: true }).render(item.grid);
    return card;
  }));
}

function show(snap) {
  latest = snap;
  showChips(snap);
  showParts(snap);
  showControls(snap);
  showHistory(snap);
  snapshots += 1;
  document.body.dataset.snapshots = String(snapshots);
}

function follow() {
  const events = new EventSource(withToken("/api/live/events"));
  events.onmessage = (event) => show(JSON.parse(event.data));
  events.onopen = () => { $("status").textContent = ""; };
  events.onerror = () => {
    $("status").textContent = "connection lost: retrying…";
    const link = document.querySelector(".chip.link");
    if (link) link.classList.remove("up");
  };
}

if (setup) {
  build();
  follow();
}
