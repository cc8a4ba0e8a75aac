"""Metrics and evaluation."""

from mtlrec.evaluation.evaluator import compute_metrics, evaluate, predict_scores
from mtlrec.evaluation.metrics import METRICS, Metric, auc, calibration, ece, gauc, logloss, mae, rmse, xauc

__all__ = [
    "METRICS",
    "Metric",
    "auc",
    "calibration",
    "compute_metrics",
    "ece",
    "evaluate",
    "gauc",
    "logloss",
    "mae",
    "predict_scores",
    "rmse",
    "xauc",
]
