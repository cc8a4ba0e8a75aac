"""The Pareto plot of a fusion sweep as PNG bytes (matplotlib's object API, Agg; no pyplot state)."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np

from mtlrec.tuning.sweep import Sweep

_MARKERS = {"weighted_sum": "o", "weighted_product": "^"}


def pareto_png(sweep: Sweep, chosen: int | None = None) -> bytes:
    """Every setting (grey), the Pareto front (coloured, joined in the 2-D case) and the chosen one (star).

    Two objectives give one scatter plot; more give one panel per pair of objectives (the front is
    the K-dimensional one, so some of its points may look dominated in a 2-D projection).
    """
    from matplotlib.figure import Figure  # the `report` extra

    pairs = list(itertools.combinations(range(len(sweep.metric_names)), 2)) or [(0, 0)]
    columns = min(3, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    figure = Figure(figsize=(4.6 * columns, 4.0 * rows))
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    kinds = np.array([fusion.kind for fusion in sweep.fusions])
    for axes, (x, y) in zip(panels, pairs):
        for kind, marker in _MARKERS.items():
            rest = (kinds == kind) & ~sweep.front
            on = (kinds == kind) & sweep.front
            axes.scatter(sweep.values[rest, x], sweep.values[rest, y], c="0.7", s=14, marker=marker, label=f"{kind}")
            axes.scatter(sweep.values[on, x], sweep.values[on, y], c="C3", s=22, marker=marker, label=f"{kind}, front")
        if len(sweep.metric_names) == 2:
            order = np.argsort(sweep.values[sweep.front, x])
            axes.plot(sweep.values[sweep.front, x][order], sweep.values[sweep.front, y][order], c="C3", lw=0.8)
        if chosen is not None:
            axes.scatter(sweep.values[chosen, x], sweep.values[chosen, y], c="C0", s=140, marker="*", label="chosen")
        axes.set(xlabel=sweep.metric_names[x], ylabel=sweep.metric_names[y])
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=7)
    for axes in panels[len(pairs) :]:
        axes.set_visible(False)
    figure.suptitle("fusion sweep: every setting and the Pareto front")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
