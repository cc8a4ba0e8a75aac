"""Test helpers: a model's input layer straight from a fitted pipeline of single-valued features."""

from __future__ import annotations

from mtlrec.features import FeaturePipeline
from mtlrec.model import ModelInputs
from mtlrec.nn import EmbeddingCollection, Lookup, Table


def simple_inputs(pipeline: FeaturePipeline, dim: int = 4) -> ModelInputs:
    """One group ``all``: every single id embedded (``dim`` wide), then every dense value."""
    specs = pipeline.inputs()
    tables = [Table(name, rows, dim) for name, rows in pipeline.tables().items()]
    lookups = [Lookup(spec.name, spec.table) for spec in specs if spec.role == "ids"]
    dense = [spec.name for spec in specs if spec.role == "dense"]
    members = [lookup.input for lookup in lookups] + dense
    return ModelInputs(EmbeddingCollection(tables, lookups), [], {}, dense, {"all": members})
