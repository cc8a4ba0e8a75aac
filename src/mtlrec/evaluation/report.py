"""The run report: one self-contained HTML page (inline CSS, no scripts) and the PNG plots it links to.

``render_report`` is a pure function of a run's recorded files (config, history, metrics,
diagnostics, calibration) and those of baseline runs; writing the files is the caller's job.
A plot that does not apply (no gates, no diagnostics recorded, one task) is replaced by a
sentence saying why.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mtlrec.evaluation.report_sections import (
    RunData,
    Section,
    baseline_bars,
    calibration,
    label_correlation,
    metrics_table,
    overview,
)
from mtlrec.evaluation.report_training import (
    alarms,
    feature_selection,
    gates,
    gradient_cosines,
    learning_curves,
    loss_weights,
)

__all__ = ["Report", "RunData", "render_report"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .9em; } th, td { border: 1px solid #ccc; padding: .25em .6em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: .6em 0; } .omitted { color: #666; font-style: italic; }
.alarm { color: #a40000; } dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; }
"""


@dataclass
class Report:
    """The page and its images: {file name: PNG bytes}, linked from the page by relative name."""

    html: str
    images: dict[str, bytes] = field(default_factory=dict)


# the page's sections, in order
SECTIONS: list[Callable[[RunData, list[RunData]], Section]] = [
    overview,
    metrics_table,
    alarms,
    learning_curves,
    baseline_bars,
    label_correlation,
    gates,
    feature_selection,
    gradient_cosines,
    loss_weights,
    calibration,
]


def render_report(run: RunData, baselines: Sequence[RunData] = ()) -> Report:
    """The report of ``run``, comparing its metrics with ``baselines``."""
    sections = [build(run, list(baselines)) for build in SECTIONS]
    body = [f"<h1>mtlrec report: {html.escape(run.name)}</h1>", _contents(sections)]
    for section in sections:
        body.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>')
        body.extend(section.parts)
        body.append("</section>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>mtlrec report: {html.escape(run.name)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    images = {name: png for section in sections for name, png in section.images.items()}
    return Report(page, images)


def _contents(sections: list[Section]) -> str:
    items = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    return f"<nav><ul>{items}</ul></nav>"
