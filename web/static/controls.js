// Steering controls built from the server's catalog (every range, default and option comes from the runtime):
// a slider per range, a number field per count, a menu per choice, and the presets menu above them.

import { element } from "./api.js";

const decimals = (step) => Math.max(0, -Math.floor(Math.log10(step)));

export class ControlPanel {
  /** onChange(name, value): on every move of a slider, and when another control is set. onPreset(name, preset). */
  constructor(container, setup, { onChange, onPreset }) {
    this.widgets = new Map();
    this.busy = new Set(); // controls the user is holding: updates from elsewhere wait until released
    const presets = element("div", "control preset");
    const presetLabel = element("label", null, "preset");
    this.presetMenu = element("select");
    this.presetMenu.id = "control-preset";
    this.presetMenu.append(new Option("—", ""));
    for (const [name, preset] of Object.entries(setup.presets)) {
      const option = new Option(name, name);
      option.title = preset.description;
      this.presetMenu.append(option);
    }
    this.presetMenu.addEventListener("change", () => {
      const name = this.presetMenu.value;
      if (name) onPreset(name, setup.presets[name]);
    });
    presetLabel.htmlFor = this.presetMenu.id;
    presets.append(presetLabel, this.presetMenu);
    container.append(presets);
    for (const control of setup.controls) {
      const widget = this.build(control, onChange);
      this.widgets.set(control.name, widget);
      container.append(widget.root);
    }
  }

  build(control, onChange) {
    const root = element("div", `control ${control.kind}`);
    root.dataset.control = control.name;
    const label = element("label", null, control.label);
    const id = `control-${control.name}`;
    label.htmlFor = id;
    root.append(label);
    let input;
    let read;
    let show = () => {};
    if (control.kind === "range") {
      const value = element("output", "value");
      input = element("input");
      Object.assign(input, { type: "range", min: control.above_low ? control.low + control.step : control.low,
        max: control.high, step: control.step });
      read = () => Number(input.value);
      show = (number) => { value.textContent = Number(number).toFixed(decimals(control.step)); };
      input.addEventListener("input", () => { show(input.value); onChange(control.name, read()); });
      input.addEventListener("pointerdown", () => this.busy.add(control.name));
      input.addEventListener("pointerup", () => this.busy.delete(control.name));
      label.append(value);
      root.append(input);
    } else if (control.kind === "count") {
      input = element("input");
      Object.assign(input, { type: "number", min: control.low, step: 1 });
      read = () => Math.max(control.low, Math.round(Number(input.value) || 0));
      input.addEventListener("change", () => onChange(control.name, read()));
      input.addEventListener("focus", () => this.busy.add(control.name));
      input.addEventListener("blur", () => this.busy.delete(control.name));
      root.append(input);
    } else {
      input = element("select");
      control.options.forEach(([value, text], index) => input.append(new Option(text, String(index))));
      read = () => control.options[Number(input.value)][0];
      input.addEventListener("change", () => onChange(control.name, read()));
      root.append(input);
    }
    input.id = id;
    const set = (value) => {
      if (control.kind === "choice") {
        const index = control.options.findIndex(([option]) => option === value);
        if (index >= 0) input.value = String(index);
      } else {
        input.value = value;
      }
      show(value);
    };
    set(control.default);
    return { root, read, set };
  }

  /** Every control's value now: {name: value}. */
  values() {
    return Object.fromEntries([...this.widgets].map(([name, widget]) => [name, widget.read()]));
  }

  /** Show these values (those the user is holding keep what the user set). */
  set(values) {
    for (const [name, value] of Object.entries(values)) {
      const widget = this.widgets.get(name);
      if (widget && !this.busy.has(name)) widget.set(value);
    }
  }

  /** Show `name` in the presets menu ("" for none). */
  showPreset(name) {
    this.presetMenu.value = name;
  }
}
