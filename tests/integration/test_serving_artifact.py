"""A real exported census model behind a real uvicorn on 127.0.0.1: the served scores equal the
Predictor's and the eager model's, ``mtlrec serve`` runs as a process, and a modified artifact is
refused. ``mtlrec tune-fusion`` runs on the same tiny run (trained once for the module)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from mtlrec.app import api, build
from mtlrec.app.cli import main
from mtlrec.data.reading import RawSplit, encode
from mtlrec.evaluation import predict_scores
from mtlrec.io import read_table
from mtlrec.serving import Predictor
from mtlrec.serving.http import create_app, running

CENSUS_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "census"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, census_slice) -> dict[str, Path]:
    """A 1-epoch MMoE census run with a weighted-product fusion, exported to ONNX."""
    folder = tmp_path_factory.mktemp("serving")
    overrides = [
        f"data.train={census_slice['train']}",
        f"data.test={census_slice['test']}",
        "train.epochs=1",
        "train.batch_size=256",
        "train.lr=0.01",
        "train.lr_schedule=constant",
        "serving.fusion={weighted_product: {income: 1.0, never_married: 0.5}}",
    ]
    args = [arg for override in overrides for arg in ("--set", override)]
    run, artifact = folder / "run", folder / "artifact"
    assert main(["-q", "train", str(CENSUS_CONFIGS / "mmoe.yaml"), "--output", str(run), "--no-progress", *args]) == 0
    assert main(["-q", "export", str(run), "--output", str(artifact)]) == 0
    return {"run": run, "artifact": artifact, "test": census_slice["test"]}


@pytest.fixture(scope="module")
def predictor(exported) -> Predictor:
    return Predictor.load(exported["artifact"], threads=1)


@pytest.fixture(scope="module")
def client(predictor):
    with running(create_app(predictor)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def rows(exported, predictor) -> list[dict]:
    table = read_table(exported["test"], predictor.input_columns, None, predictor.csv_format)
    return table.slice(0, 40).to_pylist()


def _eager(run: Path, table: pa.Table) -> dict[str, np.ndarray]:
    config, pipeline, model = api.load_run(run)
    data = encode(RawSplit(table, None, "request"), pipeline)
    return predict_scores(model, data, build.build_losses(config, pipeline))


def _table(predictor: Predictor, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema(list(predictor.input_columns.items())))


def test_served_scores_equal_the_predictor_and_the_eager_model(client, predictor, exported, rows):
    context = {"year": "95", "age": 40.0, "sex": "Female"}
    candidates = [
        {k: v for k, v in row.items() if k not in context} if i % 2 == 0 else row for i, row in enumerate(rows)
    ]
    response = client.post("/v1/predict", json={"context": context, "candidates": candidates})
    assert response.status_code == 200, response.text
    served = response.json()["candidates"]
    expected_rows = [{**row, **context} if i % 2 == 0 else row for i, row in enumerate(rows)]
    table = _table(predictor, expected_rows)
    direct = predictor.predict(table)
    eager = _eager(exported["run"], table)
    for task in ("income", "never_married"):
        values = np.array([c["scores"][task] for c in served])
        np.testing.assert_allclose(values, direct[task], atol=1e-6, rtol=0)
        np.testing.assert_allclose(values, eager[task], atol=1e-5, rtol=0)
    fused = np.array([c["score"] for c in served])
    np.testing.assert_allclose(fused, eager["income"] * eager["never_married"] ** 0.5, atol=1e-5, rtol=0)
    ranks = np.array([c["rank"] for c in served])
    assert sorted(ranks) == list(range(1, len(rows) + 1))
    assert (np.diff(fused[np.argsort(ranks)]) <= 0).all()  # rank 1 has the highest fused score


def test_the_servers_encoding_equals_the_pipelines(predictor, rows):
    """The server's encoding (a context row, the vocabulary features looked up together) gives exactly
    the inputs that the feature pipeline gives each row, unseen values and nulls included."""
    rows = [*rows, {**rows[1], "class_of_worker": "never seen", "race": None, "age": None}]
    context_columns = ["sex", "year", "citizenship"]
    context = _table(predictor, rows[:1]).select(context_columns)
    candidates = _table(predictor, rows).drop_columns(context_columns)
    served = predictor.encode_shared(candidates, context)
    each = [{**row, **{name: rows[0][name] for name in context_columns}} for row in rows]
    expected = predictor.pipeline.transform_features(predictor.conform(_table(predictor, each)), "rows", False)
    assert served.keys() == expected.keys()
    for name, values in expected.items():
        np.testing.assert_array_equal(np.broadcast_to(served[name], values.shape), values, err_msg=name)


def test_unseen_categories_score_as_missing_and_integer_ids_as_their_text(client, predictor, rows):
    base = rows[0]
    candidates = [
        {**base, "class_of_worker": "a value never seen in training"},
        {**base, "class_of_worker": None},
        {**base, "detailed_industry_recode": 4},
        {**base, "detailed_industry_recode": "4"},
    ]
    served = client.post("/v1/predict", json={"candidates": candidates}).json()["candidates"]
    assert served[0]["scores"] == served[1]["scores"]  # both the OOV id
    assert served[2]["scores"] == served[3]["scores"]
    direct = predictor.predict(_table(predictor, candidates[1:2] + candidates[3:]))
    assert served[1]["scores"]["income"] == pytest.approx(float(direct["income"][0]), abs=1e-6)
    assert served[3]["score"] == pytest.approx(float(direct["score"][1]), abs=1e-6)


def test_bad_requests_name_the_field_and_the_model_keeps_serving(client, rows):
    bad = [rows[0], {**rows[1], "age": "forty"}]
    response = client.post("/v1/predict", json={"candidates": bad})
    assert response.status_code == 422 and response.json()["fields"] == ["candidates[1].age"]
    response = client.post("/v1/predict", json={"candidates": [{**rows[0], "education": "x"}]})
    assert response.status_code == 422 and response.json()["fields"] == ["candidates[0].education"]
    assert client.post("/v1/predict", json={"candidates": rows[:3]}).status_code == 200


@pytest.mark.parametrize("age", [1.7e308, -1e41])
def test_a_value_out_of_float32_range_after_its_transform_is_422_naming_the_field(client, rows, age):
    """age is standardised: (1.7e308 - mean) / std is finite in float64 but not in the model's float32."""
    response = client.post("/v1/predict", json={"candidates": [rows[0], {**rows[1], "age": age}]})
    assert response.status_code == 422, response.text
    assert response.json()["fields"] == ["candidates[1].age"] and "out of range" in response.json()["detail"]
    candidates = [{k: v for k, v in row.items() if k != "age"} for row in rows[:2]]
    response = client.post("/v1/predict", json={"context": {"age": age}, "candidates": candidates})
    assert response.status_code == 422 and response.json()["fields"] == ["context.age"]
    assert client.post("/v1/predict", json={"candidates": [{**rows[1], "age": 1e6}]}).status_code == 200


