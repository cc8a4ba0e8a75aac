"""TorchEasyRec's feature groups and their sequence groups and encoders → mtlrec features and groups."""

from __future__ import annotations

from typing import Any

from mtlrec.config.easyrec_text.common import (
    embedding,
    ignore_unused_feature,
    ignore_unused_groups,
    sequence_targets,
)
from mtlrec.config.easyrec_text.convert import (
    DEFAULT_SEQUENCE_LENGTH,
    NEAREST_ACTIVATIONS,
    Conversion,
    check_members,
    mtlrec_activation,
)
from mtlrec.config.easyrec_text.nodes import Node
from mtlrec.config.easyrec_text.torcheasyrec.data import Reading
from mtlrec.config.easyrec_text.torcheasyrec.features import FEATURES, Source, input_columns, vocabulary

#: PEPNet's feature groups → mtlrec's group roles
PEPNET_GROUPS: dict[str, str] = {"domain": "domain", "uia": "prior"}


def model_input_groups(kind: str, groups: dict[str, Node], conversion: Conversion) -> tuple[list[str], dict[str, str]]:
    """The groups the model reads (the first group; PEPNet: ``all``) and the groups read by role (PEPNet)."""
    if not groups:
        raise conversion.tracker.error("model_config.feature_groups", "missing; define a DEEP feature group")
    if kind != "pepnet":
        return [next(iter(groups))], {}
    if "all" not in groups:
        raise conversion.tracker.error("model_config.feature_groups", "PEPNet reads the group 'all'; define it")
    roles = {name: PEPNET_GROUPS[name] for name in groups if name in PEPNET_GROUPS}
    missing = [g for g in PEPNET_GROUPS if g not in roles]
    if missing:
        raise conversion.tracker.error(
            "model_config.feature_groups",
            f"mtlrec's PEPNet needs the groups {missing} too (the scenario 'domain' "
            "for EPNet and the prior 'uia' for PPNet); define them",
        )
    return ["all"], roles


