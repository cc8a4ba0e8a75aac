"""TorchEasyRec's feature configs (``id_feature``, ``raw_feature``, ...) → mtlrec features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtlrec.config.easyrec_text.common import bucket_vocabulary, embedding, file_vocabulary, listed_vocabulary, named
from mtlrec.config.easyrec_text.convert import require
from mtlrec.config.easyrec_text.nodes import Node
from mtlrec.config.easyrec_text.torcheasyrec.data import Reading

#: normalizer methods → (mtlrec numeric options, what differs)
NORMALIZERS: dict[str, tuple[dict[str, Any], str]] = {
    "log10": ({"log1p": True}, "log10 → log1p"),
    "zscore": ({"standardize": True}, "standardized with the training mean and deviation, not the given ones"),
    "minmax": ({"standardize": True}, "standardized with the training mean and deviation (not min-max scaling)"),
}


@dataclass
class Source:
    """One feature: its message node, its kind (``id_feature``, ...) and, in a sequence, that sequence's node."""

    name: str
    node: Node
    kind: str
    sequence: Node | None = None

    @property
    def is_sequence(self) -> bool:
        return self.sequence is not None or self.kind.startswith("sequence_")


def feature_sources(root: Node) -> dict[str, Source]:
    """Every feature by name (a ``sequence_feature``'s features as ``<sequence_name>__<feature_name>``)."""
    sources: dict[str, Source] = {}
    for config in root.children("feature_configs"):
        kind = config.which("feature")
        if kind is None:
            raise config.error("feature", "an empty feature config; give e.g. id_feature { ... }")
        node = config.child(kind)
        if kind == "sequence_feature":
            prefix = require(node.get("sequence_name"), root.tracker, node.at("sequence_name"), "name the sequence")
            for sub in node.children("features"):
                sub_kind = sub.which("feature")
                inner = sub.child(sub_kind)
                _add(sources, Source(f"{prefix}__{inner.get('feature_name')}", inner, f"sequence_{sub_kind}", node))
        else:
            _add(sources, Source(node.get("feature_name"), node, kind))
    return sources


def _add(sources: dict[str, Source], source: Source) -> None:
    if not source.name:
        raise source.node.error("feature_name", "missing; name every feature")
    if source.name in sources:
        raise source.node.error("feature_name", f"a second feature named '{source.name}'; rename one")
    sources[source.name] = source


def input_columns(source: Source, reading: Reading) -> list[str]:
    """The input columns: the feature name itself for FG-encoded data (FG_NONE), else the expression's inputs."""
    node = source.node
    expressions = node.get("expression")
    expressions = expressions if isinstance(expressions, list) else [expressions]
    if reading.fg_mode == "FG_NONE":
        return [source.name]
    columns = []
    for expression in (e for e in expressions if e):
        side, _, name = expression.rpartition(":")
        if side in ("feature", "const"):
            raise node.error(
                "expression",
                f"'{expression}': inputs from other features or constants need "
                "TorchEasyRec's feature generation; compute the column beforehand",
                ("expression", expression),
            )
        columns.append(f"{source.sequence.get('sequence_name')}__{name}" if source.sequence is not None else name)
        if reading.columns and columns[-1] not in reading.columns:
            raise node.error(
                "expression",
                f"'{columns[-1]}' is not an input field (data_config.input_fields)",
                ("expression", expression),
            )
    return require(columns, node.tracker, node.at("expression"), 'give the feature\'s input, e.g. "user:user_id"')


def vocabulary(node: Node) -> dict[str, Any]:
    """hash_bucket_size / vocab_list / vocab_dict / vocab_file / num_buckets → mtlrec's vocabulary options."""
    fields = node.message.DESCRIPTOR.fields_by_name
    if node.opt("hash_bucket_size"):
        return {"hash_buckets": int(node.get("hash_bucket_size"))}
    listed = node.get("vocab_list") if "vocab_list" in fields else []
    if listed:
        return listed_vocabulary(node, len(listed))
    if "vocab_dict" in fields and node.has("vocab_dict"):
        node.approximate("vocab_dict", "a vocabulary fitted on the training data (one id per value)")
        return {}
    if "vocab_file" in fields and node.opt("vocab_file"):
        return file_vocabulary(node)
    if "num_buckets" in fields and node.opt("num_buckets"):
        return bucket_vocabulary(node, int(node.get("num_buckets")), "TorchEasyRec")
    return {}


