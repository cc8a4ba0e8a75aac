"""A parsed EasyRec / TorchEasyRec pipeline → the mtlrec config as plain data, with notes.

The dialects' own sections are read by the packages :mod:`.easyrec` and :mod:`.torcheasyrec`
(``CONVERTERS`` in the package picks one); this module holds what they share across sections: the
conversion state, activations and MLP styles, task spaces and weights, epochs from steps, and the
final touches (one ``model.embedding_dim`` for the common width). :mod:`.common` holds the smaller
section readers they share.
"""

from __future__ import annotations

import gzip
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from mtlrec.config.easyrec_text.nodes import Node, Note, Tracker, report_unread
from mtlrec.errors import ConfigError

#: mtlrec's activation for each spelling the two projects use
ACTIVATIONS: dict[str, str] = {
    "relu": "relu", "tf.nn.relu": "relu", "nn.ReLU": "relu",
    "gelu": "gelu", "tf.nn.gelu": "gelu", "nn.GELU": "gelu",
    "tanh": "tanh", "tf.nn.tanh": "tanh", "nn.Tanh": "tanh",
    "sigmoid": "sigmoid", "tf.nn.sigmoid": "sigmoid", "nn.Sigmoid": "sigmoid",
    "swish": "silu", "tf.nn.swish": "silu", "silu": "silu", "nn.SiLU": "silu",
    "prelu": "prelu", "nn.PReLU": "prelu",
}  # fmt: skip
#: activations mtlrec lacks → the nearest it has
NEAREST_ACTIVATIONS: dict[str, str] = {"dice": "prelu", "Dice": "prelu", "nn.LeakyReLU": "prelu", "leaky_relu": "prelu"}


def mtlrec_activation(name: str) -> str | None:
    """mtlrec's activation for a spelling of either project (the nearest it has), None when it has none."""
    return ACTIVATIONS.get(name) or NEAREST_ACTIVATIONS.get(name)


#: positions kept of a behaviour sequence whose length the config leaves open
DEFAULT_SEQUENCE_LENGTH = 50

#: the split carved out of the training file when the evaluation input is the training input itself
HELD_OUT = {"valid": 0.1, "test": 0.2}


@dataclass
class MlpStyle:
    """The activation, dropout and normalization of every DNN/MLP read, for the architecture's params."""

    activations: list[tuple[str, str]] = field(default_factory=list)
    dropouts: list[tuple[str, float]] = field(default_factory=list)
    normalized: list[str] = field(default_factory=list)
    normalized_by_default: list[str] = field(default_factory=list)
    layers: int = 0

    def read(self, node: Node, norms: tuple[str, ...]) -> list[int]:
        """The hidden units of one DNN/MLP node; remembers its style. ``norms``: its normalization flags."""
        units = [int(u) for u in node.get("hidden_units")]
        self.layers += len(units)
        self.activations.append((node.at("activation"), node.get("activation")))
        ratios = node.get("dropout_ratio")
        self.dropouts.extend((node.at("dropout_ratio"), float(r)) for r in ratios)
        for flag in norms:
            explicit = node.has(flag)
            if node.get(flag) and units:
                (self.normalized if explicit else self.normalized_by_default).append(node.at(flag))
        return units

    def params(self, tracker: Tracker, model_path: str, dialect: str) -> dict[str, Any]:
        """``activation`` and ``dropout`` for the architecture, noting where the DNNs disagree or differ."""
        params: dict[str, Any] = {}
        names = [(path, mtlrec_activation(name)) for path, name in self.activations]
        for (path, name), (_, mapped) in zip(self.activations, names):
            if mapped is None:
                raise ConfigError(
                    f"{tracker.source}: {path}: activation '{name}' has no mtlrec equivalent; use one of "
                    f"{sorted(set(ACTIVATIONS))}"
                )
            if name in NEAREST_ACTIVATIONS:
                tracker.approximate(path, f"activation '{name}' → '{mapped}' (the nearest mtlrec has)", "model.params")
        chosen = Counter(mapped for _, mapped in names).most_common(1)[0][0] if names else "relu"
        for path, mapped in names:
            if mapped != chosen:
                tracker.approximate(path, f"one activation for the whole architecture: '{chosen}'", "model.params")
        if chosen != "relu":
            params["activation"] = chosen
        ratios = sorted({r for _, r in self.dropouts})
        if ratios and ratios != [0.0]:
            params["dropout"] = max(ratios)
            if len(ratios) > 1 or len(self.dropouts) < self.layers:
                for path, _ in self.dropouts:
                    tracker.approximate(
                        path, f"one dropout rate for every layer of the architecture: {max(ratios)}", "model.params"
                    )
        for path in self.normalized:
            tracker.approximate(path, "mtlrec's MLPs have no batch/layer normalization; layers left without it")
        if self.normalized_by_default:
            tracker.approximate(
                model_path,
                f"{dialect}'s DNNs apply batch normalization by default (use_bn, {len(self.normalized_by_default)} "
                "DNNs here); mtlrec's MLPs have none",
                "model",
            )
        return params


