"""Test helpers: a model's input layer straight from a fitted pipeline of single-valued features."""

from __future__ import annotations

import torch

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


def id_dense_inputs(vocab_sizes: list[int], dim: int, num_dense: int) -> ModelInputs:
    """Id features ``f0, f1, ...`` (tables of ``vocab_sizes`` rows, ``dim`` wide) then dense ``d0, d1, ...``."""
    tables = [Table(f"f{index}", rows, dim) for index, rows in enumerate(vocab_sizes)]
    lookups = [Lookup(table.name, table.name) for table in tables]
    dense = [f"d{index}" for index in range(num_dense)]
    return ModelInputs(EmbeddingCollection(tables, lookups), [], {}, dense, {"all": [t.name for t in tables] + dense})


def keyed(ids: torch.Tensor, dense: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, F) ids and (B, D) dense values as the inputs of :func:`id_dense_inputs`."""
    inputs = {f"f{index}": ids[:, index] for index in range(ids.shape[1])}
    inputs.update({f"d{index}": dense[:, index] for index in range(dense.shape[1])})
    return inputs
