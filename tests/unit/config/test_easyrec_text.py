"""EasyRec / TorchEasyRec pipeline configs (protobuf text) → mtlrec configs: parsing errors name the line and
field, and every mapping rule gives the expected plain data and notes."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest
import yaml

from mtlrec.config import validate_config
from mtlrec.config.easyrec_text import convert_text, easyrec_yaml, is_easyrec_config, load_easyrec_config
from mtlrec.config.easyrec_text.parse import detect_dialect
from mtlrec.config.easyrec_text.schema import file_descriptor
from mtlrec.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

# ---------------------------------------------------------------------------------------------------------------------
# EasyRec
# ---------------------------------------------------------------------------------------------------------------------

EASYREC_DATA = """
train_input_path: "train.csv"
eval_input_path: "eval.csv"
data_config {
  batch_size: 64
  label_fields: "clk"
  label_fields: "buy"
  input_type: CSVInput
  input_fields { input_name: "clk" input_type: INT32 }
  input_fields { input_name: "buy" input_type: INT32 }
  input_fields { input_name: "user_id" input_type: STRING }
  input_fields { input_name: "item_id" input_type: STRING }
  input_fields { input_name: "tags" input_type: STRING }
  input_fields { input_name: "price" input_type: DOUBLE default_val: "1.5" }
}
"""

EASYREC_FEATURES = """
feature_configs { input_names: "user_id" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 100 }
feature_configs { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 hash_bucket_size: 50 }
feature_configs { input_names: "tags" feature_type: TagFeature embedding_dim: 8 hash_bucket_size: 20 }
feature_configs { input_names: "price" feature_type: RawFeature }
"""

GROUP = 'feature_groups { group_name: "all" feature_names: ["user_id", "item_id", "tags", "price"] wide_deep: DEEP }'

TOWERS = """
    task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } metrics_set { auc {} } }
    task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8, 4] } metrics_set { auc {} } }
