"""The training loop: checkpoints and resume, best-by-validation weights, TensorBoard, early stop, NaN guard.

Runs inside a tf.distribute strategy picked by name (default, mirrored, multiworker via
TF_CONFIG). The loss is averaged over the real steps (and hits) of the *global* batch, so
every strategy optimises the same objective.
"""
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from deepbeat.errors import DeepBeatError
from deepbeat.progress import Progress
from deepbeat.timekeeping import TimeKeeping

from .examples import encode_sequences, encoding_for, load_sequences, sequence_batches, training_dataset
from .hparams import HParams
from .losses import METRIC_NAMES, add_sums, batch_sums, head_weights, loss_from_sums, metrics_from_sums
from .runs import RunDir, read_json, save_trained, write_json

STRATEGIES = ("default", "mirrored", "multiworker")
KEEP_CHECKPOINTS = 3


class TrainingError(DeepBeatError):
    """Training cannot start or go on (mismatched run, diverged loss)."""


@dataclass(frozen=True)
class TrainingOptions:
    """What `deepbeat train` was asked to do."""

    data_dir: str
    run_dir: str
    hparams_text: str = None  # None: the run's stored hparams when resuming, else the defaults
    num_steps: int = 20000
    seed: int = None
    strategy: str = "default"
    eval_every: int = 250
    patience: int = 0  # evaluations without a better validation loss before stopping; 0 = never
    num_eval_batches: int = None  # validation batches per evaluation; None = the whole split
    max_minutes: float = None  # wall-clock budget of this invocation; stops after the next validation
    command: str = None  # the command line, listed in the run state's "commands" when it trained


def make_strategy(name):
    """A tf.distribute strategy by name; multiworker reads the cluster from TF_CONFIG."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError("multi-worker training needs TF_CONFIG set to the cluster and this worker's task")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


def is_chief(strategy):
    """Whether this worker writes the run folder (always, unless a multi-worker non-chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                              and "chief" not in resolver.cluster_spec().as_dict())


def machine(strategy):
    """What trained: CPU count, accelerators and replicas, for the report next to the timings."""
    import tensorflow as tf

    return {"cpus": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU")),
            "replicas": strategy.num_replicas_in_sync}


def resolve_hparams(run, hparams_text):
    """The run's hparams: given ones must match a resumed run's config exactly."""
    stored = read_json(run.config, "run config") if run.config.exists() else None
    if hparams_text is None:
        return HParams.from_dict(stored["hparams"]) if stored else HParams()
    hparams = HParams().parse(hparams_text)
    if stored:
        before = HParams.from_dict(stored["hparams"]).to_dict()
        changed = [f"{k}: {before[k]} in the run, {v} given"
                   for k, v in hparams.to_dict().items() if before.get(k) != v]
        if changed:
            raise TrainingError(
                f"hparams do not match the run in {run.root} ({'; '.join(changed)}); "
                "resume with the same hparams or start a new run folder"
            )
    return hparams


def data_summary(data_dir, train, validation):
    styles = {}
    for sequence in train:
        styles[sequence.style] = styles.get(sequence.style, 0) + 1
    return {
        "train": {"sequences": len(train), "steps": sum(s.grid.num_steps for s in train)},
        "validation": {"sequences": len(validation), "steps": sum(s.grid.num_steps for s in validation)},
        "train_styles": dict(sorted(styles.items())),
        "time_keeping": TimeKeeping.of(train).to_dict(),  # the sampler's style prior (deepbeat.timekeeping)
    }


def sequence_sums(model, encoded, num_batches=None):
    """Summed metrics of a model run over whole sequences (state carried through each)."""
    import tensorflow as tf

    forward, total = None, None
    for number, (_, inputs, targets) in enumerate(sequence_batches(encoded)):
        if num_batches is not None and number >= num_batches:
            break
        if forward is None:  # one trace for every batch and sequence length
            signature = [
                {name: tf.TensorSpec([None, None, *value.shape[2:]], value.dtype) for name, value in part.items()}
                for part in (inputs, targets)
            ]
            forward = tf.function(lambda i, t: batch_sums(model(i, training=False), t), input_signature=signature)
        total = add_sums(total, forward(inputs, targets))
    return total


