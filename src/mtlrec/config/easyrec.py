"""EasyRec's spelling of tasks (``task_towers``), translated into our ``tasks`` section."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from mtlrec.config.base import Strict
from mtlrec.config.messages import clean_message


class EasyRecMlp(Strict):
    hidden_units: list[int]


class EasyRecTaskTower(Strict):
    """EasyRec's spelling of a task (``task_towers`` entries), translated into a :class:`TaskConfig`."""

    tower_name: str
    label_name: str
    mlp: EasyRecMlp | None = None
    metrics: list[str] | None = None
    losses: list[str] | None = Field(None, max_length=1, description="One loss name (bce, mse, ...).")
    weight: float = 1.0
    label: dict[str, Any] | None = Field(None, description="Extra label options: positive, negative, threshold.")
    sample_space: str | None = None

    def to_task(self) -> dict[str, Any]:
        task: dict[str, Any] = {
            "name": self.tower_name,
            "label": {"column": self.label_name, **(self.label or {})},
            "weight": self.weight,
            "metrics": self.metrics,
            "sample_space": self.sample_space,
        }
        if self.losses:
            task["loss"] = self.losses[0]
        if self.mlp is not None:
            task["tower_hidden_units"] = self.mlp.hidden_units
        return task


def translate_task_towers(raw: Any) -> Any:
    """A raw config with ``task_towers`` → the same config with the equivalent ``tasks``."""
    if not isinstance(raw, dict) or "task_towers" not in raw:
        return raw
    if raw.get("tasks") is not None:
        raise ValueError("give either tasks or task_towers, not both (set tasks: null to replace inherited tasks)")
    raw = dict(raw)
    towers = raw.pop("task_towers")
    if not isinstance(towers, list):
        raise ValueError("task_towers must be a list")
    tasks = []
    for index, tower in enumerate(towers):
        try:
            tasks.append(EasyRecTaskTower.model_validate(tower).to_task())
        except ValidationError as exc:
            problems = [
                f"task_towers[{index}].{'.'.join(str(part) for part in err['loc'])}: {clean_message(err)}"
                for err in exc.errors()
            ]
            raise ValueError("; ".join(problems)) from None
    raw["tasks"] = tasks
    return raw
