"""TorchEasyRec's ``train_config`` (dense and sparse optimizers, learning rates) and ``export_config`` → ``train``."""

from __future__ import annotations

from typing import Any

from mtlrec.config.easyrec_text.common import batch_sizes, mark_every_field, sparse_adam
from mtlrec.config.easyrec_text.convert import Conversion, early_stopping, steps_and_epochs
from mtlrec.config.easyrec_text.nodes import Node

#: dense optimizers → mtlrec's (Adam for the ones it lacks)
OPTIMIZERS: dict[str, str] = {"adam_optimizer": "adam", "adamw_optimizer": "adamw"}
#: sparse (embedding) optimizers that are Adam, as mtlrec's row-sparse Adam is
ADAM_SPARSE = ("adam_optimizer", "partial_rowwise_adam_optimizer")


def read_train(root: Node, conversion: Conversion, data: dict, tasks: list[dict]) -> dict[str, Any]:
    """mtlrec's ``train`` section: batch sizes, optimizers, epochs, precision, early stopping."""
    node = root.child("train_config").maps_to("train")
    data_config = root.child("data_config")
    train = batch_sizes(data_config)
    train.update(_dense_optimizer(node.child("dense_optimizer")))
    _sparse_optimizer(node.child("sparse_optimizer"), train)
    steps = (node.at("num_steps"), int(node.get("num_steps"))) if node.opt("num_steps") else None
    epochs = (node.at("num_epochs"), int(node.get("num_epochs"))) if node.opt("num_epochs") else None
    limits = steps_and_epochs(conversion.tracker, steps, epochs, train["batch_size"], data)
    if not limits:
        node.approximate(
            "num_epochs", "neither num_steps nor num_epochs is set: mtlrec's default epochs apply", "train.epochs"
        )
    train.update(limits)
    if node.has("log_step_count_steps"):
        train["log_every"] = int(node.get("log_step_count_steps"))
    precision = node.opt("mixed_precision")
    if precision:
        if precision.upper() == "BF16":
            train["precision"] = "bf16"
        else:
            node.ignore("mixed_precision", f"{precision}: mtlrec trains in fp32 or bf16 (train.precision)")
    export = root.child("export_config")
    train["early_stopping"] = None
    if export.get("exporter_type") == "best":
        export.maps_to("train.early_stopping")
        metric, bigger = export.get("best_exporter_metric"), export.get("metric_larger_is_better")
        train["early_stopping"] = early_stopping(metric, bigger, tasks, train.get("epochs"))
    return train


def _dense_optimizer(node: Node) -> dict[str, Any]:
    which = node.which("optimizer")
    if which is None:
        return {}
    body = node.child(which)
    train: dict[str, Any] = {"optimizer": OPTIMIZERS.get(which, "adam"), "lr": float(body.get("lr"))}
    if which not in OPTIMIZERS:
        node.approximate(which, "mtlrec trains the dense layers with Adam at the same learning rate", "train.optimizer")
    for beta, default in (("beta1", 0.9), ("beta2", 0.999)):
        if beta in body.message.DESCRIPTOR.fields_by_name and body.has(beta) and abs(body.get(beta) - default) > 1e-6:
            body.approximate(beta, f"mtlrec's Adam uses {beta} = {default}")
    if "weight_decay" in body.message.DESCRIPTOR.fields_by_name and body.get("weight_decay"):
        train["weight_decay"] = float(body.get("weight_decay"))
    _schedule(node, train["lr"])
    return train


def _sparse_optimizer(node: Node, train: dict[str, Any]) -> None:
    which = node.which("optimizer")
    if which is None:
        return
    body = node.child(which)
    rate = float(body.get("lr"))
    if abs(rate - train.get("lr", 1e-3)) > 1e-12:
        train["embedding_lr"] = rate
    if which not in ADAM_SPARSE:
        sparse_adam(node, which)
    body.mark("gradient_clipping", "max_gradient")
    _schedule(node, rate)


def _schedule(node: Node, rate: float) -> None:
    which = node.which("learning_rate")
    if which in (None, "constant_learning_rate"):
        node.mark("constant_learning_rate")
        return
    schedule = node.child(which)
    mark_every_field(schedule)
    node.approximate(
        which,
        f"the learning rate stays at {rate:g} ({which} is not applied; train.lr_schedule: cosine is mtlrec's decay)",
        "train.lr",
    )