def make_train_step(model, optimizer, strategy, weights):
    """A tf.function running one optimisation step on the next batch of a distributed iterator.

    Returns the batch's summed metrics over all replicas, and the summed replica gradient norms.
    """
    import tensorflow as tf

    @tf.function
    def train_step(iterator):
        def replica_step(inputs, targets):
            with tf.GradientTape() as tape:
                sums = batch_sums(model(inputs, training=True), targets)
                context = tf.distribute.get_replica_context()
                steps, hits = context.all_reduce(
                    "sum", [tf.stop_gradient(sums["steps"]), tf.stop_gradient(sums["hits"])]
                )
                loss = loss_from_sums(sums, weights, steps, hits)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return {**sums, "gradient_norm": tf.linalg.global_norm(gradients)}

        per_replica = strategy.run(replica_step, args=next(iterator))
        return {name: strategy.reduce("SUM", value, axis=None) for name, value in per_replica.items()}

    return train_step


def make_optimizer(hparams):
    """Adam with the seed's global gradient-norm clip."""
    import keras

    return keras.optimizers.Adam(hparams.learning_rate, global_clipnorm=hparams.clip_norm or None)


def check_finite(sums, step, run):
    """Stop training at the first non-finite loss or gradient, before anything is saved."""
    if not all(math.isfinite(float(value)) for name, value in sums.items() if name.endswith(("_nll", "_norm"))):
        raise TrainingError(
            f"training loss is not finite at step {step}; nothing was saved from this step, the last "
            f"good checkpoint in {run.checkpoints} is kept; lower learning_rate or clip_norm"
        )


def train(options, log=print):
    """Train (or resume) a run; returns its state dict (step, best validation, throughput)."""
    return Trainer(options, log).run()


