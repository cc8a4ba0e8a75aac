"""The report's plots as PNG bytes, drawn with matplotlib's object API (``Figure``, no pyplot state).

Each function takes plain numbers and labels and returns the bytes of one PNG; nothing here reads a
run directory.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

DPI = 100


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def learning_curves(
    task: str, epochs: Sequence[float], train_loss: Sequence[float], valid: Mapping[str, Sequence[float]]
) -> bytes:
    """A task's training loss per evaluation (x: epochs done), then one panel per validation metric (each on its
    own scale)."""
    figure = Figure(figsize=(3.4 * (1 + len(valid)), 3.2))
    panels = figure.subplots(1, 1 + len(valid), squeeze=False).ravel()
    panels[0].plot(epochs, train_loss, marker="o")
    panels[0].set(title=f"{task}: training loss", xlabel="epoch")
    for axes, (name, values) in zip(panels[1:], valid.items()):
        axes.plot(epochs[: len(values)], values, marker="o", color="C1")
        axes.set(title=f"{task}: validation {name}", xlabel="epoch")
    for axes in panels:
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def metric_bars(runs: Sequence[str], metrics: Mapping[str, Sequence[float]]) -> bytes:
    """One panel per ``task.metric``, one bar per run (NaN: no bar), each bar labelled with its value."""
    names = list(metrics)
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.8 * rows + 0.25 * len(runs)))
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    colors = [f"C{i % 10}" for i in range(len(runs))]
    legend_bars = None
    for axes, name in zip(panels, names):
        values = np.asarray(metrics[name], dtype=np.float64)
        bars = axes.bar(range(len(runs)), np.nan_to_num(values), color=colors)
        legend_bars = legend_bars or bars
        axes.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.4f}" for v in values], fontsize=7)
        finite = values[~np.isnan(values)]
        if finite.size:  # zoom on the values: differences between runs are often in the third decimal
            pad = max((finite.max() - finite.min()) * 0.6, abs(finite.max()) * 0.002, 1e-6)
            axes.set_ylim(finite.min() - pad, finite.max() + pad)
        axes.set(title=name, xticks=[])
    for axes in panels[len(names) :]:
        axes.set_visible(False)
    figure.legend(list(legend_bars), list(runs), loc="lower center", ncol=min(len(runs), 4), fontsize=8)
    figure.tight_layout(rect=(0, 0.06 + 0.04 * math.ceil(len(runs) / 4), 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def heatmap(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    limits: tuple[float, float],
    colormap: str = "viridis",
    colorbar_label: str = "",
) -> bytes:
    """An annotated (R, C) heatmap; NaN cells are left blank (grey)."""
    rows, columns = matrix.shape
    labels_width = 0.08 * max((len(str(label)) for label in row_labels), default=0)  # inches for the row names
    figure = Figure(figsize=(max(4.0, 0.75 * columns + 2.5 + labels_width), max(2.5, 0.5 * rows + 1.5)))
    axes = figure.subplots()
    cmap = matplotlib.colormaps[colormap].with_extremes(bad="#dddddd")
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=limits[0], vmax=limits[1], aspect="auto")
    axes.set_xticks(range(columns), labels=list(column_labels), rotation=45 if columns > 4 else 0, ha="right")
    axes.set_yticks(range(rows), labels=list(row_labels))
    middle = (limits[0] + limits[1]) / 2
    for (i, j), value in np.ndenumerate(matrix):
        if not math.isnan(value):
            color = "white" if value < middle else "black"
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=color)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label=colorbar_label)
    return _png(figure)


def curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    reference: float | None = None,
) -> bytes:
    """Lines over a shared x axis (None values break a line), with an optional horizontal reference."""
    figure = Figure(figsize=(8, 3.6))
    axes = figure.subplots()
    for label, values in series.items():
        y = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        axes.plot(x, y, marker="." if len(x) < 60 else None, label=label)
    if reference is not None:
        axes.axhline(reference, color="grey", linewidth=0.8, linestyle="--")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if ylim is not None:
        axes.set_ylim(*ylim)
    axes.grid(alpha=0.3)
    if series:
        axes.legend(fontsize=8, loc="best")
    return _png(figure)


def horizontal_bars(values: Mapping[str, float], title: str, xlabel: str) -> bytes:
    """One labelled bar per name, the first on top (room left for the labels)."""
    names = list(values)[::-1]
    figure = Figure(figsize=(6.4, 0.45 * len(names) + 1.2))
    axes = figure.subplots()
    bars = axes.barh(names, [values[name] for name in names], color="C0")
    axes.bar_label(bars, labels=[f"{values[name]:.2f}" for name in names], fontsize=8)
    axes.set(title=title, xlabel=xlabel)
    axes.set_xlim(0, max(values.values(), default=1.0) * 1.15 or 1.0)
    return _png(figure)


def reliability_diagram(
    task: str, mean_predicted: Sequence[float], observed_rate: Sequence[float], count: Sequence[int], split: str
) -> bytes:
    """Observed positive rate against mean predicted probability per bin, with the diagonal of perfect calibration."""
    figure = Figure(figsize=(4.2, 4.0))
    axes = figure.subplots()
    top = min(1.0, max(0.05, *mean_predicted, *observed_rate) * 1.05)
    axes.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    axes.plot(mean_predicted, observed_rate, marker="o", label=f"{task} ({sum(count)} rows)")
    axes.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability", ylabel="observed positive rate")
    axes.set_title(f"{task}: reliability ({split})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left")
    return _png(figure)
