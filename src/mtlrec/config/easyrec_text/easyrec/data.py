"""EasyRec's input paths and ``data_config`` → mtlrec's ``data`` section, and what the columns are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtlrec.config.easyrec_text.common import file_options
from mtlrec.config.easyrec_text.convert import Conversion, eval_split, require
from mtlrec.config.easyrec_text.nodes import Node

#: DatasetConfig.input_type → mtlrec's data.format
INPUT_FORMATS: dict[str, str] = {
    "CSVInput": "csv", "CSVInputV2": "csv", "CSVInputEx": "csv",
    "ParquetInput": "parquet", "ParquetInputV2": "parquet", "ParquetInputV3": "parquet",
}  # fmt: skip


@dataclass
class Inputs:
    """What ``data_config`` says about the columns."""

    fields: dict[str, Node] = field(default_factory=dict)
    label_fields: list[str] = field(default_factory=list)
    sample_weight: str | None = None


def read_data(root: Node, conversion: Conversion) -> tuple[dict[str, Any], Inputs]:
    """Input paths, file format and CSV options, and what the columns are."""
    config = root.child("data_config").maps_to("data")
    which = root.which("train_path")
    data: dict[str, Any] = {
        "train": require(
            root.get(which) if which else None, conversion.tracker, "train_input_path", "give the training file"
        )
    }
    root.tracker.targets[which] = "data.train"
    input_type = config.get("input_type")
    fmt = "parquet" if which == "parquet_train_input" else INPUT_FORMATS.get(input_type)
    if fmt is None and config.has("input_type"):
        config.ignore(
            "input_type",
            f"{input_type} is read as a file by extension (mtlrec reads CSV and Parquet files); "
            "export the table to CSV or Parquet and set input_type CSVInput or ParquetInput",
            "data",
        )
    if fmt is not None:
        data["format"] = fmt
    names = [node.message.input_name for node in config.children("input_fields")]
    file_options(config, data, "separator", names)
    eval_which = root.which("eval_path")
    eval_split(conversion.tracker, data, root.get(eval_which) if eval_which else None, eval_which or "")
    if eval_which:
        root.tracker.targets[eval_which] = "data"
    inputs = Inputs()
    for node in config.children("input_fields"):
        name = require(node.get("input_name"), conversion.tracker, node.at("input_name"), "name every input field")
        node.mark("input_type")
        inputs.fields[name] = node
    inputs.label_fields = config.get("label_fields")
    inputs.sample_weight = config.opt("sample_weight")
    return data, inputs
