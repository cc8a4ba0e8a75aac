"""Metrics and evaluation."""

from mtlrec.evaluation.evaluator import compute_metrics, evaluate, predict_scores
from mtlrec.evaluation.metrics import METRICS, Metric, auc, logloss, mae, rmse

__all__ = ["METRICS", "Metric", "auc", "compute_metrics", "evaluate", "logloss", "mae", "predict_scores", "rmse"]
