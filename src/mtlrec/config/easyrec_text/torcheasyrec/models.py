"""TorchEasyRec's model section → mtlrec's tasks (towers, losses, metrics) and architecture params."""

from __future__ import annotations

from functools import partial
from typing import Any

from mtlrec.config.easyrec_text.common import (
    check_label,
    extraction_networks,
    ignore_extra_losses,
    indicator_space,
    read_metrics,
    relations,
    task_name,
    unknown_loss,
)
from mtlrec.config.easyrec_text.convert import Conversion, require
from mtlrec.config.easyrec_text.nodes import Node
from mtlrec.config.easyrec_text.torcheasyrec.data import Reading

DIALECT = "TorchEasyRec"

#: the multi-task models (the oneof field) → mtlrec's architecture
ARCHITECTURES: dict[str, str] = {
    "mmoe": "mmoe", "ple": "ple", "dbmtl": "dbmtl", "simple_multi_task": "shared_bottom", "pepnet": "pepnet",
}  # fmt: skip
#: LossConfig → mtlrec loss
LOSSES: dict[str, str] = {
    "binary_cross_entropy": "bce", "softmax_cross_entropy": "softmax_ce", "l2_loss": "mse",
    "binary_focal_loss": "focal",
}  # fmt: skip
#: MetricConfig → mtlrec metric
METRICS: dict[str, str] = {
    "auc": "auc", "grouped_auc": "gauc", "mean_absolute_error": "mae", "mean_squared_error": "rmse",
    "accuracy": "accuracy", "xauc": "xauc", "normalized_entropy": "logloss",
}  # fmt: skip


def _mlp(node: Node, conversion: Conversion) -> list[int]:
    """The hidden units of an MLP (its style remembered): TorchEasyRec's MLPs normalize by use_bn or use_ln."""
    if node.has("bias") and not node.get("bias"):
        node.approximate("bias", "mtlrec's layers keep their biases")
    node.mark("bias")
    return conversion.style.read(node, ("use_bn", "use_ln"))


# ---------------------------------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------------------------------


def _task(tower: Node, index: int, reading: Reading, conversion: Conversion) -> dict[str, Any]:
    name = task_name(tower, index)
    label = require(tower.get("label_name"), conversion.tracker, tower.at("label_name"), "give the label_name")
    check_label(tower, label, reading.label_fields)
    task: dict[str, Any] = {"name": name, "label": {"column": label}}
    _loss(tower, task)
    metrics = _metrics(tower.children("metrics"), conversion)
    if metrics:
        task["metrics"] = metrics
    if tower.get("weight") != 1.0:
        task["weight"] = tower.get("weight")
    if tower.opt("sample_weight_name"):
        task["sample_weight"] = tower.get("sample_weight_name")
        tower.approximate(
            "sample_weight_name",
            "rows weigh their column's value (TorchEasyRec also divides the weights by their batch mean)",
        )
    if tower.has("task_space_indicator_label"):
        weights = indicator_space(task, tower, DIALECT)
        if weights[1] != 0.0:
            tower.approximate(
                "in_task_space_weight",
                "rows weigh the formula's value (TorchEasyRec also divides the weights by their batch mean)",
            )
    task["tower_hidden_units"] = _mlp(tower.child("mlp"), conversion) if tower.has("mlp") else []
    return task


def _loss(tower: Node, task: dict[str, Any]) -> None:
    num_class = tower.get("num_class")
    losses = tower.children("losses")
    ignore_extra_losses(losses)
    which = (
        losses[0].which("loss") if losses else ("binary_cross_entropy" if num_class == 1 else "softmax_cross_entropy")
    )
    if which not in LOSSES:
        raise unknown_loss(losses[0], which, which)
    task["loss"] = LOSSES[which]
    body = losses[0].child(which) if losses else None
    if which in ("binary_cross_entropy", "softmax_cross_entropy") and body is not None and body.get("label_smoothing"):
        task["loss_params"] = {"label_smoothing": body.get("label_smoothing")}
    if which == "binary_focal_loss":
        task["loss_params"] = {"gamma": body.get("gamma"), "alpha": body.get("alpha")}
    if which == "softmax_cross_entropy":
        task["label"]["classes"] = list(range(num_class))
    elif num_class != 1:
        raise tower.error("num_class", f"{num_class} classes with {which}; use softmax_cross_entropy")


def _metrics(nodes: list[Node], conversion: Conversion) -> list[str]:
    return read_metrics(nodes, METRICS, partial(_metric_notes, conversion))


