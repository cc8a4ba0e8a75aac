"""The ``features`` and ``feature_groups`` sections: one model per feature kind, and named groups.

Vocabulary options (``min_count``, ``max_vocab_size``, ``hash_buckets``) and ``embedding_dim`` left
out (null) are taken from the other features of the same embedding table, else from the defaults
(min count 1, no cap, a vocabulary, ``model.embedding_dim``); features sharing a table must not give
different values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from mtlrec.config.base import Strict

#: A feature group member meaning "every feature" (in the default order).
EVERY_FEATURE = "*"


class VocabularyOptions(Strict):
    """How values become ids: a vocabulary fitted on train (with an OOV id) or hash buckets."""

    min_count: int | None = Field(None, ge=1, description="Values seen fewer times in train map to OOV (default 1).")
    max_vocab_size: int | None = Field(None, gt=0, description="Keep only the most frequent values.")
    hash_buckets: int | None = Field(None, gt=0, description="Hash values into this many buckets.")
    embedding: str | None = Field(
        None, description="The embedding table (default: the feature's own); features naming one table share it."
    )
    embedding_dim: int | None = Field(None, gt=0, description="Width of the table (default: model.embedding_dim).")

    @model_validator(mode="after")
    def _check_vocabulary(self) -> VocabularyOptions:
        if self.hash_buckets is not None and (self.min_count not in (None, 1) or self.max_vocab_size is not None):
            raise ValueError("hash_buckets cannot be combined with min_count or max_vocab_size")
        return self

    def vocabulary_options(self) -> dict[str, Any]:
        """The options given (null ones left out)."""
        names = ("min_count", "max_vocab_size", "hash_buckets")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class Named(Strict):
    """What every feature has: a name (unique among the features)."""

    name: str


class CategoricalFeature(VocabularyOptions, Named):
    """An id feature: vocabulary (with min count and an OOV id) or hash buckets, then an embedding."""

    kind: Literal["categorical"]
    column: str | None = Field(None, description="Source column; defaults to the feature name.")


class NumericFeature(Strict):
    """A numeric feature: null fill, optional log1p, standardisation, optional bucketisation."""

    name: str
    kind: Literal["numeric"]
    column: str | None = Field(None, description="Source column; defaults to the feature name.")
    fill_value: float | Literal["mean", "median"] = Field("mean", description="Replaces null/NaN.")
    log1p: bool = Field(False, description="Apply sign(x)*log1p(|x|) (log1p for x >= 0).")
    standardize: bool = True
    buckets: int | None = Field(
        None, ge=2, description="Quantile buckets fitted on train; the feature becomes an embedded id."
    )
    boundaries: list[float] | None = Field(
        None, min_length=1, description="Explicit increasing bucket boundaries; the feature becomes an embedded id."
    )
    embedding_dim: int | None = Field(None, gt=0, description="Width of the buckets' table (default: model's).")

    @model_validator(mode="after")
    def _check(self) -> NumericFeature:
        if self.buckets is not None and self.boundaries is not None:
            raise ValueError("use either buckets or boundaries, not both")
        if self.boundaries is not None and any(b <= a for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError("boundaries must be strictly increasing")
        if self.embedding_dim is not None and self.buckets is None and self.boundaries is None:
            raise ValueError("embedding_dim needs buckets or boundaries (a dense numeric feature is not embedded)")
        return self


class MultiValuedFeature(VocabularyOptions, Named):
    """A list of ids per row (tags, interests), optionally weighted, pooled into one embedding."""

    kind: Literal["multi_valued"]
    column: str | None = Field(None, description="Source column; defaults to the feature name.")
    separator: str = Field("|", min_length=1, description="Between values in a CSV cell (Parquet: list columns).")
    kv_separator: str | None = Field(None, min_length=1, description="Between a value and its weight: 'a:0.5|b:2'.")
    max_length: int | None = Field(None, ge=1, description="Values kept per row (default: the longest train list).")
    pooling: Literal["sum", "mean", "max"] = Field("mean", description="How the values' embeddings combine.")

    @model_validator(mode="after")
    def _check(self) -> MultiValuedFeature:
        if self.kv_separator is not None and self.pooling == "max":
            raise ValueError("max pooling takes no weights; use sum or mean with kv_separator")
        if self.kv_separator is not None and self.kv_separator == self.separator:
            raise ValueError("kv_separator must differ from separator")
        return self


class Column(Strict):
    """What a sequence field reads."""

    column: str
    name: str | None = Field(None, description="The field's name (inputs are '<sequence>.<name>'); default: column.")

    @property
    def field_name(self) -> str:
        return self.name or self.column


class SequenceFieldConfig(VocabularyOptions, Column):
    """One aligned field of a sequence (e.g. the item ids, or their categories)."""


class SequenceEncoderConfig(Strict):
    """How a sequence becomes one vector: a registered sequence encoder (``mtlrec list``)."""

    kind: str = Field("pooling", description="'pooling' (mean/sum/max) or 'attention' (DIN target attention).")
    query: list[str] = Field(
        default_factory=list,
        description="Attention: single-id features forming the query (the candidate), one per field, aligned "
        "with the fields and sharing their tables, e.g. [item_id, category_id].",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="The encoder's parameters.")


class SequenceFeature(Strict):
    """A behaviour sequence: aligned list columns, the most recent kept, read by a sequence encoder."""

    name: str
    kind: Literal["sequence"]
    fields: list[SequenceFieldConfig] = Field(min_length=1)
    max_length: int = Field(ge=1, description="Positions kept: the most recent ones.")
    recent: Literal["first", "last"] = Field(
        "first", description="Which end of the stored list is the most recent event: first (newest first) or last."
    )
    separator: str = Field("|", min_length=1, description="Between values in a CSV cell (Parquet: list columns).")
    encoder: SequenceEncoderConfig = Field(default_factory=SequenceEncoderConfig)

    @property
    def field_inputs(self) -> list[str]:
        """The model inputs of the fields, ``<sequence>.<field>``, in field order."""
        return [f"{self.name}.{field.field_name}" for field in self.fields]

    @model_validator(mode="after")
    def _check(self) -> SequenceFeature:
        names = [field.field_name for field in self.fields]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates or "length" in names:
            raise ValueError(f"field names must be distinct and not 'length' (got {names})")
        return self


class CrossFeature(VocabularyOptions, Named):
    """A crossed feature: the combination of two or more categorical columns as one id."""

    kind: Literal["cross"]
    columns: list[str] = Field(min_length=2, description="The crossed columns.")


Feature = Annotated[
    CategoricalFeature | NumericFeature | MultiValuedFeature | SequenceFeature | CrossFeature,
    Field(discriminator="kind"),
]


def is_dense(feature: Any) -> bool:
    """A numeric feature read as a value (not bucketised)."""
    return feature.kind == "numeric" and feature.buckets is None and feature.boundaries is None


def default_group(features: list[Any]) -> list[str]:
    """Every feature: the embedded ones in config order, then the dense values in config order."""
    return [f.name for f in features if not is_dense(f)] + [f.name for f in features if is_dense(f)]


def resolve_groups(groups: dict[str, list[str]] | None, features: list[Any]) -> dict[str, list[str]]:
    """The feature groups with ``"*"`` expanded (default: one group ``all`` of every feature)."""
    if groups is None:
        return {"all": default_group(features)}
    every = default_group(features)
    return {
        name: [n for member in members for n in (every if member == EVERY_FEATURE else [member])]
        for name, members in groups.items()
    }
