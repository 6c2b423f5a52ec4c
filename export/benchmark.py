"""`deepbeat bench generate`: ONNX Runtime vs TensorFlow on one model, in one run.

Figures: batch-1 step latency (ORT vs the same step as a TF tf.function), time per bar of
16 sampled steps, and 5 x 128-step generation batched, each through the same DrumSampler.
ORT runs at 1 thread (the real-time bridge's setting) and at 2 (offline generate's); TF
with its default threads (all cores). Goals (issue 4): ORT at least 8x faster per step
and a bar in at most 2.5 ms, judged on wall-clock time at TF's thread budget (2 cores here).
"""
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import deepbeat
from deepbeat.benchresults import machine, write_results
from deepbeat.drums import NUM_DRUM_CLASSES
from deepbeat.grid import STEPS_PER_BAR, DrumGrid
from deepbeat.modelmeta import ModelMetadata
from deepbeat.runtime.sampler import DrumSampler
from deepbeat.runtime.steering import Steering
from deepbeat.runtime.stepmodel import StepModel, session_options
from deepbeat.training.step_graph import KerasStepModel

from .exporter import export

STEP_SPEEDUP_GOAL = 8.0
BAR_MS_GOAL = 2.5
BATCH_OUTPUTS, BATCH_STEPS = 5, 128
ORT_THREADS = (1, 2)  # the real-time bridge's setting, offline generate's
JUDGED_THREADS = 2  # TF's default uses every core: ORT is judged on as many


def default_weights():
    """The shipped model's Keras weights, beside the shipped ONNX file."""
    return Path(deepbeat.__file__).parent / "models" / "default.weights.h5"


def _timed(call, repeats, scale, warmup=20):
    """Time `repeats` calls after `warmup` untimed ones: wall-clock and process CPU time, each summarised.

    Other jobs share this CPU; the CPU time (all threads of this process) leaves out the
    time the scheduler gave to them, the wall time is what a user would wait.
    """
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": _summary(wall, scale), "cpu": _summary(cpu, scale)}


def _summary(times, scale):
    return {"median": statistics.median(times) * scale, "mean": statistics.fmean(times) * scale,
            "p90": float(np.percentile(times, 90)) * scale, "runs": len(times)}


def _step_latency(model, repeats):
    """Batch-1 step latency in microseconds, state carried from call to call."""
    inputs = model.encoding.inputs([1], np.zeros((1, NUM_DRUM_CLASSES)), 0)
    state = [model.initial_state(1)]

    def call():
        state[0] = model.step(inputs, state[0])[1]

    return _timed(call, repeats, 1e6)


def _bar_time(model, repeats):
    """Milliseconds to sample one bar (16 steps, sampling included) for one output."""
    sampler = DrumSampler(model, seed=0)
    sampler.prime(DrumGrid.from_steps([1, 0, 4, 0] * 4), Steering())
    return _timed(lambda: sampler.sample(STEPS_PER_BAR, Steering()), repeats, 1e3, warmup=5)


def _batch_generation(model, repeats):
    """Seconds for 5 outputs x 128 steps, generated together."""
    def call():
        sampler = DrumSampler(model, num_outputs=BATCH_OUTPUTS, seed=0)
        sampler.prime(DrumGrid.from_steps([1]), Steering())
        sampler.sample(BATCH_STEPS, Steering())

    return _timed(call, repeats, 1.0, warmup=1)


def _without_spinning(path, threads):
    """The model on `threads` threads whose workers sleep between runs, to justify letting them spin."""
    import onnxruntime as ort

    options = session_options(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return StepModel(session, ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, path), path)


def weight_bytes_per_step(path):
    """Bytes of weights one step reads: whole matrices, one row of each gathered table."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    gathered = {node.input[0] for node in proto.graph.node if node.op_type == "Gather"}
    total = 0
    for tensor in proto.graph.initializer:
        array = numpy_helper.to_array(tensor)
        total += array.nbytes // len(array) if tensor.name in gathered and array.ndim else array.nbytes
    return total


def _l2_cache():
    """The first core's L2 size as the kernel reports it (e.g. "2048K"), or None."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
    except OSError:
        return None


