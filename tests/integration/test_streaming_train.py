"""Training with ``data.streaming``: the same fitted features and comparable metrics as in memory."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from mtlrec.app import api
from mtlrec.config import validate_config
from mtlrec.errors import ConfigError


def _write(folder, rows: int, seed: int, files: int) -> None:
    rng = np.random.default_rng(seed)
    user, item, price = rng.integers(0, 300, rows), rng.integers(0, 40, rows), rng.lognormal(1, 1, rows)
    logit = np.sin(user) + 0.5 * np.cos(item) + 0.3 * np.log(price) - 1
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))) * 1
    buy = click * (rng.random(rows) < 1 / (1 + np.exp(-np.sin(user))))
    table = pa.table({"user": user, "item": item, "price": price, "click": click, "buy": buy})
    folder.mkdir(parents=True)
    for index, part in enumerate(np.array_split(np.arange(rows), files)):
        pa_csv.write_csv(table.take(part), folder / f"part-{index}.csv")


def _config(tmp_path, streaming: object) -> dict:
    return {
        "data": {"train": str(tmp_path / "train"), "valid": str(tmp_path / "valid"), "streaming": streaming},
        "features": [
            {"name": "user", "kind": "categorical", "min_count": 2},
            {"name": "item", "kind": "categorical"},
            {"name": "price", "kind": "numeric", "log1p": True},
            {"name": "price_bucket", "column": "price", "kind": "numeric", "buckets": 8},
        ],
        "tasks": [{"name": "click", "label": {"column": "click"}}, {"name": "buy", "label": {"column": "buy"}}],
        "model": {"architecture": "shared_bottom", "embedding_dim": 8, "params": {"bottom_hidden_units": [32]}},
        "train": {"batch_size": 256, "epochs": 3, "lr": 0.01, "threads": 1, "device": "cpu", "early_stopping": None},
        "diagnostics": {"every_steps": 0},
    }


def test_streaming_fits_the_same_features_and_trains_as_well_as_in_memory(tmp_path):
    _write(tmp_path / "train", 12_000, seed=0, files=3)
    _write(tmp_path / "valid", 3_000, seed=1, files=1)
    in_memory = api.train(validate_config(_config(tmp_path, None)), tmp_path / "memory")
    options = {"shuffle_buffer_rows": 2000, "prefetch_batches": 2}
    streamed = api.train(validate_config(_config(tmp_path, options)), tmp_path / "stream")
    features = [json.loads((tmp_path / run / "features.json").read_text()) for run in ("memory", "stream")]
    assert features[1]["vocabularies"] == features[0]["vocabularies"]
    for memory, stream in zip(features[0]["features"], features[1]["features"]):
        assert stream.get("boundaries") == memory.get("boundaries")
        for key in ("mean", "std", "fill"):
            if key in memory:
                assert stream[key] == pytest.approx(memory[key], rel=1e-12)
    for task in ("click", "buy"):
        # different (seeded) orders of the same rows: the same model quality within noise
        assert streamed["valid"][task]["auc"] == pytest.approx(in_memory["valid"][task]["auc"], abs=0.02)
    assert in_memory["valid"]["click"]["auc"] > 0.65
    history = json.loads((tmp_path / "stream" / "history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2, 3]
    correlations = [json.loads((tmp_path / run / "diagnostics.json").read_text()) for run in ("memory", "stream")]
    memory, stream = (c["label_correlation"] for c in correlations)
    assert stream["rows"] == memory["rows"] == [[12_000, 12_000], [12_000, 12_000]]
    np.testing.assert_allclose(stream["pearson"], memory["pearson"], atol=1e-9)  # from the fitting pass


def test_a_random_split_cannot_stream(tmp_path):
    config = _config(tmp_path, True)
    config["data"].pop("valid")
    config["data"]["split"] = {"source": "train", "fractions": {"valid": 0.1}}
    with pytest.raises(ConfigError, match="split needs the whole table in memory"):
        validate_config(config)
