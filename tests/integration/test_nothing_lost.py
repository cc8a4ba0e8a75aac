"""Nothing lost, nothing half-written: an output never replaces an input, a run directory has one writer,
an undefined selection criterion stops before training, a killed write leaves nothing behind, damaged
files and missing extras are named, and every JSON file is strict JSON."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import yaml
from tests.small_runs import SMALL_CONFIG, good_rows, run_cli, train_run, write_config, write_csv

from mtlrec.app.run_lock import run_dir_lock
from mtlrec.errors import RunDirError
from mtlrec.export.artifact import MANIFEST, sha256_file
from mtlrec.serving import Predictor

#: Train, valid and test files instead of a random split (a test can then give a split one class only).
SPLIT_FILES_CONFIG = SMALL_CONFIG.replace(
    "  split: {{source: train, fractions: {{valid: 0.25, test: 0.25}}, seed: 1}}\n",
    "  valid: valid.csv\n  test: test.csv\n",
)


@pytest.fixture
def trained(tmp_path, capsys) -> dict[str, Path]:
    """A finished small run and its training file."""
    train = write_csv(tmp_path / "train.csv", good_rows())
    code, err = train_run(tmp_path, write_config(tmp_path, train), capsys)
    assert code == 0, err
    return {"run": tmp_path / "run", "train": train}


def _predict(run: Path, data: Path, output: Path, capsys, *extra: str) -> tuple[int, str]:
    return run_cli(["predict", str(run), "--data", str(data), "--output", str(output), *extra], capsys)


# --- 1. predict never replaces its input, nor an existing file without --overwrite ---------------------------


def test_predict_refuses_to_write_over_its_input(trained, capsys):
    before = trained["train"].read_bytes()
    code, err = _predict(trained["run"], trained["train"], trained["train"], capsys)
    assert code == 2 and "is the input file itself" in err
    assert trained["train"].read_bytes() == before


def test_predict_replaces_an_existing_output_only_with_overwrite(trained, tmp_path, capsys):
    output = tmp_path / "scores.csv"
    output.write_text("keep me\n")
    code, err = _predict(trained["run"], trained["train"], output, capsys)
    assert code == 2 and "already exists; use --overwrite" in err
    assert output.read_text() == "keep me\n"
    code, err = _predict(trained["run"], trained["train"], output, capsys, "--overwrite")
    assert code == 0, err
    assert pa.csv.read_csv(output).num_rows == len(good_rows())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written through a renamed temporary


def test_predict_into_a_directory_is_a_clear_error(trained, tmp_path, capsys):
    code, err = _predict(trained["run"], trained["train"], tmp_path, capsys)
    assert code == 2 and "is a directory" in err


def test_predict_threads_set_the_model_threads_of_a_run(trained, tmp_path, capsys):
    """``--threads`` reaches torch for a run directory too (it used to apply to artifacts only)."""
    import torch

    previous = torch.get_num_threads()
    try:
        code, err = _predict(trained["run"], trained["train"], tmp_path / "s.parquet", capsys, "--threads", "2")
        assert code == 0, err
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


# --- 2. one writer per run directory ----------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from mtlrec.app.run_lock import run_dir_lock
with run_dir_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_train_into_a_locked_run_dir_names_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = train_run(tmp_path, config, capsys)
        assert code == 2 and "is being written by another process" in err and f"pid {holder.pid}" in err
        assert not (tmp_path / "run" / "config.yaml").exists()  # the second process wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, err = train_run(tmp_path, config, capsys)  # kill -9 released the lock: no stale lock
    assert code == 0, err


def test_the_lock_is_per_process_and_released_on_exit(tmp_path):
    with run_dir_lock(tmp_path / "run"):
        with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
            with run_dir_lock(tmp_path / "run"):  # another open file description conflicts, as another process
                pass
    with run_dir_lock(tmp_path / "run"):
        pass


def test_train_output_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    config = write_config(tmp_path, write_csv(tmp_path / "train.csv", good_rows()))
    (tmp_path / "run").write_text("not a directory")
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2 and "is a file; --output takes a run directory" in err


# --- 3. a one-class validation split ------------------------------------------------------------------------------


def _split_files(tmp_path: Path, valid_rows: list[str], test_rows: list[str]) -> Path:
    """The small config over train.csv, valid.csv and test.csv (the given rows) in ``tmp_path``."""
    write_csv(tmp_path / "valid.csv", valid_rows)
    write_csv(tmp_path / "test.csv", test_rows)
    text = SPLIT_FILES_CONFIG.replace("valid.csv", str(tmp_path / "valid.csv"))
    return write_config(
        tmp_path, write_csv(tmp_path / "train.csv", good_rows()), text.replace("test.csv", str(tmp_path / "test.csv"))
    )


def test_a_validation_task_with_one_class_stops_before_training_naming_task_and_classes(tmp_path, capsys):
    all_clicked = [f"{30 + i},rome,1,{'yes' if i % 2 else 'no'}" for i in range(12)]
    config = _split_files(tmp_path, all_clicked, good_rows(12))
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2
    assert "validation split" in err and "click.auc" in err
    assert "task 'click': 12 labelled row(s), one class only (1)" in err
    assert not (tmp_path / "run" / "history.json").exists()  # stopped before the first epoch


def test_without_model_selection_a_one_class_split_trains_and_keeps_the_last_epoch(tmp_path, capsys):
    all_clicked = [f"{30 + i},rome,1,{'yes' if i % 2 else 'no'}" for i in range(12)]
    config = _split_files(tmp_path, all_clicked, good_rows(12))
    code, err = train_run(tmp_path, config, capsys, "--set", "train.early_stopping=null", "--set", "train.epochs=2")
    assert code == 0, err
    assert (tmp_path / "run" / "model.safetensors").is_file()


# --- 9. strict JSON: an undefined metric is null, and the log says why --------------------------------------------


def test_undefined_test_metric_is_null_in_strict_json_and_the_log_says_why(tmp_path, capsys):
    nobody_buys = [f"{30 + i},oslo,{i % 2},no" for i in range(12)]
    config = _split_files(tmp_path, good_rows(12), nobody_buys)
    code, err = train_run(tmp_path, config, capsys)
    assert code == 0, err
    run = tmp_path / "run"
    metrics = orjson.loads((run / "metrics.json").read_bytes())  # orjson rejects a bare NaN
    assert metrics["test"]["buy"]["auc"] is None and metrics["test"]["click"]["auc"] is not None
    log = (run / "train.log").read_text()
    assert "test.buy.auc undefined (NaN), written as null" in log and "one class only" in log
    orjson.loads((run / "history.json").read_bytes())
    output = tmp_path / "evaluated.json"
    code, err = run_cli(["evaluate", str(run), "--data", str(tmp_path / "test.csv"), "--output", str(output)], capsys)
    assert code == 0 and "buy.auc undefined" in err
    assert orjson.loads(output.read_bytes())["buy"]["auc"] is None


# --- 4. temporaries a killed write left are removed ---------------------------------------------------------------


def test_resume_removes_half_written_temporaries(trained, tmp_path, capsys):
    stale = [trained["run"] / ".checkpoint.pt.x1y2.tmp", trained["run"] / ".diagnostics.json.abc.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    keep = trained["run"] / ".lock"
    code, err = train_run(
        tmp_path, write_config(tmp_path, trained["train"]), capsys, "--resume", "--set", "train.epochs=2"
    )
    assert code == 0, err
    assert not any(path.exists() for path in stale) and keep.exists()


# --- 5, 6, 11. damaged, empty, unclosed-quote and extension-less files --------------------------------------------


def _truncated_gzip(path: Path, text: str) -> Path:
    whole = gzip.compress(text.encode())
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def test_a_truncated_gzip_is_named_for_train_evaluate_and_predict(trained, tmp_path, capsys):
    rows = good_rows(4000)
    text = "age,city,click,buy\n" + "\n".join(rows) + "\n"
    broken = _truncated_gzip(tmp_path / "broken.csv.gz", text)
    code, err = train_run(tmp_path, write_config(tmp_path, broken), capsys, "--overwrite")
    assert code == 2 and "broken.csv.gz" in err and "truncated or corrupt" in err
    code, err = run_cli(["evaluate", str(trained["run"]), "--data", str(broken)], capsys)
    assert code == 2 and "truncated or corrupt" in err
    code, err = _predict(trained["run"], broken, tmp_path / "s.parquet", capsys)
    assert code == 2 and "truncated or corrupt" in err
    assert not (tmp_path / "s.parquet").exists()


def test_a_truncated_gzip_is_named_when_streaming(tmp_path, capsys):
    text = "age,city,click,buy\n" + "\n".join(good_rows(4000)) + "\n"
    broken = _truncated_gzip(tmp_path / "broken.csv.gz", text)
    valid = write_csv(tmp_path / "valid.csv", good_rows(20))
    text = SPLIT_FILES_CONFIG.replace("valid.csv", str(valid)).replace("  test: test.csv\n", "  streaming: true\n")
    config = write_config(tmp_path, broken, text)
    code, err = train_run(tmp_path, config, capsys)
    assert code == 2 and "broken.csv.gz" in err and "truncated or corrupt" in err


def test_an_empty_file_says_it_is_empty(tmp_path, capsys):
    (tmp_path / "train.csv").write_text("")
    code, err = train_run(tmp_path, write_config(tmp_path, tmp_path / "train.csv"), capsys)
    assert code == 2 and "the file is empty" in err


def test_an_unclosed_quote_names_its_line(tmp_path, capsys):
    rows = good_rows()
    rows[11] = '31,"rome,1,no'  # file line 13: the quote swallows the following lines
    code, err = train_run(tmp_path, write_config(tmp_path, write_csv(tmp_path / "train.csv", rows)), capsys)
    assert code == 2 and "line 13" in err and "quote" in err


def test_a_csv_named_data_gz_is_read_by_its_content(tmp_path, capsys):
    data = tmp_path / "data.gz"
    data.write_bytes(gzip.compress(("age,city,click,buy\n" + "\n".join(good_rows()) + "\n").encode()))
    code, err = train_run(tmp_path, write_config(tmp_path, data), capsys)
    assert code == 0, err


# --- 7. damaged artifacts ------------------------------------------------------------------------------------------


def test_a_torchscript_artifact_with_a_damaged_model_is_named(trained, tmp_path, capsys):
    """The file is replaced and the manifest's sha256 updated to match: the damage is found when loading."""
    artifact = tmp_path / "artifact"
    assert (
        run_cli(["export", str(trained["run"]), "--output", str(artifact), "--format", "torchscript"], capsys)[0] == 0
    )
    model = artifact / "model.pt"
    model.write_bytes(b"this is not a torchscript archive")
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["files"]["model.pt"] = sha256_file(model)
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="not a TorchScript archive"):
        Predictor.load(artifact)
    code, err = _predict(artifact, trained["train"], tmp_path / "s.parquet", capsys)
    assert code == 2 and "model.pt: not a TorchScript archive" in err