def test_columnar_candidates_score_exactly_as_rows(client, rows):
    context = {"year": "95", "sex": "Female"}
    candidates = [{k: v for k, v in row.items() if k not in context} for row in rows]
    columns = {name: [row[name] for row in candidates] for name in candidates[0]}
    by_rows = client.post("/v1/predict", json={"context": context, "candidates": candidates}).json()["candidates"]
    answer = client.post("/v1/predict", json={"context": context, "candidates": columns})
    assert answer.status_code == 200, answer.text
    by_columns = answer.json()["candidates"]
    assert by_columns["score"] == [c["score"] for c in by_rows]
    assert by_columns["rank"] == [c["rank"] for c in by_rows]
    for task in ("income", "never_married"):
        assert by_columns["scores"][task] == [c["scores"][task] for c in by_rows]


def test_concurrent_requests_of_different_users_merged_score_as_alone(predictor, rows):
    """Four users' requests in one merged call; ONNX Runtime's matrix kernels round a row differently
    with the batch's size (1 float32 ulp, as scoring 37 rows alone or among 400 does), hence the tolerance."""
    users = ["Female", "Male", "Female", "Male"]
    bodies = [
        {"context": {"sex": sex, "age": 20.0 + 10 * i}, "candidates": [
            {k: v for k, v in row.items() if k not in ("sex", "age")} for row in rows[10 * i : 10 * i + 7 + i]
        ]}
        for i, sex in enumerate(users)
    ]
    app = create_app(predictor, batch_wait_ms=5000, max_batch_rows=sum(len(b["candidates"]) for b in bodies))
    with running(create_app(predictor, max_batch_rows=0)) as url:
        alone = [httpx.post(f"{url}/v1/predict", json=body, timeout=30).json()["candidates"] for body in bodies]
    with running(app) as url, ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda body: httpx.post(f"{url}/v1/predict", json=body, timeout=30), bodies))
    assert app.state.batcher.stats.calls == 1 and app.state.batcher.stats.requests == 4  # one merged call
    for response, expected in zip(responses, alone):
        assert response.status_code == 200, response.text
        served = response.json()["candidates"]
        for task in ("income", "never_married"):
            np.testing.assert_allclose(
                [c["scores"][task] for c in served], [c["scores"][task] for c in expected], rtol=0, atol=1e-6
            )


