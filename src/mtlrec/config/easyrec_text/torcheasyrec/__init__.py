"""TorchEasyRec's (PyTorch) pipeline config → the mtlrec config: one function per section.

:func:`convert` reads the sections in order: :mod:`.data` (``data_config`` and the input paths),
:mod:`.features` (the feature configs), :mod:`.groups` (the feature groups and their sequences),
:mod:`.models` (the model section, its task towers, losses and metrics) and :mod:`.training`
(``train_config``, the optimizers and ``export_config``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from google.protobuf.message import Message

from mtlrec.config.easyrec_text.common import field_hint
from mtlrec.config.easyrec_text.convert import Conversion, finish
from mtlrec.config.easyrec_text.nodes import Node, Note
from mtlrec.config.easyrec_text.torcheasyrec.data import read_data
from mtlrec.config.easyrec_text.torcheasyrec.features import feature_sources
from mtlrec.config.easyrec_text.torcheasyrec.groups import features_and_groups, model_input_groups
from mtlrec.config.easyrec_text.torcheasyrec.models import ARCHITECTURES, DIALECT, MODELS
from mtlrec.config.easyrec_text.torcheasyrec.training import read_train

__all__ = ["HINTS", "convert", "hint"]

#: why a field that nothing reads is ignored, by field name (the last part of its path)
HINTS: dict[str, str] = {
    "model_dir": "mtlrec writes the run to `mtlrec train --output DIR`",
    "eval_config": "mtlrec evaluates every task with its own metrics after each epoch",
    "save_checkpoints_steps": "mtlrec checkpoints once per epoch",
    "save_checkpoints_epochs": "mtlrec checkpoints once per epoch",
    "keep_checkpoint_max": "mtlrec keeps the last and the best checkpoint",
    "use_tensorboard": "set diagnostics.tensorboard",
    "tensorboard_summaries": "set diagnostics.tensorboard",
    "fine_tune_checkpoint": "start from scratch, or `mtlrec train --resume` a run",
    "num_workers": "reading is tuned by data.read_batch_rows",
    "pin_memory": "reading is tuned by data.read_batch_rows",
    "shuffle": "mtlrec shuffles the training rows every epoch (seeded)",
    "shuffle_buffer_size": "mtlrec shuffles the training rows every epoch (seeded)",
    "cudnn_allow_tf32": "mtlrec trains in fp32 or bf16 (train.precision)",
    "cuda_matmul_allow_tf32": "mtlrec trains in fp32 or bf16 (train.precision)",
    "grad_clipping": "mtlrec does not clip gradients",
    "gradient_accumulation_steps": "raise train.batch_size instead",
    "ema": "mtlrec keeps no moving average of the weights",
    "train_metrics": "mtlrec evaluates after each epoch",
    "init_fn": "mtlrec initialises embeddings its own way",
    "trainable": "every embedding is trained",
    "use_mask": "no feature masking",
    "data_type": "tables are fp32",
    "pareto_min_loss_weight": "it applies with use_pareto_loss_weight only (weighting pe_ltr's min_weights)",
    "kernel": "mtlrec runs its own kernels",
    "export_config": "`mtlrec export` writes a serving artifact",
    "losses": "multi-task models take their losses from the task towers",
    "metrics": "multi-task models take their metrics from the task towers",
    "num_class": "multi-task models take num_class from the task towers",
    "eps": "mtlrec's Adam uses its defaults",
    "amsgrad": "mtlrec's Adam uses its defaults",
    "fused": "mtlrec picks its kernels",
}

#: why an unread field at a path is ignored
hint = partial(field_hint, HINTS)


def _pareto_weighting(model: Node, body: Node) -> dict[str, Any]:
    """``use_pareto_loss_weight`` → PE-LTR (Lin et al., RecSys 2019) with each tower's ``pareto_min_loss_weight``."""
    towers = body.children("task_towers") if "task_towers" in body.message.DESCRIPTOR.fields_by_name else []
    minimums = [tower.get("pareto_min_loss_weight") for tower in towers]
    model.approximate(
        "use_pareto_loss_weight",
        "mtlrec's 'pe_ltr' weighting: the Pareto-efficient weights under the towers' pareto_min_loss_weight bounds, "
        "solved exactly (TorchEasyRec relaxes the bounds, then projects)",
        "weighting",
    )
    return {"name": "pe_ltr", "params": {"min_weights": minimums}} if any(minimums) else {"name": "pe_ltr"}


def convert(message: Message, conversion: Conversion) -> tuple[dict[str, Any], list[Note]]:
    """TorchEasyRec's ``EasyRecConfig`` message → (mtlrec config as plain data, notes)."""
    root = Node(message, "", conversion.tracker)
    data, reading = read_data(root, conversion)
    sources = feature_sources(root)
    model = root.child("model_config").maps_to("model")
    kind = model.which("model")
    if kind is None:
        raise model.error("model", f"missing; mtlrec converts the multi-task models {', '.join(ARCHITECTURES)}")
    body = model.child(kind)
    groups = {node.get("group_name"): node for node in model.children("feature_groups")}
    input_groups, roles = model_input_groups(kind, groups, conversion)
    features, feature_groups = features_and_groups(groups, input_groups, roles, sources, reading, kind, conversion)
    tasks, params = MODELS[kind](body, reading, conversion)
    params.update(conversion.style.params(conversion.tracker, body.path, DIALECT))
    weighting = _pareto_weighting(model, body) if model.get("use_pareto_loss_weight") else {"name": "fixed"}
    config: dict[str, Any] = {
        "data": data,
        "features": features,
        "feature_groups": feature_groups,
        "tasks": tasks,
        "model": {"architecture": ARCHITECTURES[kind], "input_groups": input_groups, "params": params},
        "weighting": weighting,
        "train": read_train(root, conversion, data, tasks),
    }
    return finish(message, conversion, hint, config)
