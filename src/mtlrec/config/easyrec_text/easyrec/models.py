"""EasyRec's model section → mtlrec's tasks (towers, losses, metrics), architecture params and weighting."""

from __future__ import annotations

from collections.abc import Callable
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
from mtlrec.config.easyrec_text.convert import Conversion, require, task_space
from mtlrec.config.easyrec_text.easyrec.data import Inputs
from mtlrec.config.easyrec_text.nodes import Node

DIALECT = "EasyRec"

#: the multi-task models (the oneof field) → mtlrec's architecture
ARCHITECTURES: dict[str, str] = {
    "mmoe": "mmoe", "ple": "ple", "dbmtl": "dbmtl", "esmm": "esmm", "simple_multi_task": "shared_bottom",
}  # fmt: skip
MODEL_CLASSES: dict[str, str] = {
    "mmoe": "MMoE", "ple": "PLE", "dbmtl": "DBMTL", "esmm": "ESMM", "simple_multi_task": "SimpleMultiTask",
}  # fmt: skip

#: LossType → mtlrec loss (CLASSIFICATION depends on num_class)
LOSSES: dict[str, str] = {
    "BINARY_CROSS_ENTROPY_LOSS": "bce", "CROSS_ENTROPY_LOSS": "bce", "SOFTMAX_CROSS_ENTROPY": "softmax_ce",
    "L2_LOSS": "mse", "SIGMOID_L2_LOSS": "mse", "BINARY_FOCAL_LOSS": "focal",
}  # fmt: skip
#: EvalMetrics → mtlrec metric
METRICS: dict[str, str] = {
    "auc": "auc", "gauc": "gauc", "mean_absolute_error": "mae", "root_mean_squared_error": "rmse",
    "mean_squared_error": "rmse", "accuracy": "accuracy",
}  # fmt: skip
#: loss_weight_strategy → mtlrec weighting
WEIGHTINGS: dict[str, str] = {"Fixed": "fixed", "Uncertainty": "uncertainty", "Random": "rlw"}


def model_kind(model: Node) -> str:
    """The model section set (the oneof ``model``), which ``model_class`` must agree with."""
    kind = model.which("model")
    model_class = model.get("model_class")
    if kind is None:
        raise model.error(
            "model_class",
            f"'{model_class}' with no model section: mtlrec converts the multi-task models "
            f'{", ".join(MODEL_CLASSES.values())} (e.g. model_class: "MMoE" and mmoe {{ ... }})',
        )
    if model_class and model_class != MODEL_CLASSES[kind]:
        raise model.error(
            "model_class",
            f"'{model_class}' does not match the model section '{kind}'; write model_class: \"{MODEL_CLASSES[kind]}\"",
        )
    return kind


def weighting(model: Node) -> dict[str, Any]:
    """loss_weight_strategy → mtlrec's ``weighting``."""
    strategy = model.get("loss_weight_strategy")
    if strategy != "Fixed":
        model.approximate(
            "loss_weight_strategy", f"{strategy} → mtlrec's '{WEIGHTINGS[strategy]}' weighting", "weighting"
        )
    return {"name": WEIGHTINGS[strategy]}


# ---------------------------------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------------------------------


def _task(tower: Node, index: int, inputs: Inputs, conversion: Conversion, towers: bool = True) -> dict[str, Any]:
    """A TaskTower / BayesTaskTower → an mtlrec task (its tower widths too, unless ``towers`` is False)."""
    name = task_name(tower, index)
    label = tower.get("label_name") or (inputs.label_fields[index] if index < len(inputs.label_fields) else None)
    label = require(label, conversion.tracker, tower.at("label_name"), "give the tower's label_name")
    check_label(tower, label, inputs.label_fields)
    task: dict[str, Any] = {"name": name, "label": {"column": label}}
    weight = _loss(tower, task)
    metrics = _metrics(tower.children("metrics_set"), conversion)
    if metrics:
        task["metrics"] = metrics
    weight *= tower.get("weight")
    if weight != 1.0:
        task["weight"] = weight
    if tower.get("use_sample_weight") and inputs.sample_weight:
        task["sample_weight"] = inputs.sample_weight
    if tower.has("task_space_indicator_label"):
        indicator_space(task, tower, DIALECT)
    if tower.has("task_space_indicator_name"):
        column, value = tower.get("task_space_indicator_name"), tower.get("task_space_indicator_value")
        weights = (tower.get("in_task_space_weight"), tower.get("out_task_space_weight"))
        space = (f'{column} == "{value}"', f'{column} != "{value}"')
        fields = ("task_space_indicator_name", "task_space_indicator_value", "in_task_space_weight")
        task_space(task, space, weights, tower, DIALECT, fields)
    if towers:
        task["tower_hidden_units"] = conversion.style.read(tower.child("dnn"), ("use_bn",)) if tower.has("dnn") else []
    return task


