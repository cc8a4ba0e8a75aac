"""ScoringModel: the trained model plus each task's link and the fusion, as one traceable module.

This is what gets exported: the model's inputs, by name and in a fixed order → (score of each task,
..., fused score), every task's
score in its original unit (probabilities, regression values with label transforms undone, class
probabilities), so no client needs to know a link function or a label transform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from mtlrec.export.fusion import Fusion, FusionModule

#: Name of the fused output (a task may not use it).
FUSED_OUTPUT = "score"

Link = Callable[[torch.Tensor], torch.Tensor]


class ScoringModel(nn.Module):
    """The model's inputs as positional tensors in ``input_names`` order → scores in ``output_names`` order.

    An exported graph has one input per name (each with 1 or B rows: one row is shared by every
    candidate); ``forward`` keys them by name for the model.

    The outputs are each task's score, in the model's task order (a (B,) tensor, or (B, C) class
    probabilities for a multi-class task; evaluation-only outputs such as ESMM's CVR included), then
    the (B,) fused score named ``"score"``.

    Args:
        model: the trained multi-task model: ``forward({input name: tensor}) -> {task: logit}``.
        links: {task: logits → score} for every task of ``model`` (e.g. a ``Loss``'s ``predict``).
        fusion: how the single-score tasks combine into ``"score"``.
        input_names: the model's inputs, in the order of ``forward``'s arguments.
        output_dims: {task: C} for multi-class tasks (others give one score per row).
        served_tasks: the tasks output (default: every task of ``model``; auxiliary tasks are not served).
    """

    def __init__(
        self,
        model: nn.Module,
        links: Mapping[str, Link],
        fusion: Fusion,
        input_names: list[str],
        output_dims: Mapping[str, int] | None = None,
        served_tasks: list[str] | None = None,
    ):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        unknown = sorted(set(served_tasks or ()) - set(model.task_names))
        if unknown:
            raise ValueError(f"served task(s) {unknown} are not tasks of the model")
        served = set(served_tasks if served_tasks is not None else model.task_names)
        self.task_names: list[str] = [task for task in model.task_names if task in served]
        if FUSED_OUTPUT in self.task_names:
            raise ValueError(f"a task is named '{FUSED_OUTPUT}', the name of the fused output; rename the task")
        missing = [task for task in self.task_names if task not in links]
        if missing:
            raise ValueError(f"no score link for task(s) {missing}")
        self.links = dict(links)
        self.output_dims = {task: int((output_dims or {}).get(task, 1)) for task in self.task_names}
        single = [task for task in self.task_names if self.output_dims[task] == 1]
        fusion.check_tasks(single, self.task_names)
        self.fusion = fusion
        self.fuse = FusionModule(fusion)

    @property
    def output_names(self) -> list[str]:
        """Task names in model order, then ``"score"``."""
        return [*self.task_names, FUSED_OUTPUT]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model(dict(zip(self.input_names, inputs)))
        scores = {task: self.links[task](logits[task]) for task in self.task_names}
        return (*(scores[task] for task in self.task_names), self.fuse(scores))

    def positional(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The inputs in ``input_names`` order."""
        return tuple(inputs[name] for name in self.input_names)

    @torch.inference_mode()
    def score(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eager scores by output name (the model in eval mode)."""
        self.eval()
        return dict(zip(self.output_names, self(*self.positional(inputs))))
