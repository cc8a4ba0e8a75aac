"""EasyRec's ``train_config`` (optimizers, learning rates), L2 and ``export_config`` → mtlrec's ``train``."""

from __future__ import annotations

from typing import Any

from mtlrec.config.easyrec_text.common import batch_sizes, mark_every_field, sparse_adam
from mtlrec.config.easyrec_text.convert import Conversion, early_stopping, steps_and_epochs
from mtlrec.config.easyrec_text.nodes import Node

#: optimizers → mtlrec's (Adam for the ones it lacks)
OPTIMIZERS: dict[str, str] = {
    "adam_optimizer": "adam", "lazy_adam_optimizer": "adam", "adam_async_optimizer": "adam",
    "adamw_optimizer": "adamw", "adam_asyncw_optimizer": "adamw",
}  # fmt: skip
#: LearningRate → the field holding its (initial) rate
BASE_RATES: dict[str, str] = {
    "constant_learning_rate": "learning_rate", "exponential_decay_learning_rate": "initial_learning_rate",
    "manual_step_learning_rate": "initial_learning_rate", "cosine_decay_learning_rate": "learning_rate_base",
    "poly_decay_learning_rate": "learning_rate_base", "transformer_learning_rate": "learning_rate_base",
}  # fmt: skip


def read_train(root: Node, conversion: Conversion, data: dict, tasks: list[dict], l2: float) -> dict[str, Any]:
    """mtlrec's ``train`` section: batch sizes, optimizers, weight decay, epochs, threads, early stopping."""
    node = root.child("train_config").maps_to("train")
    data_config = root.child("data_config")
    train = batch_sizes(data_config)
    train.update(_optimizers(node))
    _l2(root, train, l2)
    steps = (node.at("num_steps"), int(node.get("num_steps"))) if node.get("num_steps") else None
    epochs_given = data_config.get("num_epochs")
    epochs = (data_config.at("num_epochs"), int(epochs_given)) if epochs_given else None
    limits = steps_and_epochs(conversion.tracker, steps, epochs, train["batch_size"], data)
    if not limits:
        node.approximate(
            "num_steps",
            "neither num_steps nor num_epochs is set (EasyRec trains until stopped): mtlrec's default epochs apply",
            "train.epochs",
        )
    train.update(limits)
    if node.get("intra_op_parallelism_threads") > 0:
        train["threads"] = int(node.get("intra_op_parallelism_threads"))
    if node.has("log_step_count_steps"):
        train["log_every"] = int(node.get("log_step_count_steps"))
    node.mark("inter_op_parallelism_threads")
    train["early_stopping"] = _early_stopping(root.child("export_config"), tasks, train.get("epochs"))
    return train


def _early_stopping(export: Node, tasks: list[dict], epochs: int | None) -> dict[str, Any] | None:
    """exporter_type 'best' → select the best epoch; enable_early_stop → also stop; else keep the last epoch."""
    best, stop = export.get("exporter_type") == "best", export.get("enable_early_stop")
    if not (best or stop):
        return None
    export.maps_to("train.early_stopping")
    if stop:
        export.approximate(
            "enable_early_stop",
            "training stops after 3 epochs without progress on the metric (EasyRec: its early_stop_func)",
        )
    return early_stopping(
        export.get("best_exporter_metric"), export.get("metric_bigger"), tasks, None if stop else epochs
    )


def _optimizers(node: Node) -> dict[str, Any]:
    """optimizer_config: one for everything, or [embeddings, dense layers] → optimizer, lr, embedding_lr."""
    optimizers = node.children("optimizer_config")
    if len(optimizers) > 2:
        raise node.error("optimizer_config", "EasyRec takes one or two optimizers (embeddings, then the rest)")
    if not optimizers:
        return {}
    dense = optimizers[-1]
    train = _optimizer(dense, "train.optimizer")
    if len(optimizers) == 2:
        embedding = _optimizer(optimizers[0], "train.embedding_lr")
        if embedding["lr"] != train["lr"]:
            train["embedding_lr"] = embedding["lr"]
    multiplier = dense.opt("embedding_learning_rate_multiplier")
    if multiplier is not None:
        train["embedding_lr"] = train["lr"] * multiplier
    for optimizer in optimizers:
        if optimizer.get("use_moving_average"):
            optimizer.ignore("use_moving_average", "mtlrec keeps no moving average of the weights")
        optimizer.mark("moving_average_decay")
    return train


def _optimizer(node: Node, target: str) -> dict[str, Any]:
    """One optimizer: the dense layers' (``target`` train.optimizer) or the embeddings' (train.embedding_lr)."""
    which = node.which("optimizer")
    if which is None:
        raise node.error("optimizer", "missing; give e.g. adam_optimizer { learning_rate { ... } }")
    body = node.child(which)
    train: dict[str, Any] = {"optimizer": OPTIMIZERS.get(which, "adam")}
    if target == "train.embedding_lr":
        if OPTIMIZERS.get(which) != "adam":
            sparse_adam(node, which)
        body.mark("weight_decay")
    elif which not in OPTIMIZERS:
        node.approximate(which, "mtlrec trains with Adam at the same learning rate", target)
    for beta, default in (("beta1", 0.9), ("beta2", 0.999)):
        if beta in body.message.DESCRIPTOR.fields_by_name and body.has(beta) and abs(body.get(beta) - default) > 1e-6:
            body.approximate(beta, f"mtlrec's Adam uses {beta} = {default}")
    train["lr"] = _learning_rate(body.child("learning_rate"))
    if train["optimizer"] == "adamw" and target == "train.optimizer":
        decay = body.get("weight_decay")
        train["weight_decay"] = decay / train["lr"]
        body.approximate(
            "weight_decay",
            f"{decay} per step (TensorFlow's AdamW) → {decay / train['lr']:g} per unit of learning rate (torch's "
            "AdamW scales the decay by the rate)",
            "train.weight_decay",
        )
    return train


def _learning_rate(node: Node) -> float:
    """The base rate of a LearningRate; a schedule other than constant is noted (the rate stays constant)."""
    which = node.which("learning_rate")
    if which is None:
        return 0.002
    schedule = node.child(which)
    rate = float(schedule.get(BASE_RATES[which]))
    if which != "constant_learning_rate":
        mark_every_field(schedule)
        node.approximate(
            which,
            f"the learning rate stays at its initial {rate:g} (EasyRec's {which} is not "
            "applied; train.lr_schedule: cosine is mtlrec's decay)",
            "train.lr",
        )
    return rate


def _l2(root: Node, train: dict[str, Any], l2: float) -> None:
    """The model's l2_regularization → weight decay of the dense parameters (Adam's coupled L2)."""
    model = root.child("model_config")
    kind = model.which("model")
    if not l2:
        return
    body = model.child(kind)
    if train.get("optimizer") == "adamw":
        body.ignore("l2_regularization", "the AdamW optimizer's weight_decay is used instead")
        return
    train["weight_decay"] = l2
    body.approximate(
        "l2_regularization",
        f"weight decay {l2:g} on every dense parameter (EasyRec penalises the layers' kernels only, not their biases)",
        "train.weight_decay",
    )
