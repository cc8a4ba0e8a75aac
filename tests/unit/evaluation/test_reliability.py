"""Reliability bins against scikit-learn's calibration_curve (quantile strategy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve

from mtlrec.data.batch import Batch, EncodedData
from mtlrec.evaluation.reliability import reliability_bins, reliability_report


@pytest.mark.parametrize("bins", [5, 15])
def test_bins_equal_sklearn_calibration_curve(bins):
    rng = np.random.default_rng(0)
    p = rng.beta(0.5, 6.0, size=3000)  # skewed like a CTR model's predictions
    y = (rng.random(3000) < p).astype(float)
    result = reliability_bins(y, p, bins)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    np.testing.assert_allclose(result["observed_rate"], observed, atol=1e-12)
    np.testing.assert_allclose(result["mean_predicted"], predicted, atol=1e-12)
    assert sum(result["count"]) == 3000


def test_tied_predictions_leave_empty_bins_out():
    p = np.array([0.1] * 50 + [0.2] * 30 + [0.9] * 20)
    y = np.array([0] * 45 + [1] * 5 + [0] * 24 + [1] * 6 + [1] * 20, dtype=float)
    result = reliability_bins(y, p, 10)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_allclose(result["observed_rate"], observed)
    np.testing.assert_allclose(result["mean_predicted"], predicted)
    assert result["count"] == [50, 30, 20]
    assert reliability_bins(np.zeros(0), np.zeros(0)) == {"mean_predicted": [], "observed_rate": [], "count": []}


class _Sigmoid:
    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def original(self, targets: torch.Tensor) -> torch.Tensor:
        return targets


class _Identity(torch.nn.Module):
    """Logits read from the dense input (times a unit scale: evaluation looks for the model's device)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"ctr": inputs["ctr_logit"] * self.scale, "cvr": inputs["cvr_logit"] * self.scale}


def test_report_drops_rows_without_a_label():
    logits = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    labels = (torch.rand(200, 2, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    labels[:120, 1] = float("nan")  # cvr labelled on 80 rows only
    inputs = {"ctr_logit": logits[:, 0], "cvr_logit": logits[:, 1]}
    data = EncodedData(Batch(inputs, {"ctr": labels[:, 0], "cvr": labels[:, 1]}), ["ctr", "cvr"])
    report = reliability_report(_Identity(), data, {"ctr": _Sigmoid(), "cvr": _Sigmoid()}, ["ctr", "cvr"], 64, 4)
    assert sum(report["ctr"]["count"]) == 200 and sum(report["cvr"]["count"]) == 80
    expected = reliability_bins(labels[120:, 1].numpy(), torch.sigmoid(logits[120:, 1]).numpy(), 4)
    for key, values in expected.items():
        np.testing.assert_allclose(report["cvr"][key], values, rtol=1e-6)
