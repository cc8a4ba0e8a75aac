"""EasyRec's feature configs (``feature_configs``, ``feature_config.features``) → mtlrec features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtlrec.config.easyrec_text.common import bucket_vocabulary, embedding, file_vocabulary, listed_vocabulary, named
from mtlrec.config.easyrec_text.convert import DEFAULT_SEQUENCE_LENGTH, Conversion, require
from mtlrec.config.easyrec_text.easyrec.data import Inputs
from mtlrec.config.easyrec_text.nodes import Node

#: TagFeature.combiner → mtlrec pooling
POOLINGS: dict[str, str] = {"sum": "sum", "mean": "mean", "sqrtn": "mean", "max": "max"}


@dataclass
class Source:
    """One feature config: its node and its name (``feature_name``, else the first input name)."""

    name: str
    node: Node
    column: str | None = None

    @property
    def type(self) -> str:
        return self.node.get("feature_type")


def feature_sources(root: Node, conversion: Conversion) -> dict[str, Source]:
    """Every feature config by feature name (a config's ``shared_names`` too)."""
    nodes = root.children("feature_configs") + root.child("feature_config").children("features")
    sources: dict[str, Source] = {}
    for node in nodes:
        names = node.get("input_names")
        name = node.get("feature_name") or (names[0] if names else None)
        name = require(name, conversion.tracker, node.at("input_names"), "give the feature's input_names")
        if name in sources:
            raise node.error("feature_name", f"a second feature named '{name}'; give it another feature_name")
        sources[name] = Source(name, node)
        for shared in node.get("shared_names"):
            sources[shared] = Source(shared, node, column=shared)
    return sources


def input_column(source: Source, inputs: Inputs, position: int = 0) -> str:
    """The input column a feature reads (``input_names[position]``, which must be an input field)."""
    node = source.node
    column = source.column if source.column and position == 0 else node.get("input_names")[position]
    if inputs.fields and column not in inputs.fields:
        raise node.error(
            f"input_names[{position}]",
            f"'{column}' is not an input field; add it to data_config.input_fields or fix the name",
            ("input_names", column),
        )
    return column


def vocabulary(node: Node) -> dict[str, Any]:
    """hash_bucket_size / vocab_list / vocab_file / num_buckets → mtlrec's vocabulary options (EasyRec's order)."""
    hash_buckets, vocab_list = node.get("hash_bucket_size"), node.get("vocab_list")
    vocab_file, num_buckets = node.opt("vocab_file"), node.get("num_buckets")
    if hash_buckets > 0:
        return {"hash_buckets": int(hash_buckets)}
    if vocab_list:
        return listed_vocabulary(
            node, len(vocab_list), " (the most frequent; the listed values themselves are not used)"
        )
    if vocab_file:
        return file_vocabulary(node)
    if num_buckets > 0:
        return bucket_vocabulary(node, num_buckets, "EasyRec")
    return {}


def _id_feature(source: Source, inputs: Inputs) -> dict[str, Any]:
    column = input_column(source, inputs)
    _id_default(column, inputs)
    return embedding(source.node, {**named(source.name, column, "categorical"), **vocabulary(source.node)})


def _id_default(column: str, inputs: Inputs) -> None:
    """A default value of an id column: mtlrec gives missing values the out-of-vocabulary id instead."""
    node = inputs.fields.get(column)
    if node is not None and node.has("default_val"):
        value = node.get("default_val")
        if value != "":
            node.approximate(
                "default_val",
                f"missing values of the id column '{column}' get the out-of-vocabulary id (EasyRec fills in {value!r})",
            )


def _numeric_default(column: str, inputs: Inputs) -> float:
    """EasyRec fills a missing number with the field's default_val, else 0."""
    node = inputs.fields.get(column)
    value = node.opt("default_val") if node is not None else None
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        raise node.error("default_val", f"{value!r} is not a number; a numeric feature reads this column") from None


def _raw_feature(source: Source, inputs: Inputs) -> dict[str, Any]:
    node = source.node
    column = input_column(source, inputs)
    if node.get("raw_input_dim") > 1:
        raise node.error("raw_input_dim", "a vector-valued raw feature has no mtlrec equivalent; split it in columns")
    feature = named(source.name, column, "numeric")
    feature["fill_value"] = _numeric_default(column, inputs)
    boundaries = sorted(node.get("boundaries"))
    num_buckets, low, high = node.get("num_buckets"), node.get("min_val"), node.get("max_val")
    if not boundaries and num_buckets > 1 and high > low:
        boundaries = [low + (high - low) * i / num_buckets for i in range(num_buckets)]
    if boundaries:
        feature["boundaries"] = boundaries
        return embedding(node, feature)
    feature["standardize"] = high > low
    if high > low:
        node.approximate("min_val", "standardized with the training mean and deviation (EasyRec: min-max scaling)")
    if node.get("embedding_dim"):
        node.approximate(
            "embedding_dim",
            "the value enters the network as it is (EasyRec multiplies it by an embedding vector of this width)",
        )
    node.mark("embedding_name")
    return feature


def _tag_feature(source: Source, inputs: Inputs) -> dict[str, Any]:
    node = source.node
    column = input_column(source, inputs)
    if len(node.get("input_names")) > 1:
        node.ignore(
            "input_names",
            "the second input (a weights column) is not read: the tags are unweighted; join "
            "tag and weight in one column ('tag:0.5|...') and set kv_separator",
        )
    feature = {**named(source.name, column, "multi_valued"), "separator": node.get("separator")}
    if node.has("kv_separator"):
        feature["kv_separator"] = node.get("kv_separator")
    combiner = node.get("combiner")
    if combiner not in POOLINGS:
        raise node.error("combiner", f"'{combiner}': expected one of {sorted(POOLINGS)}")
    feature["pooling"] = POOLINGS[combiner]
    if combiner == "sqrtn":
        node.approximate("combiner", "sqrtn pooling → mean")
    return embedding(node, {**feature, **vocabulary(node)})


def _combo_feature(source: Source, inputs: Inputs) -> dict[str, Any]:
    node = source.node
    names = node.get("input_names")
    if len(names) < 2:
        raise node.error("input_names", "a ComboFeature crosses two or more inputs")
    columns = [input_column(source, inputs, i) for i in range(len(names))]
    feature = {"name": source.name, "kind": "cross", "columns": columns, **vocabulary(node)}
    return embedding(node, feature)


def _pooled_sequence(source: Source, inputs: Inputs) -> dict[str, Any]:
    """A SequenceFeature read outside any seq_att_map: its positions pooled by its combiner."""
    node = source.node
    sequence_type(source)
    field_ = embedding(node, {"column": input_column(source, inputs), **vocabulary(node)})
    combiner = node.get("combiner")
    node.approximate(
        "combiner",
        f"the positions are pooled ({POOLINGS.get(combiner, 'mean')}) outside an attention "
        "group, as mtlrec's pooling encoder does",
    )
    return {
        "name": source.name,
        "kind": "sequence",
        "fields": [field_],
        "max_length": sequence_length([source]),
        "separator": node.get("separator"),
        "encoder": {"kind": "pooling", "params": {"pooling": POOLINGS.get(combiner, "mean")}},
    }


def sequence_type(source: Source) -> None:
    """A sequence holds ids (``sub_feature_type: IdFeature``)."""
    if source.node.get("sub_feature_type") != "IdFeature":
        raise source.node.error("sub_feature_type", "mtlrec's sequences hold ids; use IdFeature")


def sequence_length(sources: list[Source]) -> int:
    """The positions kept of the sequences: their longest ``sequence_length``, else mtlrec's default."""
    lengths = [s.node.get("sequence_length") for s in sources if s.node.has("sequence_length")]
    if lengths and max(lengths) > 1:
        return int(max(lengths))
    sources[0].node.approximate(
        "sequence_length",
        f"EasyRec keeps every position; mtlrec keeps the most recent {DEFAULT_SEQUENCE_LENGTH} "
        "(set the feature's max_length)",
    )
    return DEFAULT_SEQUENCE_LENGTH


def _unsupported(source: Source, inputs: Inputs) -> dict[str, Any]:
    raise source.node.error(
        "feature_type",
        f"{source.type} '{source.name}' has no mtlrec equivalent; compute it into a column and read "
        "that with an IdFeature or RawFeature",
    )


#: feature_type → the mtlrec feature of a config read by a feature group
FEATURES = {
    "IdFeature": _id_feature,
    "RawFeature": _raw_feature,
    "TagFeature": _tag_feature,
    "ComboFeature": _combo_feature,
    "SequenceFeature": _pooled_sequence,
    "LookupFeature": _unsupported,
    "ExprFeature": _unsupported,
    "PassThroughFeature": _unsupported,
}
