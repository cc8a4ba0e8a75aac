"""Quantized artifacts (int8 ONNX, bf16 TorchScript): really quantized, within their declared tolerance of the
fp32 eager model, loaded unchanged by the Predictor; accuracy figures in the manifest; clear errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mtlrec.app.deploy import task_metrics
from mtlrec.errors import ExportError
from mtlrec.export import PARITY_TOLERANCES, LabelledRows, export_artifact, read_manifest
from mtlrec.export.parity import differences
from mtlrec.serving import Predictor


def _eager_scores(tiny, table) -> dict[str, np.ndarray]:
    inputs = tiny.encoded(table)
    return {name: value.numpy() for name, value in tiny.scoring().score(
        {name: torch.from_numpy(value) for name, value in inputs.items()}).items()}


def _holdout(tiny, table, source: str = "held-out rows") -> LabelledRows:
    labels = tiny.pipeline.transform_labels(table, source)
    return LabelledRows(tiny.encoded(table), labels, source, task_metrics(tiny.pipeline))


def _largest_scaled_difference(scores: dict[str, np.ndarray], eager: dict[str, np.ndarray]) -> float:
    return max(differences(scores[name], eager[name])[1] for name in eager)


def test_int8_graph_is_quantized_and_scores_within_its_tolerance(tiny, export_tiny, raw_rows):
    root = export_tiny("int8", quantization="int8")
    manifest = read_manifest(root)
    assert manifest["quantization"] == "int8" and manifest["model"]["format"] == "onnx"
    details = manifest["model"]["quantization"]
    assert details["method"] == "onnxruntime.quantization.quantize_dynamic" and details["quantized_layers"] >= 1
    assert manifest["parity"]["passed"] and manifest["parity"]["tolerance"] == PARITY_TOLERANCES["int8"]

    graph = onnx.load(str(root / "model.onnx")).graph
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {node.op_type for node in graph.node}
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert int8_weights, "no int8 weight matrix in the graph"

    table = raw_rows(rows=150, seed=3)  # rows the parity check did not see (some ids are OOV)
    scores = Predictor.load(root, threads=1).predict(table)
    eager = _eager_scores(tiny, table)
    assert list(scores) == list(eager) and scores["category"].shape == (150, 3)
    difference = _largest_scaled_difference(scores, eager)
    assert 0 < difference <= PARITY_TOLERANCES["int8"]  # quantized: not exact, but within the bound


def test_bf16_archive_holds_bfloat16_weights_and_keeps_float32_outputs(tiny, export_tiny, raw_rows):
    root = export_tiny("bf16", model_format=None, quantization="bf16")  # bf16 picks TorchScript
    manifest = read_manifest(root)
    assert manifest["quantization"] == "bf16" and manifest["model"]["format"] == "torchscript"
    assert sorted(p.name for p in root.iterdir()) == ["features.json", "manifest.json", "model.pt"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 marks torch.jit deprecated
        archive = torch.jit.load(str(root / "model.pt"))
    dtypes = {parameter.dtype for parameter in archive.parameters()}
    assert dtypes == {torch.bfloat16}

    table = raw_rows(rows=150, seed=4)
    scores = Predictor.load(root, threads=1).predict(table)
    eager = _eager_scores(tiny, table)
    assert all(values.dtype == np.float32 for values in scores.values())
    assert 0 < _largest_scaled_difference(scores, eager) <= PARITY_TOLERANCES["bf16"]


@pytest.mark.parametrize("quantization", [None, "int8", "bf16"])
def test_manifest_accuracy_equals_sklearn_on_the_predictor_scores(tiny, export_tiny, raw_rows, quantization):
    table = raw_rows(rows=400, seed=8)
    holdout = _holdout(tiny, table)
    holdout.labels["click"][::7] = np.nan  # missing labels are skipped, per task
    root = export_tiny(f"accuracy-{quantization}", model_format=None, quantization=quantization, holdout=holdout)
    accuracy = read_manifest(root)["accuracy"]
    assert accuracy["rows"] == 400 and accuracy["source"] == "held-out rows"
    assert set(accuracy["tasks"]) == {"click", "category"}  # the regression task has no figure

    labels = holdout.labels["click"]
    present = ~np.isnan(labels)
    scores, eager = Predictor.load(root, threads=1).predict(table), _eager_scores(tiny, table)
    click = accuracy["tasks"]["click"]
    assert click["metric"] == "auc" and click["rows"] == int(present.sum()) < 400
    assert click["artifact"] == pytest.approx(roc_auc_score(labels[present], scores["click"][present]), abs=1e-12)
    assert click["fp32"] == pytest.approx(roc_auc_score(labels[present], eager["click"][present]), abs=1e-12)
    category = accuracy["tasks"]["category"]
    classes = holdout.labels["category"].astype(int)
    assert category["metric"] == "accuracy"
    assert category["artifact"] == pytest.approx(np.mean(scores["category"].argmax(axis=1) == classes))
    if quantization is None:
        assert click["artifact"] == pytest.approx(click["fp32"], abs=1e-6)


def test_an_export_without_held_out_rows_records_no_accuracy(export_tiny):
    manifest = json.loads((export_tiny() / "manifest.json").read_text())
    assert manifest["quantization"] is None and manifest["accuracy"] is None


@pytest.mark.parametrize("quantization, model_format", [("int8", "onnx"), ("bf16", "torchscript")])
def test_a_quantized_model_beyond_its_tolerance_writes_nothing(export_tiny, tmp_path, monkeypatch, quantization,
                                                                model_format):
    monkeypatch.setitem(PARITY_TOLERANCES, quantization, 0.0)
    pattern = rf"parity check failed: the exported {model_format}, {quantization} model .* tolerance 0\)"
    with pytest.raises(ExportError, match=pattern + ".*nothing was written"):
        export_tiny("refused", quantization=quantization, model_format=model_format)
    assert list(tmp_path.iterdir()) == []


def test_quantizations_a_format_lacks_are_refused_by_name(tiny, tmp_path):
    inputs = tiny.encoded()

    def export(model_format, quantization):
        export_artifact(tiny.scoring(), tiny.pipeline, inputs, tmp_path / "x", model_format, quantization=quantization)

    with pytest.raises(ExportError, match="--quantize bf16 needs --format torchscript, not onnx: ONNX Runtime"):
        export("onnx", "bf16")
    with pytest.raises(ExportError, match="--quantize int8 needs --format onnx, not torchscript"):
        export("torchscript", "int8")
    with pytest.raises(ExportError, match="unknown --quantize 'fp8'; choose one of int8, bf16"):
        export("onnx", "fp8")
    assert not (tmp_path / "x").exists()


def _gemm_graph(trans_a: int, trans_b: int, constant_first: bool, bias_shape: tuple[int, ...]):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    rows, inner, out = 5, 4, 3
    weight_shape = (inner, out) if not constant_first else (out, inner)  # the constant's logical shape
    weight = rng.normal(size=weight_shape[::-1] if (trans_b if not constant_first else trans_a) else weight_shape)
    x_shape = (rows, inner) if not constant_first else (inner, rows)
    if (trans_a if not constant_first else trans_b):
        x_shape = x_shape[::-1]
    inputs = ["x", "w"] if not constant_first else ["w", "x"]
    node = helper.make_node("Gemm", [*inputs, "c"], ["y"], "gemm", transA=trans_a, transB=trans_b, alpha=0.5, beta=2.0)
    initializers = [numpy_helper.from_array(weight.astype(np.float32), "w"),
                    numpy_helper.from_array(rng.normal(size=bias_shape).astype(np.float32), "c")]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, rng.normal(size=x_shape).astype(np.float32)


@pytest.mark.parametrize("constant_first", [False, True])
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("bias_shape", [(3,), (1, 3)])
def test_gemm_rewritten_as_matmul_computes_the_same(constant_first, trans_a, trans_b, bias_shape):
    import onnxruntime

    from mtlrec.export.onnx_int8 import _gemms_to_matmuls

    if constant_first:  # W·xᵀ: the bias broadcasts over the constant's rows (out, 1)
        bias_shape = (3, 1) if bias_shape == (1, 3) else (1,)
    model, x = _gemm_graph(trans_a, trans_b, constant_first, bias_shape)

    def run(graph) -> np.ndarray:
        session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    expected = run(model)
    layers = _gemms_to_matmuls(model, {"y"})
    assert [node.op_type for node in model.graph.node if node.op_type in ("Gemm", "MatMul")] == ["MatMul"]
    assert layers == {next(node.output[0] for node in model.graph.node if node.op_type == "MatMul")}
    np.testing.assert_allclose(run(model), expected, rtol=1e-5, atol=1e-5)


def test_a_graph_without_dense_layers_is_not_called_int8(tmp_path):
    from onnx import TensorProto, helper

    from mtlrec.export.onnx_int8 import quantize_int8

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "float.onnx"))
    with pytest.raises(ExportError, match="no dense layer with constant weights"):
        quantize_int8(tmp_path / "float.onnx", tmp_path / "int8.onnx", {"x": np.ones((4, 2), np.float32)})
    assert not (tmp_path / "int8.onnx").exists()
