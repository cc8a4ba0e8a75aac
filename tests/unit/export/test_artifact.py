"""The artifact: layout and manifest, sha256 checks on load, atomic writes, and a failing parity check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mtlrec.errors import ExportError, RunDirError
from mtlrec.export import EXPORTERS, FUSED_OUTPUT, Fusion, check_parity, export_artifact, read_manifest
from mtlrec.export.artifact import sha256_file
from mtlrec.export.exporters import export_onnx
from mtlrec.serving import Predictor


def test_artifact_holds_model_features_and_a_complete_manifest(tiny, export_tiny):
    root = export_tiny(fusion=Fusion.from_formula("click * log1p(watch)"))
    assert sorted(path.name for path in root.iterdir()) == ["features.json", "manifest.json", "model.onnx"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == "mtlrec-artifact" and manifest["format_version"] == 2
    assert manifest["model"]["format"] == "onnx" and manifest["model"]["opset"] == 17
    assert manifest["files"] == {name: sha256_file(root / name) for name in ("features.json", "model.onnx")}
    assert manifest["outputs"] == ["click", "watch", "category", FUSED_OUTPUT]
    inputs = {spec["name"]: spec for spec in manifest["inputs"]}
    assert list(inputs) == ["user", "item", "price", "age", "age_bucket"]  # named per feature, in feature order
    assert inputs["user"] == {
        "name": "user", "feature": "user", "role": "ids", "dtype": "int64", "shape": ["batch"], "table": "user",
        "rows": tiny.pipeline.encoder("user").vocabulary.num_ids,
    }
    assert inputs["item"]["rows"] == 2 + 64 and inputs["age_bucket"]["table"] == "age_bucket"
    assert inputs["price"]["role"] == "dense" and inputs["price"]["dtype"] == "float32"
    assert [f["name"] for f in manifest["features"]] == ["user", "item", "price", "age", "age_bucket"]
    assert manifest["columns"] == {"user": "string", "item": "string", "price": "double", "age": "double"}
    tasks = {task["name"]: task for task in manifest["tasks"]}
    assert tasks["click"]["kind"] == "binary" and tasks["category"]["classes"] == ["a", "b", "c"]
    transform = tasks["watch"]["label_transform"]
    assert transform["log1p"] and transform["standardize"] and transform["clip"] == [0.0, 5000.0]
    assert manifest["fusion"] == {"kind": "formula", "formula": "click * log1p(watch)", "output": "score"}
    assert manifest["parity"]["passed"] and manifest["parity"]["rows"] == tiny.table.num_rows
    assert manifest["parity"]["max_scaled_diff"] <= 1e-5
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "no temporary directory left"


def test_a_modified_file_is_refused_naming_it(export_tiny):
    root = export_tiny()
    with open(root / "model.onnx", "r+b") as handle:  # flip one byte in the middle
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(RunDirError, match=r"model\.onnx: sha256 .* differs from the manifest"):
        Predictor.load(root)


def test_a_missing_file_is_refused_naming_it(export_tiny):
    root = export_tiny()
    (root / "features.json").unlink()
    with pytest.raises(RunDirError, match="features.json is missing"):
        Predictor.load(root)


def test_not_an_artifact_and_unknown_version(export_tiny, tmp_path):
    with pytest.raises(RunDirError, match="not an mtlrec artifact"):
        Predictor.load(tmp_path)
    root = export_tiny()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["format_version"] = 99
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="format version 99"):
        read_manifest(root)


def _perturbed(model, example, path):
    """Exports a graph whose first output is off by 1e-3: what a broken exporter could produce."""

    class Off(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.output_names, self.input_names = model, model.output_names, model.input_names
            self.positional = model.positional

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            outputs = self.inner(*inputs)
            return (outputs[0] + 1e-3, *outputs[1:])

    return export_onnx(Off(), example, path)


def test_a_failing_parity_check_writes_nothing(tiny, export_tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(EXPORTERS, "onnx", _perturbed)
    with pytest.raises(ExportError, match=r"parity check failed.*output 'click'.*nothing was written"):
        export_tiny("broken")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_parity_check_keeps_the_previous_artifact(tiny, export_tiny, monkeypatch):
    root = export_tiny("kept")
    before = read_manifest(root)["files"]
    monkeypatch.setitem(EXPORTERS, "onnx", _perturbed)
    with pytest.raises(ExportError):
        export_tiny("kept", overwrite=True)
    assert read_manifest(root)["files"] == before


def test_existing_target_needs_overwrite(export_tiny, tmp_path):
    root = export_tiny("again")
    with pytest.raises(RunDirError, match="already exists; use --overwrite"):
        export_tiny("again")
    export_tiny("again", model_format="torchscript", overwrite=True)
    assert sorted(p.name for p in root.iterdir()) == ["features.json", "manifest.json", "model.pt"]
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunDirError, match="is not an mtlrec artifact; refusing"):
        export_tiny("plain", overwrite=True)


def test_parity_measure_is_absolute_below_one_and_relative_above(tiny):
    scoring = tiny.scoring()
    inputs = tiny.encoded()
    rows = len(inputs["user"])

    class Shifted:
        """The eager model with every output moved by ``shift`` times its magnitude."""

        def __init__(self, shift: float):
            self.shift = shift

        def run(self, given: dict[str, np.ndarray]) -> list[np.ndarray]:
            outputs = scoring.score({name: torch.from_numpy(value) for name, value in given.items()})
            return [value.numpy() + self.shift * np.abs(value.numpy()) for value in outputs.values()]

    exact = check_parity(scoring, Shifted(0.0), inputs)
    assert exact.passed and exact.max_abs_diff < 1e-6 and exact.batch_sizes == [rows, 1]  # batch-size rounding
    relative = check_parity(scoring, Shifted(2e-6), inputs)
    assert relative.passed and relative.max_scaled_diff == pytest.approx(2e-6, rel=1e-2)
    assert relative.max_abs_diff > 1e-5  # watch is in seconds: 2e-6 relative is more than 1e-5 absolute
    failed = check_parity(scoring, Shifted(3e-5), inputs)
    assert not failed.passed and failed.max_scaled_diff == pytest.approx(3e-5, rel=1e-2)


def test_parity_differences_treat_nan_and_inf():
    from mtlrec.export.parity import differences

    assert differences(np.array([np.nan, np.inf, 0.5]), np.array([np.nan, np.inf, 0.5])) == (0.0, 0.0)
    assert differences(np.array([np.nan, 0.5]), np.array([0.5, 0.5])) == (np.inf, np.inf)
    assert differences(np.array([1.0]), np.array([1.0, 2.0])) == (np.inf, np.inf)
    assert differences(np.array([101.0, 0.25]), np.array([100.0, 0.5])) == (1.0, 0.25)


def test_export_needs_rows_and_a_known_format(tiny, tmp_path):
    inputs = tiny.encoded()
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_artifact(tiny.scoring(), tiny.pipeline, inputs, tmp_path / "x", "tflite")
    with pytest.raises(ExportError, match="at least one row"):
        export_artifact(tiny.scoring(), tiny.pipeline, {k: v[:0] for k, v in inputs.items()}, tmp_path / "x")
