"""A tiny fitted pipeline and untrained MMoE with a binary, a transformed regression and a multi-class task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
import torch
from tests.keyed_models import simple_inputs

from mtlrec.architectures import MMoE
from mtlrec.export import Fusion, ScoringModel, export_artifact, scoring_model
from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    ClassLabel,
    FeaturePipeline,
    LabelSpec,
    NumericEncoder,
    RegressionLabel,
)
from mtlrec.losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy, TransformedTarget
from mtlrec.model import MultiTaskModel

ROWS = 300


def raw_table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    """Raw columns: user, item (text ids), price, age (numbers, a few missing), labels click, watch, cat."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(2.0, 1.0, rows)
    price[::17] = np.nan
    return pa.table(
        {
            "user": pa.array([f"u{i}" for i in rng.integers(0, 40, rows)]),
            "item": pa.array([f"i{i}" for i in rng.integers(0, 500, rows)]),
            "price": pa.array(price),
            "age": pa.array(rng.uniform(18, 80, rows)),
            "click": pa.array(rng.integers(0, 2, rows).astype(float)),
            "watch": pa.array(rng.exponential(300.0, rows)),
            "cat": pa.array(rng.choice(["a", "b", "c"], rows)),
        }
    )


@dataclass
class Tiny:
    table: pa.Table
    pipeline: FeaturePipeline
    model: MultiTaskModel
    losses: dict[str, Loss]

    def scoring(self, fusion: Fusion | None = None) -> ScoringModel:
        return scoring_model(self.model, self.losses, self.pipeline, fusion)

    def encoded(self, table: pa.Table | None = None) -> dict[str, np.ndarray]:
        return self.pipeline.transform_features(self.table if table is None else table, "test")


def make_tiny(seed: int = 0) -> Tiny:
    table = raw_table(seed=seed)
    watch = RegressionLabel(clip=(0.0, 5000.0), log1p=True, standardize=True)
    pipeline = FeaturePipeline(
        [
            CategoricalEncoder("user"),
            CategoricalEncoder("item", hash_buckets=64),
            NumericEncoder("price", fill_value="median", log1p=True),
            NumericEncoder("age"),
            NumericEncoder("age_bucket", "age", buckets=4),
        ],
        [
            LabelSpec("click", "click", BinaryLabel()),
            LabelSpec("watch", "watch", watch),
            LabelSpec("category", "cat", ClassLabel(["a", "b", "c"])),
        ],
    )
    pipeline.fit(table, pipeline.transform_labels(table, "train"))
    torch.manual_seed(seed)
    inputs = simple_inputs(pipeline)
    architecture = MMoE(
        inputs.output_dim("all"),
        pipeline.task_names,
        num_experts=2,
        expert_hidden_units=[8],
        tower_hidden_units=[4],
        output_dims={"category": 3},
    )
    model = MultiTaskModel(inputs, architecture, ["all"]).eval()
    losses = {
        "click": BinaryCrossEntropy(),
        "watch": TransformedTarget(MeanSquaredError(), watch.inverse),
        "category": SoftmaxCrossEntropy(),
    }
    return Tiny(table, pipeline, model, losses)


@pytest.fixture
def raw_rows():
    """``raw_rows(rows, seed)`` → a raw table like the training one (new ids: some map to OOV)."""
    return raw_table


@pytest.fixture(scope="module")
def tiny() -> Tiny:
    return make_tiny()


@pytest.fixture
def export_tiny(tiny, tmp_path):
    """``export_tiny(name, model_format="onnx", fusion=None, **kwargs)`` → the artifact directory."""

    def export(name: str = "artifact", model_format: str = "onnx", fusion: Fusion | None = None, **kwargs):
        target = tmp_path / name
        export_artifact(tiny.scoring(fusion), tiny.pipeline, tiny.encoded(), target, model_format, **kwargs)
        return target

    return export