def run_benchmark(trained, source, output, repeats=2000, data_dir=None):
    """Export the model (loaded from `source`) to a temporary file, parity checked; time both runtimes;
    print the figures and write them as JSON."""
    import onnxruntime
    import tensorflow as tf

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.onnx"
        parity = export(trained, path, data_dir)
        step_bytes = weight_bytes_per_step(path)
        figures = {"step_latency_us": {}, "bar_ms": {}, "generate_5x128_s": {}}
        for threads in ORT_THREADS:
            name = f"ort_{threads}_thread{'s' * (threads > 1)}"
            model = StepModel.load(path, threads=threads)
            figures["step_latency_us"][name] = _step_latency(model, repeats)
            figures["bar_ms"][name] = _bar_time(model, repeats // 20)
            figures["generate_5x128_s"][name] = _batch_generation(model, 10)
            del model  # its workers spin between runs: end them before the next runtime is timed
        figures["step_latency_us"]["ort_2_threads_no_spinning"] = _step_latency(_without_spinning(path, 2), repeats)
        tf_model = KerasStepModel(trained)
        figures["step_latency_us"]["tf"] = _step_latency(tf_model, repeats // 4)
        figures["bar_ms"]["tf"] = _bar_time(tf_model, repeats // 80)
        figures["generate_5x128_s"]["tf"] = _batch_generation(tf_model, 3)
    results = {
        "model": {"source": source, "rnn_layer_sizes": list(trained.hparams.rnn_layer_sizes),
                  "parameters": int(trained.model.count_params()), "styles": len(trained.encoding.styles),
                  # batch-1 steps are bound by reading the weights: bytes per step / 1-thread ORT step time
                  "weight_bytes_per_step": step_bytes,
                  "weight_read_GB_per_s":
                      step_bytes / figures["step_latency_us"]["ort_1_thread"]["wall"]["median"] / 1e3},
        "machine": machine(onnxruntime=onnxruntime.__version__, tensorflow=tf.__version__,
                           l2_cache_per_core=_l2_cache(),
                           # 0 = TF's default: one thread per core
                           tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                           # other jobs share this CPU: the 1-minute load average before and after the run
                           load_average=[round(load_before[0], 2), round(os.getloadavg()[0], 2)]),
        "parity": parity.to_dict(),
        **figures,
        "goals": _goals(figures),
    }
    model = results["model"]
    print(f"model: {source}, LSTM {model['rnn_layer_sizes']}, {model['parameters']:,} parameters, "
          f"{model['weight_bytes_per_step'] / 2**20:.2f} MiB of weights read per step "
          f"({model['weight_read_GB_per_s']:.1f} GB/s at the 1-thread ORT step time; L2 per core "
          f"{results['machine']['l2_cache_per_core']}); load average {results['machine']['load_average']}")
    print(_table(results))
    write_results(output, results)
    return results


def _goals(figures):
    """Each goal judged on the wall-clock median of ORT at JUDGED_THREADS threads.

    Not on CPU time: at 2 threads ORT's workers spin between steps, which costs CPU time
    but no latency, and a step at 2 threads takes 2 cores' worth of CPU time.
    """
    ort = f"ort_{JUDGED_THREADS}_threads"
    latency, bar = figures["step_latency_us"], figures["bar_ms"]
    speedup = latency["tf"]["wall"]["median"] / latency[ort]["wall"]["median"]
    bar_ms = bar[ort]["wall"]["median"]
    return {
        "judged_on": f"wall-clock medians, ORT at {JUDGED_THREADS} threads, TF at its default threads",
        "step_speedup": {"goal": STEP_SPEEDUP_GOAL, "value": speedup, "met": speedup >= STEP_SPEEDUP_GOAL},
        "bar_ms": {"goal": BAR_MS_GOAL, "value": bar_ms, "met": bar_ms <= BAR_MS_GOAL},
    }


def _table(results):
    """Median figures, wall-clock / CPU time, per runtime, and the goals."""
    goals = results["goals"]
    runtimes = list(results["step_latency_us"])
    tf_step = results["step_latency_us"]["tf"]["wall"]["median"]

    def pair(table, name, scale=1.0, digits=1):
        if name not in table:  # timed for its step latency only
            return ""
        return " / ".join(f"{table[name][clock]['median'] * scale:.{digits}f}" for clock in ("wall", "cpu"))

    def verdict(name, text):
        return f"{text}: {'met' if goals[name]['met'] else 'NOT met'}"

    header = ("median, wall / CPU", "step (us)", "vs TF (wall)", "bar of 16 (ms)", "5 x 128 (ms)")
    rows = [
        (name.replace("_", " "), pair(results["step_latency_us"], name),
         f"{tf_step / results['step_latency_us'][name]['wall']['median']:.1f}x",
         pair(results["bar_ms"], name, digits=2), pair(results["generate_5x128_s"], name, 1e3))
        for name in runtimes
    ]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.append(f"goals ({goals['judged_on']}): "
                 + verdict("step_speedup",
                           f"step >= {STEP_SPEEDUP_GOAL:g}x faster ({goals['step_speedup']['value']:.1f}x)")
                 + "; " + verdict("bar_ms", f"bar <= {BAR_MS_GOAL:g} ms ({goals['bar_ms']['value']:.2f} ms)"))
    return "\n".join(lines)
