"""Tag lists, behaviour sequences, shared tables, crosses and feature groups from the file to HTTP.

A small ranking log whose clicks depend on whether the candidate's category is in the user's history
and on tag overlap: trained from CSV (lists as ``a|b`` text) and from Parquet (list columns) alike,
in memory and streamed; exported (ONNX, TorchScript) with inputs named per feature; served by a real
uvicorn on 127.0.0.1 with the context (user, history) sent once for all candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from mtlrec.app.cli import main
from mtlrec.errors import DataError
from mtlrec.serving import Predictor
from mtlrec.serving.http import create_app, running

LISTS = ("user_tags", "item_tags", "hist_item_ids", "hist_cate_ids")


def _log(rows: int, seed: int) -> pa.Table:
    """Clicks grow with the number of past items of categories 0 and 1 and with the weights of the tags
    t1 and t2 the user has: only the lists tell them."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 40, rows)
    item = rng.integers(0, 60, rows)
    cate = item % 8
    hist = [list(rng.integers(0, 60, n)) for n in rng.integers(0, 9, rows)]
    good_history = np.array([sum(h % 8 < 2 for h in row[:6]) for row in hist])
    tags = [list(rng.integers(0, 10, n)) for n in rng.integers(0, 4, rows)]
    weights = [list(rng.uniform(0.5, 2, len(row))) for row in tags]
    good_tags = np.array([sum(w for t, w in zip(row, ws) if t in (1, 2)) for row, ws in zip(tags, weights)])
    logit = 1.2 * good_history + 1.2 * good_tags - 1.8 + 0.3 * rng.normal(size=rows)
    click = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pa.table(
        {
            "user_id": user,
            "item_id": item,
            "category_id": cate,
            "price": rng.lognormal(2, 1, rows),
            "user_tags": pa.array([[f"t{t}:{w:.1f}" for t, w in zip(row, ws)] for row, ws in zip(tags, weights)],
                                  pa.list_(pa.string())),
            "item_tags": pa.array([[int(c), int(c) + 1] for c in cate], pa.list_(pa.int64())),
            "hist_item_ids": pa.array(hist, pa.list_(pa.int64())),
            "hist_cate_ids": pa.array([[h % 8 for h in row] for row in hist], pa.list_(pa.int64())),
            "click": click.astype(np.int64),
            "conversion": (click & (rng.random(rows) < 0.3)).astype(np.int64),
        }
    )


def _as_csv(table: pa.Table, path: Path) -> None:
    """Lists written as text joined by '|' (an empty list is an empty cell), as make_synth_seq writes them."""
    columns = {name: table[name] for name in table.column_names}
    for name in LISTS:
        columns[name] = pc.binary_join(pc.cast(table[name], pa.list_(pa.string())), "|")
    pa_csv.write_csv(pa.table(columns), path)


FEATURES = [
    {"name": "user_id", "kind": "categorical"},
    {"name": "item_id", "kind": "categorical", "embedding": "item"},
    {"name": "category_id", "kind": "categorical", "embedding": "category", "embedding_dim": 6},
    {"name": "price", "kind": "numeric", "log1p": True},
    {"name": "user_x_category", "kind": "cross", "columns": ["user_id", "category_id"], "hash_buckets": 97},
    {"name": "user_tags", "kind": "multi_valued", "kv_separator": ":", "embedding": "tag", "pooling": "sum"},
    {"name": "item_tags", "kind": "multi_valued", "embedding": "tag", "max_length": 3},
    {
        "name": "hist",
        "kind": "sequence",
        "max_length": 6,
        "fields": [
            {"name": "item", "column": "hist_item_ids", "embedding": "item"},
            {"name": "cate", "column": "hist_cate_ids", "embedding": "category"},
        ],
        "encoder": {
            "kind": "attention",
            "query": ["item_id", "category_id"],
            "params": {"hidden_units": [16], "normalization": "none"},  # DIN's raw weights: counts stay counts
        },
    },
]


