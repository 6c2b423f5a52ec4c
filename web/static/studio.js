// The studio page: edit a primer (click, type or drop a MIDI file), steer, generate beats on the server,
// play them with the page's own drum synth and download each as MIDI.

import { $, element, getJSON, guarded, postBytes, postJSON, withToken } from "./api.js";
import { DrumSynth, Player } from "./audio.js";
import { ControlPanel } from "./controls.js";
import { DrumGridView, lockGroupOf } from "./grid.js";

const status = (text) => { $("status").textContent = text; };

const setup = await guarded(() => getJSON("/api/studio/setup"));
const player = new Player(new DrumSynth());
let stopShown = null; // puts the playing card's button back
let primer;
let primerView;
let controls;
const locks = new Set(); // lock groups

function lockedDrums() {
  return new Set(setup.drums.flatMap((drum, index) => (locks.has(lockGroupOf(setup, drum)) ? [index] : [])));
}

function showPrimer() {
  primerView.render(primer, { locked: lockedDrums() });
}

function setPrimer(grid) {
  primer = { velocities: grid.velocities, offsets: grid.offsets, steps_per_bar: grid.steps_per_bar };
  showPrimer();
}

function silentPrimer() {
  const rows = () => Array.from({ length: setup.steps_per_bar }, () => setup.drums.map(() => 0));
  return { velocities: rows(), offsets: rows(), steps_per_bar: setup.steps_per_bar };
}

function build() {
  primerView = new DrumGridView($("primer-grid"), setup, {
    editable: true,
    onCell(step, drum) {
      const levels = setup.cell_velocities; // off, ghost, hit, accent
      const next = levels.find((level) => level > primer.velocities[step][drum]) ?? levels[0];
      primer.velocities[step][drum] = next;
      primer.offsets[step][drum] = 0;
      showPrimer();
    },
    onLabel(drum) {
      const group = lockGroupOf(setup, setup.drums[drum]);
      if (!locks.delete(group)) locks.add(group);
      showPrimer();
    },
  });
  controls = new ControlPanel($("controls"), setup, {
    onChange: () => controls.showPreset(""),
    onPreset: (name, preset) => {
      controls.set(preset.values);
      locks.clear();
      preset.values.locks.forEach((drum) => locks.add(lockGroupOf(setup, drum)));
      showPrimer();
    },
  });
}

function limits() {
  $("model").textContent = `model ${setup.model}`;
  Object.assign($("bpm"), { min: setup.bpm.low, max: setup.bpm.high, value: setup.bpm.default });
  Object.assign($("bars"), { max: setup.bars.high, value: setup.bars.default });
  Object.assign($("outputs"), { max: setup.outputs.high, value: setup.outputs.default });
  $("seed").max = setup.seed.high;
  for (let bars = 1; bars <= setup.primer_bars.high; bars++) $("primer-bars").append(new Option(bars, bars));
}

async function readText() {
  const result = await guarded(() => postJSON("/api/studio/text", { text: $("primer-text").value }));
  if (result) setPrimer(result.primer);
}

async function readMidi(file) {
  const bytes = await file.arrayBuffer();
  const path = `/api/studio/midi?bars=${$("primer-bars").value}&name=${encodeURIComponent(file.name)}`;
  const result = await guarded(() => postBytes(path, bytes));
  if (!result) return;
  setPrimer(result.primer);
  $("bpm").value = result.bpm;
  const dropped = Object.entries(result.dropped).map(([pitch, count]) => `${pitch} (×${count})`);
  status(`${file.name}: primer read` + (dropped.length ? `; notes with no drum left out: ${dropped.join(", ")}` : ""));
}

const wholeOrNull = (text) => (text.trim() === "" ? null : Number(text));

async function generate() {
  const button = $("generate");
  button.disabled = true;
  status("generating…");
  const began = performance.now();
  const request = {
    primer, bpm: Number($("bpm").value), bars: wholeOrNull($("bars").value), outputs: wholeOrNull($("outputs").value),
    seed: wholeOrNull($("seed").value), groove: $("groove").checked,
    settings: { ...controls.values(), locks: [...locks] },
  };
  const result = await guarded(() => postJSON("/api/studio/generate", request));
  button.disabled = false;
  if (!result) {
    status("");
    return;
  }
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  status(`${result.beats.length} beat${result.beats.length === 1 ? "" : "s"} in ${seconds} s · seed ${result.seed}`);
  showBeats(result);
}

function showBeats(result) {
  player.stop();
  if (stopShown) stopShown();
  const cards = result.beats.map((beat, index) => beatCard(beat, index, result.seed));
  $("beats").replaceChildren(...cards);
}

function beatCard(beat, index, seed) {
  const card = element("article", "panel beat-card");
  card.dataset.beat = beat.id;
  const bars = beat.grid.velocities.length / beat.grid.steps_per_bar;
  const head = element("div", "panel-head");
  const title = element("h3", null, `Beat ${index + 1}`);
  const meta = element("span", "hint", `${bars} bars · ${beat.grid.bpm} BPM · seed ${seed} · ${beat.name}`);
  const play = element("button", "play", "▶ Play");
  play.type = "button";
  const download = element("a", "button download", "⬇ MIDI");
  download.href = withToken(`/api/studio/beat.mid?id=${beat.id}`);
  download.download = beat.name;
  head.append(title, meta, play, download);
  const holder = element("div");
  card.append(head, holder);
  const view = new DrumGridView(holder, setup, { compact: true });
  view.render(beat.grid, { dim: beat.primer_steps });
  const reset = () => {
    play.textContent = "▶ Play";
    play.classList.remove("playing");
    view.setPlayhead(null);
    if (stopShown === reset) stopShown = null;
  };
  play.addEventListener("click", () => {
    const wasPlaying = stopShown === reset;
    player.stop();
    if (stopShown) stopShown();
    if (wasPlaying) return;
    stopShown = reset;
    play.textContent = "■ Stop";
    play.classList.add("playing");
    card.dataset.scheduled = player.play(beat.grid, setup.drums, { onStep: (step) => view.setPlayhead(step), onEnd: reset });
  });
  return card;
}

function dropZone() {
  const zone = $("primer-panel");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer.files.length) readMidi(event.dataTransfer.files[0]);
  });
  $("midi-file").addEventListener("change", () => {
    if ($("midi-file").files.length) readMidi($("midi-file").files[0]);
  });
}

if (setup) {
  build();
  limits();
  setPrimer(silentPrimer());
  dropZone();
  $("read-text").addEventListener("click", readText);
  $("primer-text").addEventListener("keydown", (event) => { if (event.key === "Enter") readText(); });
  $("clear").addEventListener("click", () => setPrimer(silentPrimer()));
  $("generate").addEventListener("click", generate);
  await readText();
  document.body.dataset.ready = "true";
}
