"""The EasyRec and TorchEasyRec example pipelines (configs/easyrec, configs/torcheasyrec) over the bundled Taobao
file: each trains through the CLI as it is, `mtlrec convert` + `mtlrec train` on the YAML gives the same metrics,
and the notes name exactly the fields that are not mapped one to one.

The file has 4 purchases in 10,000 rows (data/taobao-easyrec-test/PROVENANCE.md): the buy task trains, but its
AUC is undefined or meaningless; only the click AUC is checked for sense.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlrec.app.cli import main
from mtlrec.config.easyrec_text import load_easyrec_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    str(path.relative_to(REPO))
    for folder in ("easyrec", "torcheasyrec")
    for path in (REPO / "configs" / folder).glob("*.config")
)

APPROXIMATE, IGNORED = "mapped approximately", "ignored"

#: the notes every EasyRec example gets (the Taobao samples' own settings, kept as EasyRec writes them)
EASYREC_NOTES = {
    "eval_input_path": APPROXIMATE,  # the training file: a held-out split instead
    "feature_config.features[9]": IGNORED,  # final_gender_code is in no group, as in EasyRec's samples
    "train_config.optimizer_config[0].adam_optimizer.learning_rate.exponential_decay_learning_rate": APPROXIMATE,
    "model_config.embedding_regularization": APPROXIMATE,  # a lazy L2 on the touched rows
    "model_dir": IGNORED,
    "train_config.sync_replicas": IGNORED,
    "train_config.save_checkpoints_steps": IGNORED,
    "eval_config": IGNORED,
    "data_config.prefetch_size": IGNORED,
}
TORCHEASYREC_NOTES = {
    "eval_input_path": APPROXIMATE,
    "train_config.sparse_optimizer.adagrad_optimizer": APPROXIMATE,  # embeddings: row-sparse Adam
    "model_dir": IGNORED,
    "eval_config": IGNORED,
    "data_config.num_workers": IGNORED,
}


def _model_notes(model: str) -> dict[str, str]:
    """The notes of an EasyRec example's model section: default batch norm, l2 → weight decay."""
    return {f"model_config.{model}": APPROXIMATE, f"model_config.{model}.l2_regularization": APPROXIMATE}


PRICE_ID = {"feature_config.features[17].num_buckets": APPROXIMATE}  # price as an IdFeature with num_buckets
EXPECTED_NOTES = {
    "configs/easyrec/mmoe.config": {**EASYREC_NOTES, **_model_notes("mmoe"), **PRICE_ID},
    "configs/easyrec/ple.config": {**EASYREC_NOTES, **_model_notes("ple")},
    "configs/easyrec/dbmtl.config": {
        **EASYREC_NOTES,
        **_model_notes("dbmtl"),
        **PRICE_ID,
        "model_config.feature_groups[0].sequence_features[0].seq_dnn": APPROXIMATE,
        "model_config.feature_groups[0].sequence_features[0].need_key_feature": APPROXIMATE,
    },
    "configs/easyrec/esmm.config": {
        **EASYREC_NOTES,
        **_model_notes("esmm"),
        **PRICE_ID,
        "model_config.esmm.cvr_tower": APPROXIMATE,  # three tasks; ctcvr on buy itself
    },
    "configs/torcheasyrec/mmoe.config": TORCHEASYREC_NOTES,
    "configs/torcheasyrec/ple.config": TORCHEASYREC_NOTES,
    "configs/torcheasyrec/dbmtl.config": TORCHEASYREC_NOTES,
}


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    """The examples name the data file relative to the repository, as EasyRec's samples do."""
    monkeypatch.chdir(REPO)


def test_every_example_is_tested():
    assert set(EXAMPLES) == set(EXPECTED_NOTES)


def _train(config: Path | str, run: Path) -> dict:
    assert main(["-q", "train", str(config), "--output", str(run), "--no-progress", "--set", "train.epochs=1"]) == 0
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_trains_and_its_converted_yaml_trains_identically(example, tmp_path):
    direct = _train(example, tmp_path / "direct")
    converted = tmp_path / "converted.yaml"
    assert main(["-q", "convert", example, "--output", str(converted)]) == 0
    assert converted.read_text().startswith("# Converted from the ")
    via_yaml = _train(converted, tmp_path / "yaml")
    assert via_yaml == direct
    assert (tmp_path / "direct" / "config.yaml").read_text() == (tmp_path / "yaml" / "config.yaml").read_text()
    tasks = {"ctr", "cvr", "ctcvr"} if example.endswith("esmm.config") else {"ctr", "cvr"}
    assert set(direct["test"]) == tasks
    assert 0.0 < direct["test"]["ctr"]["auc"] < 1.0


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_notes_name_exactly_the_fields_not_mapped_one_to_one(example):
    _, notes = load_easyrec_config(REPO / example)
    found = {note.path: note.message.split(":", 1)[0] for note in notes}
    assert found == EXPECTED_NOTES[example]
    assert len(found) == len(notes)  # one note per field


def test_convert_writes_once_and_never_over_its_input(tmp_path, capsys):
    example = REPO / "configs" / "easyrec" / "mmoe.config"
    output = tmp_path / "mmoe.yaml"
    assert main(["convert", str(example), "-o", str(output)]) == 0
    assert "field(s) mapped approximately" in capsys.readouterr().out
    first = output.read_text()
    assert main(["convert", str(example), "-o", str(output)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", str(example), "-o", str(output), "--overwrite"]) == 0
    assert output.read_text() == first and sorted(p.name for p in tmp_path.iterdir()) == ["mmoe.yaml"]
    copy = tmp_path / "pipeline.config"
    copy.write_text(example.read_text())
    assert main(["convert", str(copy), "-o", str(copy), "--overwrite"]) == 2
    assert "is the input file" in capsys.readouterr().err and copy.read_text() == example.read_text()


def test_convert_reports_a_bad_pipeline_with_its_line(tmp_path, capsys):
    broken = tmp_path / "broken.config"
    broken.write_text(
        (REPO / "configs" / "torcheasyrec" / "mmoe.config").read_text().replace("num_expert:", "experts:")
    )
    assert main(["convert", str(broken), "-o", str(tmp_path / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "unknown field 'experts' in MMoE" in err and "did you mean 'num_expert'" in err
    assert not (tmp_path / "out.yaml").exists()
