"""TorchEasyRec's input paths and ``data_config`` → mtlrec's ``data`` section, and how columns are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtlrec.config.easyrec_text.common import file_options
from mtlrec.config.easyrec_text.convert import Conversion, eval_split, require
from mtlrec.config.easyrec_text.nodes import Node

#: DataConfig.dataset_type → mtlrec's data.format
DATASET_FORMATS: dict[str, str] = {"CsvDataset": "csv", "ParquetDataset": "parquet"}


@dataclass
class Reading:
    """How columns are read: the FG mode, the multi-value separator of encoded data, the label fields."""

    fg_mode: str
    multival_sep: str
    label_fields: list[str]
    columns: set[str]


def read_data(root: Node, conversion: Conversion) -> tuple[dict[str, Any], Reading]:
    """Input paths, file format and CSV options, and how the columns are read."""
    config = root.child("data_config").maps_to("data")
    root.tracker.targets["train_input_path"] = "data.train"
    data: dict[str, Any] = {
        "train": require(root.get("train_input_path"), conversion.tracker, "train_input_path", "give the training file")
    }
    dataset = config.get("dataset_type")
    if dataset in DATASET_FORMATS:
        data["format"] = DATASET_FORMATS[dataset]
    else:
        config.ignore(
            "dataset_type",
            f"{dataset} is read as a file by extension (mtlrec reads CSV and Parquet files); export "
            "the table and set dataset_type CsvDataset or ParquetDataset",
            "data",
        )
    names = [
        require(f.get("input_name"), conversion.tracker, f.at("input_name"), "name every input field")
        for f in config.children("input_fields")
    ]
    for node in config.children("input_fields"):
        node.mark("input_type")
    file_options(config, data, "delimiter", names)
    eval_split(conversion.tracker, data, root.opt("eval_input_path"), "eval_input_path")
    root.tracker.targets["eval_input_path"] = "data"
    fg_mode = config.get("fg_mode")
    config.mark("fg_encoded", "sample_weight_fields")
    reading = Reading(fg_mode, config.get("fg_encoded_multival_sep"), config.get("label_fields"), set(names))
    return data, reading
