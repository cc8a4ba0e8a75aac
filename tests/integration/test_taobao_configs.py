"""The bundled Taobao display-ad log (data/taobao-easyrec-test) with configs/taobao: its '|'-separated tag
lists are read as lists of ids (sharing the ad's category and brand tables), and the configs train."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from mtlrec.app import build
from mtlrec.app.cli import main
from mtlrec.config import load_config
from mtlrec.data.reading import encode, read_split

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "taobao"
DATA = REPO / "data" / "taobao-easyrec-test" / "taobao_test_data.gz"


def _file_lists(column: int) -> list[list[str]]:
    with gzip.open(DATA, "rt") as handle:
        cells = [line.rstrip("\n").split(",")[column] for line in handle]
    return [cell.split("|") if cell else [] for cell in cells]


def test_the_tag_lists_are_read_as_lists_in_the_ads_tables():
    config = load_config(CONFIGS / "dnn.yaml")
    pipeline = build.build_pipeline(config)
    raw = read_split(config.data.train, pipeline, build.read_options(config), with_labels=True)
    pipeline.fit(raw.table, raw.labels)
    encoded = encode(raw, pipeline).rows.inputs
    categories = _file_lists(17)
    lengths = np.array([len(row) for row in categories])
    assert raw.table.num_rows == 10_000 and (lengths == 0).sum() == 4202  # as PROVENANCE.md counts them
    np.testing.assert_array_equal(encoded["tag_category_list.length"].numpy(), lengths)
    assert encoded["tag_category_list"].shape == (10_000, int(lengths.max()))
    vocabulary = pipeline.vocabularies["category"].vocabulary_  # shared with the ad's cate_id
    first = [vocabulary.index(value) + 2 for value in categories[0]]
    assert encoded["tag_category_list"][0, : len(first)].tolist() == first
    assert pipeline.tables()["brand"] == pipeline.vocabularies["brand"].num_ids


@pytest.mark.parametrize("name", ["dnn", "dnn_opaque_tags"])
def test_the_taobao_configs_train(name, tmp_path):
    run = tmp_path / name
    assert main(["-q", "train", str(CONFIGS / f"{name}.yaml"), "--output", str(run), "--no-progress",
                 "--set", "train.epochs=1"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"click"} and 0.0 < metrics["test"]["click"]["auc"] < 1.0