def _is_multi_valued(node: Node) -> bool:
    """An id feature is read as a list when it says so: a separator, weights, a pooling, or value_dim 0."""
    explicit_zero = node.has("value_dim") and node.get("value_dim") == 0
    return node.has("separator") or node.get("weighted") or node.has("pooling") or explicit_zero


def _id_feature(source: Source, reading: Reading) -> dict[str, Any]:
    node = source.node
    column = input_columns(source, reading)[0]
    _id_default(node)
    node.mark("value_dim")
    if not _is_multi_valued(node):
        node.mark("separator", "pooling", "weighted")
        return embedding(node, {**named(source.name, column, "categorical"), **vocabulary(node)})
    separator = reading.multival_sep if reading.fg_mode == "FG_NONE" else node.get("separator")
    feature = {**named(source.name, column, "multi_valued"), "separator": separator, "pooling": node.get("pooling")}
    if node.get("weighted"):
        feature["kv_separator"] = ":"
    return embedding(node, {**feature, **vocabulary(node)})


def _id_default(node: Node) -> None:
    for name in ("default_value", "fg_encoded_default_value"):
        if node.opt(name):
            node.approximate(
                name, f"missing values get the out-of-vocabulary id (TorchEasyRec fills in {node.get(name)!r})"
            )


def _raw_feature(source: Source, reading: Reading) -> dict[str, Any]:
    node = source.node
    column = input_columns(source, reading)[0]
    if node.get("value_dim") > 1:
        raise node.error("value_dim", "a vector-valued raw feature has no mtlrec equivalent; split it in columns")
    feature = named(source.name, column, "numeric")
    feature["fill_value"] = _fill(node)
    node.mark("separator", "pooling")
    boundaries = sorted(node.get("boundaries"))
    if boundaries:
        feature["boundaries"] = boundaries
        return embedding(node, feature)
    feature["standardize"] = False
    _normalizer(node, feature)
    if node.opt("embedding_dim") or node.which("dense_emb"):
        node.approximate("embedding_dim", "the value enters the network as it is (TorchEasyRec embeds it)")
        node.mark("embedding_name", node.which("dense_emb") or "autodis")
    return feature


def _fill(node: Node) -> float:
    value = node.opt("fg_encoded_default_value") or node.get("default_value")
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        raise node.error("default_value", f"{value!r} is not a number") from None


def _normalizer(node: Node, feature: dict[str, Any]) -> None:
    text = node.opt("normalizer")
    if not text:
        return
    options = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    method = options.get("method", "")
    if method not in NORMALIZERS:
        node.ignore("normalizer", f"'{method}' has no mtlrec equivalent; transform the column beforehand")
        return
    settings, what = NORMALIZERS[method]
    feature.update(settings)
    node.approximate("normalizer", what)


def _combo_feature(source: Source, reading: Reading) -> dict[str, Any]:
    node = source.node
    columns = input_columns(source, reading)
    if len(columns) == 1:
        return embedding(node, {**named(source.name, columns[0], "categorical"), **vocabulary(node)})
    return embedding(node, {"name": source.name, "kind": "cross", "columns": columns, **vocabulary(node)})


def _unsupported(source: Source, reading: Reading) -> dict[str, Any]:
    raise source.node.error(
        "feature_name",
        f"{source.kind} '{source.name}' cannot be read outside a sequence group "
        "by mtlrec; put it in a sequence_groups entry with a sequence encoder",
    )


#: the feature's kind → the mtlrec feature of a feature read by a DEEP group
FEATURES = {
    "id_feature": _id_feature,
    "raw_feature": _raw_feature,
    "combo_feature": _combo_feature,
    "sequence_id_feature": _unsupported,
    "sequence_raw_feature": _unsupported,
}
