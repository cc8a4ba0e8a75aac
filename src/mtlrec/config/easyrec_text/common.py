"""Section readers both dialects share; each dialect passes its own field names and wording where they differ.

:mod:`.convert` holds the conversion state and the whole-config steps; this module holds the smaller
pieces the two converters (:mod:`.easyrec`, :mod:`.torcheasyrec`) would otherwise repeat: hints for
unread fields, CSV options, vocabulary notes, feature and group bookkeeping, task names and labels,
task spaces, losses, metrics, PLE and DBMTL parameters, batch sizes and optimizer notes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from mtlrec.config.easyrec_text.convert import require, task_space
from mtlrec.config.easyrec_text.nodes import Node, Tracker
from mtlrec.errors import ConfigError

#: why an unread field is ignored, when the dialect's hints do not name it
DEFAULT_HINT = "no mtlrec equivalent; remove it, or see docs/guides/easyrec.md"


def field_hint(hints: dict[str, str], path: str) -> str:
    """Why the field at ``path`` is ignored: its dialect's hint for the field name (the path's last part)."""
    name = path.rsplit(".", 1)[-1].split("[", 1)[0]
    return hints.get(name, DEFAULT_HINT)


# ---------------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------------


def file_options(config: Node, data: dict[str, Any], delimiter_field: str, names: list[str]) -> None:
    """``data.csv`` unless the data is Parquet (whose files need no delimiter or header: counted as read).

    Args:
        config: the dialect's data config; ``delimiter_field`` names its delimiter field.
        names: the input fields' names, the columns of a CSV without a header.
    """
    if data.get("format") != "parquet":
        data["csv"] = _csv(config, delimiter_field, names)
    else:
        config.mark(delimiter_field, "with_header")


def _csv(config: Node, delimiter_field: str, names: list[str]) -> dict[str, Any]:
    delimiter = config.get(delimiter_field)
    if len(delimiter) != 1:
        raise config.error(delimiter_field, f"{delimiter!r}: mtlrec reads CSV with a one-character delimiter")
    csv: dict[str, Any] = {"delimiter": delimiter, "header": config.get("with_header")}
    if not csv["header"]:
        if not names:
            raise config.error("input_fields", "missing; a CSV without a header needs the column names")
        csv["column_names"] = names
    return csv


# ---------------------------------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------------------------------


def named(name: str, column: str, kind: str) -> dict[str, Any]:
    """A feature's first keys: its name, its kind, and its column when that is not the name."""
    feature: dict[str, Any] = {"name": name, "kind": kind}
    if column != name:
        feature["column"] = column
    return feature


def embedding(node: Node, feature: dict[str, Any]) -> dict[str, Any]:
    """The feature with the config's ``embedding_name`` (a shared table) and ``embedding_dim``, when set."""
    if node.opt("embedding_name"):
        feature["embedding"] = node.get("embedding_name")
    if node.opt("embedding_dim"):
        feature["embedding_dim"] = int(node.get("embedding_dim"))
    return feature


def listed_vocabulary(node: Node, size: int, detail: str = "") -> dict[str, Any]:
    """``vocab_list`` → a vocabulary fitted on the training data, capped at the list's length."""
    node.approximate("vocab_list", f"a vocabulary fitted on the training data, capped at {size} values{detail}")
    return {"max_vocab_size": size}


def file_vocabulary(node: Node) -> dict[str, Any]:
    """``vocab_file`` → a vocabulary fitted on the training data (the file itself is not read)."""
    node.approximate("vocab_file", "a vocabulary fitted on the training data (the file is not read)")
    return {}


def bucket_vocabulary(node: Node, buckets: int, dialect: str) -> dict[str, Any]:
    """``num_buckets`` (integer values as ids) → a vocabulary of the most frequent values, as many."""
    node.approximate(
        "num_buckets",
        f"{dialect} uses the integer values as ids below {buckets}; mtlrec fits a vocabulary on "
        f"the training data, capped at the {buckets} most frequent values",
    )
    return {"max_vocab_size": int(buckets)}


def ignore_unused_groups(
    tracker: Tracker, groups: dict[str, Node], read: Collection[str], model: str, input_groups: list[str]
) -> None:
    """Note the feature groups the model does not read (``model``: e.g. ``EasyRec's MMoE``)."""
    for name, node in groups.items():
        if name not in read:
            tracker.ignore(node.path, f"{model} reads only {input_groups}; the group '{name}' is unused")


def sequence_targets(ordered: list[dict[str, Any]], sequences: list, tracker: Tracker) -> dict[str, int]:
    """Point the feature configs read by each sequence at that sequence; returns the features' positions."""
    index = {feature["name"]: i for i, feature in enumerate(ordered)}
    for history, feature in sequences:
        for source in history:
            tracker.targets[source.node.path] = f"features[{index[feature['name']]}]"
    return index


def ignore_unused_feature(tracker: Tracker, path: str, name: str) -> None:
    """Note a feature config that no group the model reads names."""
    tracker.ignore(
        path,
        f"feature '{name}' is in no feature group the model reads (mtlrec keeps only the features a group reads)",
    )


# ---------------------------------------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------------------------------------


