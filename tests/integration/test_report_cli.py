"""``mtlrec report`` end to end: tiny census runs trained with diagnostics, the page parsed, every image opened."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest

from mtlrec.app.cli import main

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = [
    "overview",
    "metrics",
    "alarms",
    "learning-curves",
    "baselines",
    "label-correlation",
    "gates",
    "feature-selection",
    "gradient-cosine",
    "loss-weights",
    "calibration",
]
SMALL = {
    "mmoe": ["model.params.num_experts=4", "model.params.expert_hidden_units=[16]", "model.feature_selection={}"],
    "shared_bottom": ["model.params.bottom_hidden_units=[16]"],
}


class _Page(HTMLParser):
    """Collects image sources, section ids and the 'omitted' sentences per section."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.sections: list[str] = []
        self.omitted: dict[str, list[str]] = {}
        self._in_omitted = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes["src"])
        elif tag == "section":
            self.sections.append(attributes["id"])
        elif tag == "p" and attributes.get("class") == "omitted":
            self._in_omitted = True

    def handle_endtag(self, tag):
        self._in_omitted = self._in_omitted and tag != "p"

    def handle_data(self, data):
        if self._in_omitted:
            self.omitted.setdefault(self.sections[-1], []).append(data)


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


@pytest.fixture(scope="module")
def runs(tmp_path_factory, census_slice) -> dict[str, Path]:
    """Tiny MMoE and Shared-Bottom census runs (2 epochs of 4000 rows), diagnostics every 4 steps."""
    folder = tmp_path_factory.mktemp("report-runs")
    overrides = [
        f"data.train={census_slice['train']}",
        f"data.test={census_slice['test']}",
        "train.epochs=2",
        "train.batch_size=256",
        "train.lr=0.01",
        "train.lr_schedule=constant",
        "diagnostics.every_steps=4",
    ]
    paths = {}
    for name, small in SMALL.items():
        paths[name] = folder / name
        arguments = [arg for o in overrides + small for arg in ("--set", o)]
        assert main(["-q", "train", str(CENSUS_CONFIGS / f"{name}.yaml"), "-o", str(paths[name]), *arguments]) == 0
    return paths


def _check_images(page: Path, parser: _Page) -> None:
    assert parser.images, "the page shows plots"
    for source in parser.images:
        assert "/" not in source and not source.startswith(("http", "data:")), "relative links, next to the page"
        image = page.parent / source
        assert image.read_bytes()[:8] == PNG_SIGNATURE, source
        pixels = matplotlib.image.imread(image)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, source


def test_mmoe_report_shows_every_plot(runs, capsys):
    capsys.readouterr()
    assert main(["-q", "report", str(runs["mmoe"]), "--baseline", str(runs["shared_bottom"])]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page == runs["mmoe"] / "report" / "index.html"
    parser = _parse(page)
    assert parser.sections == SECTIONS
    assert parser.omitted == {}, "every plot applies to an MMoE run with diagnostics and feature gates"
    _check_images(page, parser)
    prefixes = [source.rsplit("-", 2)[0] for source in parser.images]
    expected = {"learning-curves": 2, "calibration": 2, "gates": 2, "gradient-cosine": 1, "label-correlation": 1}
    expected["feature-selection"] = 1
    for section, count in expected.items():
        assert prefixes.count(section) == count, section
    text = page.read_text(encoding="utf-8")
    for run in ("mmoe", "shared_bottom"):
        metrics = json.loads((runs[run] / "metrics.json").read_text())
        assert f"{metrics['test']['income']['auc']:.4f}" in text, "the metrics table shows both runs"


def test_diagnostics_file_of_the_mmoe_run(runs):
    diagnostics = json.loads((runs["mmoe"] / "diagnostics.json").read_text())
    steps = [record["step"] for record in diagnostics["steps"]]
    assert steps == list(range(0, 32, 4)), "4000 rows / 256 = 16 steps per epoch, sampled every 4"
    assert [e["epoch"] for e in diagnostics["epochs"]] == [1, 2]
    assert diagnostics["gate_layout"]["income"] == {"level": "", "experts": ["e0", "e1", "e2", "e3"]}
    assert diagnostics["label_correlation"]["rows"] == [[4000, 4000], [4000, 4000]]


def test_a_report_without_gates_says_why(runs, tmp_path):
    output = tmp_path / "elsewhere" / "sb.html"
    assert main(["-q", "report", str(runs["shared_bottom"]), "--output", str(output)]) == 0
    parser = _parse(output)
    assert parser.sections == SECTIONS
    assert not any(source.startswith("gates-") for source in parser.images)
    assert any("has no gates" in sentence for sentence in parser.omitted["gates"])
    assert set(parser.omitted) == {"gates", "feature-selection"}  # neither gates nor model.feature_selection
    _check_images(output, parser)


def test_report_of_a_directory_that_is_no_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
