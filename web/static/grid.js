// A drum grid on the page: a row per drum, a column per 16th step. A hit's height and shade show its
// velocity; its block sits nudged left (early) or right (late) of the step's centre line by its timing offset.

import { drumName, element } from "./api.js";

const FAMILY_HUES = [14, 45, 188, 268, 135]; // one hue per lock group, in the server's order
const MAX_SHOWN_OFFSET = 0.5; // a block never leaves its cell; the exact offset is in its title

/** For each drum, the hue of its lock group (drums locked together look alike). */
function drumHues(setup) {
  const groups = Object.values(setup.lock_groups);
  return setup.drums.map((drum) => FAMILY_HUES[groups.findIndex((group) => group.includes(drum)) % FAMILY_HUES.length]);
}

/** The lock group a drum belongs to. */
export function lockGroupOf(setup, drum) {
  return Object.keys(setup.lock_groups).find((group) => setup.lock_groups[group].includes(drum));
}

export class DrumGridView {
  /** options: editable (cells are buttons), onCell(step, drum), onLabel(drum), compact (short labels, small cells). */
  constructor(container, setup, options = {}) {
    this.container = container;
    this.setup = setup;
    this.options = options;
    this.hues = drumHues(setup);
    this.key = null;
    this.columns = [];
  }

  /** Draw `grid`; `locked`: a Set of drum indices; `dim`: steps at the start drawn dimmed (a primer). */
  render(grid, { locked = new Set(), dim = 0 } = {}) {
    const key = JSON.stringify([grid.velocities, grid.offsets, [...locked], dim]);
    if (key === this.key) return;
    this.key = key;
    const { setup, options } = this;
    const steps = grid.velocities.length;
    const perBar = grid.steps_per_bar || setup.steps_per_bar;
    const root = element("div", `grid${options.editable ? " editable" : ""}${options.compact ? " compact" : ""}`);
    root.style.gridTemplateColumns = `var(--label-width) repeat(${steps}, minmax(0, 1fr))`;
    root.append(element("div", "corner"));
    for (let step = 0; step < steps; step++) {
      const mark = step % perBar === 0 ? String(step / perBar + 1) : step % 4 === 0 ? "·" : "";
      root.append(element("div", `ruler${step % perBar === 0 ? " bar" : ""}`, mark));
    }
    this.columns = [];
    setup.drums.forEach((drum, index) => {
      const label = element(options.onLabel ? "button" : "div", "label",
        options.compact ? setup.labels[index] : drumName(drum));
      label.dataset.drum = drum;
      label.style.setProperty("--h", this.hues[index]);
      if (locked.has(index)) label.classList.add("locked");
      if (options.onLabel) {
        label.type = "button";
        label.title = `lock or unlock ${drumName(lockGroupOf(setup, drum))}`;
        label.addEventListener("click", () => options.onLabel(index));
      }
      root.append(label);
      for (let step = 0; step < steps; step++) {
        const cell = this.cell(grid, step, index, perBar, step < dim, locked.has(index));
        if (index === 0) this.columns.push(cell);
        root.append(cell);
      }
    });
    this.playhead = element("div", "playhead");
    this.playhead.hidden = true;
    root.append(this.playhead);
    this.container.replaceChildren(root);
  }

  cell(grid, step, drum, perBar, dimmed, locked) {
    const velocity = grid.velocities[step][drum];
    const offset = grid.offsets ? grid.offsets[step][drum] : 0;
    const classes = ["cell"];
    if (step % perBar === 0) classes.push("bar");
    else if (step % 4 === 0) classes.push("beat");
    if (dimmed) classes.push("dim");
    if (locked) classes.push("locked");
    const cell = element(this.options.editable ? "button" : "div", classes.join(" "));
    Object.assign(cell.dataset, { step, drum, v: velocity, o: offset });
    if (this.options.editable) {
      cell.type = "button";
      cell.setAttribute("aria-label", `${drumName(this.setup.drums[drum])} step ${step + 1}`);
      cell.addEventListener("click", () => this.options.onCell(step, drum));
    }
    if (velocity > 0) {
      const hit = element("div", "hit");
      hit.style.setProperty("--v", velocity / 127);
      hit.style.setProperty("--o", Math.max(-MAX_SHOWN_OFFSET, Math.min(MAX_SHOWN_OFFSET, offset)));
      hit.style.setProperty("--h", this.hues[drum]);
      const timing = Math.abs(offset) < 0.005 ? "on the grid" : `${offset > 0 ? "+" : ""}${offset.toFixed(2)} step`;
      cell.title = `${drumName(this.setup.drums[drum])}, step ${step + 1}: velocity ${velocity}, ${timing}`;
      cell.append(hit);
    }
    return cell;
  }

  /** Mark the column of `step` as playing (null: none). */
  setPlayhead(step) {
    if (!this.playhead) return;
    const column = step === null || step === undefined ? undefined : this.columns[step];
    this.playhead.hidden = !column;
    if (column) {
      this.playhead.style.left = `${column.offsetLeft}px`;
      this.playhead.style.width = `${column.offsetWidth}px`;
    }
  }
}