def task_name(tower: Node, index: int) -> str:
    """A task tower becomes ``tasks[index]``; its ``tower_name`` (required)."""
    tower.maps_to(f"tasks[{index}]")
    return require(tower.get("tower_name"), tower.tracker, tower.at("tower_name"), "name every task tower")


def check_label(tower: Node, label: str, label_fields: list[str]) -> None:
    """The tower's label is one of the data config's label fields (when it lists any)."""
    if label_fields and label not in label_fields:
        raise tower.error(
            "label_name",
            f"'{label}' is not one of data_config.label_fields {label_fields}",
            ("label_name", label),
        )


def indicator_space(task: dict[str, Any], tower: Node, dialect: str) -> tuple[float, float]:
    """``task_space_indicator_label``: the task space is the rows where that label is positive.

    Returns:
        The loss weights of rows inside and outside the space.
    """
    indicator = tower.get("task_space_indicator_label")
    weights = (tower.get("in_task_space_weight"), tower.get("out_task_space_weight"))
    fields = ("task_space_indicator_label", "in_task_space_weight", "out_task_space_weight")
    task_space(task, (f"{indicator} > 0", f"{indicator} <= 0"), weights, tower, dialect, fields)
    return weights


def ignore_extra_losses(losses: list[Node]) -> None:
    """mtlrec trains one loss per task: the losses after the first are noted as ignored."""
    for extra in losses[1:]:
        extra.tracker.ignore(extra.path, "mtlrec trains one loss per task: the first one")


def unknown_loss(node: Node, field: str, loss: str) -> ConfigError:
    """The error for a loss mtlrec lacks (``field`` of ``node`` chose it)."""
    return node.error(field, f"{loss} has no mtlrec equivalent; mtlrec's losses: bce, focal, mse, huber, softmax_ce")


def read_metrics(nodes: list[Node], table: dict[str, str], details: Callable[[str, Node, Node], None]) -> list[str]:
    """The mtlrec metrics of a tower's metric configs, without repeats; the ones mtlrec lacks are noted.

    Args:
        nodes: the metric configs (a oneof ``metric`` each).
        table: the dialect's metric (the oneof's field) → mtlrec metric.
        details: the dialect's notes on one metric: (its field, the config, the metric's message).
    """
    found: list[str] = []
    for node in nodes:
        which = node.which("metric")
        if which not in table:
            node.tracker.ignore(
                node.path,
                f"{which} has no mtlrec metric (mtlrec's: auc, gauc, logloss, "
                "calibration, ece, rmse, mae, xauc, accuracy)",
            )
            continue
        details(which, node, node.child(which))
        found.append(table[which])
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------------


def extraction_networks(body: Node, read: Callable[[Node], list[int]]) -> dict[str, Any]:
    """PLE's ``extraction_networks`` (``read``: the hidden units of the dialect's DNN/MLP) → the model params."""
    networks = []
    for node in body.children("extraction_networks"):
        task_net = {"hidden_units": read(node.child("task_expert_net"))}
        share_net = (
            {"hidden_units": read(node.child("share_expert_net"))} if node.has("share_expert_net") else dict(task_net)
        )
        networks.append({
            "network_name": node.get("network_name"),
            "expert_num_per_task": int(node.get("expert_num_per_task")),
            "share_num": int(node.get("share_num")),
            "task_expert_net": task_net,
            "share_expert_net": share_net,
        })  # fmt: skip
    if not networks:
        raise body.error("extraction_networks", "missing; PLE needs at least one extraction network")
    return {"extraction_networks": networks}


def relations(
    params: dict[str, Any], tasks: list[dict], towers: list[Node], field: str, read: Callable[[Node], list[int]]
) -> None:
    """DBMTL's task relations and the relation networks' widths (one for all: the most common) → params.

    Args:
        field: the towers' relation network field (``relation_dnn``, ``relation_mlp``).
        read: the hidden units of the dialect's DNN/MLP.
    """
    params["relation_tasks"] = {task["name"]: t.get("relation_tower_names") for task, t in zip(tasks, towers)}
    widths = [read(t.child(field)) if t.has(field) else [] for t in towers]
    common = max(widths, key=widths.count) if widths else []
    params["relation_hidden_units"] = common
    for tower, units in zip(towers, widths):
        if units != common:
            tower.approximate(field, f"one relation network width for every task: {common}")


# ---------------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------------


def batch_sizes(data_config: Node) -> dict[str, Any]:
    """``train.batch_size`` and, when set, ``train.eval_batch_size``."""
    train: dict[str, Any] = {"batch_size": int(data_config.get("batch_size"))}
    if data_config.has("eval_batch_size"):
        train["eval_batch_size"] = int(data_config.get("eval_batch_size"))
    return train


def sparse_adam(node: Node, which: str) -> None:
    """Note an embedding optimizer other than Adam: mtlrec's embeddings train with its row-sparse Adam."""
    node.approximate(which, "embeddings use mtlrec's row-sparse Adam at the same learning rate", "train.embedding_lr")


def mark_every_field(node: Node) -> None:
    """Count every field of the message as read (a learning-rate schedule that is noted as a whole)."""
    for name in node.message.DESCRIPTOR.fields_by_name:
        node.mark(name)
