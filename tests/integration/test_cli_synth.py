"""``mtlrec data synth-cascade`` end to end: the real entry point in a subprocess, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.csv as pa_csv
import pytest

from mtlrec.app.cli import main


def test_synth_cascade_writes_the_file_and_prints_the_meta_summary(tmp_path):
    output = tmp_path / "funnel" / "data.csv.gz"
    command = [sys.executable, "-m", "mtlrec", "-q", "data", "synth-cascade", "--rows", "20000", "--seed", "3"]
    command += ["--output", str(output), "--stages", "click,conversion,purchase", "--domains", "2"]
    command += ["--categorical", "3", "--numeric", "2", "--max-cardinality", "500"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    meta = json.loads((tmp_path / "funnel" / "data.csv.gz.meta.json").read_text())
    assert summary["meta"] == str(output) + ".meta.json"
    assert summary["oracle"] == meta["oracle"] and summary["base_rates"] == meta["base_rates"]
    assert meta["settings"]["num_domains"] == 2 and meta["cardinalities"] == {"c0": 10, "c1": 71, "c2": 500}
    table = pa_csv.read_csv(output)
    assert table.column_names == ["domain", "c0", "c1", "c2", "x0", "x1", "click", "conversion", "purchase"]
    assert table.num_rows == 20000
    click, conversion = table.column("click").to_numpy(), table.column("conversion").to_numpy()
    assert np.all(conversion <= click) and np.all(table.column("purchase").to_numpy() <= conversion)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--rows", "0"], "rows must be an integer >= 1, got 0"),
        (["--rows", "10", "--stages", "click,click"], "names must be distinct"),
        (["--rows", "10", "--stages", "click,"], "'' is not a valid name"),
        (["--rows", "10", "--rates", "0.04,high"], "--rates: expected numbers"),
        (["--rows", "10", "--rates", "0.04"], "rates: 1 given for 2 stages"),
    ],
)
def test_synth_cascade_reports_bad_arguments_without_a_traceback(tmp_path, capsys, arguments, message):
    code = main(["data", "synth-cascade", "--output", str(tmp_path / "out.csv"), *arguments])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("mtlrec: error: ") and message in error and "Traceback" not in error
    assert not (tmp_path / "out.csv").exists()


def test_synth_cascade_rejects_an_unknown_extension(tmp_path, capsys):
    assert main(["data", "synth-cascade", "--rows", "10", "--output", str(tmp_path / "out.json")]) == 2
    assert "output must end in .csv, .csv.gz, .parquet, .pq" in capsys.readouterr().err
