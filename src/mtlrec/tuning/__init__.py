"""Tuning what a trained model serves: score-fusion weight sweeps, Pareto fronts, constrained choice."""

from mtlrec.tuning.pareto import pareto_front
from mtlrec.tuning.report import sweep_rows, write_sweep
from mtlrec.tuning.select import Choice, choose, fusion_config, fusion_yaml
from mtlrec.tuning.sweep import SWEPT_KINDS, Sweep, TaskLabels, fusion_grid, simplex_grid, sweep_fusions

__all__ = [
    "SWEPT_KINDS",
    "Choice",
    "Sweep",
    "TaskLabels",
    "choose",
    "fusion_config",
    "fusion_grid",
    "fusion_yaml",
    "pareto_front",
    "simplex_grid",
    "sweep_fusions",
    "sweep_rows",
    "write_sweep",
]
