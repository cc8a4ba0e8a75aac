"""Encoder contract over every entry of ``ENCODERS``: transform before fit raises; what ``inputs()`` declares
is what ``transform`` emits; unseen values map to OOV; the state round-trips through JSON; a fit over
record batches (streamed) equals the fit over the whole table; CSV text lists read like Parquet lists."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from mtlrec.features import (
    ENCODERS,
    OOV_ID,
    CategoricalEncoder,
    CrossEncoder,
    Encoder,
    FeaturePipeline,
    FitLimits,
    MultiValuedEncoder,
    NotFittedError,
    NumericEncoder,
    PipelineFit,
    SequenceEncoder,
    SequenceField,
    Vocabulary,
)

ROWS = 400


def _train(seed: int = 0, rows: int = ROWS) -> pa.Table:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 6, rows)
    tags = [[f"t{v}" for v in rng.integers(0, 12, n)] for n in lengths]
    weighted = [[f"{tag}:{w:.2f}" for tag, w in zip(row, rng.uniform(0.1, 2, len(row)))] for row in tags]
    items = [[f"i{v}" for v in rng.integers(0, 30, n)] for n in lengths]
    return pa.table(
        {
            "user": pa.array([f"u{v}" for v in rng.integers(0, 25, rows)]),
            "city": pa.array([None if v == 0 else f"c{v}" for v in rng.integers(0, 6, rows)], pa.string()),
            "price": pa.array(rng.lognormal(2, 1, rows)),
            "tags": pa.array(tags, pa.list_(pa.string())),
            "weighted": pa.array(weighted, pa.list_(pa.string())),
            "hist_item": pa.array(items, pa.list_(pa.string())),
            "hist_cate": pa.array([[item[:2] for item in row] for row in items], pa.list_(pa.string())),
        }
    )


def _unseen(rows: int = 5) -> pa.Table:
    """Values never seen in training, in every column."""
    new = [[f"new{r}", f"new{r + 1}"] for r in range(rows)]
    return pa.table(
        {
            "user": [f"nobody{r}" for r in range(rows)],
            "city": [f"atlantis{r}" for r in range(rows)],
            "price": [1e9] * rows,
            "tags": pa.array(new, pa.list_(pa.string())),
            "weighted": pa.array([[f"{v}:1" for v in row] for row in new], pa.list_(pa.string())),
            "hist_item": pa.array(new, pa.list_(pa.string())),
            "hist_cate": pa.array(new, pa.list_(pa.string())),
        }
    )


#: Per registered kind: a fresh encoder (its vocabularies private to it), and whether unseen values map to OOV.
CASES: dict[str, tuple[Callable[[], Encoder], bool]] = {
    "categorical": (lambda: CategoricalEncoder("user", min_count=2), True),
    "numeric": (lambda: NumericEncoder("price", fill_value="median", log1p=True, buckets=5), False),
    "multi_valued": (lambda: MultiValuedEncoder("weighted", kv_separator=":", max_length=4), True),
    "sequence": (
        lambda: SequenceEncoder(
            "hist",
            [
                SequenceField("item", "hist_item", "item", Vocabulary()),
                SequenceField("cate", "hist_cate", "cate", Vocabulary(max_vocab_size=2)),
            ],
            max_length=3,
            recent="last",
        ),
        True,
    ),
    "cross": (lambda: CrossEncoder("user_city", ["user", "city"], min_count=2), True),
}


def test_every_registered_encoder_has_a_case():
    assert set(CASES) == set(ENCODERS)
    for kind, (make, _) in CASES.items():
        assert type(make()) is ENCODERS[kind] and ENCODERS[kind].kind == kind


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_transform_before_fit_raises(kind):
    encoder = CASES[kind][0]()
    assert not encoder.fitted
    with pytest.raises(NotFittedError):
        encoder.transform(_train())


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_inputs_declare_what_transform_emits(kind):
    encoder = CASES[kind][0]().fit(_train())
    encoded = encoder.transform(_train(seed=1, rows=50), "probe")
    specs = encoder.inputs()
    assert [spec.name for spec in specs] == list(encoded)
    for spec in specs:
        value = encoded[spec.name]
        assert spec.feature == encoder.name and value.dtype == np.dtype(spec.dtype), spec.name
        assert value.shape == (50, *spec.shape), spec.name
        if spec.role == "ids":
            assert spec.table in encoder.tables() and value.min() >= 0 and value.max() < spec.rows
    assert set(encoder.columns()) <= set(_train().column_names)


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_unseen_values_map_to_oov(kind):
    make, maps_to_oov = CASES[kind]
    encoder = make().fit(_train())
    encoded = encoder.transform(_unseen())
    ids = [encoded[spec.name] for spec in encoder.inputs() if spec.role == "ids"]
    if not maps_to_oov:  # numeric: an unseen value falls in the last bucket, never outside the table
        assert all(((value >= 2) & (value < encoder.num_ids)).all() for value in ids)
        return
    lengths = [encoded[spec.name] for spec in encoder.inputs() if spec.role == "lengths"]
    for value in ids:
        valid = value if value.ndim == 1 else value[np.arange(value.shape[1]) < lengths[0][:, None]]
        assert (valid == OOV_ID).all()


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_state_round_trips_through_json(kind):
    encoder = CASES[kind][0]().fit(_train())
    vocabularies = {name: Vocabulary.from_dict(json.loads(json.dumps(v.to_dict()))) for name, v in
                    encoder.vocabularies().items()}
    restored = ENCODERS[kind].from_dict(json.loads(json.dumps(encoder.to_dict())), vocabularies)
    for table in (_train(seed=2, rows=60), _unseen()):
        expected, actual = encoder.transform(table), restored.transform(table)
        assert list(actual) == list(expected)
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert restored.to_dict() == encoder.to_dict()


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_a_fit_over_record_batches_equals_the_fit_over_the_table(kind):
    table = _train(rows=1000)
    whole = FeaturePipeline([CASES[kind][0]()], []).fit(table)
    streamed = FeaturePipeline([CASES[kind][0]()], [])
    fit = PipelineFit(streamed, FitLimits(sample_rows=10_000, max_distinct_values=1000, seed=0))
    for batch in table.to_batches(max_chunksize=97):
        fit.update(pa.Table.from_batches([batch]))
    fit.finish()
    expected, actual = whole.to_dict(), streamed.to_dict()
    assert actual["vocabularies"] == expected["vocabularies"]
    for mine, theirs in zip(actual["features"], expected["features"]):
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert mine[key] == value, key


@pytest.mark.parametrize("kind", ["multi_valued", "sequence"])
def test_text_lists_encode_like_list_columns(kind):
    encoder = CASES[kind][0]().fit(_train())
    lists = _train(seed=3, rows=40)
    as_text = lists
    for name in encoder.columns():
        text = ["|".join(row) for row in lists.column(name).to_pylist()]
        as_text = as_text.set_column(as_text.column_names.index(name), name, pa.array(text))
    expected, actual = encoder.transform(lists), encoder.transform(as_text)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