class Trainer:
    """One invocation of training on a run folder: set up or resume, then step, validate and save."""

    def __init__(self, options, log):
        import keras
        import tensorflow as tf

        from .model import build_model

        self.options, self.log = options, log
        self.run_dir = run = RunDir(Path(options.run_dir))
        train_sequences = load_sequences(options.data_dir, "train")
        validation_sequences = load_sequences(options.data_dir, "validation")
        self.hparams = hparams = resolve_hparams(run, options.hparams_text)
        self.encoding = encoding = encoding_for(train_sequences, hparams)
        self.summary = data_summary(options.data_dir, train_sequences, validation_sequences)
        if run.config.exists() and read_json(run.config, "run config").get("encoding") != encoding.to_dict():
            raise TrainingError(
                f"{options.data_dir}: its styles differ from those the run in {run.root} was started with"
            )
        self.strategy = strategy = make_strategy(options.strategy)
        self.chief = is_chief(strategy)
        if self.chief:
            run.root.mkdir(parents=True, exist_ok=True)
            if not run.config.exists():
                write_json(run.config, {"hparams": hparams.to_dict(), "encoding": encoding.to_dict(),
                                        "data_summary": self.summary, "seed": options.seed})
        if options.seed is not None:
            keras.utils.set_random_seed(options.seed)
        self.validation = encode_sequences(validation_sequences, encoding)
        with strategy.scope():
            self.model = build_model(hparams, len(encoding.styles))
            optimizer = make_optimizer(hparams)
            optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=optimizer, step=self.step)
        # non-chief workers must save too, but somewhere of their own
        self.checkpoint_dir = (
            run.checkpoints if self.chief else run.root / "workers" / str(strategy.cluster_resolver.task_id)
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.checkpoint_dir), max_to_keep=KEEP_CHECKPOINTS
        )
        self._restore()
        windows = training_dataset(encode_sequences(train_sequences, encoding), hparams, options.seed)
        self.batches = iter(strategy.experimental_distribute_dataset(windows))
        self.train_step = make_train_step(self.model, optimizer, strategy, head_weights(hparams))
        self.state = read_json(run.state, "run state") if run.state.exists() else {
            "best_validation_loss": None, "best_step": None, "training_seconds": 0.0, "timesteps": 0,
            "stale_evaluations": 0,
        }
        self.writers = {"train": tf.summary.create_file_writer(str(self.checkpoint_dir)),
                        "validation": tf.summary.create_file_writer(str(run.validation_logs))} if self.chief else {}

    def _restore(self):
        import tensorflow as tf

        latest = self.manager.latest_checkpoint
        if not latest:
            return
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise TrainingError(f"{latest}: does not fit this model ({str(error).splitlines()[0]})") from None
        self.log(f"resumed {self.run_dir.root} from step {int(self.step.numpy())}")

    def run(self):
        options, state = self.options, self.state
        first = int(self.step.numpy())
        run_started = time.monotonic()
        interval_sums, started = None, run_started
        deadline = run_started + options.max_minutes * 60 if options.max_minutes else math.inf
        stopped_early = False
        with Progress(max(options.num_steps - first, 0), "train") as bar:
            for at in range(first + 1, options.num_steps + 1):
                sums = self.train_step(self.batches)
                check_finite(sums, at, self.run_dir)
                self.step.assign(at)
                interval_sums = add_sums(interval_sums, sums)
                bar.advance(extra=f"loss {metrics_from_sums(sums, head_weights(self.hparams))['loss']:.3f}")
                out_of_time = time.monotonic() > deadline
                if at % options.eval_every and at != options.num_steps and not out_of_time:
                    continue
                self._validate_and_save(at, interval_sums, time.monotonic() - started)
                interval_sums, started = None, time.monotonic()
                if options.patience and state["stale_evaluations"] >= options.patience:
                    self.log(f"early stop: no better validation loss in {options.patience} evaluations")
                    stopped_early = True
                    break
                if out_of_time:
                    self.log(f"time budget of {options.max_minutes:g} minutes used up at step {at}")
                    break
        if int(self.step.numpy()) > first:  # an invocation with nothing left to train changes no figures
            state["stopped_early"] = stopped_early
            state["wall_seconds"] = state.get("wall_seconds", 0.0) + time.monotonic() - run_started
            state["machine"] = machine(self.strategy)
            if options.command:
                state["commands"] = [*state.get("commands", []), options.command]
        if self.chief and self.run_dir.state.exists():
            write_json(self.run_dir.state, state)
        return state

    def _validate_and_save(self, at, interval_sums, elapsed):
        """Validate, log scalars, keep the best weights, checkpoint and update the state."""
        state, weight, run = self.state, head_weights(self.hparams), self.run_dir
        state["training_seconds"] += elapsed
        state["timesteps"] += int(interval_sums["steps"])
        train_metrics = metrics_from_sums(interval_sums, weight)
        validation = metrics_from_sums(
            sequence_sums(self.model, self.validation, self.options.num_eval_batches), weight
        )
        self._write_scalars("train", train_metrics, at)
        self._write_scalars("validation", validation, at)
        better = state["best_validation_loss"] is None or validation["loss"] < state["best_validation_loss"]
        if self.chief:
            if better:
                info = {"data_summary": self.summary, "validation": validation, "step": at, "seed": self.options.seed}
                save_trained(self.model, self.hparams, self.encoding, info, run.best_weights)
            with run.history.open("a") as history:
                history.write(json.dumps({"step": at, "train": train_metrics, "validation": validation}) + "\n")
        self.manager.save(checkpoint_number=at)
        state.update(
            step=at,
            best_validation_loss=validation["loss"] if better else state["best_validation_loss"],
            best_step=at if better else state["best_step"],
            stale_evaluations=0 if better else state["stale_evaluations"] + 1,
            timesteps_per_second=state["timesteps"] / max(state["training_seconds"], 1e-9),
        )
        if self.chief:
            write_json(run.state, state)
        self.log(
            f"step {at}/{self.options.num_steps}: train loss {train_metrics['loss']:.4f} | validation loss "
            f"{validation['loss']:.4f} nll {validation['nll']:.4f} perplexity {validation['perplexity']:.2f} "
            f"accuracy {validation['accuracy']:.3f}{' (best)' if better else ''} | "
            f"{interval_sums['steps'] / max(elapsed, 1e-9):.0f} timesteps/s"
        )

    def _write_scalars(self, kind, metrics, at):
        import tensorflow as tf

        if kind in self.writers:
            with self.writers[kind].as_default(step=at):
                for name in METRIC_NAMES:
                    tf.summary.scalar(name, metrics[name])
            self.writers[kind].flush()
