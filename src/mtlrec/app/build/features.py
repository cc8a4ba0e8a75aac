"""Config → the feature pipeline (encoders sharing vocabularies by table) and the model's input layer.

Per feature kind, one builder turns the config entry into an encoder (``ENCODER_BUILDERS``) and one
into the model's side of it (``INPUT_BUILDERS``: lookups in the embedding collection, a dense value,
or a sequence encoder). Embedding tables are planned first: every table's users, its vocabulary
options and its width, merged over the features that share it (conflicting values are errors
naming both features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mtlrec.app.build.params import lookup, validate_params
from mtlrec.config import Config
from mtlrec.config.features import is_dense
from mtlrec.errors import ConfigError
from mtlrec.features import (
    CategoricalEncoder,
    CrossEncoder,
    Encoder,
    FeaturePipeline,
    LabelSpec,
    MultiValuedEncoder,
    NumericEncoder,
    SequenceEncoder,
    SequenceField,
    Vocabulary,
)
from mtlrec.features.multi_valued import LENGTH_SUFFIX, WEIGHT_SUFFIX
from mtlrec.model import ModelInputs, SequenceInput
from mtlrec.nn import SEQUENCE_ENCODERS, EmbeddingCollection, Lookup, Table

VOCABULARY_DEFAULTS = {"min_count": 1, "max_vocab_size": None, "hash_buckets": None}


@dataclass
class TablePlan:
    """An embedding table as the config describes it: its users, vocabulary options and width."""

    name: str
    users: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    dim: int | None = None
    dim_user: str | None = None
    option_users: dict[str, str] = field(default_factory=dict)

    def add(self, user: str, options: dict[str, Any], dim: int | None) -> None:
        """Merge one user's options and width; raises ConfigError naming both users on a conflict."""
        self.users.append(user)
        for key, value in options.items():
            if key in self.options and self.options[key] != value:
                raise ConfigError(
                    f"features '{self.option_users[key]}' and '{user}' share the embedding table '{self.name}' but "
                    f"set {key} to {self.options[key]} and {value}; give it once (or the same)"
                )
            self.options.setdefault(key, value)
            self.option_users.setdefault(key, user)
        if dim is not None:
            if self.dim is not None and self.dim != dim:
                raise ConfigError(
                    f"features '{self.dim_user}' and '{user}' share the embedding table '{self.name}' but set "
                    f"embedding_dim {self.dim} and {dim}"
                )
            self.dim, self.dim_user = dim, user

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(**{**VOCABULARY_DEFAULTS, **self.options})


def plan_tables(config: Config) -> dict[str, TablePlan]:
    """Every embedding table of the config's features, in order of first use."""
    plans: dict[str, TablePlan] = {}

    def use(table: str, user: str, options: dict[str, Any], dim: int | None) -> None:
        plans.setdefault(table, TablePlan(table)).add(user, options, dim)

    for feature in config.features:
        if feature.kind == "sequence":
            for item, name in zip(feature.fields, feature.field_inputs):
                use(item.embedding or name, name, item.vocabulary_options(), item.embedding_dim)
        elif feature.kind == "numeric":
            if not is_dense(feature):
                use(feature.name, feature.name, {}, feature.embedding_dim)
        else:
            use(feature.embedding or feature.name, feature.name, feature.vocabulary_options(), feature.embedding_dim)
    return plans


def build_pipeline(config: Config, labels: list[LabelSpec]) -> FeaturePipeline:
    """The unfitted pipeline: one encoder per feature; features naming one table share its vocabulary."""
    plans = plan_tables(config)
    vocabularies = {name: plan.vocabulary() for name, plan in plans.items()}
    encoders = [ENCODER_BUILDERS[feature.kind](feature, vocabularies) for feature in config.features]
    return FeaturePipeline(encoders, labels)


def _categorical(feature: Any, vocabularies: dict[str, Vocabulary]) -> Encoder:
    table = feature.embedding or feature.name
    return CategoricalEncoder(feature.name, feature.column, table=table, vocabulary=vocabularies[table])


def _numeric(feature: Any, vocabularies: dict[str, Vocabulary]) -> Encoder:
    return NumericEncoder(
        feature.name,
        feature.column,
        fill_value=feature.fill_value,
        log1p=feature.log1p,
        standardize=feature.standardize,
        buckets=feature.buckets,
        boundaries=feature.boundaries,
    )


def _multi_valued(feature: Any, vocabularies: dict[str, Vocabulary]) -> Encoder:
    table = feature.embedding or feature.name
    return MultiValuedEncoder(
        feature.name,
        feature.column,
        separator=feature.separator,
        kv_separator=feature.kv_separator,
        max_length=feature.max_length,
        table=table,
        vocabulary=vocabularies[table],
    )


def _sequence(feature: Any, vocabularies: dict[str, Vocabulary]) -> Encoder:
    fields = []
    for item, name in zip(feature.fields, feature.field_inputs):
        table = item.embedding or name
        fields.append(SequenceField(item.field_name, item.column, table, vocabularies[table]))
    return SequenceEncoder(
        feature.name, fields, max_length=feature.max_length, recent=feature.recent, separator=feature.separator
    )


