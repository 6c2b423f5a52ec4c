"""The training loss and the metrics reported for train, validation and test.

Everything is first summed over a batch (`batch_sums`, TensorFlow) so that sums from many
batches or replicas add up exactly; `metrics_from_sums` turns the totals into the figures.
The loss is the class NLL per step plus, for each per-hit head (velocity, timing), its weight
times its NLL per hit.
"""
import math

METRIC_NAMES = ("loss", "nll", "perplexity", "accuracy", "event_accuracy", "no_event_accuracy", "velocity_loss",
                "offset_loss")
HEADS = ("velocity", "offset")  # per-hit heads: <head>_logits outputs, <head>_bin targets


def head_weights(hparams):
    """{head: loss weight} of the per-hit heads a model of these hparams has."""
    weights = {"velocity": hparams.velocity_loss_weight}
    if hparams.offset_bins:
        weights["offset"] = hparams.offset_loss_weight
    return weights


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
    sums = {
        "steps": tf.reduce_sum(mask),
        "class_nll": tf.reduce_sum(class_nll * mask),
        "correct": tf.reduce_sum(correct),
        "events": tf.reduce_sum(event),
        "event_correct": tf.reduce_sum(correct * event),
        "no_event_correct": tf.reduce_sum(correct * (mask - event)),
        "hits": tf.reduce_sum(hits),
    }
    for head in HEADS:
        if f"{head}_logits" in outputs:
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.cast(targets[f"{head}_bin"], tf.int32), tf.cast(outputs[f"{head}_logits"], tf.float32))
            sums[f"{head}_nll"] = tf.reduce_sum(nll * hits)
    return sums


def loss_from_sums(sums, weights, steps=None, hits=None):
    """Mean class NLL per step + each head's weight x its mean NLL per hit (totals may come from all replicas)."""
    import tensorflow as tf

    steps = sums["steps"] if steps is None else steps
    hits = sums["hits"] if hits is None else hits
    loss = sums["class_nll"] / tf.maximum(steps, 1.0)
    for head, weight in weights.items():
        loss += weight * sums[f"{head}_nll"] / tf.maximum(hits, 1.0)
    return loss


def metrics_from_sums(sums, weights=None):
    """The reported figures (plain floats) from summed totals; without head weights, loss = NLL."""
    sums = {name: float(value) for name, value in sums.items()}
    steps = max(sums["steps"], 1.0)
    nll = sums["class_nll"] / steps
    heads = {head: sums[f"{head}_nll"] / max(sums["hits"], 1.0) if f"{head}_nll" in sums else None
             for head in HEADS}
    no_events = sums["steps"] - sums["events"]
    return {
        "loss": nll + sum(weight * (heads[head] or 0.0) for head, weight in (weights or {}).items()),
        "nll": nll,
        "perplexity": math.exp(min(nll, 700.0)),  # exp overflows past ~709
        "accuracy": sums["correct"] / steps,
        "event_accuracy": sums["event_correct"] / max(sums["events"], 1.0),
        "no_event_accuracy": sums["no_event_correct"] / max(no_events, 1.0),
        "velocity_loss": heads["velocity"],
        "offset_loss": heads["offset"],
        "steps": int(sums["steps"]),
    }


def add_sums(total, sums):
    """total + sums, name by name (total may be None)."""
    if total is None:
        return {name: float(value) for name, value in sums.items()}
    return {name: total[name] + float(sums[name]) for name in total}