def _metric_notes(conversion: Conversion, which: str, node: Node, metric: Node) -> None:
    """What differs in one MetricConfig (``which``: its field, ``metric``: its message)."""
    if which == "auc" and metric.has("thresholds"):
        metric.approximate("thresholds", "mtlrec's AUC is exact (no thresholds)")
    if which == "grouped_auc":
        conversion.set_group_by(metric.get("grouping_key"), metric.at("grouping_key"))
    if which in ("mean_squared_error", "normalized_entropy"):
        node.approximate(which, f"reported as {METRICS[which]}")
    if which == "xauc" and metric.message.ListFields():
        node.approximate(which, "mtlrec's XAUC counts every pair (no sampling)")


# ---------------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------------


def _towers(body: Node, reading: Reading, conversion: Conversion) -> list[dict[str, Any]]:
    return [_task(t, i, reading, conversion) for i, t in enumerate(body.children("task_towers"))]


def _mmoe(body: Node, reading: Reading, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    if not body.has("expert_mlp"):
        raise body.error("expert_mlp", "missing; MMoE needs the experts' MLP")
    params: dict[str, Any] = {
        "num_experts": int(body.get("num_expert")),
        "expert_hidden_units": _mlp(body.child("expert_mlp"), conversion),
    }
    if body.has("gate_mlp"):
        params["gate_hidden_units"] = [int(u) for u in body.child("gate_mlp").get("hidden_units")]
    return _towers(body, reading, conversion), params


def _ple(body: Node, reading: Reading, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    params = extraction_networks(body, partial(_mlp, conversion=conversion))
    return _towers(body, reading, conversion), params


def _dbmtl(body: Node, reading: Reading, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    params: dict[str, Any] = {
        "bottom_hidden_units": _mlp(body.child("bottom_mlp"), conversion) if body.has("bottom_mlp") else []
    }
    if body.has("expert_mlp"):
        params["num_experts"] = int(body.get("num_expert"))
        params["expert_hidden_units"] = _mlp(body.child("expert_mlp"), conversion)
        if body.has("gate_mlp"):
            body.ignore("gate_mlp", "mtlrec's DBMTL gates are linear")
    else:
        body.mark("num_expert")
    towers = body.children("task_towers")
    tasks = [_task(t, i, reading, conversion) for i, t in enumerate(towers)]
    relations(params, tasks, towers, "relation_mlp", partial(_mlp, conversion=conversion))
    return tasks, params


def _simple_multi_task(body: Node, reading: Reading, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    return _towers(body, reading, conversion), {"bottom_hidden_units": []}


def _pepnet(body: Node, reading: Reading, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    tasks = _towers(body, reading, conversion)
    ppnet = [int(u) for u in body.get("ppnet_hidden_units")]
    for task in tasks:
        task["tower_hidden_units"] = ppnet + task["tower_hidden_units"]
    body.approximate(
        "ppnet_hidden_units",
        "each task's tower is the PPNet layers then the task tower's MLP, and "
        "PPNet's gates scale every one of its layers (TorchEasyRec: the PPNet layers only)",
        "tasks",
    )
    params: dict[str, Any] = {"gate_scale": body.get("epnet_gamma")}
    if body.has("epnet_hidden_unit"):
        params["gate_hidden_dim"] = int(body.get("epnet_hidden_unit"))
    else:
        body.approximate(
            "epnet_hidden_unit",
            "not set: the gates' hidden width is mtlrec's default (64; TorchEasyRec: the width of the group 'all')",
            "model.params",
        )
    if body.get("ppnet_gamma") != body.get("epnet_gamma"):
        body.approximate("ppnet_gamma", f"one gate scale for EPNet and PPNet: {body.get('epnet_gamma')}")
    activation = body.get("ppnet_activation")
    conversion.style.activations.append((body.at("ppnet_activation"), activation))
    ratios = body.get("ppnet_dropout_ratio")
    conversion.style.dropouts.extend((body.at("ppnet_dropout_ratio"), float(r)) for r in ratios)
    conversion.style.layers += len(ppnet)
    if body.opt("domain_input_name"):
        body.ignore(
            "domain_input_name",
            "one tower per task, not one per domain (the domain group's EPNet personalises the input)",
        )
    body.mark("task_domain_num")
    return tasks, params


#: the model section → (its tasks, the architecture's params)
MODELS = {"mmoe": _mmoe, "ple": _ple, "dbmtl": _dbmtl, "simple_multi_task": _simple_multi_task, "pepnet": _pepnet}
