"""Config → the score fusion of an exported model (``serving.fusion``, or ``--fusion`` on the command line)."""

from __future__ import annotations

from mtlrec.config import Config
from mtlrec.errors import ConfigError
from mtlrec.export import Fusion
from mtlrec.losses import LOSSES


def build_fusion(config: Config, formula: str | None = None) -> Fusion | None:
    """The declared fusion (``formula`` overrides the config's), or None for the default (the first task's score).

    Raises:
        ConfigError: the formula does not parse, or names something other than a binary or regression
            task; the message names the config path (``serving.fusion.formula``, ``--fusion``).
    """
    declared = config.serving.fusion
    if formula is not None:
        return _checked(config, "--fusion", lambda: Fusion.from_formula(formula))
    if declared is None:
        return None
    if declared.formula is not None:
        return _checked(config, "serving.fusion.formula", lambda: Fusion.from_formula(declared.formula))
    kind = "weighted_sum" if declared.weighted_sum is not None else "weighted_product"
    weights = dict(declared.weighted_sum if declared.weighted_sum is not None else declared.weighted_product)
    for task in weights:  # name the offending key in the path
        _checked(config, f"serving.fusion.{kind}.{task}", lambda task=task: Fusion(kind, {task: weights[task]}))
    return _checked(config, f"serving.fusion.{kind}", lambda: Fusion(kind, weights))


def check_fusion(config: Config) -> None:
    """Validate ``serving.fusion`` (see :func:`build_fusion`)."""
    build_fusion(config)


def _checked(config: Config, path: str, make) -> Fusion:
    served = [task for task in config.tasks if task.served]
    try:
        fusion = make()
        unserved = [task.name for task in config.tasks if not task.served and task.name in fusion.names]
        if unserved:
            raise ValueError(f"task '{unserved[0]}' is auxiliary: it is not exported or served, so it cannot be fused")
        single = [task.name for task in served if LOSSES[task.loss].kind != "multiclass"]
        fusion.check_tasks(single, [task.name for task in served])
    except ValueError as exc:  # ExpressionError is a ValueError
        raise ConfigError(f"{path}: {exc}") from None
    return fusion
