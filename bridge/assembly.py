"""What a bridge is made of (BridgeOptions) and how the parts are put together (build_bridge)."""
from dataclasses import dataclass, field

from deepbeat.errors import DeepBeatError
from deepbeat.midibytes import DRUM_CHANNEL
from deepbeat.runtime.steering import Feel, Steering

from .controls import ControlMap


@dataclass(frozen=True)
class BridgeOptions:
    """Everything `deepbeat bridge` can be asked for, in the domain's words (channels count from 0)."""

    model: str = None  # ONNX step model; None: the shipped one
    steering: Steering = Steering()
    feel: Feel = Feel()
    groove_heard: bool = False  # play the newest primer's own timing and accents instead of the model's
    seed: int = None
    mode: str = "call-response"
    listen_bars: int = 1
    answer_bars: int = 1
    on_silence: str = "reuse-primer"
    input_map: str = "gm"
    output_map: str = "gm"
    input_channel: int = None  # None: every channel
    output_channel: int = DRUM_CHANNEL
    master_bpm: float = None  # a tempo makes the bridge the clock master; None follows incoming clock
    link: bool = False  # the master's ticks from an Ableton Link session (master_bpm proposed when alone)
    latency_offset_s: float = 0.0  # None: the transport's output latency, as it changes (auto)
    gate: float = 0.5
    thru: bool = False
    controls: ControlMap = field(default_factory=ControlMap)
    realtime: bool = True


def build_bridge(options, transport, view, inbox):
    """A Bridge of `options` on `transport`, drawing `view` (or None); `inbox` is the queue between them."""
    from .live import Bridge
    from .scheduler import WAKE
    from .worker import GenerationWorker

    worker = GenerationWorker(on_error=lambda error: inbox.put_nowait(WAKE))
    try:
        scheduler = build_scheduler(options, transport.send, worker)
    except DeepBeatError:
        worker.close()
        raise
    return Bridge(transport, scheduler, worker, inbox, view, realtime=options.realtime,
                  cover_latency=options.latency_offset_s is None)


def build_scheduler(options, send, worker, clock=None):
    """The Scheduler (with its Session, Composer and model) of `options`, sending with `send`, generating on
    `worker`, timed by `clock` (default perf_counter). DeepBeatError for options that do not fit."""
    import time

    from deepbeat.notemaps import load_note_map
    from deepbeat.runtime.composer import Composer, Plan
    from deepbeat.runtime.sampler import DrumSampler
    from deepbeat.runtime.stepmodel import StepModel

    from .clock import InternalClock
    from .scheduler import Scheduler
    from .session import Session

    input_map, output_map = load_note_map(options.input_map), load_note_map(options.output_map)
    model = StepModel.load(options.model)
    sampler = DrumSampler(model, seed=options.seed)
    sampler.style_id(options.steering)  # an unknown style is refused before any port opens
    plan = Plan()
    try:
        session = Session(worker, Composer(sampler, plan), plan, mode=options.mode, listen_bars=options.listen_bars,
                          answer_bars=options.answer_bars, steering=options.steering, feel=options.feel,
                          groove_heard=options.groove_heard, on_silence=options.on_silence)
        master = None
        if options.link:
            from .linkclock import LinkClock
            master = LinkClock(options.master_bpm)  # last: it joins the session at once
        elif options.master_bpm is not None:
            master = InternalClock(options.master_bpm)
        return Scheduler(
            session, send, clock=clock or time.perf_counter, master=master, note_map=output_map,
            input_map=input_map, output_channel=options.output_channel, input_channel=options.input_channel,
            latency_offset_s=options.latency_offset_s or 0.0, gate=options.gate, thru=options.thru,
            controls=options.controls,
        )
    except (ValueError, DeepBeatError) as error:
        raise DeepBeatError(str(error)) from None