def _loss(tower: Node, task: dict[str, Any]) -> float:
    """The task's loss (the first of ``losses``, else ``loss_type``); returns the loss's weight."""
    num_class = tower.get("num_class")
    losses = tower.children("losses")
    ignore_extra_losses(losses)
    node, loss_type = (losses[0], losses[0].get("loss_type")) if losses else (tower, tower.get("loss_type"))
    weight = losses[0].get("weight") if losses else 1.0
    if losses:
        losses[0].mark("loss_name")
        if losses[0].get("learn_loss_weight"):
            losses[0].ignore("learn_loss_weight", "set weighting.name: uncertainty to learn every task's weight")
    if loss_type == "CLASSIFICATION":
        loss = "bce" if num_class == 1 else "softmax_ce"
    elif loss_type in LOSSES:
        loss = LOSSES[loss_type]
    else:
        raise unknown_loss(node, "loss_type", loss_type)
    if loss_type == "SIGMOID_L2_LOSS":
        node.approximate("loss_type", "mean squared error of the raw output (EasyRec squashes it by a sigmoid first)")
    if loss == "softmax_ce":
        task["label"]["classes"] = list(range(num_class))
    elif num_class != 1:
        raise tower.error(
            "num_class",
            f"{num_class} classes with {loss_type}; a multi-class task uses CLASSIFICATION or SOFTMAX_CROSS_ENTROPY",
        )
    task["loss"] = loss
    if loss == "focal":
        task["loss_params"] = _focal(node.child("binary_focal_loss") if losses else None)
    return weight


def _focal(node: Node | None) -> dict[str, Any]:
    if node is None:
        return {"gamma": 2.0, "alpha": None}
    params = {"gamma": node.get("gamma"), "alpha": node.opt("alpha")}
    if node.get("ohem_ratio") != 1.0:
        node.ignore("ohem_ratio", "every row's loss counts (no hard-example mining)")
    if node.get("label_smoothing"):
        node.ignore("label_smoothing", "mtlrec's focal loss takes no label smoothing")
    return params


def _metrics(nodes: list[Node], conversion: Conversion) -> list[str]:
    return read_metrics(nodes, METRICS, partial(_metric_notes, conversion))


def _metric_notes(conversion: Conversion, which: str, node: Node, metric: Node) -> None:
    """What differs in one EvalMetrics (``which``: its field, ``metric``: its message)."""
    if which == "auc" and metric.has("num_thresholds"):
        metric.approximate("num_thresholds", "mtlrec's AUC is exact (no thresholds)")
    if which == "gauc":
        conversion.set_group_by(metric.get("uid_field"), metric.at("uid_field"))
        if metric.get("reduction") != "mean":
            metric.approximate("reduction", "mtlrec's gauc is the impression-weighted mean")
    if which == "mean_squared_error":
        node.approximate(which, "reported as its square root (rmse)")


# ---------------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------------


def _dnn(conversion: Conversion) -> Callable[[Node], list[int]]:
    """The hidden units of a DNN (its style remembered): EasyRec's DNNs normalize by ``use_bn``."""
    return partial(conversion.style.read, norms=("use_bn",))


def _towers(body: Node, inputs: Inputs, conversion: Conversion) -> list[dict[str, Any]]:
    return [_task(t, i, inputs, conversion) for i, t in enumerate(body.children("task_towers"))]