"""


def easyrec(model: str, features: str = EASYREC_FEATURES, group: str = GROUP, extra: str = "") -> str:
    """An EasyRec pipeline: the data above, these features and model section (``model_class`` first)."""
    return EASYREC_DATA + features + extra + f"model_config {{\n{group}\n{model}\n}}\n"


def mmoe(towers: str = TOWERS, body: str = "") -> str:
    return f'model_class: "MMoE"\nmmoe {{ expert_dnn {{ hidden_units: [16] }} num_expert: 2 {towers} {body} }}'


def convert(text: str, dialect: str | None = None) -> tuple[dict, dict[str, str]]:
    """The converted config (validated by the config schema) and {field path: note message}."""
    config, notes, _ = convert_text(textwrap.dedent(text), dialect, "pipeline.config")
    validate_config(config)
    return config, {note.path: note.message for note in notes}


def error(text: str, dialect: str | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        convert_text(textwrap.dedent(text), dialect, "pipeline.config")
    return str(caught.value)


# --- parsing errors -------------------------------------------------------------------------------------------------


def test_a_syntax_error_names_line_and_column():
    text = easyrec(mmoe()).replace("batch_size: 64", "batch_size 64")
    line = text.splitlines().index("  batch_size 64") + 1
    message = error(text)
    assert message.startswith(f"pipeline.config:{line}:")
    assert "syntax error" in message and "batch_size 64" in message


def test_an_unknown_enum_value_names_line_and_the_values():
    text = easyrec(mmoe(), group=GROUP.replace("wide_deep: DEEP", "wide_deep: DEPP"))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "DEPP" in row)
    message = error(text)
    assert message.startswith(f"pipeline.config:{line}:")
    assert "unknown value 'DEPP' of WideOrDeep (did you mean DEEP?)" in message
    assert "DEEP, WIDE, WIDE_AND_DEEP" in message


def test_an_unknown_field_names_line_column_and_the_closest_field():
    text = easyrec(mmoe()).replace("batch_size: 64", "batchsize: 64")
    line = text.splitlines().index("  batchsize: 64") + 1
    message = error(text)
    assert message.startswith(f"pipeline.config:{line}:3:")
    assert "unknown field 'batchsize' in DatasetConfig" in message and "did you mean 'batch_size'" in message


def test_an_unsupported_model_is_named_with_the_models_mtlrec_converts():
    message = error(easyrec('model_class: "DeepFM"\ndeepfm { }'))
    assert "'deepfm' is not a model mtlrec converts" in message and "mmoe" in message and "dbmtl" in message


def test_a_feature_in_a_group_but_not_defined_names_the_field_and_line():
    text = easyrec(mmoe(), group=GROUP.replace('"price"]', '"price", "age"]'))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"age"' in row)
    message = error(text)
    assert message.startswith(f"pipeline.config:{line}: model_config.feature_groups[0].feature_names[4]:")
    assert "feature 'age' is in the group but no feature config defines it" in message


def test_a_label_that_is_not_a_label_field_is_an_error():
    message = error(easyrec(mmoe(TOWERS.replace('label_name: "buy"', 'label_name: "pay"'))))
    assert "model_config.mmoe.task_towers[1].label_name: 'pay' is not one of data_config.label_fields" in message


def test_a_feature_reading_an_unknown_input_is_an_error():
    renamed = EASYREC_FEATURES.replace('input_names: "item_id"', 'feature_name: "item_id" input_names: "item"')
    message = error(easyrec(mmoe(), features=renamed))
    assert "feature_configs[1].input_names[0]: 'item' is not an input field" in message


# --- dialects and files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mmoe", "ple", "dbmtl", "esmm"])
def test_the_easyrec_examples_are_told_apart_from_torcheasyrec(name):
    assert detect_dialect((REPO / "configs" / "easyrec" / f"{name}.config").read_text()) == "easyrec"


@pytest.mark.parametrize("name", ["mmoe", "ple", "dbmtl"])
def test_the_torcheasyrec_examples_are_told_apart_from_easyrec(name):
    assert detect_dialect((REPO / "configs" / "torcheasyrec" / f"{name}.config").read_text()) == "torcheasyrec"


def test_an_explicit_dialect_wins(tmp_path):
    message = error(easyrec(mmoe()), dialect="torcheasyrec")
    assert "unknown field" in message and "TorchEasyRec" in message


def test_pipeline_files_are_recognised_by_extension_then_content(tmp_path):
    assert is_easyrec_config(tmp_path / "x.config") and is_easyrec_config(tmp_path / "x.pbtxt")
    assert not is_easyrec_config(REPO / "configs" / "taobao" / "base.yaml")
    sniffed = tmp_path / "pipeline.txt"
    sniffed.write_text(easyrec(mmoe()))
    plain = tmp_path / "notes.txt"
    plain.write_text("data:\n  train: x.csv\n")
    assert is_easyrec_config(sniffed) and not is_easyrec_config(plain)


def test_the_schemas_use_the_projects_field_numbers():
    easyrec_file, tzrec_file = file_descriptor("easyrec"), file_descriptor("torcheasyrec")

    def number(file, message: str, field: str) -> int:
        found = next(m for m in file.message_type if m.name == message)
        return next(f.number for f in found.field if f.name == field)

    assert number(easyrec_file, "EasyRecConfig", "model_config") == 14
    assert number(easyrec_file, "EasyRecModel", "dbmtl") == 303
    assert number(easyrec_file, "FeatureConfig", "separator") == 9
    assert number(tzrec_file, "ModelConfig", "pepnet") == 206
    assert number(tzrec_file, "IdFeature", "separator") == 12


# --- data -----------------------------------------------------------------------------------------------------------


def test_data_config_maps_to_files_and_csv_options():
    config, notes = convert(easyrec(mmoe()))
    assert config["data"] == {
        "train": "train.csv",
        "format": "csv",
        "csv": {
            "delimiter": ",",
            "header": False,
            "column_names": ["clk", "buy", "user_id", "item_id", "tags", "price"],
        },
        "valid": "eval.csv",
    }
    assert config["train"]["batch_size"] == 64


def test_the_training_file_as_evaluation_input_holds_out_a_split():
    config, notes = convert(easyrec(mmoe()).replace('"eval.csv"', '"train.csv"'))
    assert config["data"]["split"] == {"source": "train", "fractions": {"valid": 0.1, "test": 0.2}, "seed": 0}
    assert "valid" not in config["data"]
    assert notes["eval_input_path"].startswith("mapped approximately: the evaluation input is the training input")


def test_parquet_input_and_an_unreadable_input_type():
    config, _ = convert(easyrec(mmoe()).replace("input_type: CSVInput", "input_type: ParquetInput"))
    assert config["data"]["format"] == "parquet" and "csv" not in config["data"]
    config, notes = convert(easyrec(mmoe()).replace("input_type: CSVInput", "input_type: OdpsInputV2"))
    assert "format" not in config["data"]
    assert notes["data_config.input_type"].startswith("ignored: OdpsInputV2 is read as a file by extension")


# --- features -------------------------------------------------------------------------------------------------------


def features(config: dict) -> dict[str, dict]:
    return {feature["name"]: feature for feature in config["features"]}


def test_id_tag_and_raw_features():
    config, _ = convert(easyrec(mmoe()))
    assert config["model"]["embedding_dim"] == 8
    assert features(config) == {
        "user_id": {"name": "user_id", "kind": "categorical", "hash_buckets": 100},
        "item_id": {"name": "item_id", "kind": "categorical", "hash_buckets": 50},
        "tags": {"name": "tags", "kind": "multi_valued", "separator": "|", "pooling": "sum", "hash_buckets": 20},
        "price": {"name": "price", "kind": "numeric", "fill_value": 1.5, "standardize": False},
    }


def test_feature_options_map_by_name():
    text = easyrec(
        mmoe(),
        features="""
        feature_configs { feature_name: "user" input_names: "user_id" feature_type: IdFeature embedding_dim: 4
                          num_buckets: 7 embedding_name: "ids" }
        feature_configs { input_names: "item_id" feature_type: IdFeature embedding_dim: 8 vocab_list: ["a", "b"]
                          embedding_name: "ids2" }
        feature_configs { input_names: "tags" feature_type: TagFeature embedding_dim: 8 separator: ";"
                          kv_separator: ":" combiner: "mean" vocab_file: "tags.txt" }
        feature_configs { input_names: "price" feature_type: RawFeature boundaries: [10, 1, 5] embedding_dim: 8 }
        """,
        group=GROUP.replace('"user_id"', '"user"'),
    )
    config, notes = convert(text)
    assert features(config) == {
        "user": {
            "name": "user", "kind": "categorical", "column": "user_id", "max_vocab_size": 7, "embedding": "ids",
            "embedding_dim": 4,
        },
        "item_id": {"name": "item_id", "kind": "categorical", "max_vocab_size": 2, "embedding": "ids2"},
        "tags": {
            "name": "tags", "kind": "multi_valued", "separator": ";", "kv_separator": ":", "pooling": "mean",
        },
        "price": {"name": "price", "kind": "numeric", "fill_value": 1.5, "boundaries": [1.0, 5.0, 10.0]},
    }  # fmt: skip
    assert notes["feature_configs[0].num_buckets"].startswith("mapped approximately: EasyRec uses the integer values")
    assert notes["feature_configs[1].vocab_list"].startswith("mapped approximately: a vocabulary fitted")
    assert notes["feature_configs[2].vocab_file"].startswith("mapped approximately: a vocabulary fitted")


def test_a_raw_feature_with_num_buckets_and_a_range_has_those_boundaries():
    raw = 'feature_configs { input_names: "price" feature_type: RawFeature num_buckets: 4 min_val: 0 max_val: 100 }'
    config, _ = convert(easyrec(mmoe(), features=EASYREC_FEATURES.replace(EASYREC_FEATURES.splitlines()[-1], raw)))
    assert features(config)["price"]["boundaries"] == [0.0, 25.0, 50.0, 75.0]


def test_a_combo_feature_is_a_cross():
    combo = (
        'feature_configs { feature_name: "user_x_item" input_names: ["user_id", "item_id"] feature_type: ComboFeature '
        "embedding_dim: 8 hash_bucket_size: 1000 }"
    )
    group = GROUP.replace('"price"]', '"price", "user_x_item"]')
    config, _ = convert(easyrec(mmoe(), features=EASYREC_FEATURES + combo, group=group))
    assert features(config)["user_x_item"] == {
        "name": "user_x_item",
        "kind": "cross",
        "columns": ["user_id", "item_id"],
        "hash_buckets": 1000,
    }


def test_unsupported_feature_types_are_errors():
    lookup = EASYREC_FEATURES.replace('"tags" feature_type: TagFeature', '"tags" feature_type: LookupFeature')
    assert "LookupFeature 'tags' has no mtlrec equivalent" in error(easyrec(mmoe(), features=lookup))


def test_din_sequence_features_become_one_attention_sequence():
    features_text = EASYREC_FEATURES + (
        'feature_configs { input_names: "hist_items" feature_type: SequenceFeature embedding_dim: 8 '
        'hash_bucket_size: 50 sequence_length: 20 separator: ";" }'
    )
    text = easyrec(
        mmoe(),
        features=features_text,
        group="""feature_groups {
          group_name: "all"
          feature_names: ["user_id", "tags", "price"]
          sequence_features { group_name: "hist" seq_dnn { hidden_units: [16, 1] }
                              seq_att_map { key: "item_id" hist_seq: "hist_items" } }
        }""",
    ).replace('input_name: "price"', 'input_name: "hist_items" } input_fields { input_name: "price"')
    config, notes = convert(text)
    assert features(config)["hist"] == {
        "name": "hist",
        "kind": "sequence",
        "fields": [{"column": "hist_items", "name": "hist_items", "hash_buckets": 50}],
        "max_length": 20,
        "separator": ";",
        "encoder": {"kind": "attention", "query": ["item_id"], "params": {"hidden_units": [16], "activation": "relu"}},
    }
    assert config["feature_groups"] == {"all": ["user_id", "tags", "price", "item_id", "hist"]}  # key: need_key_feature
    assert notes["model_config.feature_groups[0].sequence_features[0].seq_dnn.use_bn"].startswith(
        "mapped approximately"
    )


# --- groups ---------------------------------------------------------------------------------------------------------


def test_groups_the_model_does_not_read_and_their_features_are_noted():
    extra_group = 'feature_groups { group_name: "wide" feature_names: ["item_id"] wide_deep: WIDE }'
    group = GROUP.replace('"item_id", ', "") + "\n" + extra_group
    config, notes = convert(easyrec(mmoe(), group=group))
    assert config["feature_groups"] == {"all": ["user_id", "tags", "price"]}
    assert config["model"]["input_groups"] == ["all"]
    assert "item_id" not in features(config)
    assert notes["model_config.feature_groups[1]"].startswith("ignored: EasyRec's MMoE reads only ['all']")
    assert notes["feature_configs[1]"].startswith("ignored: feature 'item_id' is in no feature group")


def test_a_wide_group_is_read_like_a_deep_one():
    _, notes = convert(easyrec(mmoe(), group=GROUP.replace("DEEP", "WIDE")))
    assert notes["model_config.feature_groups[0].wide_deep"].startswith("mapped approximately")


# --- models and towers ----------------------------------------------------------------------------------------------


def test_mmoe_and_its_towers():
    config, notes = convert(easyrec(mmoe()))
    assert config["model"] == {
        "architecture": "mmoe",
        "input_groups": ["all"],
        "params": {"num_experts": 2, "expert_hidden_units": [16]},
        "embedding_dim": 8,
    }
    assert config["tasks"] == [
        {"name": "ctr", "label": {"column": "clk"}, "loss": "bce", "metrics": ["auc"], "tower_hidden_units": [8]},
        {"name": "cvr", "label": {"column": "buy"}, "loss": "bce", "metrics": ["auc"], "tower_hidden_units": [8, 4]},
    ]
    assert config["weighting"] == {"name": "fixed"}
    assert notes["model_config.mmoe"].startswith("mapped approximately: EasyRec's DNNs apply batch normalization")
    assert config["train"]["weight_decay"] == 1e-4  # MMoE's l2_regularization default
    assert "mapped approximately: weight decay 0.0001" in notes["model_config.mmoe.l2_regularization"]


def test_mmoe_with_named_experts():
    expert = 'experts {{ expert_name: "{}" dnn {{ hidden_units: [12] }} }}'
    body = expert.format("a") + expert.format("b")
    config, _ = convert(easyrec(f'model_class: "MMoE"\nmmoe {{ {body} {TOWERS} }}'))
    assert config["model"]["params"] == {"num_experts": 2, "expert_hidden_units": [12]}


def test_simple_multi_task_is_a_shared_bottom_with_no_bottom():
    config, _ = convert(easyrec(f'model_class: "SimpleMultiTask"\nsimple_multi_task {{ {TOWERS} }}'))
    assert config["model"]["architecture"] == "shared_bottom"
    assert config["model"]["params"] == {"bottom_hidden_units": []}


def test_ple_extraction_networks():
    networks = """
      extraction_networks { network_name: "l1" expert_num_per_task: 2 share_num: 1
                            task_expert_net { hidden_units: [16] } share_expert_net { hidden_units: [16] } }
      extraction_networks { network_name: "l2" expert_num_per_task: 1 task_expert_net { hidden_units: [8] } }
    """
    config, _ = convert(easyrec(f'model_class: "PLE"\nple {{ {networks} {TOWERS} l2_regularization: 0 }}'))
    assert config["model"]["params"]["extraction_networks"] == [
        {
            "network_name": "l1",
            "expert_num_per_task": 2,
            "share_num": 1,
            "task_expert_net": {"hidden_units": [16]},
            "share_expert_net": {"hidden_units": [16]},
        },
        {
            "network_name": "l2",
            "expert_num_per_task": 1,
            "share_num": 0,
            "task_expert_net": {"hidden_units": [8]},
            "share_expert_net": {"hidden_units": [8]},
        },
    ]
    assert "weight_decay" not in config["train"]


def test_dbmtl_relations():
    towers = """
      task_towers { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } relation_dnn { hidden_units: [4] } }
      task_towers { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } relation_tower_names: ["ctr"]
                    relation_dnn { hidden_units: [4] } }
    """
    body = f"bottom_dnn {{ hidden_units: [32] }} expert_dnn {{ hidden_units: [16] }} num_expert: 3 {towers}"
    config, _ = convert(easyrec(f'model_class: "DBMTL"\ndbmtl {{ {body} }}'))
    assert config["model"]["params"] == {
        "bottom_hidden_units": [32],
        "num_experts": 3,
        "expert_hidden_units": [16],
        "relation_tasks": {"ctr": [], "cvr": ["ctr"]},
        "relation_hidden_units": [4],
    }


def test_esmm_has_ctr_cvr_and_ctcvr_tasks():
    body = """
      groups { input: "all" dnn { hidden_units: [32] } }
      ctr_tower { tower_name: "ctr" label_name: "clk" dnn { hidden_units: [8] } metrics_set { auc {} } }
      cvr_tower { tower_name: "cvr" label_name: "buy" dnn { hidden_units: [8] } metrics_set { auc {} } weight: 2 }
    """
    config, notes = convert(easyrec(f"model_class: 'ESMM'\nesmm {{ {body} }}"))
    assert config["model"]["params"] == {"bottom_hidden_units": [32], "tower_hidden_units": [8]}
    assert config["tasks"] == [
        {"name": "ctr", "label": {"column": "clk"}, "loss": "bce", "metrics": ["auc"]},
        {"name": "cvr", "label": {"column": "buy"}, "loss": "bce", "metrics": ["auc"], "sample_space": "clk > 0"},
        {"name": "ctcvr", "label": {"column": "buy"}, "loss": "bce", "metrics": ["auc"], "weight": 2.0},
    ]
    assert "three tasks [ctr, cvr, ctcvr]" in notes["model_config.esmm.cvr_tower"]


def test_losses_metrics_and_weights_of_towers():
    towers = """
      task_towers { tower_name: "ctr" label_name: "clk" weight: 0.5
                    losses { loss_type: BINARY_FOCAL_LOSS weight: 3 binary_focal_loss { gamma: 3 alpha: 0.3 } }
                    metrics_set { gauc { uid_field: "user_id" } } metrics_set { recall_at_topk {} } }
      task_towers { tower_name: "cvr" label_name: "buy" loss_type: CLASSIFICATION num_class: 3
                    metrics_set { accuracy {} } }
    """
    config, notes = convert(easyrec(mmoe(towers)))
    ctr, cvr = config["tasks"]
    assert ctr == {
        "name": "ctr",
        "label": {"column": "clk"},
        "loss": "focal",
        "loss_params": {"gamma": 3.0, "alpha": 0.3},
        "metrics": ["gauc"],
        "weight": 1.5,
        "tower_hidden_units": [],
    }
    assert cvr["loss"] == "softmax_ce" and cvr["label"]["classes"] == [0, 1, 2] and cvr["metrics"] == ["accuracy"]
    assert config["evaluation"] == {"group_by": "user_id"}
    assert notes["model_config.mmoe.task_towers[0].metrics_set[1]"].startswith("ignored: recall_at_topk")


def test_a_regression_tower():
    config, _ = convert(easyrec(mmoe(TOWERS.replace('label_name: "buy"', 'label_name: "buy" loss_type: L2_LOSS'))))
    assert config["tasks"][1]["loss"] == "mse"


def test_task_space_weights_one_and_zero_are_a_sample_space():
    towers = TOWERS.replace(
        'label_name: "buy"', 'label_name: "buy" task_space_indicator_label: "clk" out_task_space_weight: 0'
    )
    config, notes = convert(easyrec(mmoe(towers)))
    assert config["tasks"][1]["sample_space"] == "clk > 0" and "sample_weight" not in config["tasks"][1]
    assert notes["model_config.mmoe.task_towers[1].task_space_indicator_label"].startswith(
        "mapped approximately: the task learns on rows where clk > 0"
    )


def test_other_task_space_weights_are_a_sample_weight_formula():
    towers = TOWERS.replace(
        'label_name: "buy"',
        'label_name: "buy" task_space_indicator_label: "clk" in_task_space_weight: 2 out_task_space_weight: 0.5',
    )
    config, _ = convert(easyrec(mmoe(towers), extra="").replace("batch_size: 64", 'batch_size: 64 sample_weight: "w"'))
    assert config["tasks"][1]["sample_weight"] == "(w) * (2 * (clk > 0) + 0.5 * (clk <= 0))"
    assert config["tasks"][0]["sample_weight"] == "w"


def test_use_sample_weight_false_keeps_rows_unweighted():
    towers = TOWERS.replace('label_name: "buy"', 'label_name: "buy" use_sample_weight: false')
    config, _ = convert(easyrec(mmoe(towers)).replace("batch_size: 64", 'batch_size: 64 sample_weight: "w"'))
    assert "sample_weight" not in config["tasks"][1]


# --- training -------------------------------------------------------------------------------------------------------

ADAM = "optimizer_config {{ adam_optimizer {{ learning_rate {{ {rate} }} }} }}"


def test_a_constant_learning_rate_and_embedding_regularization():
    train = "train_config { " + ADAM.format(rate="constant_learning_rate { learning_rate: 0.01 }") + " num_steps: 0 }"
    config, notes = convert(easyrec(mmoe() + "\nembedding_regularization: 1e-5", extra=train))
    assert config["train"]["lr"] == 0.01 and config["train"]["optimizer"] == "adam"
    assert config["train"]["embedding_weight_decay"] == pytest.approx(1e-5)
    assert notes["model_config.embedding_regularization"].startswith("mapped approximately: train.embedding_weight")


def test_exponential_decay_keeps_the_initial_rate():
    rate = "exponential_decay_learning_rate { initial_learning_rate: 0.003 decay_steps: 100 decay_factor: 0.5 }"
    config, notes = convert(easyrec(mmoe(), extra="train_config { " + ADAM.format(rate=rate) + " }"))
    assert config["train"]["lr"] == 0.003
    path = "train_config.optimizer_config[0].adam_optimizer.learning_rate.exponential_decay_learning_rate"
    assert notes[path].startswith("mapped approximately: the learning rate stays at its initial 0.003")


def test_two_optimizers_give_an_embedding_rate():
    embedding = (
        "optimizer_config { adagrad_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.05 } } } }"
    )
    dense = ADAM.format(rate="constant_learning_rate { learning_rate: 0.001 }")
    config, notes = convert(easyrec(mmoe(), extra=f"train_config {{ {embedding} {dense} }}"))
    assert config["train"]["lr"] == 0.001 and config["train"]["embedding_lr"] == 0.05
    assert "row-sparse Adam" in notes["train_config.optimizer_config[0].adagrad_optimizer"]


def test_num_steps_become_max_steps_with_the_epochs_they_need(tmp_path):
    data = tmp_path / "train.csv.gz"
    with gzip.open(data, "wt") as handle:
        handle.writelines(f"{i % 2},0,u{i},i{i},a|b,{i}\n" for i in range(1000))
    text = easyrec(mmoe(), extra="train_config { num_steps: 47 }").replace('"train.csv"', f'"{data}"')
    config, notes = convert(text)
    assert config["train"]["max_steps"] == 47 and "train_config.num_steps" not in notes  # exact
    assert config["train"]["epochs"] == 4  # 47 steps of 64 rows need ceil(3008 / 1000) passes
    epochs_too = text.replace("batch_size: 64", "batch_size: 64 num_epochs: 2")
    limits = convert(epochs_too)[0]["train"]
    assert (limits["epochs"], limits["max_steps"]) == (2, 47)  # whichever comes first, as in EasyRec
    unreadable = easyrec(mmoe(), extra="train_config { num_steps: 47 }").replace('"train.csv"', '"/nowhere.csv"')
    config, notes = convert(unreadable)
    assert config["train"]["max_steps"] == 47 and config["train"]["epochs"] == 1
    assert "set train.epochs high enough" in notes["train_config.num_steps"]


def test_the_best_exporter_selects_the_best_epoch():
    export = 'export_config { exporter_type: "best" best_exporter_metric: "auc_cvr" }'
    text = easyrec(mmoe(), extra=export).replace("batch_size: 64", "batch_size: 64 num_epochs: 4")
    config, _ = convert(text)
    assert config["train"]["epochs"] == 4
    assert config["train"]["early_stopping"] == {"metric": "cvr.auc", "mode": "max", "patience": 4}
    assert convert(easyrec(mmoe()))[0]["train"]["early_stopping"] is None


def test_unmapped_fields_are_reported_as_ignored():
    extra = 'model_dir: "exp" train_config { sync_replicas: true save_checkpoints_steps: 10 } eval_config { }'
    _, notes = convert(easyrec(mmoe(), extra=extra))
    assert notes["model_dir"] == "ignored: 'exp' (mtlrec writes the run to `mtlrec train --output DIR`)"
    assert notes["train_config.sync_replicas"].startswith("ignored: True (distributed settings do not apply")
    assert notes["train_config.save_checkpoints_steps"] == "ignored: 10 (mtlrec checkpoints once per epoch)"
    assert notes["eval_config"].startswith("ignored: { }")


# ---------------------------------------------------------------------------------------------------------------------
# TorchEasyRec
# ---------------------------------------------------------------------------------------------------------------------

TZREC_DATA = """
train_input_path: "train.csv"
eval_input_path: "eval.csv"
train_config {
  sparse_optimizer { adam_optimizer { lr: 0.002 } constant_learning_rate {} }
  dense_optimizer { adam_optimizer { lr: 0.001 } constant_learning_rate {} }
  num_epochs: 3
}
data_config {
  batch_size: 128
  dataset_type: CsvDataset
  fg_mode: FG_DAG
  label_fields: ["clk", "buy"]
  input_fields { input_name: "clk" }
  input_fields { input_name: "buy" }
  input_fields { input_name: "user_id" }
  input_fields { input_name: "item_id" }
  input_fields { input_name: "tags" }
  input_fields { input_name: "price" }
  input_fields { input_name: "hist_item_id" }
}
"""

TZREC_FEATURES = """
feature_configs { id_feature { feature_name: "user" expression: "user:user_id" hash_bucket_size: 100
                               embedding_dim: 8 } }