def features_and_groups(
    groups: dict[str, Node],
    input_groups: list[str],
    roles: dict[str, str],
    sources: dict[str, Source],
    reading: Reading,
    kind: str,
    conversion: Conversion,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The features the model reads, in config order (then the sequences), and its groups."""
    emitted: dict[str, dict[str, Any]] = {}
    sequences: list[tuple[list[Source], dict[str, Any]]] = []
    feature_groups: dict[str, list[str]] = {}
    for group in [*input_groups, *roles]:
        ours = roles.get(group, group)
        node = groups[group].maps_to(f"feature_groups.{ours}")
        members = node.get("feature_names")
        check_members(conversion.tracker, node.path, members, set(sources))
        group_type = node.get("group_type")
        if group_type in ("SEQUENCE", "JAGGED_SEQUENCE"):
            sequence = _sequence(node, group, members, node.children("sequence_encoders"), sources, emitted, reading)
            sequences.append(sequence)
            feature_groups[ours] = [sequence[1]["name"]]
            continue
        if group_type == "WIDE":
            node.approximate("group_type", "the group is embedded and read like a DEEP group")
        members = list(members)
        for name in members:
            if sources[name].is_sequence:
                raise node.error(
                    "feature_names",
                    f"'{name}' is a sequence feature; put it in a sequence_groups entry",
                    ("feature_names", name),
                )
            emitted.setdefault(name, FEATURES[sources[name].kind](sources[name], reading))
        members += _nested_sequences(node, sources, emitted, reading, sequences)
        if node.opt("embedding_name_suffix"):
            node.ignore("embedding_name_suffix", "tables are shared by embedding_name alone")
        feature_groups[ours] = list(dict.fromkeys(members))
    read = [*input_groups, *roles]
    ignore_unused_groups(conversion.tracker, groups, read, f"TorchEasyRec's {kind}", input_groups)
    ordered = [emitted[name] for name in sources if name in emitted] + [feature for _, feature in sequences]
    _target_features(ordered, sources, sequences, conversion)
    return ordered, feature_groups


def _nested_sequences(
    node: Node, sources: dict[str, Source], emitted: dict, reading: Reading, sequences: list
) -> list[str]:
    """A DEEP group's ``sequence_groups``, each read by the ``sequence_encoders`` entry naming it."""
    encoders: dict[str, list[Node]] = {}
    for encoder in node.children("sequence_encoders"):
        body = encoder.child(encoder.which("seq_module"))
        encoders.setdefault(body.get("input"), []).append(encoder)
    names = []
    for group in node.children("sequence_groups"):
        name = group.get("group_name")
        if name not in encoders:
            group.tracker.ignore(group.path, f"no sequence_encoders entry reads '{name}'; add one (din_encoder ...)")
            continue
        members = group.get("feature_names")
        check_members(group.tracker, group.path, members, set(sources))
        if group.opt("embedding_name_suffix"):
            group.ignore("embedding_name_suffix", "tables are shared by embedding_name alone")
        for encoder in encoders.pop(name)[:1]:
            sequence = _sequence(group, name, members, [encoder], sources, emitted, reading)
            sequences.append(sequence)
            names.append(sequence[1]["name"])
    for name, unread in encoders.items():
        raise unread[0].error(unread[0].which("seq_module"), f"input '{name}' names no sequence_groups entry")
    return names


def _sequence(
    node: Node,
    name: str,
    members: list[str],
    encoders: list[Node],
    sources: dict[str, Source],
    emitted: dict,
    reading: Reading,
) -> tuple[list[Source], dict[str, Any]]:
    """A sequence group: its non-sequence features are the query, its sequence features the history."""
    query = [m for m in members if not sources[m].is_sequence]
    history = [sources[m] for m in members if sources[m].is_sequence]
    if not history:
        raise node.error("feature_names", "a sequence group needs sequence features (sequence_id_feature, ...)")
    encoder, kind = _encoder(node, encoders)
    side = [s for s in history if not s.kind.endswith("id_feature")]
    if kind == "attention":
        if len(history) < len(query):
            raise node.error(
                "feature_names",
                f"{len(query)} query features for {len(history)} sequences; mtlrec's "
                "attention pairs them one to one, in order",
            )
        side += history[len(query) :]
        history = history[: len(query)]
        for key in query:
            emitted.setdefault(key, FEATURES[sources[key].kind](sources[key], reading))
            if emitted[key]["kind"] != "categorical":
                raise node.error("feature_names", f"the query feature '{key}' must be a single-valued id feature")
        encoder["query"] = query
    for source in side:
        source.node.tracker.ignore(
            source.node.path,
            f"'{source.name}' is a side sequence mtlrec's encoder does not read (its sequences hold ids, and "
            "attention pairs each query feature with one sequence)",
        )
    history = [s for s in history if s not in side]
    for source in history:
        if not source.kind.endswith("id_feature"):
            raise source.node.error("feature_name", "mtlrec's sequences hold ids; use a sequence id feature")
    if not history:
        raise node.error("feature_names", "no id sequence is left for the encoder to read")
    fields = [
        embedding(s.node, {"column": input_columns(s, reading)[0], "name": s.name, **vocabulary(s.node)})
        for s in history
    ]
    holders = [s.sequence or s.node for s in history]
    delimiters = {h.get("sequence_delim") for h in holders}
    if len(delimiters) != 1:
        raise node.error("feature_names", f"the sequences use different delimiters {sorted(delimiters)}")
    feature = {
        "name": name,
        "kind": "sequence",
        "fields": fields,
        "max_length": _sequence_length(holders, encoders),
        "separator": delimiters.pop(),
        "encoder": encoder,
    }
    for source in history:
        source.node.mark("pooling", "separator", "value_dim")
    return history, feature


def _encoder(node: Node, encoders: list[Node]) -> tuple[dict[str, Any], str]:
    """The sequence encoder (the first; a SEQUENCE group without one is read by DIN attention)."""
    if not encoders:
        node.approximate(
            "group_type", "read by mtlrec's DIN attention (the model's own use of a SEQUENCE group has no equivalent)"
        )
        return {"kind": "attention"}, "attention"
    which = encoders[0].which("seq_module")
    body = encoders[0].child(which)
    body.mark("name", "input", "max_seq_length")
    if which == "pooling_encoder":
        return {"kind": "pooling", "params": {"pooling": body.get("pooling_type")}}, "pooling"
    encoder: dict[str, Any] = {"kind": "attention"}
    if which == "din_encoder":
        mlp = body.child("attn_mlp")
        encoder["params"] = {"hidden_units": [int(u) for u in mlp.get("hidden_units")]}
        activation = mlp.get("activation")
        mapped = mtlrec_activation(activation)
        if mapped is None:
            raise mlp.error("activation", f"'{activation}' has no mtlrec equivalent")
        encoder["params"]["activation"] = mapped
        if activation in NEAREST_ACTIVATIONS:
            mlp.approximate("activation", f"'{activation}' → '{mapped}'")
    else:
        encoders[0].approximate(which, "DIN target attention (an MLP scores each position) instead of the dot product")
    return encoder, "attention"


def _sequence_length(holders: list[Node], encoders: list[Node]) -> int:
    lengths = [h.get("sequence_length") for h in holders if h.has("sequence_length")]
    caps = [e.child(e.which("seq_module")).message.max_seq_length for e in encoders]
    caps = [c for c in caps if c > 0]
    if lengths or caps:
        return int(min([max(lengths)] * bool(lengths) + caps))
    holders[0].approximate(
        "sequence_length",
        f"not set: mtlrec keeps the most recent {DEFAULT_SEQUENCE_LENGTH} positions (set the feature's max_length)",
    )
    return DEFAULT_SEQUENCE_LENGTH


def _target_features(ordered: list[dict], sources: dict[str, Source], sequences: list, conversion) -> None:
    """Point every feature at its mtlrec feature; the unread ones are noted as unused."""
    tracker = conversion.tracker
    index = sequence_targets(ordered, sequences, tracker)
    used = {s.node.path for history, _ in sequences for s in history}
    for name, source in sources.items():
        if name in index:
            tracker.targets[source.node.path] = f"features[{index[name]}]"
        elif source.node.path not in used | tracker.handled:
            ignore_unused_feature(tracker, source.node.path, name)
