"""EasyRec's feature groups and their DIN sequences (``sequence_features``) → mtlrec features and groups."""

from __future__ import annotations

from typing import Any

from mtlrec.config.easyrec_text.common import (
    embedding,
    ignore_unused_feature,
    ignore_unused_groups,
    sequence_targets,
)
from mtlrec.config.easyrec_text.convert import Conversion, check_members, mtlrec_activation
from mtlrec.config.easyrec_text.easyrec.data import Inputs
from mtlrec.config.easyrec_text.easyrec.features import (
    FEATURES,
    Source,
    input_column,
    sequence_length,
    sequence_type,
    vocabulary,
)
from mtlrec.config.easyrec_text.easyrec.models import MODEL_CLASSES
from mtlrec.config.easyrec_text.nodes import Node

#: EasyRec's attention DNN when seq_dnn is unset (sequence_feature_layer.py); its last unit is the score
DEFAULT_ATTENTION_UNITS = [128, 64, 32, 1]


def groups_by_name(model: Node) -> dict[str, Node]:
    """The feature groups by name (``group<i>`` for an unnamed one)."""
    groups: dict[str, Node] = {}
    for node in model.children("feature_groups"):
        name = node.get("group_name") or f"group{len(groups)}"
        groups[name] = node
    return groups


def model_input_groups(kind: str, body: Node, groups: dict[str, Node], conversion: Conversion) -> list[str]:
    """The groups the model reads: ESMM's ``groups[].input``, else the group ``all`` (as EasyRec does)."""
    if kind == "esmm" and body.has("groups"):
        names = [tower.get("input") for tower in body.children("groups")]
        for index, name in enumerate(names):
            if name not in groups:
                raise body.error(f"groups[{index}].input", f"no feature group '{name}'; the groups are {list(groups)}")
        return names
    if not groups:
        raise conversion.tracker.error("model_config.feature_groups", "missing; define the feature group 'all'")
    if "all" in groups:
        return ["all"]
    first = next(iter(groups))
    conversion.tracker.approximate(
        groups[first].at("group_name"),
        f"EasyRec's {MODEL_CLASSES[kind]} reads the group named 'all'; mtlrec reads '{first}' instead",
        f"feature_groups.{first}",
    )
    return [first]