feature_configs { id_feature { feature_name: "item_id" expression: "item:item_id" num_buckets: 50 embedding_dim: 8 } }
feature_configs { id_feature { feature_name: "tags" expression: "user:tags" separator: "|" pooling: "mean"
                               hash_bucket_size: 20 embedding_dim: 8 } }
feature_configs { raw_feature { feature_name: "price" expression: "item:price" } }
"""

TZREC_GROUP = (
    'feature_groups { group_name: "all" feature_names: ["user", "item_id", "tags", "price"] group_type: DEEP }'
)

TZREC_TOWERS = """
    task_towers { tower_name: "ctr" label_name: "clk" mlp { hidden_units: [8] } metrics { auc {} }
                  losses { binary_cross_entropy {} } }
    task_towers { tower_name: "cvr" label_name: "buy" mlp { hidden_units: [8] } metrics { auc { thresholds: 1000 } }
                  losses { binary_cross_entropy {} } }
"""


def tzrec(model: str, features: str = TZREC_FEATURES, group: str = TZREC_GROUP) -> str:
    return TZREC_DATA + features + f"model_config {{\n{group}\n{model}\n}}\n"


def tz_mmoe(towers: str = TZREC_TOWERS, body: str = "") -> str:
    return f"mmoe {{ expert_mlp {{ hidden_units: [16] }} num_expert: 2 {body} {towers} }}"


def test_torcheasyrec_data_features_and_mmoe():
    config, notes = convert(tzrec(tz_mmoe(body="gate_mlp { hidden_units: [4] }")))
    assert config["data"]["csv"]["column_names"][-1] == "hist_item_id" and config["data"]["valid"] == "eval.csv"
    assert features(config) == {
        "user": {"name": "user", "kind": "categorical", "column": "user_id", "hash_buckets": 100},
        "item_id": {"name": "item_id", "kind": "categorical", "max_vocab_size": 50},
        "tags": {"name": "tags", "kind": "multi_valued", "separator": "|", "pooling": "mean", "hash_buckets": 20},
        "price": {"name": "price", "kind": "numeric", "fill_value": 0.0, "standardize": False},
    }
    assert config["model"]["params"] == {"num_experts": 2, "expert_hidden_units": [16], "gate_hidden_units": [4]}
    assert config["train"] == {
        "batch_size": 128,
        "optimizer": "adam",
        "lr": 0.001,
        "embedding_lr": 0.002,
        "epochs": 3,
        "early_stopping": None,
    }
    assert config["tasks"][1] == {
        "name": "cvr",
        "label": {"column": "buy"},
        "loss": "bce",
        "metrics": ["auc"],
        "tower_hidden_units": [8],
    }
    assert notes["model_config.mmoe.task_towers[1].metrics[0].auc.thresholds"].startswith("mapped approximately")
    assert notes["feature_configs[1].id_feature.num_buckets"].startswith("mapped approximately")


def test_torcheasyrec_multi_value_separators_depend_on_the_fg_mode():
    weighted = TZREC_FEATURES.replace('separator: "|" pooling: "mean"', "weighted: true")
    config, _ = convert(tzrec(tz_mmoe(), features=weighted))
    assert features(config)["tags"] | {} == {
        "name": "tags", "kind": "multi_valued", "separator": "\x1d", "pooling": "sum", "kv_separator": ":",
        "hash_buckets": 20,
    }  # fmt: skip
    encoded = tzrec(tz_mmoe(), features=weighted).replace("fg_mode: FG_DAG", "fg_mode: FG_NONE")
    config, _ = convert(encoded.replace('"user_id" }', '"user" }'))
    assert features(config)["tags"]["separator"] == "\x03"  # fg_encoded_multival_sep
    assert features(config)["user"]["kind"] == "categorical" and "column" not in features(config)["user"]


def test_torcheasyrec_raw_features():
    raw = TZREC_FEATURES.replace(
        'raw_feature { feature_name: "price" expression: "item:price" }',
        'raw_feature { feature_name: "price" expression: "item:price" normalizer: "method=log10,threshold=1e-10" '
        'default_value: "2" }',
    )
    config, notes = convert(tzrec(tz_mmoe(), features=raw))
    assert features(config)["price"] == {
        "name": "price",
        "kind": "numeric",
        "fill_value": 2.0,
        "standardize": False,
        "log1p": True,
    }
    assert notes["feature_configs[3].raw_feature.normalizer"] == "mapped approximately: log10 → log1p"
    bucketed = TZREC_FEATURES.replace('expression: "item:price"', 'expression: "item:price" boundaries: [1, 2]')
    assert features(convert(tzrec(tz_mmoe(), features=bucketed))[0])["price"]["boundaries"] == [1.0, 2.0]


def test_torcheasyrec_combo_feature():
    combo = (
        'feature_configs { combo_feature { feature_name: "ux" expression: ["user:user_id", "item:item_id"] '
        "hash_bucket_size: 9 embedding_dim: 8 } }"
    )
    group = TZREC_GROUP.replace('"price"]', '"price", "ux"]')
    config, _ = convert(tzrec(tz_mmoe(), features=TZREC_FEATURES + combo, group=group))
    assert features(config)["ux"] == {
        "name": "ux",
        "kind": "cross",
        "columns": ["user_id", "item_id"],
        "hash_buckets": 9,
    }


def test_torcheasyrec_din_sequence_group():
    sequence = (
        'feature_configs { sequence_id_feature { feature_name: "hist_item_id" expression: "user:hist_item_id" '
        'sequence_length: 30 sequence_delim: "|" hash_bucket_size: 50 embedding_dim: 8 } }'
    )
    group = TZREC_GROUP.replace(
        "group_type: DEEP",
        'group_type: DEEP sequence_groups { group_name: "seq" feature_names: ["item_id", "hist_item_id"] } '
        'sequence_encoders { din_encoder { input: "seq" attn_mlp { hidden_units: [16, 4] activation: "Dice" } } }',
    )
    config, notes = convert(tzrec(tz_mmoe(), features=TZREC_FEATURES + sequence, group=group))
    assert features(config)["seq"] == {
        "name": "seq",
        "kind": "sequence",
        "fields": [{"column": "hist_item_id", "name": "hist_item_id", "hash_buckets": 50}],
        "max_length": 30,
        "separator": "|",
        "encoder": {
            "kind": "attention",
            "params": {"hidden_units": [16, 4], "activation": "prelu"},
            "query": ["item_id"],
        },
    }
    assert config["feature_groups"]["all"][-1] == "seq"
    assert (
        "'Dice' → 'prelu'"
        in notes["model_config.feature_groups[0].sequence_encoders[0].din_encoder.attn_mlp.activation"]
    )


def test_torcheasyrec_dbmtl_ple_and_simple_multi_task():
    towers = TZREC_TOWERS.replace(
        'label_name: "buy"', 'label_name: "buy" relation_tower_names: ["ctr"] relation_mlp { hidden_units: [4] }'
    ).replace('label_name: "clk"', 'label_name: "clk" relation_mlp { hidden_units: [4] }')
    config, _ = convert(tzrec(f"dbmtl {{ bottom_mlp {{ hidden_units: [32] }} {towers} }}"))
    assert config["model"]["params"] == {
        "bottom_hidden_units": [32],
        "relation_tasks": {"ctr": [], "cvr": ["ctr"]},
        "relation_hidden_units": [4],
    }
    network = (
        'extraction_networks { network_name: "l" expert_num_per_task: 1 share_num: 1 '
        "task_expert_net { hidden_units: [8] } }"
    )
    config, _ = convert(tzrec(f"ple {{ {network} {TZREC_TOWERS} }}"))
    assert config["model"]["params"]["extraction_networks"][0]["share_expert_net"] == {"hidden_units": [8]}
    config, _ = convert(tzrec(f"simple_multi_task {{ {TZREC_TOWERS} }}"))
    assert config["model"]["architecture"] == "shared_bottom"


def test_torcheasyrec_pepnet_groups_and_towers():
    groups = (
        TZREC_GROUP
        + ' feature_groups { group_name: "domain" feature_names: "item_id" group_type: DEEP }'
        + ' feature_groups { group_name: "uia" feature_names: "user" group_type: DEEP }'
    )
    body = f"pepnet {{ epnet_hidden_unit: 32 ppnet_hidden_units: [16] {TZREC_TOWERS} }}"
    config, notes = convert(tzrec(body, group=groups))
    assert config["model"]["architecture"] == "pepnet" and config["model"]["input_groups"] == ["all"]
    assert config["feature_groups"] == {
        "all": ["user", "item_id", "tags", "price"],
        "domain": ["item_id"],
        "prior": ["user"],
    }
    assert config["model"]["params"] == {"gate_scale": 2.0, "gate_hidden_dim": 32}
    assert [task["tower_hidden_units"] for task in config["tasks"]] == [[16, 8], [16, 8]]
    assert notes["model_config.pepnet.ppnet_hidden_units"].startswith("mapped approximately")
    assert "needs the groups ['uia']" in error(tzrec(body, group=groups.replace('"uia"', '"user_side"')))


def test_torcheasyrec_losses_and_task_space():
    towers = """
      task_towers { tower_name: "ctr" label_name: "clk" losses { l2_loss {} } metrics { mean_squared_error {} } }
      task_towers { tower_name: "cvr" label_name: "buy" losses { binary_focal_loss { gamma: 1 } }
                    task_space_indicator_label: "clk" out_task_space_weight: 0 weight: 3 }
    """
    config, notes = convert(tzrec(tz_mmoe(towers)))
    ctr, cvr = config["tasks"]
    assert ctr["loss"] == "mse" and ctr["metrics"] == ["rmse"] and ctr["tower_hidden_units"] == []
    assert cvr == {
        "name": "cvr",
        "label": {"column": "buy"},
        "loss": "focal",
        "loss_params": {"gamma": 1.0, "alpha": 0.5},
        "weight": 3.0,
        "sample_space": "clk > 0",
        "tower_hidden_units": [],
    }
    assert notes["model_config.mmoe.task_towers[0].metrics[0].mean_squared_error"] == (
        "mapped approximately: reported as rmse"
    )


def test_torcheasyrec_schedules_and_optimizers():
    text = (
        tzrec(tz_mmoe())
        .replace(
            "dense_optimizer { adam_optimizer { lr: 0.001 } constant_learning_rate {} }",
            "dense_optimizer { adamw_optimizer { lr: 0.001 weight_decay: 0.01 } "
            "exponential_decay_learning_rate { decay_size: 10 } }",
        )
        .replace(
            "sparse_optimizer { adam_optimizer { lr: 0.002 }", "sparse_optimizer { adagrad_optimizer { lr: 0.001 }"
        )
    )
    config, notes = convert(text)
    assert config["train"]["optimizer"] == "adamw" and config["train"]["weight_decay"] == 0.01
    assert "embedding_lr" not in config["train"]
    assert notes["train_config.dense_optimizer.exponential_decay_learning_rate"].startswith(
        "mapped approximately: the learning rate stays at 0.001"
    )
    assert "row-sparse Adam" in notes["train_config.sparse_optimizer.adagrad_optimizer"]


def test_torcheasyrec_pareto_loss_weight_is_pe_ltr_with_the_towers_bounds():
    towers = TZREC_TOWERS.replace('tower_name: "ctr"', 'tower_name: "ctr" pareto_min_loss_weight: 0.2')
    text = tzrec(tz_mmoe(towers)).replace("model_config {", "model_config {\n use_pareto_loss_weight: true", 1)
    config, notes = convert(text)
    assert config["weighting"] == {"name": "pe_ltr", "params": {"min_weights": [0.2, 0.0]}}
    assert "pe_ltr" in notes["model_config.use_pareto_loss_weight"]
    assert not any("pareto_min_loss_weight" in path for path in notes)
    plain, _ = convert(tzrec(tz_mmoe()))
    assert plain["weighting"] == {"name": "fixed"}


def test_torcheasyrec_a_dense_optimizer_without_betas_converts():
    text = tzrec(tz_mmoe()).replace(
        "dense_optimizer { adam_optimizer { lr: 0.001 }", "dense_optimizer { sgd_optimizer { lr: 0.01 }"
    )
    config, _ = convert(text)
    assert config["train"]["lr"] == 0.01


def test_torcheasyrec_unreadable_dataset_type():
    config, notes = convert(tzrec(tz_mmoe()).replace("CsvDataset", "OdpsDataset"))
    assert "format" not in config["data"]
    assert notes["data_config.dataset_type"].startswith("ignored: OdpsDataset is read as a file by extension")


def test_torcheasyrec_unknown_feature_kind_is_an_error_with_line():
    text = tzrec(tz_mmoe()).replace("raw_feature {", "lookup_feature {")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "lookup_feature" in row)
    assert error(text).startswith(f"pipeline.config:{line}:")


# ---------------------------------------------------------------------------------------------------------------------
# YAML output
# ---------------------------------------------------------------------------------------------------------------------


def test_the_yaml_reads_back_as_the_config_with_notes_above_their_keys(tmp_path):
    path = tmp_path / "pipeline.config"
    path.write_text(easyrec(mmoe(), extra='model_dir: "exp"\n'))
    text, notes = easyrec_yaml(path)
    config, _ = load_easyrec_config(path)
    assert yaml.safe_load(text) == config
    lines = text.splitlines()
    decay = lines.index("  weight_decay: 0.0001")
    assert lines[decay - 2].startswith("  # model_config.mmoe.l2_regularization: mapped approximately")
    assert any(line.startswith("# model_dir: ignored: 'exp'") for line in lines[: lines.index("data:")])
    assert len(notes) == sum(
        line.lstrip().startswith(("# model", "# train", "# data", "# eval", "# feature")) for line in lines
    )


def test_awkward_strings_survive_the_yaml():
    text = tzrec(tz_mmoe()).replace('separator: "|"', 'separator: "\\x1d"')
    config, notes, _ = convert_text(text, None, "p.config")
    from mtlrec.config.easyrec_text.yaml_out import to_yaml

    assert yaml.safe_load(to_yaml(config, notes, ["header"])) == config


def test_torcheasyrec_nested_sequence_feature_pooled_and_side_sequences_noted():
    text = """
    train_input_path: "t.parquet"
    data_config { batch_size: 16 dataset_type: ParquetDataset label_fields: "clk" }
    feature_configs { id_feature { feature_name: "item" hash_bucket_size: 10 embedding_dim: 4 } }
    feature_configs { sequence_feature { sequence_name: "click" sequence_length: 20 sequence_delim: ";"
       features { id_feature { feature_name: "item" hash_bucket_size: 10 embedding_dim: 4 } }
       features { raw_feature { feature_name: "ts" } } } }
    model_config {
      feature_groups { group_name: "deep" feature_names: "item" group_type: DEEP
         sequence_groups { group_name: "s1" feature_names: ["item", "click__item", "click__ts"] }
         sequence_encoders { pooling_encoder { input: "s1" pooling_type: "sum" } } }
      simple_multi_task { task_towers { tower_name: "ctr" label_name: "clk" } }
    }
    """
    config, notes = convert(text)
    assert config["data"] == {"train": "t.parquet", "format": "parquet"}
    assert features(config)["s1"] == {
        "name": "s1",
        "kind": "sequence",
        "fields": [{"column": "click__item", "name": "click__item", "hash_buckets": 10}],  # FG_NONE: the name
        "max_length": 20,
        "separator": ";",
        "encoder": {"kind": "pooling", "params": {"pooling": "sum"}},
    }
    assert notes["feature_configs[1].sequence_feature.features[1].raw_feature"].startswith(
        "ignored: 'click__ts' is a side sequence"
    )


def test_load_config_reads_a_pipeline_and_applies_overrides(tmp_path):
    from mtlrec.config import load_config

    path = tmp_path / "pipeline.config"
    path.write_text(easyrec(mmoe()))
    config = load_config(path, ["train.epochs=2", "model.params.num_experts=3"])
    assert config.train.epochs == 2 and config.model.params["num_experts"] == 3
    assert [task.name for task in config.tasks] == ["ctr", "cvr"]
