"""Export contract over every entry of ``ARCHITECTURES``: the ONNX graph (through a real ONNX Runtime
session) and the TorchScript archive give the eager ``ScoringModel``'s outputs within 1e-5.

Each model has an input layer with every input kind of a real run, keyed by name: single ids
(three tables), dense values, a weighted bag of tags, and a two-field behaviour sequence read by
target attention against the candidate's ids (sharing their tables); STAR reads its domain from a
group read as ids. Tasks: a binary one, a regression one with a log1p + standardize label
transform, and a multi-class head where the architecture supports one; the fused score is a
formula. Parity also runs with half the features given once for all rows (a request's context).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from tests.contract.test_architectures import small_params

from mtlrec.architectures import ARCHITECTURES
from mtlrec.export import EXPORTERS, RUNTIMES, Fusion, ScoringModel, check_parity
from mtlrec.features import RegressionLabel
from mtlrec.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy, TransformedTarget
from mtlrec.model import IndependentTaskModels, ModelInputs, MultiTaskModel, SequenceInput
from mtlrec.nn import EmbeddingCollection, Lookup, Table, TargetAttention

TABLES = [Table("user", 5, 4), Table("item", 9, 4), Table("region", 4, 4), Table("tag", 7, 4)]
SINGLE = {"user": "user", "item": "item", "region": "region"}  # the last is STAR's domain (ids 0..3)
DENSE = ["price", "age", "score_x"]
LENGTH, TAGS = 6, 3
FEATURES = {
    **{name: [name] for name in SINGLE},
    **{name: [name] for name in DENSE},
    "tags": ["tags", "tags.length", "tags.weight"],
    "hist": ["hist.item", "hist.region", "hist.length"],
}
CLASSES = 3


def _tasks(name: str) -> tuple[list[str], dict]:
    cls = ARCHITECTURES[name]
    if cls.required_num_tasks == 3:  # ESMM: [ctr, cvr, ctcvr], binary only
        return ["ctr", "cvr", "ctcvr"], {}
    if not cls.supports_multi_class:
        return ["ctr", "watch"], {}
    return ["ctr", "watch", "genre"], {"genre": CLASSES}


def model_inputs(id_groups: dict[str, str] | None = None) -> ModelInputs:
    """Every input kind: single ids, dense values, a weighted bag, a sequence with target attention; and the
    groups an architecture may read as tensors by role (the region, the items)."""
    lookups = [Lookup(name, table) for name, table in SINGLE.items()]
    lookups += [Lookup("tags", "tag", "mean", "tags.length", "tags.weight")]
    lookups += [Lookup(f"hist.{name}", name, lengths="hist.length") for name in ("item", "region")]
    embeddings = EmbeddingCollection(TABLES, lookups)
    sequence = SequenceInput("hist", ("hist.item", "hist.region"), "hist.length", ("item", "region"))
    encoders = {"hist": TargetAttention(8, 8, hidden_units=[6], activation="prelu")}
    groups = {"all": [*SINGLE, "tags", "hist", *DENSE], "region": ["region"], "item": ["item", "tags"]}
    return ModelInputs(embeddings, [sequence], encoders, DENSE, groups, id_groups)


def _model(name: str, tasks: list[str], output_dims: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    cls = ARCHITECTURES[name]
    id_roles = [role for role, how in cls.group_inputs.items() if how == "ids"]
    id_groups = {role: "region" for role in id_roles} or None
    tensor_groups = {"domain": "region"}  # PEPNet's scenario; any other role reads the items
    role_groups = {role: role if role in id_roles else tensor_groups.get(role, "item") for role in cls.group_inputs}
    groups = [[task] for task in tasks] if cls.independent_tasks else [tasks]
    models = {}
    for group in groups:
        inputs = model_inputs(id_groups)
        dims = {task: width for task, width in output_dims.items() if task in group}
        extra = {"output_dims": dims} if dims else {}
        supplied = {f"num_{role}s": 4 for role in id_roles}
        supplied.update({f"{role}_dim": inputs.output_dim(role_groups[role]) for role in cls.group_inputs
                         if role not in id_roles})
        if "field_dims" in inspect.signature(cls.__init__).parameters:
            supplied["field_dims"] = inputs.field_dims(["all"])
        params = {**small_params(cls), **supplied, **extra}
        architecture = cls(input_dim=inputs.output_dim("all"), task_names=group, **params)
        task_inputs = {task: model_inputs(id_groups) for task in group} if cls.embeddings_per_task else None
        models[group[0]] = MultiTaskModel(inputs, architecture, ["all"], role_groups, task_inputs)
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
    names = [name for inputs in FEATURES.values() for name in inputs]
    return ScoringModel(_model(name, tasks, output_dims), {t: links[t] for t in tasks}, fusion, names, output_dims)


def rows(count: int, seed: int) -> dict[str, np.ndarray]:
    """Encoded rows: ids in range, padded lists (0 past each length, empty lists included), dense values."""
    rng = np.random.default_rng(seed)
    rows_of = {table.name: table.rows for table in TABLES}
    inputs = {name: rng.integers(1, rows_of[table], count) for name, table in SINGLE.items()}
    inputs.update({name: rng.normal(size=count).astype(np.float32) for name in DENSE})
    tag_lengths = rng.integers(0, TAGS + 1, count)
    tag_mask = np.arange(TAGS) < tag_lengths[:, None]
    inputs["tags"] = np.where(tag_mask, rng.integers(1, rows_of["tag"], (count, TAGS)), 0)
    inputs["tags.length"] = tag_lengths
    inputs["tags.weight"] = np.where(tag_mask, rng.uniform(0.1, 2.0, (count, TAGS)), 0).astype(np.float32)
    lengths = rng.integers(0, LENGTH + 1, count)
    mask = np.arange(LENGTH) < lengths[:, None]
    inputs["hist.item"] = np.where(mask, rng.integers(1, rows_of["item"], (count, LENGTH)), 0)
    inputs["hist.region"] = np.where(mask, rng.integers(1, rows_of["region"], (count, LENGTH)), 0)
    inputs["hist.length"] = lengths
    return {name: value.astype(np.int64) if value.dtype.kind == "i" else value for name, value in inputs.items()}


@pytest.mark.parametrize("model_format", sorted(EXPORTERS))
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_exported_model_matches_eager(name, model_format, tmp_path):
    model = scoring(name)
    inputs = rows(300, seed=1)
    path = tmp_path / "model"
    EXPORTERS[model_format](model, {k: torch.from_numpy(v[:8]) for k, v in inputs.items()}, path)
    exported = RUNTIMES[model_format](path, threads=1, input_names=model.input_names)
    if model_format == "onnx":
        assert exported.output_names == model.output_names
        assert set(exported.input_names) <= set(model.input_names)
    result = check_parity(model, exported, inputs, FEATURES, single_rows=5)
    assert result.passed and result.shared_runs == 2, result
    new = rows(13, seed=2)  # other values, a batch size never traced
    expected = model.score({k: torch.from_numpy(v) for k, v in new.items()})
    for output, (name_, value) in zip(exported.run(new), expected.items()):
        assert output.shape == value.shape, name_
        np.testing.assert_allclose(output, value.numpy(), rtol=1e-5, atol=1e-5, err_msg=name_)
    first, second = (expected[task].numpy() for task in model.task_names[:2])
    np.testing.assert_allclose(expected["score"].numpy(), np.sqrt(first) * np.log1p(second), rtol=1e-5)
