"""EasyRec's (TensorFlow) pipeline config → the mtlrec config: one function per section.

:func:`convert` reads the sections in order: :mod:`.data` (``data_config`` and the input paths),
:mod:`.features` (the feature configs), :mod:`.groups` (the feature groups and DIN sequences),
:mod:`.models` (the model section, its task towers, losses and metrics) and :mod:`.training`
(``train_config``, the optimizers and ``export_config``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from google.protobuf.message import Message

from mtlrec.config.easyrec_text.common import field_hint
from mtlrec.config.easyrec_text.convert import Conversion, finish
from mtlrec.config.easyrec_text.easyrec.data import read_data
from mtlrec.config.easyrec_text.easyrec.features import feature_sources
from mtlrec.config.easyrec_text.easyrec.groups import features_and_groups, groups_by_name, model_input_groups
from mtlrec.config.easyrec_text.easyrec.models import ARCHITECTURES, DIALECT, MODELS, model_kind, weighting
from mtlrec.config.easyrec_text.easyrec.training import read_train
from mtlrec.config.easyrec_text.nodes import Node, Note

__all__ = ["HINTS", "convert", "hint"]

#: why a field that nothing reads is ignored, by field name (the last part of its path)
HINTS: dict[str, str] = {
    "model_dir": "mtlrec writes the run to `mtlrec train --output DIR`",
    "fg_json_path": "feature generation is not run by mtlrec; give it the generated columns",
    "sync_replicas": "distributed settings do not apply; run several processes with torchrun",
    "train_distribute": "distributed settings do not apply; run several processes with torchrun",
    "num_gpus_per_worker": "set train.device",
    "save_checkpoints_steps": "mtlrec checkpoints once per epoch",
    "save_checkpoints_secs": "mtlrec checkpoints once per epoch",
    "keep_checkpoint_max": "mtlrec keeps the last and the best checkpoint",
    "save_summary_steps": "set diagnostics.every_steps",
    "startup_delay_steps": "distributed settings do not apply",
    "fine_tune_checkpoint": "start from scratch, or `mtlrec train --resume` a run",
    "eval_config": "mtlrec evaluates every task with its own metrics after each epoch",
    "export_config": "`mtlrec export` writes a serving artifact",
    "prefetch_size": "reading is tuned by data.read_batch_rows",
    "num_parallel_calls": "reading is tuned by data.read_batch_rows",
    "shuffle": "mtlrec shuffles the training rows every epoch (seeded)",
    "shuffle_buffer_size": "mtlrec shuffles the training rows every epoch (seeded)",
    "combiner": "it applies to multi-valued (Tag/Sequence) features only",
    "separator": "it applies to multi-valued (Tag/Sequence) features only",
    "max_partitions": "embedding tables are not partitioned over parameter servers",
    "ev_params": "embedding variables are not used: tables are fixed-size vocabularies or hash buckets",
    "embedding_regularization": "a zero penalty has nothing to map",
    "normalizer_fn": "a Python function: apply it to the column beforehand",
    "combo_join_sep": "it only changes the strings that are hashed",
    "combo_input_seps": "each input of a cross is read as one value",
    "seq_att_groups": "used by EasyRec's DIN model only; put sequence_features in the feature group",
    "model_name": "a display name",
    "losses": "multi-task models take their losses from the task towers",
    "loss_type": "multi-task models take their losses from the task towers",
    "num_class": "multi-task models take num_class from the task towers",
    "label_name": "multi-task models take labels from the task towers",
    "use_moving_average": "mtlrec keeps no moving average of the weights",
    "moving_average_decay": "mtlrec keeps no moving average of the weights",
    "gradient_clipping_by_norm": "mtlrec does not clip gradients",
}

#: why an unread field at a path is ignored
hint = partial(field_hint, HINTS)


def convert(message: Message, conversion: Conversion) -> tuple[dict[str, Any], list[Note]]:
    """EasyRec's ``EasyRecConfig`` message → (mtlrec config as plain data, notes)."""
    root = Node(message, "", conversion.tracker)
    data, inputs = read_data(root, conversion)
    sources = feature_sources(root, conversion)
    model = root.child("model_config").maps_to("model")
    kind = model_kind(model)
    groups = groups_by_name(model)
    body = model.child(kind)
    input_groups = model_input_groups(kind, body, groups, conversion)
    features, feature_groups = features_and_groups(groups, input_groups, sources, inputs, kind, conversion)
    tasks, params = MODELS[kind](body, inputs, conversion)
    params.update(conversion.style.params(conversion.tracker, body.path, DIALECT))
    train = read_train(root, conversion, data, tasks, body.get("l2_regularization"))
    config: dict[str, Any] = {
        "data": data,
        "features": features,
        "feature_groups": feature_groups,
        "tasks": tasks,
        "model": {"architecture": ARCHITECTURES[kind], "input_groups": input_groups, "params": params},
        "weighting": weighting(model),
        "train": train,
    }
    if model.get("embedding_regularization") > 0:
        train["embedding_weight_decay"] = model.get("embedding_regularization")
        model.approximate(
            "embedding_regularization",
            "train.embedding_weight_decay: a lazy L2 on the rows each batch touches, once per distinct row (EasyRec "
            "penalises every looked-up embedding, once per occurrence)",
            "train.embedding_weight_decay",
        )
    return finish(message, conversion, hint, config)
