"""The Python API: a thin facade over the application layer (nothing inside mtlrec imports it).

Train a run from a config, evaluate and predict with a run directory, export and serve it, compare
against single-task baselines over seeds and reproduce the census table, summarise runs.
"""

from __future__ import annotations

from mtlrec.app.deploy import export_run, predict_artifact
from mtlrec.app.experiments.census import reproduce_census
from mtlrec.app.experiments.compare import compare
from mtlrec.app.runs import format_table, load_run, summarize, write_summary
from mtlrec.app.workflows import Metrics, evaluate_run, predict_run, train

__all__ = [
    "Metrics",
    "compare",
    "evaluate_run",
    "export_run",
    "format_table",
    "load_run",
    "predict_artifact",
    "predict_run",
    "reproduce_census",
    "summarize",
    "train",
    "write_summary",
]