def features_and_groups(
    groups: dict[str, Node],
    input_groups: list[str],
    sources: dict[str, Source],
    inputs: Inputs,
    kind: str,
    conversion: Conversion,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The features the model reads, in config order (then the attention sequences), and its groups."""
    emitted: dict[str, dict[str, Any]] = {}
    sequences: list[tuple[list[Source], dict[str, Any]]] = []
    feature_groups: dict[str, list[str]] = {}
    for group in input_groups:
        node = groups[group].maps_to(f"feature_groups.{group}")
        members = node.get("feature_names")
        check_members(conversion.tracker, node.path, members, set(sources))
        if node.get("wide_deep") != "DEEP":
            node.approximate("wide_deep", "the group is embedded and read like a DEEP group")
        if node.get("negative_sampler"):
            node.ignore("negative_sampler", "negative sampling is for retrieval models; no mtlrec equivalent")
        for name in members:
            if name not in emitted:
                emitted[name] = FEATURES[sources[name].type](sources[name], inputs)
        for index, sequence in enumerate(node.children("sequence_features")):
            hist, feature = _din_sequence(sequence, f"{group}_seq{index}", members, sources, emitted, inputs)
            sequences.append((hist, feature))
            members = [*members, feature["name"]]
        feature_groups[group] = list(dict.fromkeys(members))
    ignore_unused_groups(conversion.tracker, groups, input_groups, f"EasyRec's {MODEL_CLASSES[kind]}", input_groups)
    ordered = [emitted[name] for name in sources if name in emitted] + [feature for _, feature in sequences]
    _target_features(ordered, sources, sequences, conversion)
    return ordered, feature_groups


def _din_sequence(
    node: Node,
    default_name: str,
    members: list[str],
    sources: dict[str, Source],
    emitted: dict[str, dict],
    inputs: Inputs,
) -> tuple[list[Source], dict[str, Any]]:
    """A ``sequence_features`` group (DIN target attention) → one mtlrec sequence feature read by attention."""
    keys: list[str] = []
    hist: list[Source] = []
    for attention in node.children("seq_att_map"):
        map_keys, map_hist = attention.get("key"), attention.get("hist_seq")
        if len(map_keys) != len(map_hist):
            raise attention.error("hist_seq", f"{len(map_hist)} sequences for {len(map_keys)} keys; give one per key")
        check_members(node.tracker, attention.path, map_keys + map_hist, set(sources))
        if attention.get("aux_hist_seq"):
            attention.ignore("aux_hist_seq", "side sequences without a key are not read by mtlrec's attention")
        keys += map_keys
        hist += [sources[name] for name in map_hist]
    for source in hist:
        if source.type != "SequenceFeature":
            raise node.error("seq_att_map", f"hist_seq '{source.name}' must be a SequenceFeature")
        sequence_type(source)
    separators = {s.node.get("separator") for s in hist}
    if len(separators) != 1:
        raise node.error(
            "seq_att_map",
            f"the sequences use different separators {sorted(separators)}; mtlrec reads "
            "one separator per sequence group",
        )
    for key in keys:
        if key not in emitted:
            emitted[key] = FEATURES[sources[key].type](sources[key], inputs)
        if emitted[key]["kind"] != "categorical":
            raise node.error("seq_att_map", f"the key '{key}' must be an IdFeature (the candidate's id)")
    encoder: dict[str, Any] = {"kind": "attention", "query": keys, "params": _attention_dnn(node)}
    _keys_in_group(node, keys, members)
    node.mark("allow_key_search", "tf_summary")
    if node.get("allow_key_transform") or node.get("transform_dnn"):
        node.ignore("allow_key_transform", "keys are not transformed: give keys and sequences the same width")
    fields = [
        embedding(s.node, {"column": input_column(s, inputs), "name": s.name, **vocabulary(s.node)}) for s in hist
    ]
    feature = {
        "name": node.get("group_name") or default_name,
        "kind": "sequence",
        "fields": fields,
        "max_length": sequence_length(hist),
        "separator": separators.pop(),
        "encoder": encoder,
    }
    return hist, feature


def _attention_dnn(node: Node) -> dict[str, Any]:
    """seq_dnn (the DNN scoring each position, ending in one unit) → the attention encoder's params."""
    if node.has("seq_dnn"):
        dnn = node.child("seq_dnn")
        units, activation = [int(u) for u in dnn.get("hidden_units")], dnn.get("activation")
        if dnn.get("use_bn"):
            dnn.approximate("use_bn", "the attention DNN has no batch normalization in mtlrec")
        if any(dnn.get("dropout_ratio")):
            dnn.ignore("dropout_ratio", "the attention DNN has no dropout in mtlrec")
    else:
        units, activation = DEFAULT_ATTENTION_UNITS, "tf.nn.relu"
        node.approximate(
            "seq_dnn",
            f"not set: EasyRec's default attention DNN {DEFAULT_ATTENTION_UNITS} (relu), without its "
            "batch normalization",
        )
    mapped = mtlrec_activation(activation)
    if mapped is None:
        raise node.error("seq_dnn", f"activation '{activation}' has no mtlrec equivalent")
    return {"hidden_units": units[:-1] if units and units[-1] == 1 else units, "activation": mapped}


def _keys_in_group(node: Node, keys: list[str], members: list[str]) -> None:
    """need_key_feature: EasyRec concatenates the keys' embeddings to the attention's output."""
    if not node.get("need_key_feature"):
        return
    missing = [k for k in keys if k not in members]
    members.extend(missing)
    if len(missing) < len(keys):
        node.approximate(
            "need_key_feature",
            "the keys' embeddings enter the group once (EasyRec concatenates them again after the attention output)",
        )


def _target_features(
    ordered: list[dict[str, Any]], sources: dict[str, Source], sequences: list, conversion: Conversion
) -> None:
    """Point every feature config at its mtlrec feature; the unread ones are noted as unused."""
    tracker = conversion.tracker
    index = sequence_targets(ordered, sequences, tracker)
    in_sequences = {s.node.path for hist, _ in sequences for s in hist}
    for name, source in sources.items():
        if name in index:
            tracker.targets.setdefault(source.node.path, f"features[{index[name]}]")
        elif source.node.path not in in_sequences and source.node.path not in tracker.targets:
            ignore_unused_feature(tracker, source.node.path, name)
