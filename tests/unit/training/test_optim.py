"""make_optimizer / CompositeOptimizer: dense Adam(W), lazy sparse Adam on embeddings, checkpointing."""

from __future__ import annotations

import copy

import torch
from tests.keyed_models import id_dense_inputs, keyed
from torch import nn

from mtlrec.architectures import SharedBottom
from mtlrec.model import MultiTaskModel
from mtlrec.training import CompositeOptimizer, load_checkpoint, make_optimizer, save_checkpoint
from mtlrec.training.sparse_adam import RowSparseAdam

VOCAB_SIZES = [6, 8]
TASKS = ["ctr", "cvr"]


def build_model(seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    input_layer = id_dense_inputs(VOCAB_SIZES, dim=3, num_dense=2)
    architecture = SharedBottom(input_layer.output_dim("all"), TASKS, bottom_hidden_units=[8], tower_hidden_units=[4])
    return MultiTaskModel(input_layer, architecture, ["all"])


def optimizer_for(model: MultiTaskModel, **kwargs) -> CompositeOptimizer:
    # as build_optimizer does: all parameters as "dense", embeddings named separately
    return make_optimizer(model.embedding_parameters(), model.parameters(), **kwargs)


def batch(ids: list[list[int]], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    rows = len(ids)
    dense = torch.randn(rows, 2, generator=generator)
    labels = {task: torch.randint(0, 2, (rows,), generator=generator).float() for task in TASKS}
    return torch.tensor(ids), dense, labels


def train_step(model: MultiTaskModel, optimizer: CompositeOptimizer, data) -> None:
    ids, dense, labels = data
    optimizer.zero_grad()
    outputs = model(keyed(ids, dense))
    sum(nn.functional.binary_cross_entropy_with_logits(outputs[t], labels[t]) for t in TASKS).backward()
    optimizer.step()


BATCHES = [batch([[0, 1], [2, 1], [5, 7]], seed=0), batch([[3, 4], [3, 0]], seed=1), batch([[1, 2], [4, 6]], seed=2)]


def test_embeddings_go_to_row_sparse_adam_and_dense_parameters_to_adam():
    model = build_model()
    optimizer = optimizer_for(model, lr=0.01)
    assert set(optimizer.optimizers) == {"dense", "embedding"}
    embedding, dense = optimizer.optimizers["embedding"], optimizer.optimizers["dense"]
    assert type(embedding) is RowSparseAdam
    assert type(dense) is torch.optim.Adam
    embedding_params = [p for group in embedding.param_groups for p in group["params"]]
    dense_params = [p for group in dense.param_groups for p in group["params"]]
    assert [id(p) for p in embedding_params] == [id(model.inputs.embeddings.weights["dim3"])]
    expected_dense = {id(p) for p in model.parameters()} - {id(model.inputs.embeddings.weights["dim3"])}
    assert {id(p) for p in dense_params} == expected_dense
    assert len(dense_params) == len(expected_dense)
    assert embedding.param_groups[0]["lr"] == 0.01 and dense.param_groups[0]["lr"] == 0.01


def test_adamw_embedding_lr_and_weight_decay_are_passed_on():
    model = build_model()
    optimizer = optimizer_for(model, name="adamw", lr=0.01, embedding_lr=0.1, weight_decay=0.05)
    dense = optimizer.optimizers["dense"]
    assert type(dense) is torch.optim.AdamW
    assert dense.param_groups[0]["lr"] == 0.01 and dense.param_groups[0]["weight_decay"] == 0.05
    assert optimizer.optimizers["embedding"].param_groups[0]["lr"] == 0.1


def test_frozen_parameters_are_left_out_and_missing_groups_are_omitted():
    model = build_model()
    frozen = model.architecture.bottom.layers[0].weight
    frozen.requires_grad_(False)
    optimizer = make_optimizer([], model.architecture.parameters())
    assert set(optimizer.optimizers) == {"dense"}
    assert all(p is not frozen for p in optimizer.optimizers["dense"].param_groups[0]["params"])
    only_embeddings = make_optimizer(model.embedding_parameters(), [])
    assert set(only_embeddings.optimizers) == {"embedding"}


def test_dense_step_equals_plain_adam():
    model = build_model()
    reference = copy.deepcopy(model)
    optimizer = optimizer_for(model, lr=0.01)
    dense_reference = [p for n, p in reference.named_parameters() if "embedding" not in n]
    reference_optimizer = torch.optim.Adam(dense_reference, lr=0.01, foreach=False)
    for data in BATCHES:
        train_step(model, optimizer, data)
        ids, dense, labels = data
        reference_optimizer.zero_grad()
        outputs = reference(keyed(ids, dense))
        sum(nn.functional.binary_cross_entropy_with_logits(outputs[t], labels[t]) for t in TASKS).backward()
        reference_optimizer.step()
    for (name, param), ref in zip(model.named_parameters(), reference.parameters()):
        if "embedding" not in name:
            torch.testing.assert_close(param, ref, rtol=1e-6, atol=1e-7)


def test_embedding_step_changes_only_the_rows_in_the_batch():
    model = build_model()
    optimizer = optimizer_for(model, lr=0.05)
    table = model.inputs.embeddings.weights["dim3"]
    offsets = [0, VOCAB_SIZES[0]]

    def touched(data) -> set[int]:
        return {row + offsets[f] for ids in data[0].tolist() for f, row in enumerate(ids)}

    for data in BATCHES:
        before = table.detach().clone()
        train_step(model, optimizer, data)
        assert table.grad is None or table.grad.is_sparse
        rows = touched(data)
        for row in range(table.shape[0]):
            if row in rows:
                assert not torch.equal(table[row], before[row]), f"row {row} was in the batch"
            else:  # lazy Adam: earlier batches' momentum does not move rows this batch did not touch
                assert torch.equal(table[row], before[row]), f"row {row} was not in the batch"


def test_zero_grad_clears_every_gradient():
    model = build_model()
    optimizer = optimizer_for(model)
    train_step(model, optimizer, BATCHES[0])
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_continues_identically(tmp_path):
    model = build_model(seed=0)
    optimizer = optimizer_for(model, lr=0.02)
    for data in BATCHES:
        train_step(model, optimizer, data)
    # checkpoint as the trainer does, through a weights-only load
    save_checkpoint(tmp_path / "ckpt.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert set(state["optimizer"]) == {"dense", "embedding"}

    resumed = build_model(seed=1)
    resumed.load_state_dict(state["model"])
    resumed_optimizer = optimizer_for(resumed, lr=0.02)
    resumed_optimizer.load_state_dict(state["optimizer"])
    restarted = build_model(seed=1)  # same weights, but fresh optimizer moments
    restarted.load_state_dict(state["model"])
    restarted_optimizer = optimizer_for(restarted, lr=0.02)

    for data in reversed(BATCHES):
        train_step(model, optimizer, data)
        train_step(resumed, resumed_optimizer, data)
        train_step(restarted, restarted_optimizer, data)
    for (name, param), other in zip(model.named_parameters(), resumed.parameters()):
        assert torch.equal(param, other), name
    # the loaded state mattered: without it the continuation differs
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), restarted.parameters()))