def _config(train_path: Path, test_path: Path, **changes) -> dict:
    config = {
        "data": {
            "train": str(train_path),
            "test": str(test_path),
            "split": {"source": "train", "fractions": {"valid": 0.2}},
        },
        "features": FEATURES,
        "feature_groups": {
            "user": ["user_id", "user_tags", "user_x_category"],
            "item": ["item_id", "category_id", "item_tags", "price"],
            "behaviour": ["hist"],
        },
        "tasks": [
            {"name": "click", "label": {"column": "click"}},
            {"name": "conversion", "label": {"column": "conversion"}},
        ],
        "model": {
            "architecture": "mmoe",
            "embedding_dim": 8,
            "params": {"num_experts": 2, "expert_hidden_units": [32], "tower_hidden_units": [16]},
        },
        "train": {"batch_size": 128, "epochs": 5, "lr": 0.01, "seed": 0, "threads": 1, "early_stopping": None},
        "serving": {"fusion": {"formula": "click * (1 + conversion)"}},
        "diagnostics": {"every_steps": 0},
    }
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lists")
    train, test = _log(4000, seed=0), _log(1500, seed=1)
    paths = {"train.parquet": train, "test.parquet": test}
    for name, table in paths.items():
        pq.write_table(table, folder / name)
    _as_csv(train, folder / "train.csv")
    _as_csv(test, folder / "test.csv")
    names = ("train.parquet", "test.parquet", "train.csv", "test.csv")
    return {name.replace(".", "_"): folder / name for name in names}


