"""Tests of the synthetic cascade generator: determinism, funnel constraint, rates, oracle metrics, files."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mtlrec.errors import ConfigError, DataError, MtlrecError
from mtlrec.synth import BLOCK_ROWS, CascadeSettings, draw_model, generate_cascade, meta_path, write_cascade
from mtlrec.synth.cascade import logits, sample_features

STAGES = ("click", "conversion", "purchase")
SMALL = {"calibration_rows": 20_000, "max_cardinality": 5_000}


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pa.Table]:
    """200k rows of a three-stage funnel with the true probabilities, written in 4 chunks."""
    path = tmp_path_factory.mktemp("synth") / "funnel.parquet"
    meta = write_cascade(path, 200_000, seed=7, stages=STAGES, with_probabilities=True, chunk_rows=50_000)
    return meta, pq.read_table(path)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def test_meta_file_beside_the_data_equals_the_returned_meta(funnel, tmp_path):
    meta, table = funnel
    assert meta["rows"] == table.num_rows == 200_000
    path = tmp_path / "small.csv"
    returned = write_cascade(path, 1000, seed=1, **SMALL)
    assert meta_path(path).name == "small.csv.meta.json"
    assert json.loads(meta_path(path).read_text()) == returned
    assert returned["settings"]["calibration_rows"] == 20_000 and returned["settings"]["rates"] == [0.04, 0.1]


def test_funnel_constraint_every_stage_only_after_the_previous(funnel):
    _, table = funnel
    labels = np.stack([_column(table, stage) for stage in STAGES], axis=1)
    assert set(np.unique(labels)) <= {0, 1}
    assert np.all(labels[:, 1] <= labels[:, 0]) and np.all(labels[:, 2] <= labels[:, 1])
    assert labels[:, 2].sum() > 0  # the constraint is not met by an empty last stage


def test_observed_base_rates_are_near_the_targets(funnel):
    meta, table = funnel
    click, conversion, purchase = (_column(table, stage) for stage in STAGES)
    ctr, cvr, next_rate = click.mean(), conversion[click == 1].mean(), purchase[conversion == 1].mean()
    # standard errors at 200k rows: ≈0.0004, ≈0.0034 (8k clicks), ≈0.016 (800 conversions)
    assert ctr == pytest.approx(0.04, abs=0.002)
    assert cvr == pytest.approx(0.10, abs=0.015)
    assert next_rate == pytest.approx(0.30, abs=0.06)
    rates = meta["base_rates"]
    assert rates["click"]["rate"] == pytest.approx(ctr)
    assert rates["conversion"]["rate_given_click"] == pytest.approx(cvr)
    assert rates["purchase"]["rate_given_conversion"] == pytest.approx(next_rate)
    assert rates["purchase"]["positives"] == purchase.sum()


def test_oracle_metrics_equal_sklearn_on_the_true_probabilities(funnel):
    meta, table = funnel
    click, conversion, purchase = (_column(table, stage) for stage in STAGES)
    p_click, p_conversion, p_purchase = (_column(table, f"p_{stage}") for stage in STAGES)
    oracle = meta["oracle"]
    assert oracle["click"]["auc"] == pytest.approx(roc_auc_score(click, p_click), abs=1e-12)
    ctcvr = p_click * p_conversion
    assert oracle["conversion"]["auc"] == pytest.approx(roc_auc_score(conversion, ctcvr), abs=1e-12)
    clicked = click == 1
    cvr_auc = roc_auc_score(conversion[clicked], p_conversion[clicked])
    assert oracle["conversion"]["auc_given_click"] == pytest.approx(cvr_auc, abs=1e-12)
    assert oracle["purchase"]["auc"] == pytest.approx(roc_auc_score(purchase, ctcvr * p_purchase), abs=1e-12)
    # the true probabilities separate the labels well, but not perfectly
    for value in (oracle["click"]["auc"], cvr_auc, oracle["purchase"]["auc_given_conversion"]):
        assert 0.7 < value < 0.95


def test_label_correlation_matches_numpy(funnel):
    meta, table = funnel
    labels = np.stack([_column(table, stage) for stage in STAGES]).astype(np.float64)
    assert meta["label_correlation"]["labels"] == list(STAGES)
    np.testing.assert_allclose(meta["label_correlation"]["matrix"], np.corrcoef(labels), atol=1e-6)


def _target_encoding(ids: np.ndarray, labels: np.ndarray, train: int, smoothing: float = 20.0) -> np.ndarray:
    """Log-odds of the label per id, counted on the first ``train`` rows and shrunk toward the mean."""
    prior = labels[:train].mean()
    positives = np.bincount(ids[:train], weights=labels[:train], minlength=ids.max() + 1)
    seen = np.bincount(ids[:train], minlength=ids.max() + 1)
    rate = (positives + smoothing * prior) / (seen + smoothing)
    return np.log(rate / (1 - rate))[ids]


def test_labels_are_learnable_by_a_logistic_regression(funnel):
    """A logistic regression on target-encoded ids and numeric columns beats chance, and stays below the oracle."""
    _, table = funnel
    click, train = _column(table, "click"), 150_000
    encoded = [_target_encoding(_column(table, f"c{j}"), click, train) for j in range(8)]
    numeric = [_column(table, f"x{m}").astype(np.float64) for m in range(4)]
    numeric[0], numeric[2] = np.log(numeric[0]), np.log(numeric[2])  # even columns are log-normal
    features = np.stack(encoded + numeric, axis=1)
    model = LogisticRegression(solver="newton-cholesky").fit(features[:train], click[:train])
    learned = roc_auc_score(click[train:], model.predict_proba(features[train:])[:, 1])
    oracle = roc_auc_score(click[train:], _column(table, "p_click")[train:])
    assert 0.65 < learned < oracle


def test_same_seed_same_rows_other_seed_other_rows():
    first = pa.concat_tables(generate_cascade(5000, seed=3, **SMALL))
    again = pa.concat_tables(generate_cascade(5000, seed=3, **SMALL))
    other = pa.concat_tables(generate_cascade(5000, seed=4, **SMALL))
    assert first.equals(again)
    assert not first.column("c7").equals(other.column("c7"))
    assert not first.column("x0").equals(other.column("x0"))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_same_arguments_write_identical_bytes(tmp_path, suffix):
    paths = [tmp_path / f"{name}{suffix}" for name in ("a", "b")]
    metas = [write_cascade(path, 3000, seed=5, num_domains=2, **SMALL) for path in paths]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert metas[0] == metas[1]


def test_chunking_and_row_count_do_not_change_the_rows():
    rows = BLOCK_ROWS + 5000  # spans a block boundary
    whole = pa.concat_tables(generate_cascade(rows, seed=2, chunk_rows=rows, **SMALL))
    chunks = list(generate_cascade(rows, seed=2, chunk_rows=9_999, **SMALL))
    assert [chunk.num_rows for chunk in chunks[:-1]] == [9_999] * (len(chunks) - 1)
    assert pa.concat_tables(chunks).equals(whole)
    longer = pa.concat_tables(generate_cascade(rows + 30_000, seed=2, **SMALL))
    assert longer.slice(0, rows).equals(whole)


def test_csv_and_parquet_files_have_the_expected_columns(tmp_path):
    settings = CascadeSettings(stages=STAGES, num_domains=3, num_categorical=3, num_numeric=2, id_type="str", **SMALL)
    expected = ["domain", "c0", "c1", "c2", "x0", "x1", *STAGES]
    tables = {}
    for suffix in (".csv", ".csv.gz", ".parquet"):
        path = tmp_path / f"data{suffix}"
        meta = write_cascade(path, 2000, seed=0, settings=settings)
        tables[suffix] = pq.read_table(path) if suffix == ".parquet" else pa_csv.read_csv(path)
        assert tables[suffix].column_names == expected
        assert meta["columns"] == {
            "domain": "domain",
            "categorical": expected[1:4],
            "numeric": ["x0", "x1"],
            "labels": list(STAGES),
        }
    with gzip.open(tmp_path / "data.csv.gz", "rt") as text:
        assert text.readline().strip() == ",".join(f'"{name}"' for name in expected)
    parquet = tables[".parquet"]
    assert parquet.schema.field("c0").type == pa.string() and parquet.schema.field("click").type == pa.int8()
    assert pa_csv.read_csv(tmp_path / "data.csv").column("c2").to_pylist() == [
        int(v) for v in parquet.column("c2").to_pylist()
    ]


def test_domains_have_different_base_rates():
    table = pa.concat_tables(generate_cascade(60_000, seed=11, num_domains=3, domain_spread=1.0, **SMALL))
    domain, click = _column(table, "domain"), _column(table, "click")
    assert set(np.unique(domain)) == {0, 1, 2}
    rates = np.array([click[domain == d].mean() for d in range(3)])
    errors = np.sqrt(rates * (1 - rates) / np.bincount(domain))
    assert rates.max() - rates.min() > 5 * errors.max()


@pytest.mark.parametrize("rho, tolerance", [(0.0, 0.2), (0.6, 0.2), (1.0, 1e-9)])
def test_stage_correlation_sets_how_related_the_stages_are(rho, tolerance):
    """Logits of click and conversion correlate by ρ on average over models (Zipf heads make one draw noisy)."""
    correlations = []
    for seed in range(4):
        model = draw_model(CascadeSettings(stage_correlation=rho, **SMALL), seed=seed)
        z = logits(model, sample_features(model, np.random.default_rng(0), 20_000))
        correlations.append(np.corrcoef(z[:, 0], z[:, 1])[0, 1])
    assert np.mean(correlations) == pytest.approx(rho, abs=tolerance)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"rows": 0}, ConfigError, "rows must be an integer >= 1"),
        ({"seed": -1}, ConfigError, "seed must be"),
        ({"chunk_rows": 0}, ConfigError, "chunk_rows"),
        ({"oracle_rows": 0}, ConfigError, "oracle_rows must be an integer >= 1"),
        ({"stages": ()}, ConfigError, "at least one stage"),
        ({"stages": ("click", "click")}, ConfigError, "distinct"),
        ({"stages": ("click", "2nd")}, ConfigError, "'2nd' is not a valid name"),
        ({"stages": ("click", "c0")}, ConfigError, "clash"),
        ({"rates": (0.1,)}, ConfigError, "1 given for 2 stages"),
        ({"rates": (0.1, 1.5)}, ConfigError, "rates must be in (0, 1)"),
        ({"stage_correlation": 2.0}, ConfigError, "stage_correlation"),
        ({"num_categorical": 2, "num_interactions": 3}, ConfigError, "make 1 pairs"),
        ({"colour": "red"}, ConfigError, "unknown cascade settings ['colour']"),
        ({"path": "out.txt"}, DataError, "must end in .csv, .csv.gz, .parquet, .pq"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, error, message):
    arguments = {"path": tmp_path / "out.csv", "rows": 10, "seed": 0, **SMALL, **kwargs}
    if "path" in kwargs:
        arguments["path"] = tmp_path / kwargs["path"]
    with pytest.raises(error) as caught:
        write_cascade(**arguments)
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_oracle_on_the_first_rows_and_rates_over_all_rows(funnel, tmp_path):
    meta, table = funnel
    capped = write_cascade(
        tmp_path / "capped.parquet", 200_000, seed=7, stages=STAGES, chunk_rows=30_000, oracle_rows=70_000
    )
    assert capped["oracle_rows"] == 70_000 and meta["oracle_rows"] == 200_000
    assert capped["base_rates"] == meta["base_rates"] and capped["label_correlation"] == meta["label_correlation"]
    head = table.slice(0, 70_000)
    expected = roc_auc_score(_column(head, "click"), _column(head, "p_click"))
    assert capped["oracle"]["click"]["auc"] == pytest.approx(expected, abs=1e-12)


def test_unwritable_path_is_a_data_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="cannot write"):
        write_cascade(tmp_path / "file" / "out.parquet", 10, **SMALL)


def test_settings_and_keyword_options_are_exclusive():
    with pytest.raises(MtlrecError, match="not both"):
        generate_cascade(10, 0, CascadeSettings(), num_numeric=2)  # raises before the first row
