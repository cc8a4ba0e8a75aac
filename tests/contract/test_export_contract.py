"""Export contract over every entry of ``ARCHITECTURES``: the ONNX graph (through a real ONNX Runtime
session) and the TorchScript archive give the eager ``ScoringModel``'s outputs within 1e-5.

Each model has the input layer of a real run (ids (B, F) → fused embedding, dense (B, Dd)); STAR
reads its domain from an id column; a binary task, a regression task with a log1p + standardize label
transform, and a multi-class head where the architecture supports one; the fused score is a formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.contract.test_architectures import small_params

from mtlrec.architectures import ARCHITECTURES
from mtlrec.export import EXPORTERS, RUNTIMES, Fusion, ScoringModel, check_parity
from mtlrec.features import RegressionLabel
from mtlrec.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy, TransformedTarget
from mtlrec.model import IndependentTaskModels, MultiTaskModel
from mtlrec.nn import InputLayer

VOCAB = [5, 9, 4]  # the last id feature is STAR's domain (ids 0..3)
NUM_DENSE = 3
CLASSES = 3


def _tasks(name: str) -> tuple[list[str], dict]:
    cls = ARCHITECTURES[name]
    if cls.required_num_tasks == 3:  # ESMM: [ctr, cvr, ctcvr], binary only
        return ["ctr", "cvr", "ctcvr"], {}
    if not cls.supports_multi_class:
        return ["ctr", "watch"], {}
    return ["ctr", "watch", "genre"], {"genre": CLASSES}


def _model(name: str, tasks: list[str], output_dims: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    cls = ARCHITECTURES[name]
    supplied = {"num_domains": VOCAB[-1]} if cls.needs_domain else {}
    groups = [[task] for task in tasks] if cls.independent_tasks else [tasks]
    models = {}
    for group in groups:
        inputs = InputLayer(VOCAB, 4, NUM_DENSE)
        dims = {task: width for task, width in output_dims.items() if task in group}
        extra = {"output_dims": dims} if dims else {}
        architecture = cls(input_dim=inputs.output_dim(), task_names=group, **small_params(cls), **supplied, **extra)
        models[group[0]] = MultiTaskModel(inputs, architecture, len(VOCAB) - 1 if cls.needs_domain else None)
    model = IndependentTaskModels(models) if cls.independent_tasks else models[tasks[0]]
    return model.eval()


def scoring(name: str) -> ScoringModel:
    tasks, output_dims = _tasks(name)
    label = RegressionLabel(log1p=True, standardize=True)
    label.mean_, label.std_ = 3.0, 1.5
    links = {
        "ctr": BinaryCrossEntropy().predict,
        "cvr": BinaryCrossEntropy().predict,
        "ctcvr": BinaryCrossEntropy().predict,
        "watch": TransformedTarget(MeanSquaredError(), label.inverse).predict,
        "genre": SoftmaxCrossEntropy().predict,
    }
    second = tasks[1]
    fusion = Fusion.from_formula(f"ctr^0.5 * log1p({second})")
    return ScoringModel(_model(name, tasks, output_dims), {t: links[t] for t in tasks}, fusion, output_dims)


def rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, size, count) for size in VOCAB], axis=1).astype(np.int64)
    return ids, rng.normal(size=(count, NUM_DENSE)).astype(np.float32)


@pytest.mark.parametrize("model_format", sorted(EXPORTERS))
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_exported_model_matches_eager(name, model_format, tmp_path):
    model = scoring(name)
    ids, dense = rows(300, seed=1)
    path = tmp_path / "model"
    EXPORTERS[model_format](model, (torch.from_numpy(ids[:8]), torch.from_numpy(dense[:8])), path)
    exported = RUNTIMES[model_format](path, threads=1)
    if model_format == "onnx":
        assert exported.output_names == model.output_names
    result = check_parity(model, exported, ids, dense, single_rows=5)
    assert result.passed, result
    new_ids, new_dense = rows(13, seed=2)  # other values, a batch size never traced
    expected = model.score(torch.from_numpy(new_ids), torch.from_numpy(new_dense))
    for output, (name_, value) in zip(exported.run(new_ids, new_dense), expected.items()):
        assert output.shape == value.shape, name_
        np.testing.assert_allclose(output, value.numpy(), rtol=1e-5, atol=1e-5, err_msg=name_)
    first, second = (expected[task].numpy() for task in model.task_names[:2])
    np.testing.assert_allclose(expected["score"].numpy(), np.sqrt(first) * np.log1p(second), rtol=1e-5)
