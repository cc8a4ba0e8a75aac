"""The single-task baseline of a multi-task config: same data, features, tasks, towers and training budget.

The MTL gain of the PLE paper (Tang et al., RecSys 2020, Eq. 11) is measured against "a single-task
model with the same network structures and training samples". ``single_task_baseline`` builds it:
architecture ``single_task`` (one bottom MLP + tower per task, and its own embeddings per task) whose
bottom widths follow the path one task's input takes through the configured architecture:

* shared_bottom: ``bottom_hidden_units``; mmoe / omoe: ``expert_hidden_units`` (one expert's widths);
  multi_level_mmoe: ``expert_hidden_units`` once per level;
* cgc: ``task_expert_hidden_units``; ple: the task expert nets' widths of every extraction network,
  level after level;
* cross_stitch, sluice, l2_soft_sharing, star, single_task: ``hidden_units`` (a task's column);
* esmm: ``bottom_hidden_units`` with ``tower_hidden_units`` as the tower; aitm: the encoder widths
  (``tower_hidden_units``) with ``head_hidden_units`` as the tower.

Towers (``tower_hidden_units``, including per-task ``tasks[].tower_hidden_units``), ``activation`` and
``dropout`` are the configured architecture's (its defaults where the config gives none). The
weighting becomes ``equal``: the baseline's networks are disjoint, so the summed loss gives each
network exactly the gradient of its own loss; a loss-balancing method would only rescale them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mtlrec.app.build.groups import model_input_groups
from mtlrec.app.build.params import supplied_arguments, validate_params
from mtlrec.architectures import ARCHITECTURES
from mtlrec.config import Config, ModelConfig, WeightingConfig
from mtlrec.errors import ConfigError

Widths = tuple[list[int], Any]  # (bottom hidden units, tower hidden units: a list or {task: list})


def _units(value: Any) -> list[int]:
    return [int(unit) for unit in value]


def _hidden_and_towers(key: str) -> Callable[[dict[str, Any]], Widths]:
    return lambda params: (_units(params[key]), params["tower_hidden_units"])


def _multi_level_mmoe(params: dict[str, Any]) -> Widths:
    return _units(params["expert_hidden_units"]) * int(params["num_levels"]), params["tower_hidden_units"]


def _ple(params: dict[str, Any]) -> Widths:
    hidden = [unit for level in params["extraction_networks"] for unit in _expert_units(level)]
    return hidden, params["tower_hidden_units"]


def _expert_units(level: Any) -> list[int]:
    net = level["task_expert_net"] if isinstance(level, dict) else level.task_expert_net
    return _units(net["hidden_units"] if isinstance(net, dict) else net.hidden_units)


# architecture → how one task's path through it maps to (bottom widths, tower widths) of the baseline
BASELINE_WIDTHS: dict[str, Callable[[dict[str, Any]], Widths]] = {
    "single_task": _hidden_and_towers("hidden_units"),
    "shared_bottom": _hidden_and_towers("bottom_hidden_units"),
    "omoe": _hidden_and_towers("expert_hidden_units"),
    "mmoe": _hidden_and_towers("expert_hidden_units"),
    "multi_level_mmoe": _multi_level_mmoe,
    "cgc": _hidden_and_towers("task_expert_hidden_units"),
    "ple": _ple,
    "cross_stitch": _hidden_and_towers("hidden_units"),
    "sluice": _hidden_and_towers("hidden_units"),
    "l2_soft_sharing": _hidden_and_towers("hidden_units"),
    "star": _hidden_and_towers("hidden_units"),
    "esmm": _hidden_and_towers("bottom_hidden_units"),
    "aitm": lambda params: (_units(params["tower_hidden_units"]), params["head_hidden_units"]),
}


def _architecture_params(config: Config) -> dict[str, Any]:
    """The configured architecture's parameters: the validated ``model.params`` over its defaults."""
    name = config.model.architecture
    if name not in ARCHITECTURES:
        choices = ", ".join(ARCHITECTURES)
        raise ConfigError(f"model.architecture: unknown architecture '{name}'; choose one of {choices}")
    architecture = ARCHITECTURES[name]
    defaults = {
        key: parameter.default
        for key, parameter in inspect.signature(architecture.__init__).parameters.items()
        if parameter.default is not parameter.empty
    }
    given = validate_params(architecture, config.model.params, supplied_arguments(architecture), "model.params")
    return {**defaults, **given}


def single_task_baseline(config: Config) -> Config:
    """The single-task counterpart of ``config`` (see the module docstring for how widths are derived).

    Raises:
        ConfigError: the architecture is unknown, its parameters are invalid, or no baseline can be
            derived from it (then give one with ``--baseline CONFIG``).
    """
    name = config.model.architecture
    params = _architecture_params(config)
    if name not in BASELINE_WIDTHS:
        raise ConfigError(
            f"model.architecture: no single-task baseline is derived for '{name}'; give one with --baseline CONFIG"
        )
    hidden, towers = BASELINE_WIDTHS[name](params)
    towers = {task: _units(units) for task, units in towers.items()} if isinstance(towers, dict) else _units(towers)
    baseline_params: dict[str, Any] = {"hidden_units": hidden, "tower_hidden_units": towers}
    baseline_params.update({key: params[key] for key in ("activation", "dropout") if key in params})
    model = ModelConfig(
        architecture="single_task",
        embedding_dim=config.model.embedding_dim,
        input_groups=model_input_groups(config),
        params=baseline_params,
    )
    return config.model_copy(update={"model": model, "weighting": WeightingConfig()}, deep=True)
