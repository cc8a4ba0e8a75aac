"""The funnel configs (configs/cascade) on freshly generated cascade data: ESMM's three outputs and
its CVR metric on clicked rows, AITM, and a masked CVR task, trained through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from mtlrec.app.cli import main
from mtlrec.synth import write_cascade

CASCADE_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "cascade"
SHORT = ["train.epochs=1", "train.batch_size=256", "train.lr=0.005", "train.lr_schedule=constant"]


@pytest.fixture(scope="module")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cascade") / "cascade.parquet"
    write_cascade(path, rows=30_000, seed=3, stages=("click", "conversion", "purchase"), rates=(0.2, 0.3, 0.3))
    return path


def _train(name: str, data: Path, output: Path) -> dict:
    sets = [arg for override in [f"data.train={data}", *SHORT] for arg in ("--set", override)]
    assert main(["train", str(CASCADE_CONFIGS / f"{name}.yaml"), "--output", str(output), "--no-progress", *sets]) == 0
    return json.loads((output / "metrics.json").read_text())


def test_every_cascade_config_is_tested():
    assert {path.stem for path in CASCADE_CONFIGS.glob("*.yaml")} == {"base", "esmm", "aitm", "mmoe_masked_cvr"}


def test_esmm_outputs_ctr_cvr_and_their_product_and_scores_cvr_on_clicks(tmp_path, cascade):
    run = tmp_path / "esmm"
    metrics = _train("esmm", cascade, run)
    assert set(metrics["test"]) == {"ctr", "cvr", "ctcvr"}
    history = json.loads((run / "history.json").read_text())
    assert set(history[0]["train_loss"]) == {"ctr", "ctcvr"}  # CVR has no loss of its own

    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(cascade), "--output", str(scores_path)]) == 0
    scores = pq.read_table(scores_path)
    ctr, cvr, ctcvr = (scores.column(name).to_numpy() for name in ("ctr", "cvr", "ctcvr"))
    np.testing.assert_allclose(ctcvr, ctr * cvr, rtol=1e-4, atol=1e-7)

    labels = pq.read_table(cascade, columns=["click", "conversion"])
    click = labels.column("click").to_numpy() == 1
    conversion = labels.column("conversion").to_numpy() == 1
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(cascade), "--output", str(evaluated)]) == 0
    result = json.loads(evaluated.read_text())
    assert result["cvr"]["auc"] == pytest.approx(roc_auc_score(conversion[click], cvr[click]), abs=1e-6)
    assert result["ctcvr"]["auc"] == pytest.approx(roc_auc_score(conversion, ctcvr), abs=1e-6)
    assert result["ctr"]["auc"] > 0.6 and result["ctcvr"]["auc"] > 0.6


def test_aitm_learns_the_funnel(tmp_path, cascade):
    metrics = _train("aitm", cascade, tmp_path / "aitm")["test"]
    assert set(metrics) == {"click", "conversion", "purchase"}
    assert all(metrics[task]["auc"] > 0.6 for task in metrics)


def test_masked_cvr_learns_on_clicked_rows_only(tmp_path, cascade):
    """CVR is P(conversion | click): on clicked rows its mean matches their conversion rate (trained on every
    row it would match the far lower rate per impression), and its AUC counts clicked rows only."""
    run = tmp_path / "masked"
    metrics = _train("mmoe_masked_cvr", cascade, run)["test"]
    assert metrics["ctr"]["auc"] > 0.6 and metrics["cvr"]["auc"] > 0.55
    scores_path = tmp_path / "scores.parquet"
    assert main(["predict", str(run), "--data", str(cascade), "--output", str(scores_path)]) == 0
    cvr = pq.read_table(scores_path).column("cvr").to_numpy()
    labels = pq.read_table(cascade, columns=["click", "conversion"])
    click = labels.column("click").to_numpy() == 1
    conversion = labels.column("conversion").to_numpy() == 1
    rate_on_clicks, rate_overall = conversion[click].mean(), conversion.mean()
    assert rate_on_clicks > 3 * rate_overall  # the two hypotheses are far apart
    assert abs(cvr[click].mean() - rate_on_clicks) < 0.25 * rate_on_clicks
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", str(cascade), "--output", str(evaluated)]) == 0
    result = json.loads(evaluated.read_text())["cvr"]["auc"]
    assert result == pytest.approx(roc_auc_score(conversion[click], cvr[click]), abs=1e-6)
