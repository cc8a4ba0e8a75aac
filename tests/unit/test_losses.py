"""Per-task losses against scikit-learn and hand-computed cases, with and without sample-space masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, mean_squared_error

from mtlrec.losses import (
    LOSSES,
    BinaryCrossEntropy,
    FocalLoss,
    Huber,
    MeanSquaredError,
    SoftmaxCrossEntropy,
    task_losses,
)


def _data(rows: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, generator=generator, dtype=torch.float64)
    targets = (torch.rand(rows, generator=generator) < 0.4).double()
    in_space = torch.rand(rows, generator=generator) < 0.5
    return logits, targets, in_space


def test_bce_matches_sklearn():
    logits, targets, _ = _data()
    expected = log_loss(targets.numpy(), torch.sigmoid(logits).numpy())
    assert BinaryCrossEntropy()(logits, targets).item() == pytest.approx(expected, rel=1e-9)


def test_masked_bce_is_the_mean_over_rows_in_the_space():
    logits, targets, in_space = _data()
    masked_targets = torch.where(in_space, targets, torch.full_like(targets, float("nan")))
    expected = log_loss(targets[in_space].numpy(), torch.sigmoid(logits[in_space]).numpy())
    assert BinaryCrossEntropy(masked=True)(logits, masked_targets).item() == pytest.approx(expected, rel=1e-9)


def test_masked_loss_gives_rows_outside_the_space_no_gradient():
    logits, targets, in_space = _data()
    logits.requires_grad_(True)
    masked_targets = torch.where(in_space, targets, torch.full_like(targets, float("nan")))
    BinaryCrossEntropy(masked=True)(logits, masked_targets).backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[~in_space] == 0)
    assert torch.all(logits.grad[in_space] != 0)
    # d/dz mean BCE = (σ(z) − y) / n over the n rows in the space
    expected = (torch.sigmoid(logits[in_space]) - targets[in_space]) / in_space.sum()
    torch.testing.assert_close(logits.grad[in_space], expected.detach())


def test_empty_space_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(8, requires_grad=True)
    loss = BinaryCrossEntropy(masked=True)(logits, torch.full((8,), float("nan")))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_masked_mse_matches_sklearn():
    generator = torch.Generator().manual_seed(1)
    predictions, targets = torch.randn(50, generator=generator), torch.randn(50, generator=generator)
    targets[::3] = float("nan")
    keep = ~torch.isnan(targets)
    expected = mean_squared_error(targets[keep].numpy(), predictions[keep].numpy())
    assert MeanSquaredError(masked=True)(predictions, targets).item() == pytest.approx(expected, rel=1e-5)


def test_softmax_cross_entropy_matches_sklearn_and_predicts_probabilities():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 5, (40,), generator=generator).double()
    loss = SoftmaxCrossEntropy()
    probabilities = loss.predict(logits)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(40, dtype=torch.float64))
    expected = log_loss(targets.numpy(), probabilities.numpy(), labels=list(range(5)))
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-9)
    targets[:10] = float("nan")
    expected_masked = log_loss(targets[10:].numpy(), probabilities[10:].numpy(), labels=list(range(5)))
    assert SoftmaxCrossEntropy(masked=True)(logits, targets).item() == pytest.approx(expected_masked, rel=1e-9)


def test_task_losses_stacks_in_the_order_of_the_losses():
    logits = {"a": torch.zeros(4), "b": torch.ones(4)}
    targets = {"a": torch.ones(4), "b": torch.tensor([0.0, 1.0, 2.0, 3.0])}
    vector = task_losses(logits, targets, {"b": MeanSquaredError(), "a": BinaryCrossEntropy()})
    torch.testing.assert_close(vector, torch.tensor([(1 + 0 + 1 + 4) / 4, float(np.log(2))]))


def test_registry_kinds():
    assert {name: loss.kind for name, loss in LOSSES.items()} == {
        "bce": "binary",
        "focal": "binary",
        "mse": "regression",
        "huber": "regression",
        "softmax_ce": "multiclass",
    }


def _bce(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_label_smoothing_is_bce_against_smoothed_targets():
    logits, targets, _ = _data()
    p, y = torch.sigmoid(logits).numpy(), targets.numpy()
    expected = _bce(p, y * 0.8 + 0.1).mean()
    assert BinaryCrossEntropy(label_smoothing=0.2)(logits, targets).item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("gamma, alpha", [(2.0, 0.25), (0.5, None), (0.0, None), (3.0, 0.9)])
def test_focal_loss_matches_the_paper_formula(gamma, alpha):
    logits, targets, _ = _data(rows=200, seed=3)
    logits = logits * 6  # include confident predictions
    p, y = torch.sigmoid(logits).numpy(), targets.numpy()
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = 1.0 if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    expected = np.mean(-alpha_t * (1 - p_t) ** gamma * np.log(p_t))
    assert FocalLoss(gamma=gamma, alpha=alpha)(logits, targets).item() == pytest.approx(expected, rel=1e-7)


def test_focal_loss_is_finite_for_extreme_logits():
    logits = torch.tensor([-500.0, 500.0, -500.0, 500.0], requires_grad=True)
    loss = FocalLoss()(logits, torch.tensor([1.0, 0.0, 0.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_huber_matches_the_piecewise_formula():
    predictions = torch.linspace(-4, 4, 81, dtype=torch.float64)
    targets = torch.zeros(81, dtype=torch.float64)
    r = np.abs(predictions.numpy())
    expected = np.where(r <= 1.5, 0.5 * r**2, 1.5 * (r - 0.75)).mean()
    assert Huber(delta=1.5)(predictions, targets).item() == pytest.approx(expected, rel=1e-12)


def test_sample_weights_scale_each_rows_loss():
    logits, targets, in_space = _data()
    weights = torch.rand(len(targets), generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 3
    per_row = _bce(torch.sigmoid(logits).numpy(), targets.numpy())
    expected = np.mean(weights.numpy() * per_row)  # (1/n) Σ w_i ℓ_i
    assert BinaryCrossEntropy()(logits, targets, weights).item() == pytest.approx(expected, rel=1e-9)
    masked_targets = torch.where(in_space, targets, torch.full_like(targets, float("nan")))
    keep = in_space.numpy()
    expected_masked = np.sum(weights.numpy()[keep] * per_row[keep]) / keep.sum()
    got = BinaryCrossEntropy(masked=True)(logits, masked_targets, weights).item()
    assert got == pytest.approx(expected_masked, rel=1e-9)


@pytest.mark.parametrize(
    "cls, bad",
    [
        (BinaryCrossEntropy, {"label_smoothing": 1.0}),
        (Huber, {"delta": 0.0}),
        (FocalLoss, {"gamma": -1.0}),
        (FocalLoss, {"alpha": 1.5}),
    ],
)
def test_bad_loss_parameters_are_rejected(cls, bad):
    with pytest.raises(ValueError):
        cls(**bad)