@dataclass
class Conversion:
    """The state of one conversion: the tracker, the MLP style, and the features by name."""

    tracker: Tracker
    style: MlpStyle = field(default_factory=MlpStyle)
    group_by: str | None = None

    def set_group_by(self, column: str, path: str) -> None:
        """The column of the gauc metric (one for the whole config in mtlrec)."""
        if self.group_by not in (None, column):
            self.tracker.approximate(path, f"gauc groups by '{self.group_by}' for every task (one column in mtlrec)")
        self.group_by = self.group_by or column


def task_space(
    task: dict[str, Any],
    space: tuple[str, str],
    weights: tuple[float, float],
    node: Node,
    dialect: str,
    fields: tuple[str, ...],
) -> None:
    """A task space → ``sample_space`` (weights 1/0), a scaled ``weight`` (x/0) or a ``sample_weight`` formula.

    Args:
        task: the mtlrec task, changed in place.
        space: the condition that holds inside the task space and its complement, e.g. ``("clk > 0", "clk <= 0")``.
        weights: the loss weights of rows inside and outside the space.
        node: the task tower; ``fields`` are its fields that spell the space (noted or counted as read).
        dialect: ``EasyRec`` or ``TorchEasyRec``, for the notes.
    """
    (condition, complement), (inside, outside) = space, weights
    if outside == 0.0:
        task["sample_space"] = condition
        if inside != 1.0:
            task["weight"] = task.get("weight", 1.0) * inside
        node.approximate(
            fields[0],
            f"the task learns on rows where {condition}, as in {dialect}; mtlrec also evaluates it on those rows "
            f"only ({dialect} evaluates every row)",
        )
        node.mark(*fields[1:])
        return
    formula = f"{_number(inside)} * ({condition}) + {_number(outside)} * ({complement})"
    task["sample_weight"] = f"({task['sample_weight']}) * ({formula})" if task.get("sample_weight") else formula
    node.mark(*fields)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def count_rows(path: str, fmt: str | None, header: bool) -> int | None:
    """Rows of a local CSV (plain or .gz) or Parquet file; None when it cannot be read here."""
    file = Path(path)
    if not file.is_file():
        return None
    if fmt == "parquet" or file.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(file).metadata.num_rows
    opener = gzip.open if file.suffix == ".gz" else open
    lines, last = 0, b"\n"
    with opener(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return lines - int(header)


def steps_and_epochs(
    tracker: Tracker, steps: tuple[str, int] | None, epochs: tuple[str, int] | None, batch_size: int, data: dict
) -> dict[str, int]:
    """``train.max_steps`` and ``train.epochs`` from the pipeline's number of steps and/or epochs.

    EasyRec and TorchEasyRec stop at whichever limit comes first, and so does mtlrec: ``num_steps``
    becomes ``max_steps``, and without ``num_epochs`` the epochs are those the steps need over the
    training rows (counted in the file).

    Args:
        steps: (path, num_steps) when set.
        epochs: (path, num_epochs) when set.
        batch_size: rows per step.
        data: the mtlrec ``data`` section (the training file and its held-out fractions).

    Returns:
        The keys to set in ``train`` (none when neither limit is given).
    """
    train = {"epochs": epochs[1]} if epochs else {}
    if not steps:
        return train
    path, count = steps
    train["max_steps"] = count
    tracker.read.add(path)
    if epochs:
        return train
    rows = count_rows(data["train"], data.get("format"), data.get("csv", {}).get("header", True))
    if rows is None:
        tracker.approximate(
            path,
            "the training file is not readable here, so the epochs these steps need are unknown: 1 epoch; "
            "set train.epochs high enough for train.max_steps to be the limit",
            "train.epochs",
        )
        train["epochs"] = 1
        return train
    held_out = sum((data.get("split") or {}).get("fractions", {}).values())
    train_rows = max(1, round(rows * (1.0 - held_out)))
    train["epochs"] = max(1, math.ceil(count * batch_size / train_rows))
    return train


def eval_split(tracker: Tracker, data: dict[str, Any], eval_path: str | None, path: str) -> None:
    """The evaluation input → ``data.valid``; the training file itself → a seeded held-out split instead."""
    if eval_path is None:
        return
    if eval_path != data["train"]:
        data["valid"] = eval_path
        return
    data["split"] = {"source": "train", "fractions": dict(HELD_OUT), "seed": 0}
    tracker.approximate(
        path,
        "the evaluation input is the training input: metrics of training rows would measure memorisation, so "
        f"{HELD_OUT['valid']:.0%} of its rows are held out for validation and {HELD_OUT['test']:.0%} for test "
        "(data.split, seeded)",
        "data.split",
    )


def common_embedding_dim(config: dict[str, Any]) -> None:
    """Move the most common per-feature ``embedding_dim`` to ``model.embedding_dim`` (fewer repeated keys)."""
    holders = [f for f in config["features"] if "embedding_dim" in f] + [
        field
        for f in config["features"]
        if f["kind"] == "sequence"
        for field in f["fields"]
        if "embedding_dim" in field
    ]
    if not holders:
        return
    common = Counter(h["embedding_dim"] for h in holders).most_common(1)[0][0]
    config["model"]["embedding_dim"] = common
    for holder in holders:
        if holder["embedding_dim"] == common:
            del holder["embedding_dim"]


def check_members(tracker: Tracker, group_path: str, members: list[str], known: set[str]) -> None:
    """Every name of a feature group is a defined feature (error naming the line and the field)."""
    for index, name in enumerate(members):
        if name not in known:
            raise tracker.error(
                f"{group_path}.feature_names[{index}]",
                f"feature '{name}' is in the group but no feature config defines it; define it (feature_name, or "
                "the first input name) or remove it from the group",
                ("feature_names", name),
            )


def early_stopping(metric: str, bigger: bool, tasks: list[dict], patience: int | None) -> dict[str, Any]:
    """The exporter's best checkpoint → model selection on the metric (and early stopping).

    Args:
        metric: the metric the exporter compares, ``auc`` or ``auc_<tower>``.
        bigger: larger is better.
        tasks: the mtlrec tasks (the first one's metric is used for a bare metric name).
        patience: epochs without progress before stopping; None: 3 (mtlrec's default).
    """
    name, _, tower = metric.partition("_")
    task = tower if tower in {t["name"] for t in tasks} else tasks[0]["name"]
    return {"metric": f"{task}.{name}", "mode": "max" if bigger else "min", "patience": max(1, patience or 3)}


def finish(root: Message, conversion: Conversion, hint, config: dict[str, Any]) -> tuple[dict[str, Any], list[Note]]:
    """Report unread fields, then return the config and the notes (in config order)."""
    if conversion.group_by:
        config["evaluation"] = {"group_by": conversion.group_by}
    common_embedding_dim(config)
    report_unread(root, conversion.tracker, hint)
    return config, conversion.tracker.resolved_notes()


def require(value: Any, tracker: Tracker, path: str, what: str) -> Any:
    """``value``, or a ConfigError saying the field is missing."""
    if value in (None, "", []):
        raise tracker.error(path, f"missing; {what}")
    return value
