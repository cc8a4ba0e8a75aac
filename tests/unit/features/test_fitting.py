"""Tests for mtlrec.features.fitting: a streamed fit equals the in-memory fit when the data fits."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from mtlrec.features import (
    BinaryLabel,
    CategoricalEncoder,
    FeaturePipeline,
    FitLimits,
    LabelSpec,
    NumericEncoder,
    PipelineFit,
    RegressionLabel,
)
from mtlrec.features.statistics import Moments, Reservoir


def _pipeline(max_vocab: int | None = 5) -> FeaturePipeline:
    features = [
        CategoricalEncoder("user", min_count=2),
        CategoricalEncoder("user_top", "user", max_vocab_size=max_vocab),
        CategoricalEncoder("city", hash_buckets=7),
        NumericEncoder("price", log1p=True),
        NumericEncoder("price_bucket", "price", buckets=4),
        NumericEncoder("age", fill_value="median", standardize=False),
        NumericEncoder("score", fill_value=-1.0, buckets=3, log1p=True),
    ]
    labels = [
        LabelSpec("click", "click", BinaryLabel()),
        LabelSpec("watch", "watch", RegressionLabel(log1p=True, standardize=True)),
    ]
    return FeaturePipeline(features, labels)


def _table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.6, rows) % 40
    price = rng.lognormal(2, 1, rows)
    price[rng.random(rows) < 0.1] = np.nan
    age = rng.integers(18, 80, rows).astype(float)
    score = rng.normal(0, 3, rows)
    return pa.table(
        {
            "user": pa.array([f"u{u}" if u % 13 else None for u in users], pa.string()),
            "city": pa.array([f"c{c}" for c in rng.integers(0, 9, rows)], pa.string()),
            "price": pa.array(price, pa.float64(), mask=rng.random(rows) < 0.05),
            "age": pa.array(age, pa.float64(), mask=rng.random(rows) < 0.2),
            "score": pa.array(score),
            "click": pa.array(rng.integers(0, 2, rows).astype(float)),
            "watch": pa.array(rng.exponential(30, rows)),
        }
    )


def _streamed(pipeline: FeaturePipeline, table: pa.Table, batch_rows: int, **options) -> FeaturePipeline:
    fit = PipelineFit(pipeline, FitLimits(**options))
    for batch in table.to_batches(max_chunksize=batch_rows):
        part = pa.Table.from_batches([batch])
        fit.update(part, pipeline.transform_labels(part, "test"))
    return fit.finish()


def test_streamed_fit_equals_the_in_memory_fit_when_the_sample_holds_every_row():
    table = _table(5000, seed=0)
    expected = _pipeline().fit(table, _pipeline().transform_labels(table, "test")).to_dict()
    actual = _streamed(_pipeline(), table, batch_rows=613, sample_rows=10_000).to_dict()
    assert actual["vocabularies"] == expected["vocabularies"]
    for mine, theirs in zip(actual["features"], expected["features"]):
        exact = {k: v for k, v in mine.items() if k not in ("mean", "std", "fill")}
        assert exact == {k: v for k, v in theirs.items() if k not in ("mean", "std", "fill")}, mine["name"]
        for key in ("mean", "std", "fill"):
            if key in mine:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-12, abs=1e-12), key
    watch, expected_watch = actual["labels"][1]["rule"], expected["labels"][1]["rule"]
    assert expected_watch["mean"] != 0.0 and expected_watch["std"] != 1.0
    assert watch["mean"] == pytest.approx(expected_watch["mean"], rel=1e-12)
    assert watch["std"] == pytest.approx(expected_watch["std"], rel=1e-12)


def test_quantile_buckets_from_a_sample_sit_at_the_quantiles_of_the_whole_column():
    table = _table(20_000, seed=1)
    exact = _pipeline().fit(table).encoders[4]
    sampled = _streamed(_pipeline(), table, batch_rows=1000, sample_rows=4000).encoders[4].boundaries_
    shaped = exact.shape(table.column("price").to_numpy(zero_copy_only=False).astype(float))
    # Dvoretzky–Kiefer–Wolfowitz: a 4000-value sample's CDF is within 0.031 of the column's (99.9%)
    epsilon = np.sqrt(np.log(2 / 1e-3) / (2 * 4000))
    assert len(sampled) == len(exact.boundaries_) == 3
    for boundary, level in zip(sampled, (0.25, 0.5, 0.75)):
        assert np.mean(shaped < boundary) - epsilon <= level <= np.mean(shaped <= boundary) + epsilon


def test_too_many_distinct_values_fall_back_to_hash_buckets_with_a_warning(caplog):
    table = _table(2000, seed=2)
    with caplog.at_level(logging.WARNING):
        pipeline = _streamed(_pipeline(max_vocab=3), table, batch_rows=100, max_distinct_values=10)
    user, user_top, city = (pipeline.encoders[i].vocabulary for i in range(3))
    assert user.hash_buckets == 10 and user.vocabulary_ is None  # no max_vocab_size: the cap
    assert user_top.hash_buckets == 3  # max_vocab_size buckets
    assert city.hash_buckets == 7  # hashed by config, untouched
    assert "feature 'user' (column 'user'): more than 10 distinct values" in caplog.text
    ids = pipeline.transform_features(table, "t")["user"]
    assert ids.min() >= 1 and ids.max() < user.num_ids


def test_moments_merge_like_numpy():
    values = np.random.default_rng(0).normal(5, 2, 1001)
    moments = Moments()
    for part in np.array_split(values, 7):
        moments.add(part)
    assert moments.count == 1001
    assert moments.mean == pytest.approx(values.mean(), rel=1e-13)
    assert moments.std == pytest.approx(values.std(), rel=1e-12)


def test_the_reservoir_keeps_every_value_with_equal_probability():
    # Algorithm R: each of N values ends in the K-sample with probability K/N
    hits = np.zeros(40)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        reservoir = Reservoir(8, rng)
        for part in np.array_split(np.arange(40.0), 6):
            reservoir.add(part)
        assert reservoir.values.size == 8 and len(set(reservoir.values)) == 8
        hits[reservoir.values.astype(int)] += 1
    assert stats.chisquare(hits).pvalue > 1e-3
    complete = Reservoir(100, rng)
    complete.add(np.arange(30.0))
    assert complete.complete and sorted(complete.values) == list(range(30))
