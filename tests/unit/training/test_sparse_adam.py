"""RowSparseAdam and the row-sparse lookup against torch's SparseAdam and dense embedding gradients."""

from __future__ import annotations

import pytest
import torch

from mtlrec.nn.sparse_lookup import row_sparse_lookup
from mtlrec.training.sparse_adam import RowSparseAdam


def _batches(steps: int, rows: int, shape: tuple[int, int]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    # small row range so batches repeat rows within a batch and across batches
    return [torch.randint(0, rows, shape, generator=generator) for _ in range(steps)]


def test_lookup_gradient_equals_dense_embedding_gradient():
    weight = torch.nn.Parameter(torch.randn(30, 4))
    ids = torch.tensor([[1, 5, 1], [29, 5, 0]])
    target = torch.randn(2, 3, 4)
    (row_sparse_lookup(weight, ids) * target).sum().backward()
    sparse = weight.grad
    weight.grad = None
    (torch.nn.functional.embedding(ids, weight) * target).sum().backward()
    assert sparse.is_sparse
    torch.testing.assert_close(sparse.to_dense(), weight.grad)
    rows = sparse._indices()[0]
    assert rows.tolist() == [0, 1, 5, 29]  # distinct and sorted: one row per touched id


def test_lookup_forward_equals_embedding():
    weight = torch.randn(12, 3)
    ids = torch.randint(0, 12, (4, 5))
    torch.testing.assert_close(row_sparse_lookup(weight, ids), torch.nn.functional.embedding(ids, weight))


@pytest.mark.parametrize("lr", [1e-3, 0.05])
def test_row_sparse_adam_matches_torch_sparse_adam(lr):
    torch.manual_seed(0)
    initial = torch.randn(40, 6)
    ours = torch.nn.Parameter(initial.clone())
    reference = torch.nn.Parameter(initial.clone())
    ours_optimizer = RowSparseAdam([ours], lr=lr)
    reference_optimizer = torch.optim.SparseAdam([reference], lr=lr)
    targets = torch.randn(8, 5, 6, generator=torch.Generator().manual_seed(1))
    for ids in _batches(12, 40, (8, 5)):
        ours_optimizer.zero_grad()
        (row_sparse_lookup(ours, ids) * targets).pow(2).sum().backward()
        ours_optimizer.step()
        reference_optimizer.zero_grad()
        (torch.nn.functional.embedding(ids, reference, sparse=True) * targets).pow(2).sum().backward()
        reference_optimizer.step()
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=1e-5, atol=1e-6)


def test_row_sparse_adam_leaves_untouched_rows_alone():
    weight = torch.nn.Parameter(torch.randn(20, 3))
    before = weight.detach().clone()
    optimizer = RowSparseAdam([weight], lr=0.1)
    row_sparse_lookup(weight, torch.tensor([[2, 7, 2]])).sum().backward()
    optimizer.step()
    changed = (weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [2, 7]


def test_row_sparse_adam_coalesces_uncoalesced_gradients():
    """A table used twice in one graph gets two gradients summed by autograd: repeated rows."""
    weight = torch.nn.Parameter(torch.zeros(10, 2))
    optimizer = RowSparseAdam([weight], lr=0.1)
    (
        row_sparse_lookup(weight, torch.tensor([3, 4])).sum() + row_sparse_lookup(weight, torch.tensor([4])).sum()
    ).backward()
    optimizer.step()
    # Adam's first step moves every touched coordinate by -lr (gradient sign positive), once per row
    torch.testing.assert_close(weight.detach()[[3, 4]], torch.full((2, 2), -0.1))


def test_row_sparse_adam_rejects_dense_gradients():
    weight = torch.nn.Parameter(torch.zeros(4, 2))
    weight.grad = torch.ones(4, 2)
    with pytest.raises(RuntimeError, match="sparse"):
        RowSparseAdam([weight]).step()


@pytest.mark.parametrize("table_rows", [50, 100_000])  # marking pass and sort path
def test_distinct_rows_equals_torch_unique(table_rows):
    from mtlrec.nn.sparse_lookup import distinct_rows

    rows = torch.randint(0, table_rows, (300,), generator=torch.Generator().manual_seed(0))
    unique, inverse = distinct_rows(rows, table_rows)
    expected_unique, expected_inverse = torch.unique(rows, return_inverse=True)
    assert torch.equal(unique, expected_unique)
    assert torch.equal(inverse, expected_inverse)


def test_weight_decay_on_batches_touching_every_row_is_adams_coupled_l2():
    """When each batch touches every row, lazy L2 is torch.optim.Adam's weight_decay on the dense gradient."""
    torch.manual_seed(0)
    start = torch.randn(6, 3)
    lazy, dense = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    sparse_opt = RowSparseAdam([lazy], lr=0.05, weight_decay=0.3)
    dense_opt = torch.optim.Adam([dense], lr=0.05, weight_decay=0.3)
    for step in range(5):
        ids = torch.arange(6).roll(step).view(2, 3)  # every row, in a new order each step
        target = torch.randn(2, 3, 3)
        for weight, optimizer in ((lazy, sparse_opt), (dense, dense_opt)):
            optimizer.zero_grad()
            lookup = row_sparse_lookup(weight, ids) if weight is lazy else torch.nn.functional.embedding(ids, weight)
            ((lookup - target) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(lazy.detach(), dense.detach())


def test_weight_decay_leaves_untouched_rows_alone_and_shrinks_touched_ones():
    start = torch.randn(8, 2)
    weight = torch.nn.Parameter(start.clone())
    optimizer = RowSparseAdam([weight], lr=0.1, weight_decay=1.0)
    for _ in range(20):
        optimizer.zero_grad()
        (row_sparse_lookup(weight, torch.tensor([[1, 4]])) * 0.0).sum().backward()  # only the penalty acts
        optimizer.step()
    untouched = [0, 2, 3, 5, 6, 7]
    torch.testing.assert_close(weight.detach()[untouched], start[untouched])
    assert (weight.detach()[[1, 4]].abs() < start[[1, 4]].abs()).all()


def test_negative_weight_decay_is_refused():
    with pytest.raises(ValueError, match="weight_decay"):
        RowSparseAdam([torch.nn.Parameter(torch.zeros(2, 2))], weight_decay=-0.1)
