"""Predictor: artifact → scores equal to the eager ScoringModel; column checks; batch prediction from files."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import torch

from mtlrec.errors import DataError
from mtlrec.export import Fusion
from mtlrec.serving import Predictor
from mtlrec.serving.batch import predict_file


def _eager(tiny, fusion, table):
    inputs = tiny.encoded(table)
    scores = tiny.scoring(fusion).score({name: torch.from_numpy(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in scores.items()}


@pytest.mark.parametrize("model_format", ["onnx", "torchscript"])
def test_predictions_equal_the_eager_model_on_new_rows(tiny, export_tiny, raw_rows, model_format):
    fusion = Fusion("weighted_product", {"click": 1.0, "watch": 0.5})
    predictor = Predictor.load(export_tiny(model_format=model_format, fusion=fusion), threads=1)
    table = raw_rows(rows=77, seed=5)  # unseen users and items map to OOV
    scores = predictor.predict(table)
    expected = _eager(tiny, fusion, table)
    assert list(scores) == ["click", "watch", "category", "score"]
    for name, values in expected.items():
        np.testing.assert_allclose(scores[name], values, rtol=1e-5, atol=1e-6, err_msg=name)
    assert scores["category"].shape == (77, 3)
    np.testing.assert_allclose(scores["score"], scores["click"] * np.sqrt(scores["watch"]), rtol=1e-5)
    np.testing.assert_allclose(scores["score"], fusion.evaluate_numpy(scores), rtol=1e-5)


def test_metadata_columns_and_task_names(export_tiny):
    root = export_tiny(fusion=Fusion.from_formula("click + 0 * watch"))
    predictor = Predictor.load(root, threads=1)
    assert predictor.task_names == ["click", "watch", "category"]
    assert predictor.input_columns == {
        "user": pa.string(),
        "item": pa.string(),
        "price": pa.float64(),
        "age": pa.float64(),
    }
    meta = json.loads(json.dumps(predictor.metadata))  # JSON-safe
    assert meta["model"]["sha256"] == json.loads((root / "manifest.json").read_text())["files"]["model.onnx"]
    assert meta["fusion"]["formula"] == "click + 0 * watch"
    assert [task["name"] for task in meta["tasks"]] == predictor.task_names


def test_missing_column_names_it_and_types_are_cast(export_tiny, raw_rows):
    predictor = Predictor.load(export_tiny(), threads=1)
    table = raw_rows(rows=20, seed=3)
    with pytest.raises(DataError, match=r"request: missing column\(s\) 'price'"):
        predictor.predict(table.drop_columns(["price"]), source="request")
    with pytest.raises(DataError, match="column 'age' of type string cannot be read as double"):
        predictor.predict(table.set_column(3, "age", pa.array(["old"] * 20)))
    as_ints = raw_rows(rows=20, seed=3)
    as_ints = as_ints.set_column(0, "user", pc.cast(pc.utf8_slice_codeunits(as_ints["user"], 1), pa.int64()))
    with_text = as_ints.set_column(0, "user", pc.cast(as_ints["user"], pa.string()))
    np.testing.assert_array_equal(predictor.predict(as_ints)["click"], predictor.predict(with_text)["click"])
    empty = predictor.predict(table.slice(0, 0))
    assert empty["click"].shape == (0,) and empty["category"].shape == (0, 3)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batch_prediction_streams_a_file_in_batches(export_tiny, raw_rows, tmp_path, suffix):
    fusion = Fusion("weighted_sum", {"click": 1.0, "watch": 0.001})
    predictor = Predictor.load(export_tiny(fusion=fusion), threads=1)
    table = raw_rows(rows=250, seed=9).drop_columns(["click", "watch", "cat"])
    source = tmp_path / f"rows{suffix}"
    if suffix == ".csv":
        pa_csv.write_csv(table, source)
    else:
        pq.write_table(table, source)
    output = tmp_path / "scores.parquet"
    assert predict_file(predictor, source, output, batch_rows=64) == 250
    scores = pq.read_table(output)
    assert scores.column_names == ["click", "watch", "category", "score"]
    whole = predictor.predict(table)
    for name in ("click", "watch", "score"):
        np.testing.assert_allclose(scores[name].to_numpy(), whole[name], rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(np.array(scores["category"].to_pylist()), whole["category"], rtol=1e-6)
    with pytest.raises(DataError, match="multi-class"):
        predict_file(predictor, source, tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()


def test_large_inputs_are_scored_in_slices_with_the_same_result(export_tiny, raw_rows):
    predictor = Predictor.load(export_tiny(), threads=1)
    table = raw_rows(rows=77, seed=11)
    whole = predictor.predict(table)
    predictor.max_batch_rows = 16  # 5 runs of the graph, the last one 13 rows
    sliced = predictor.predict(table)
    for name, values in whole.items():
        assert sliced[name].shape == values.shape
        np.testing.assert_allclose(sliced[name], values, rtol=1e-6, atol=1e-7, err_msg=name)