def _train(folder: Path, name: str, config: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = folder / name
    assert main(["-q", "train", str(path), "--output", str(run), "--no-progress"]) == 0
    return run


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("list_runs")
    return {
        "parquet": _train(folder, "parquet", _config(files["train_parquet"], files["test_parquet"])),
        "csv": _train(folder, "csv", _config(files["train_csv"], files["test_csv"])),
    }


def test_csv_text_lists_and_parquet_lists_train_the_same_model(runs):
    features = [json.loads((runs[name] / "features.json").read_text()) for name in ("parquet", "csv")]
    assert features[0]["vocabularies"] == features[1]["vocabularies"]
    assert set(features[0]["vocabularies"]) == {"user_id", "item", "category", "user_x_category", "tag"}
    metrics = [json.loads((runs[name] / "metrics.json").read_text()) for name in ("parquet", "csv")]
    assert metrics[0] == metrics[1]  # the same encoded rows: the same training, bit for bit


def test_the_model_reads_the_history_and_the_tags(runs, files, tmp_path):
    click = json.loads((runs["parquet"] / "metrics.json").read_text())["test"]["click"]["auc"]
    flat = _config(files["train_parquet"], files["test_parquet"], features=FEATURES[:4], feature_groups=None)
    without = json.loads((_train(tmp_path, "flat", flat) / "metrics.json").read_text())["test"]["click"]["auc"]
    assert click > 0.75 and click > without + 0.15, (click, without)


def test_streamed_training_fits_the_same_features(files, tmp_path):
    data = {"train": str(files["train_parquet"]), "test": str(files["test_parquet"])}
    memory = _train(tmp_path, "memory", _config(files["train_parquet"], files["test_parquet"], data=data))
    streaming = {**data, "streaming": {"shuffle_buffer_rows": 1000, "prefetch_batches": 2}}
    streamed = _train(tmp_path, "streamed", _config(files["train_parquet"], files["test_parquet"], data=streaming))
    features = [json.loads((run / "features.json").read_text()) for run in (memory, streamed)]
    assert features[0]["vocabularies"] == features[1]["vocabularies"]
    assert features[0]["features"] == features[1]["features"]
    aucs = [json.loads((run / "metrics.json").read_text())["test"]["click"]["auc"] for run in (memory, streamed)]
    assert aucs[1] > 0.75 and aucs[1] == pytest.approx(aucs[0], abs=0.03)  # other batch orders, the same quality


@pytest.fixture(scope="module")
def artifact(runs, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("list_artifact") / "onnx"
    assert main(["-q", "export", str(runs["parquet"]), "--output", str(target)]) == 0
    return target


def test_the_exported_graph_names_its_inputs_per_feature_and_matches_the_run(runs, files, artifact, tmp_path):
    manifest = json.loads((artifact / "manifest.json").read_text())
    inputs = {spec["name"]: spec for spec in manifest["inputs"]}
    assert inputs["hist.item"] == {
        "name": "hist.item", "feature": "hist", "role": "ids", "dtype": "int64", "shape": ["batch", 6],
        "table": "item", "rows": inputs["item_id"]["rows"],
    }
    assert inputs["hist.length"]["shape"] == ["batch"] and inputs["user_tags.weight"]["dtype"] == "float32"
    assert manifest["parity"]["passed"] and manifest["parity"]["shared_runs"] == 2
    assert manifest["list_separators"] == {name: "|" for name in LISTS}
    scored = {}
    for source in (runs["parquet"], artifact):
        output = tmp_path / f"{source.name}.parquet"
        assert main(["-q", "predict", str(source), "--data", str(files["test_csv"]), "--output", str(output)]) == 0
        scored[source.name] = pq.read_table(output)
    for task in ("click", "conversion"):
        np.testing.assert_allclose(scored["onnx"][task], scored["parquet"][task], atol=1e-5, rtol=0)
    labels = pq.read_table(files["test_parquet"]).column("click").to_numpy()
    assert roc_auc_score(labels, scored["onnx"]["click"].to_numpy()) > 0.75
    torchscript = tmp_path / "torchscript"
    assert main(["-q", "export", str(runs["parquet"]), "--output", str(torchscript), "--format", "torchscript"]) == 0
    assert json.loads((torchscript / "manifest.json").read_text())["parity"]["passed"]


@pytest.fixture(scope="module")
def served(artifact):
    predictor = Predictor.load(artifact, threads=1)
    with running(create_app(predictor)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, predictor


def test_a_context_sent_once_scores_like_every_candidate_carrying_it(served, files):
    client, predictor = served
    rows = pq.read_table(files["test_parquet"]).slice(0, 30).to_pylist()
    context = {key: rows[0][key] for key in ("user_id", "user_tags", "hist_item_ids", "hist_cate_ids")}
    context["hist_cate_ids"] = "|".join(str(v) for v in context["hist_cate_ids"])  # the text form works too
    candidates = [{k: row[k] for k in ("item_id", "category_id", "price", "item_tags")} for row in rows]
    response = client.post("/v1/predict", json={"context": context, "candidates": candidates})
    assert response.status_code == 200, response.text
    expanded = [{**row, **{k: rows[0][k] for k in ("user_id", "user_tags", "hist_item_ids", "hist_cate_ids")}}
                for row in rows]
    table = pa.Table.from_pylist(expanded).select(list(predictor.input_columns))
    direct = predictor.predict(table)
    values = np.array([c["scores"]["click"] for c in response.json()["candidates"]])
    np.testing.assert_allclose(values, direct["click"], atol=1e-6, rtol=0)
    shared = predictor.encode_shared(pa.Table.from_pylist(candidates), pa.Table.from_pylist([context]))
    assert shared["hist.item"].shape == (1, 6) and shared["item_id"].shape == (30,)
    assert shared["user_x_category"].shape == (30,)  # a cross of a context and a candidate column: per candidate


@pytest.mark.parametrize(
    ("context_change", "field", "message"),
    [
        ({"hist_item_ids": [3, {"id": 4}]}, "context.hist_item_ids[1]", "expected a string or an integer"),
        ({"hist_item_ids": [3, 4.5]}, "context.hist_item_ids[1]", "got a number"),
        ({"user_tags": 7}, "context.user_tags", "expected an array of strings or integers"),
        ({"user_tags": ["t1:heavy"]}, None, "has a weight that is not a finite number"),
        ({"hist_cate_ids": [1]}, None, "column 'hist_item_ids' has 2 value(s) but column 'hist_cate_ids' has 1"),
    ],
)
def test_bad_list_values_are_named_and_the_server_keeps_serving(served, context_change, field, message):
    client, _ = served
    context = {"user_id": 3, "user_tags": ["t1:1"], "hist_item_ids": [3, 4], "hist_cate_ids": [3, 4]}
    candidate = {"item_id": 5, "category_id": 5, "price": 3.0, "item_tags": [5, 6]}
    response = client.post("/v1/predict", json={"context": {**context, **context_change}, "candidates": [candidate]})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    if field is not None:
        assert response.json()["fields"] == [field]
    long_history = {**context, "hist_item_ids": list(range(40)), "hist_cate_ids": list(range(40))}
    assert client.post("/v1/predict", json={"context": long_history, "candidates": [candidate]}).status_code == 200


def test_a_column_given_neither_once_nor_per_candidate_is_named(served):
    _, predictor = served
    with pytest.raises(DataError, match=r"request: missing column\(s\) 'category_id', 'price'"):
        predictor.predict_shared(pa.table({"item_id": [1]}), pa.table({"user_id": [2]}))