def _cross(feature: Any, vocabularies: dict[str, Vocabulary]) -> Encoder:
    table = feature.embedding or feature.name
    return CrossEncoder(feature.name, feature.columns, table=table, vocabulary=vocabularies[table])


ENCODER_BUILDERS: dict[str, Callable[[Any, dict[str, Vocabulary]], Encoder]] = {
    "categorical": _categorical,
    "numeric": _numeric,
    "multi_valued": _multi_valued,
    "sequence": _sequence,
    "cross": _cross,
}


@dataclass
class InputParts:
    """The model's side of the features: lookups, dense inputs, sequences and their encoders."""

    lookups: list[Lookup] = field(default_factory=list)
    dense: list[str] = field(default_factory=list)
    sequences: list[SequenceInput] = field(default_factory=list)
    encoders: dict[str, nn.Module] = field(default_factory=dict)


def build_inputs(config: Config, pipeline: FeaturePipeline, id_groups: dict[str, str] | None = None) -> ModelInputs:
    """The input layer: embedding collection, sequence encoders, feature groups (``id_groups`` read as ids).

    Tables are initialised in order of first use (seeded by the caller).
    """
    plans, rows = plan_tables(config), pipeline.tables()
    widths = {name: plan.dim or config.model.embedding_dim for name, plan in plans.items()}
    tables = [Table(name, rows[name], widths[name]) for name in plans]
    table_of = {spec.name: spec.table for spec in pipeline.inputs() if spec.table is not None}
    parts = InputParts()
    for feature in config.features:
        INPUT_BUILDERS[feature.kind](feature, parts, table_of)
    embeddings = EmbeddingCollection(tables, parts.lookups)
    for index, feature in enumerate(config.features):
        if feature.kind == "sequence":
            parts.encoders[feature.name] = _sequence_encoder(config, index, feature, embeddings)
    groups = {name: members for name, members in config.groups.items() if name not in (id_groups or {})}
    try:
        return ModelInputs(
            embeddings, parts.sequences, parts.encoders, parts.dense, groups, id_groups, config.model.embedding_dropout
        )
    except ValueError as exc:
        raise ConfigError(f"feature_groups: {exc}") from None


def _single_lookup(feature: Any, parts: InputParts, table_of: dict[str, str]) -> None:
    parts.lookups.append(Lookup(feature.name, table_of[feature.name]))


def _numeric_input(feature: Any, parts: InputParts, table_of: dict[str, str]) -> None:
    if is_dense(feature):
        parts.dense.append(feature.name)
    else:
        _single_lookup(feature, parts, table_of)


def _bag_lookup(feature: Any, parts: InputParts, table_of: dict[str, str]) -> None:
    weights = feature.name + WEIGHT_SUFFIX if feature.kv_separator is not None else None
    parts.lookups.append(
        Lookup(feature.name, table_of[feature.name], feature.pooling, feature.name + LENGTH_SUFFIX, weights)
    )


def _sequence_lookups(feature: Any, parts: InputParts, table_of: dict[str, str]) -> None:
    fields = tuple(feature.field_inputs)
    lengths = feature.name + LENGTH_SUFFIX
    parts.lookups += [Lookup(name, table_of[name], lengths=lengths) for name in fields]
    query = tuple(feature.encoder.query)
    parts.sequences.append(SequenceInput(feature.name, fields, lengths, query))


INPUT_BUILDERS: dict[str, Callable[[Any, InputParts, dict[str, str]], None]] = {
    "categorical": _single_lookup,
    "numeric": _numeric_input,
    "multi_valued": _bag_lookup,
    "sequence": _sequence_lookups,
    "cross": _single_lookup,
}


def _sequence_encoder(config: Config, index: int, feature: Any, embeddings: EmbeddingCollection) -> nn.Module:
    """The feature's encoder from ``SEQUENCE_ENCODERS``, sized from its fields' and query's widths."""
    path = f"features[{index}].encoder"
    encoder_class = lookup(SEQUENCE_ENCODERS, feature.encoder.kind, f"{path}.kind", "sequence encoder")
    params = validate_params(encoder_class, feature.encoder.params, ("sequence_dim", "query_dim"), f"{path}.params")
    single = {f.name for f in config.features if f.kind in ("categorical", "cross") or (
        f.kind == "numeric" and not is_dense(f))}
    for position, name in enumerate(feature.encoder.query):
        if name not in single:
            raise ConfigError(f"{path}.query[{position}]: '{name}' is not a single-valued id feature")
    if encoder_class.needs_query and not feature.encoder.query:
        raise ConfigError(f"{path}.query: '{feature.encoder.kind}' needs the candidate's features as its query")
    sequence_dim = sum(embeddings.output_dim(name) for name in feature.field_inputs)
    query_dim = sum(embeddings.output_dim(name) for name in feature.encoder.query)
    try:
        return encoder_class(sequence_dim=sequence_dim, query_dim=query_dim, **params)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
