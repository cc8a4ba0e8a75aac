"""Bad input gets a clear error naming the file/row/column or config path, and a non-zero exit."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tests.small_runs import SMALL_CONFIG, good_rows, run_cli, train_run, write_config, write_csv

from mtlrec.app.cli import main


def test_good_small_config_trains(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 0, err


def test_missing_data_file(tmp_path, capsys):
    config = write_config(tmp_path, tmp_path / "nope.csv")
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "data file not found" in err and "nope.csv" in err


def test_missing_column(tmp_path, capsys):
    rows = [r.rsplit(",", 1)[0] for r in good_rows()]
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows, header="age,city,click"))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "'buy' not found" in err and "train.csv" in err


def test_malformed_row_names_the_line(tmp_path, capsys):
    rows = good_rows()
    rows[9] = "33,rome,1,no,extra"  # file line 11 (header is line 1)
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "line 11" in err and "train.csv" in err and "bad_rows" in err


def test_malformed_rows_can_be_skipped_and_are_counted(tmp_path, capsys):
    rows = good_rows()
    rows[9] = "33,rome,1,no,extra"
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys, "--set", "data.csv.bad_rows=skip")
    assert code == 0, err
    assert "skipped 1 malformed row" in (tmp_path / "run" / "train.log").read_text()


def test_label_value_that_fits_no_rule(tmp_path, capsys):
    rows = good_rows()
    rows[4] = "30,oslo,1,maybe"
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "'maybe'" in err and "data row 5" in err and "'buy'" in err


def test_binary_label_outside_zero_one(tmp_path, capsys):
    rows = good_rows()
    rows[2] = "30,oslo,3,no"
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "'click'" in err and "data row 3" in err and "threshold" in err


def test_missing_label_is_an_error(tmp_path, capsys):
    rows = good_rows()
    rows[6] = "30,oslo,,no"
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "missing value" in err and "data row 7" in err


def test_nan_in_numeric_column_is_filled_and_counted(tmp_path, capsys):
    rows = good_rows()
    rows[1] = ",rome,0,no"
    rows[3] = "NaN,rome,0,no"
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 0, err
    log = (tmp_path / "run" / "train.log").read_text()
    assert "feature 'age'" in log and "missing/NaN value(s) filled" in log


def test_text_in_numeric_column_names_column_value_and_line(tmp_path, capsys):
    rows = good_rows()
    rows[7] = "old,rome,0,no"  # line 9
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", rows))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "'age'" in err and "'old'" in err and "line 9" in err


def test_unknown_config_key(tmp_path, capsys):
    config = write_config(tmp_path, tmp_path / "x.csv", SMALL_CONFIG.replace("epochs: 1", "epochs: 1, epochz: 2"))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "train.epochz: unknown key" in err


def test_wrong_type_inwrite_config(tmp_path, capsys):
    config = write_config(tmp_path, tmp_path / "x.csv", SMALL_CONFIG.replace("epochs: 1", "epochs: many"))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "train.epochs" in err and "integer" in err


def test_unknown_loss_lists_choices(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    code, err = train_run(tmp_path, config, capsys, "--set", "tasks[1].loss=bce2")
    assert code == 2
    assert "tasks[1].loss: unknown loss 'bce2'; choose one of bce, focal, mse, huber, softmax_ce" in err


def test_unknown_architecture_and_parameter(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    code, err = train_run(tmp_path, config, capsys, "--set", "model.architecture=mmeo")
    assert code == 2 and "model.architecture: unknown architecture 'mmeo'" in err
    code, err = train_run(tmp_path, config, capsys, "--set", "model.params.num_expert=3")
    assert code == 2 and "model.params.num_expert: unknown parameter" in err and "num_experts" in err
    code, err = train_run(tmp_path, config, capsys, "--set", "model.params.num_experts=lots")
    assert code == 2 and "model.params.num_experts" in err


def test_unknown_metric_and_selection_metric(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    code, err = train_run(tmp_path, config, capsys, "--set", "tasks[0].metrics=[auc, rmse]")
    assert code == 2 and "tasks[0].metrics[1]" in err and "binary" in err
    code, err = train_run(tmp_path, config, capsys, "--set", "train.early_stopping.metric=click.gauc")
    assert code == 2 and "train.early_stopping.metric: unknown 'click.gauc'" in err


def test_bad_override_syntax(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    code, err = train_run(tmp_path, config, capsys, "--set", "train.epochs")
    assert code == 2 and "KEY=VALUE" in err


def test_unseen_categories_at_evaluation_map_to_oov(tmp_path, capsys):
    """An unseen city scores exactly as a missing one (both the OOV id), not as the known city it replaces."""
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    assert train_run(tmp_path, config, capsys, "--set", "train.epochs=20", "--set", "train.lr=0.05")[0] == 0
    paris = [r for r in good_rows() if ",paris," in r]
    scores = {}
    for city in ("paris", "lima", ""):
        data = write_csv(tmp_path / f"city_{city}.csv", [r.replace("paris", city) for r in paris])
        output = tmp_path / f"city_{city}.parquet"
        assert main(["predict", str(tmp_path / "run"), "--data", str(data), "--output", str(output)]) == 0
        scores[city] = pq.read_table(output).column("click").to_numpy()
    np.testing.assert_array_equal(scores["lima"], scores[""])
    assert np.abs(scores["lima"] - scores["paris"]).min() > 1e-4  # the OOV row is not paris's
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "city_lima.csv")]) == 0


def test_evaluate_on_a_directory_that_is_not_a_run(tmp_path, capsys):
    code, err = run_cli(["evaluate", str(tmp_path), "--data", str(tmp_path / "x.csv")], capsys)
    assert code == 2 and "not a run directory" in err


def test_gzip_census_header_and_whitespace(tmp_path, capsys):
    """The census files have ', ' separators and ' ?' nulls: both are handled by the shipped config."""
    source = Path(__file__).resolve().parents[2] / "data" / "census-income" / "census-income.test.gz"
    with gzip.open(source, "rt") as handle:
        first = handle.readline()
    assert ", " in first
