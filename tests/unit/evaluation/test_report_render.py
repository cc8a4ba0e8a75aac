"""``render_report`` on hand-made run records: sentences for what is missing, one gate heatmap per level, escaping."""

from __future__ import annotations

from mtlrec.evaluation.report import RunData, render_report

CONFIG = {
    "data": {"train": "train.csv"},
    "tasks": [{"name": "ctr"}, {"name": "cvr<b>"}],
    "model": {"architecture": "ple"},
    "weighting": {"name": "uncertainty"},
}
HISTORY = [
    {"epoch": e, "train_loss": {"ctr": 0.5 / e, "cvr<b>": 0.4 / e}, "loss_weights": {"ctr": 1.0, "cvr<b>": e / 2}}
    for e in (1, 2)
]
METRICS = {"test": {"ctr": {"auc": 0.71234}, "cvr<b>": {"auc": 0.6}}}


def _diagnostics() -> dict:
    layout = {
        "low.ctr": {"level": "low", "experts": ["ctr.0", "shared.0"]},
        "low.cvr<b>": {"level": "low", "experts": ["cvr<b>.0", "shared.0"]},
        "low.shared": {"level": "low", "experts": ["ctr.0", "cvr<b>.0", "shared.0"]},
        "ctr": {"level": "top", "experts": ["ctr.0", "shared.0"]},
        "cvr<b>": {"level": "top", "experts": ["cvr<b>.0", "shared.0"]},
    }
    gates = {name: {"mean": [1 / len(g["experts"])] * len(g["experts"]), "entropy": 0.5} for name, g in layout.items()}
    step = {"step": 0, "epoch": 1, "loss_weights": {"ctr": 1.0, "cvr<b>": 1.0}, "gates": gates}
    step["grad_cosine"] = [[1.0, -0.2], [-0.2, 1.0]]
    return {
        "settings": {"every_steps": 10, "gate_collapse_share": 0.9, "dead_expert_share": 0.01},
        "tasks": ["ctr", "cvr<b>"],
        "label_correlation": {"tasks": ["ctr", "cvr<b>"], "pearson": [[1.0, None], [None, 1.0]], "rows": [[9, 3]] * 2},
        "gate_layout": layout,
        "steps": [step, {**step, "step": 10}],
        "epochs": [{"epoch": 1, "gates": gates, "alarms": [{"kind": "dead", "level": "low", "expert": "shared.0",
                                                              "share": 0.001}],
                    "feature_selection": {"fields": ["user_id", "price<x>"],
                                          "weights": {"ctr": [1.7, 0.1], "cvr<b>": [0.4, 1.2]}}}],
    }  # fmt: skip


def test_missing_files_are_explained_and_nothing_breaks():
    report = render_report(RunData("old-run", CONFIG, HISTORY, METRICS))
    # alarms, label correlation, gates, feature selection, cosines, calibration
    assert report.html.count('class="omitted"') == 6
    assert "no diagnostics.json" in report.html and "no calibration.json" in report.html
    assert set(report.images) == {
        "learning-curves-1-ctr.png",
        "learning-curves-2-cvr_b.png",
        "baselines-1-bars.png",
        "loss-weights-1-weights.png",  # from history.json's per-epoch weights
    }
    assert all(png.startswith(b"\x89PNG") for png in report.images.values())


def test_gate_heatmaps_per_level_alarms_and_escaping():
    baseline = RunData("single", CONFIG, HISTORY, {"test": {"ctr": {"auc": 0.7}}})
    calibration = {"split": "test", "tasks": {"ctr": {"mean_predicted": [0.1, 0.5], "observed_rate": [0.2, 0.4],
                                                      "count": [5, 5]}}}  # fmt: skip
    run = RunData("ple-run", CONFIG, HISTORY, METRICS, _diagnostics(), calibration)
    report = render_report(run, [baseline])
    gate_images = sorted(name for name in report.images if name.startswith("gates-"))
    assert gate_images == ["gates-1-low.png", "gates-2-top.png", "gates-3-entropy.png"]
    assert "feature-selection-1-heatmap.png" in report.images
    assert "price<x>" not in report.html
    assert "cvr<b>" not in report.html and "cvr&lt;b&gt;" in report.html
    assert "expert low.shared.0 gets at most 0.10%" in report.html
    assert "0.7123" in report.html and "0.7000" in report.html  # both runs' test AUC in the table
    assert 'class="omitted"' not in report.html