def test_metadata_names_tasks_inputs_fusion_and_the_model_digest(client, exported):
    metadata = client.get("/v1/metadata").json()
    digest = hashlib.sha256((exported["artifact"] / "model.onnx").read_bytes()).hexdigest()
    assert metadata["model_version"] == f"run-{digest[:12]}"
    assert [task["name"] for task in metadata["tasks"]] == ["income", "never_married"]
    assert metadata["fusion"]["kind"] == "weighted_product"
    assert metadata["fusion"]["weights"] == {"income": 1.0, "never_married": 0.5}
    spec = client.get("/openapi.json").json()
    assert "detailed_industry_recode" in spec["components"]["schemas"]["InputRow"]["properties"]


@contextmanager
def _mtlrec_serve(artifact: Path, *flags: str, quiet: bool = False) -> Iterator[tuple[str, dict[str, str]]]:
    """``mtlrec [-q] serve ARTIFACT FLAGS`` as a process on a free loopback port: yields its URL once it
    answers and a dict that holds its ``stdout`` and ``stderr`` once it has been stopped (SIGINT)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mtlrec", *(["-q"] if quiet else []), "serve", str(artifact)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--threads", "1", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    output: dict[str, str] = {}
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mtlrec serve did not start"
                time.sleep(0.1)
        yield url, output
    finally:
        process.send_signal(signal.SIGINT)
        output["stdout"], output["stderr"] = process.communicate(timeout=30)


def test_mtlrec_serve_runs_as_a_process(exported, predictor, rows):
    with _mtlrec_serve(exported["artifact"]) as (url, output):
        served = httpx.post(f"{url}/v1/predict", json={"candidates": rows[:5]}, timeout=30).json()["candidates"]
        direct = predictor.predict(_table(predictor, rows[:5]))
        np.testing.assert_allclose([c["score"] for c in served], direct["score"], atol=1e-6, rtol=0)
    # uvicorn's own INFO lines by default
    assert "Started server process" in output["stderr"] and "Uvicorn running on" in output["stderr"]


def test_mtlrec_serve_takes_the_batching_settings(exported):
    with _mtlrec_serve(exported["artifact"], "--max-batch-rows", "0", "--batch-wait-ms", "1.5", quiet=True) as (url, _):
        limits = httpx.get(f"{url}/v1/metadata", timeout=30).json()["limits"]
    assert limits["max_batch_rows"] == 0 and limits["batch_wait_ms"] == 1.5


def test_quiet_serve_leaves_out_uvicorns_info_lines_but_keeps_the_access_log(exported):
    with _mtlrec_serve(exported["artifact"], "--access-log", quiet=True) as (url, output):
        assert httpx.get(f"{url}/v1/metadata", timeout=30).status_code == 200
    assert "Started server process" not in output["stderr"] and "Uvicorn running on" not in output["stderr"]
    assert "INFO" not in output["stderr"], output["stderr"]
    assert '"GET /v1/metadata HTTP/1.1" 200' in output["stdout"]  # --access-log still logs every request


def test_a_modified_artifact_is_refused(exported, tmp_path, capsys):
    copy = tmp_path / "artifact"
    shutil.copytree(exported["artifact"], copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "model.onnx").write_bytes(bytes(data))
    assert main(["serve", str(copy), "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert "model.onnx" in error and "sha256" in error


def _labels(path: Path) -> dict[str, np.ndarray]:
    with gzip.open(path, "rt") as handle:
        rows = [line.split(",") for line in handle]
    return {
        "income": np.array([row[41].strip() == "50000+." for row in rows], dtype=float),
        "never_married": np.array([row[7].strip() == "Never married" for row in rows], dtype=float),
    }


def test_tune_fusion_writes_the_sweep_and_picks_the_constrained_best(exported, tmp_path, capsys):
    run, data = exported["run"], exported["test"]
    first = tmp_path / "first"
    assert main(["-q", "tune-fusion", str(run), "--data", str(data), "--output", str(first), "--grid", "4"]) == 0
    capsys.readouterr()
    with (first / "all.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10  # 5 weighted sums + 5 weighted products
    assert (first / "pareto.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    scores_path = tmp_path / "scores.parquet"
    assert main(["-q", "predict", str(run), "--data", str(data), "--output", str(scores_path)]) == 0
    scores = pq.read_table(scores_path)
    income, married = scores.column("income").to_numpy(), scores.column("never_married").to_numpy()
    labels = _labels(data)
    for row in rows:  # every setting's metrics against sklearn on the fused `mtlrec predict` scores
        a, b = float(row["weight.income"]), float(row["weight.never_married"])
        fused = a * income + b * married if row["kind"] == "weighted_sum" else income**a * married**b
        for task in ("income", "never_married"):
            assert float(row[f"{task}.auc"]) == pytest.approx(roc_auc_score(labels[task], fused), abs=1e-6)
    with (first / "pareto.csv").open() as handle:
        front = list(csv.DictReader(handle))
    assert [r["setting"] for r in front] == [r["setting"] for r in rows if r["pareto"] == "1"]

    threshold = float(np.median([float(r["income.auc"]) for r in rows]))
    second = tmp_path / "second"
    args = ["--maximize", "never_married.auc", "--constraint", f"income.auc >= {threshold}", "--kind", "weighted_sum"]
    assert (
        main(["-q", "tune-fusion", str(run), "--data", str(data), "--output", str(second), "--grid", "4", *args]) == 0
    )
    with (second / "all.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    allowed = [r for r in rows if float(r["income.auc"]) >= threshold]
    best = max(allowed, key=lambda r: float(r["never_married.auc"]))
    chosen = [r for r in rows if r["chosen"] == "1"]
    assert len(chosen) == 1 and float(chosen[0]["never_married.auc"]) == float(best["never_married.auc"])
    snippet = yaml.safe_load((second / "fusion.yaml").read_text())
    weights = snippet["serving"]["fusion"]["weighted_sum"]
    assert weights == {
        "income": float(chosen[0]["weight.income"]),
        "never_married": float(chosen[0]["weight.never_married"]),
    }
    assert "paste into the run's config" in capsys.readouterr().out
