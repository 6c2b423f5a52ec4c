"""The training loss and the metrics reported for train, validation and test.

Everything is first summed over a batch (`batch_sums`, TensorFlow) so that sums from many
batches or replicas add up exactly; `metrics_from_sums` turns the totals into the figures.
"""
import math

METRIC_NAMES = ("loss", "nll", "perplexity", "accuracy", "event_accuracy", "no_event_accuracy", "velocity_loss")


def batch_sums(outputs, targets):
    """Sums over the real steps of a batch: NLLs, counts and correct predictions (float32 scalars)."""
    import tensorflow as tf

    mask = targets["step_mask"]
    logits = tf.cast(outputs["class_logits"], tf.float32)
    next_class = tf.cast(targets["next_class"], tf.int32)
    class_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(next_class, logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), next_class), tf.float32) * mask
    event = tf.cast(next_class != 0, tf.float32) * mask  # class 0 = a silent step
    hits = targets["velocity_mask"] * mask[..., None]
    velocity_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(targets["velocity_bin"], tf.int32), tf.cast(outputs["velocity_logits"], tf.float32)
    )
    return {
        "steps": tf.reduce_sum(mask),
        "class_nll": tf.reduce_sum(class_nll * mask),
        "correct": tf.reduce_sum(correct),
        "events": tf.reduce_sum(event),
        "event_correct": tf.reduce_sum(correct * event),
        "no_event_correct": tf.reduce_sum(correct * (mask - event)),
        "hits": tf.reduce_sum(hits),
        "velocity_nll": tf.reduce_sum(velocity_nll * hits),
    }


def loss_from_sums(sums, velocity_loss_weight, steps=None, hits=None):
    """Mean class NLL per step + weight x mean velocity NLL per hit (totals may come from all replicas)."""
    import tensorflow as tf

    steps = sums["steps"] if steps is None else steps
    hits = sums["hits"] if hits is None else hits
    velocity = sums["velocity_nll"] / tf.maximum(hits, 1.0)
    return sums["class_nll"] / tf.maximum(steps, 1.0) + velocity_loss_weight * velocity


def metrics_from_sums(sums, velocity_loss_weight=0.0):
    """The reported figures (plain floats) from summed totals; without velocity sums, loss = NLL."""
    sums = {name: float(value) for name, value in sums.items()}
    steps = max(sums["steps"], 1.0)
    nll = sums["class_nll"] / steps
    velocity = sums["velocity_nll"] / max(sums["hits"], 1.0) if "hits" in sums else None
    no_events = sums["steps"] - sums["events"]
    return {
        "loss": nll + velocity_loss_weight * (velocity or 0.0),
        "nll": nll,
        "perplexity": math.exp(min(nll, 700.0)),  # exp overflows past ~709
        "accuracy": sums["correct"] / steps,
        "event_accuracy": sums["event_correct"] / max(sums["events"], 1.0),
        "no_event_accuracy": sums["no_event_correct"] / max(no_events, 1.0),
        "velocity_loss": velocity,
        "steps": int(sums["steps"]),
    }


def add_sums(total, sums):
    """total + sums, name by name (total may be None)."""
    if total is None:
        return {name: float(value) for name, value in sums.items()}
    return {name: total[name] + float(sums[name]) for name in total}
