"""The three models of the MMoE paper's synthetic experiment, sized by its parameter-matching rule.

Ma et al., KDD 2018, Section 5 (Figure 4): the MoE models have E = 8 experts, each a single layer of
H = 16 units, and single-layer towers of 8 units; Shared-Bottom has a single-layer bottom whose
width makes its parameter count match: with the paper's d = 100, 100·16·8 + 16·8·2 = 13,056
weights in experts and towers, and a bottom of 13056 / (100 + 8·2) ≈ 113 units. The rule counts
the weight matrices of the experts (or bottom) and of the towers' hidden layers; biases, gates and
the towers' output units are left out. :func:`matched_bottom_units` applies the same rule to any d
(d = 512, the PLE paper's choice, gives 65,792 / 528 ≈ 124.6 → 125 units).

:class:`RunEnsemble` trains R independent copies of one model at once: ``torch.func.vmap`` over
parameters stacked along a leading run axis. Adam is elementwise, so one Adam over the stacked
parameters and the sum of the runs' losses is exactly R separate trainings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mtlrec.architectures import ARCHITECTURES, Architecture
from mtlrec.losses import LOSSES

MODELS = ("shared_bottom", "omoe", "mmoe")
TASKS = ["task1", "task2"]


@dataclass(frozen=True)
class ModelSizes:
    """Widths of the paper's models (Figure 4): experts E × H units, towers of ``tower_units``."""

    input_dim: int = 512
    num_experts: int = 8
    expert_units: int = 16
    tower_units: int = 8

    def moe_rule_weights(self, num_tasks: int = 2) -> int:
        """Weights the rule counts for OMoE/MMoE: d·H·E (experts) + H·tower·T (towers' hidden layers)."""
        return self.input_dim * self.expert_units * self.num_experts + self.expert_units * self.tower_units * num_tasks

    def bottom_units(self, num_tasks: int = 2) -> int:
        """Shared-Bottom width h with h·(d + tower·T) closest to :meth:`moe_rule_weights`."""
        return matched_bottom_units(self.moe_rule_weights(num_tasks), self.input_dim, self.tower_units, num_tasks)


def matched_bottom_units(moe_weights: int, input_dim: int, tower_units: int, num_tasks: int = 2) -> int:
    """The paper's rule: h = round(moe_weights / (d + tower·T)) (13056 / (100 + 16) ≈ 113 in the paper)."""
    return max(1, round(moe_weights / (input_dim + tower_units * num_tasks)))


def build_model(name: str, sizes: ModelSizes) -> Architecture:
    """One of ``MODELS`` from the ``ARCHITECTURES`` registry, with the paper's sizes (dense (B, d) input)."""
    towers = [sizes.tower_units]
    if name == "shared_bottom":
        return ARCHITECTURES[name](
            sizes.input_dim, TASKS, bottom_hidden_units=[sizes.bottom_units(len(TASKS))], tower_hidden_units=towers
        )
    if name in ("omoe", "mmoe"):
        return ARCHITECTURES[name](
            sizes.input_dim,
            TASKS,
            num_experts=sizes.num_experts,
            expert_hidden_units=[sizes.expert_units],
            tower_hidden_units=towers,
        )
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def rule_weights(model: Architecture) -> int:
    """The weights the paper's rule counts in a built model: the bottom's or experts' weight matrix and
    the towers' hidden-layer weight matrices (no biases, gates or output units)."""
    bottom = model.bottom.layers[0] if hasattr(model, "bottom") else model.experts.first
    towers = sum(model.towers[task].mlp.layers[0].weight.numel() for task in model.task_names)
    return bottom.weight.numel() + towers


class RunEnsemble(nn.Module):
    """R independent copies of one architecture evaluated together (``torch.func.vmap`` over runs).

    Args:
        models: R freshly initialised models of the same architecture and sizes.
    """

    def __init__(self, models: Sequence[Architecture]):
        super().__init__()
        params, buffers = stack_module_state([model.eval() for model in models])  # eval: no recorded tensors
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[name]) for name in self.names)  # each (R, ...)
        self.buffer_values = buffers
        self.task_names = list(models[0].task_names)
        template = copy.deepcopy(models[0]).to("meta")
        self._batched = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)))
        self._mse = vmap(LOSSES["mse"]())

    @property
    def num_runs(self) -> int:
        return int(self.stacked[0].shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(R, B, d) inputs, one slice per run → (R, B, T) outputs in ``task_names`` order."""
        params = dict(zip(self.names, self.stacked))
        outputs = self._batched(params, self.buffer_values, x)
        return torch.stack([outputs[task] for task in self.task_names], dim=-1)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(R, B, d) inputs, (R, B, T) labels → (R,) MSE per run, averaged over the T tasks."""
        predictions = self(x)
        per_task = [self._mse(predictions[..., t], y[..., t]) for t in range(y.shape[-1])]  # T × (R,)
        return torch.stack(per_task, dim=-1).mean(dim=-1)

    def unstacked(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s parameters under the model's own names (to load into a plain model)."""
        return {name: tensor[run].detach() for name, tensor in zip(self.names, self.stacked)}