def _mmoe(body: Node, inputs: Inputs, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    experts = body.children("experts")
    if experts:
        widths = [conversion.style.read(e.child("dnn"), ("use_bn",)) for e in experts]
        for expert in experts:
            expert.mark("expert_name")
        for expert, units in zip(experts[1:], widths[1:]):
            if units != widths[0]:
                expert.approximate("dnn", f"every expert has the first one's widths {widths[0]}")
        params = {"num_experts": len(experts), "expert_hidden_units": widths[0]}
        body.mark("num_expert")
    else:
        if not body.has("expert_dnn") or body.get("num_expert") < 1:
            raise body.error("expert_dnn", "MMoE needs expert_dnn and num_expert (or experts)")
        units = conversion.style.read(body.child("expert_dnn"), ("use_bn",))
        params = {"num_experts": int(body.get("num_expert")), "expert_hidden_units": units}
    return _towers(body, inputs, conversion), params


def _ple(body: Node, inputs: Inputs, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    params = extraction_networks(body, _dnn(conversion))
    return _towers(body, inputs, conversion), params


def _dbmtl(body: Node, inputs: Inputs, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    style = conversion.style
    params: dict[str, Any] = {
        "bottom_hidden_units": style.read(body.child("bottom_dnn"), ("use_bn",)) if body.has("bottom_dnn") else []
    }
    if body.has("expert_dnn"):
        if body.get("num_expert") < 1:
            raise body.error("num_expert", "expert_dnn needs num_expert >= 1")
        params["num_experts"] = int(body.get("num_expert"))
        params["expert_hidden_units"] = style.read(body.child("expert_dnn"), ("use_bn",))
    else:
        body.mark("num_expert")
    towers = body.children("task_towers")
    tasks = [_task(t, i, inputs, conversion) for i, t in enumerate(towers)]
    relations(params, tasks, towers, "relation_dnn", _dnn(conversion))
    return tasks, params


def _esmm(body: Node, inputs: Inputs, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    style = conversion.style
    groups = body.children("groups")
    params: dict[str, Any] = {"bottom_hidden_units": style.read(groups[0].child("dnn"), ("use_bn",)) if groups else []}
    for group in groups[1:]:
        style.read(group.child("dnn"), ("use_bn",))
        group.approximate(
            "dnn",
            "the groups' DNNs are not built one per group: mtlrec's ESMM reads the groups side "
            "by side through the first group's DNN as a shared bottom",
        )
    ctr = _task(body.child("ctr_tower"), 0, inputs, conversion, towers=False)
    cvr = _task(body.child("cvr_tower"), 1, inputs, conversion, towers=False)
    for task, tower in ((ctr, body.child("ctr_tower")), (cvr, body.child("cvr_tower"))):
        if task["loss"] != "bce":
            raise tower.error("loss_type", "mtlrec's ESMM has binary tasks only (CLASSIFICATION)")
    units = [style.read(body.child(t).child("dnn"), ("use_bn",)) for t in ("ctr_tower", "cvr_tower")]
    params["tower_hidden_units"] = units[0]
    if units[1] != units[0]:
        body.child("cvr_tower").approximate("dnn", f"both towers have the CTR tower's widths {units[0]}")
    name = "ctcvr" if "ctcvr" not in (ctr["name"], cvr["name"]) else f"{cvr['name']}_ctcvr"
    ctcvr = {key: value for key, value in cvr.items() if key not in ("name", "sample_space")}
    cvr["sample_space"] = f"{ctr['label']['column']} > 0"
    cvr.pop("weight", None)
    body.approximate(
        "cvr_tower",
        f"three tasks [{ctr['name']}, {cvr['name']}, {name}]: {name} learns pCTR·pCVR on "
        f"'{cvr['label']['column']}' itself (EasyRec: {cvr['label']['column']} × {ctr['label']['column']}, the same "
        "when conversions only follow clicks); losses are means over the batch (EasyRec: sums)",
        "tasks",
    )
    return [ctr, cvr, {"name": name, **ctcvr}], params


def _simple_multi_task(body: Node, inputs: Inputs, conversion: Conversion) -> tuple[list[dict], dict[str, Any]]:
    return _towers(body, inputs, conversion), {"bottom_hidden_units": []}


#: the model section → (its tasks, the architecture's params)
MODELS = {"mmoe": _mmoe, "ple": _ple, "dbmtl": _dbmtl, "esmm": _esmm, "simple_multi_task": _simple_multi_task}