# --- 8. a missing optional extra names the extra ------------------------------------------------------------------

WITHOUT_ONNX = """
import sys
sys.modules["onnx"] = None  # as if the serve extra were not installed: `import onnx` raises ModuleNotFoundError
from mtlrec.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_export_without_the_serve_extra_says_what_to_install(trained, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ONNX, "export", str(trained["run"]), "--output", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'mtlrec[serve]'" in done.stderr and "Traceback" not in done.stderr


# --- 10. absolute data paths in the saved config ------------------------------------------------------------------


def test_a_run_trained_with_relative_paths_exports_and_evaluates_from_elsewhere(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    write_csv(work / "train.csv", good_rows())
    config = write_config(work, Path("train.csv"))
    monkeypatch.chdir(work)
    assert train_run(work, config, capsys)[0] == 0
    saved = yaml.safe_load((work / "run" / "config.yaml").read_text())
    assert saved["data"]["train"] == str(work / "train.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, err = run_cli(["export", str(work / "run"), "--output", "artifact"], capsys)
    assert code == 0, err
    code, err = run_cli(["evaluate", str(work / "run"), "--data", "train.csv"], capsys)
    assert code == 2 and f"looked for {elsewhere / 'train.csv'}" in err


def test_a_run_saved_with_relative_paths_still_resumes(trained, tmp_path, capsys, monkeypatch):
    saved_path = trained["run"] / "config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    saved["data"]["train"] = "train.csv"  # as a version that kept relative paths saved it
    saved_path.write_text(yaml.safe_dump(saved, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    code, err = train_run(
        tmp_path, write_config(tmp_path, Path("train.csv")), capsys, "--resume", "--set", "train.epochs=2"
    )
    assert code == 0, err
