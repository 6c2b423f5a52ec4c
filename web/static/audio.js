// Drums synthesized with Web Audio (no sample files): kick a sine falling in pitch, snare noise and a tone,
// hats high-passed noise, toms pitched sines, crash noise, ride a metallic cluster. A Player schedules every
// hit of a grid at its own time: its step plus its offset, at the grid's tempo.

const TOM_PITCHES = { low_tom: 95, mid_tom: 140, high_tom: 200 };
const RIDE_RATIOS = [2, 3, 4.16, 5.43, 6.79, 8.21]; // the 808's cymbal: square waves at inharmonic ratios
const START_DELAY_S = 0.08; // scheduling head room before the first step

export class DrumSynth {
  constructor() {
    this.context = null;
    this.noise = null;
  }

  /** The AudioContext, made on first use (browsers allow sound after a click). */
  ready() {
    if (!this.context) {
      this.context = new AudioContext();
      const length = this.context.sampleRate;
      this.noise = this.context.createBuffer(1, length, this.context.sampleRate);
      const samples = this.noise.getChannelData(0);
      for (let i = 0; i < length; i++) samples[i] = Math.random() * 2 - 1;
    }
    if (this.context.state === "suspended") this.context.resume();
    return this.context;
  }

  envelope(output, time, level, decay) {
    const gain = this.context.createGain();
    gain.gain.setValueAtTime(Math.max(level, 0.0001), time);
    gain.gain.exponentialRampToValueAtTime(0.0001, time + decay);
    gain.connect(output);
    return gain;
  }

  tone(output, time, level, type, from, to, decay) {
    const osc = this.context.createOscillator();
    osc.type = type;
    osc.frequency.setValueAtTime(from, time);
    osc.frequency.exponentialRampToValueAtTime(to, time + decay * 0.6);
    osc.connect(this.envelope(output, time, level, decay));
    osc.start(time);
    osc.stop(time + decay + 0.05);
  }

  hiss(output, time, level, decay, filters) {
    const source = this.context.createBufferSource();
    source.buffer = this.noise;
    let node = source;
    for (const [type, frequency] of filters) {
      const filter = this.context.createBiquadFilter();
      filter.type = type;
      filter.frequency.value = frequency;
      node.connect(filter);
      node = filter;
    }
    node.connect(this.envelope(output, time, level, decay));
    source.start(time);
    source.stop(time + decay + 0.05);
  }

  /** One hit of drum class `drum` at `time` (seconds, the context's clock), loudness 0-1, into `output`. */
  hit(drum, time, level, output) {
    if (drum === "kick") {
      this.tone(output, time, level, "sine", 150, 42, 0.45);
    } else if (drum === "snare") {
      this.hiss(output, time, level * 0.7, 0.2, [["highpass", 1200]]);
      this.tone(output, time, level * 0.5, "triangle", 190, 150, 0.12);
    } else if (drum === "closed_hihat") {
      this.hiss(output, time, level * 0.45, 0.05, [["highpass", 7000], ["bandpass", 10000]]);
    } else if (drum === "open_hihat") {
      this.hiss(output, time, level * 0.4, 0.35, [["highpass", 7000], ["bandpass", 10000]]);
    } else if (drum in TOM_PITCHES) {
      const pitch = TOM_PITCHES[drum];
      this.tone(output, time, level * 0.8, "sine", pitch, pitch * 0.6, 0.35);
    } else if (drum === "crash") {
      this.hiss(output, time, level * 0.45, 1.4, [["highpass", 4000]]);
    } else {
      const band = this.context.createBiquadFilter();
      band.type = "highpass";
      band.frequency.value = 7000;
      band.connect(this.envelope(output, time, level * 0.35, 0.9));
      for (const ratio of RIDE_RATIOS) {
        const osc = this.context.createOscillator();
        osc.type = "square";
        osc.frequency.value = 60 * ratio * 2.3;
        osc.connect(band);
        osc.start(time);
        osc.stop(time + 0.95);
      }
    }
  }
}

export class Player {
  constructor(synth) {
    this.synth = synth;
    this.output = null;
    this.timer = null;
  }

  /** Play `grid` once (hits as placed, at its BPM); onStep(step) follows along, onEnd() when done.
   *  Returns the number of hits scheduled. */
  play(grid, drums, { onStep, onEnd } = {}) {
    this.stop();
    const context = this.synth.ready();
    this.output = context.createGain();
    this.output.gain.value = 0.8;
    this.output.connect(context.destination);
    const stepSeconds = 60 / grid.bpm / 4;
    const start = context.currentTime + START_DELAY_S;
    let scheduled = 0;
    grid.velocities.forEach((row, step) => row.forEach((velocity, drum) => {
      if (velocity === 0) return;
      const time = start + Math.max(0, step + grid.offsets[step][drum]) * stepSeconds;
      this.synth.hit(drums[drum], time, (velocity / 127) ** 1.5, this.output);
      scheduled += 1;
    }));
    const steps = grid.velocities.length;
    const follow = () => {
      const step = Math.floor((context.currentTime - start) / stepSeconds);
      if (step >= steps) {
        this.stop();
        if (onEnd) onEnd();
        return;
      }
      if (onStep) onStep(Math.max(0, step));
      this.timer = requestAnimationFrame(follow);
    };
    this.timer = requestAnimationFrame(follow);
    return scheduled;
  }

  stop() {
    if (this.timer !== null) cancelAnimationFrame(this.timer);
    this.timer = null;
    if (this.output) this.output.disconnect();
    this.output = null;
  }
}
