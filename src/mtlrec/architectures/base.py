"""The architecture contract: (B, D) tensor in, {task: (B,) logit} out; parameters shared or per task."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import torch
from torch import nn

from mtlrec.nn import Tower
from mtlrec.nn.reversal import GradientReversal, ReversedInputs


class Architecture(nn.Module):
    """Base class of multi-task architectures.

    Subclasses build their layers in ``__init__(input_dim, task_names, ..., output_dims=None)`` from
    plain arguments, implement ``forward`` and ``task_modules``; every parameter not inside one task's
    modules is shared. Architectures see tensors only: never a Batch, a feature or a label.

    Optional parts of the contract, each with a default here:

    * ``group_inputs``: feature groups read besides the main input, by role → how: ``"ids"`` (the (B,)
      int64 ids of the group's one feature; STAR's ``domain``) or ``"tensor"`` (the group's (B, D_role)
      embeddings and values; PEPNet's ``domain`` and ``prior``); ``forward`` takes each role as a keyword
      argument, and the constructor ``num_<role>s`` (the ids' range) or ``<role>_dim`` (the width);
    * ``field_dims``: a constructor argument, when declared, receives the widths of the input's fields
      (each feature's embedding or value) in order;
    * ``embeddings_per_task``: True when the architecture reads T + 1 copies of the input, x (B, 1 + T, D),
      from a shared and a per-task set of embedding tables (STEM);
    * ``auxiliary_loss(outputs)``: a regulariser added, unweighted, to the weighted task losses
      (AITM's calibrator, the L2 soft-sharing penalty);
    * ``last_representation``: set during training by architectures with one shared tensor that
      every task reads (MMoE's expert outputs, Shared-Bottom's bottom output), for gradient methods
      on the representation (MGDA-UB); None otherwise;
    * ``untrained_tasks_of(task_names)``: outputs that have no loss of their own and are only evaluated (ESMM's CVR);
    * ``gate_experts(gate, width)``: the level and expert names of a recorded gate's columns (gated architectures).

    Args:
        task_names: T task names; the keys of ``forward``'s output, in this order.
        output_dims: outputs per task: 1 (a (B,) logit or value, the default) or C ≥ 2 class
            logits (B, C) for a softmax task.
    """

    has_gates = False
    #: True when the tasks must not share the input embeddings either (independent baselines).
    independent_tasks = False
    #: Extra feature groups ``forward`` reads, by role (keyword argument) → ``"ids"`` or ``"tensor"``.
    group_inputs: ClassVar[dict[str, str]] = {}
    #: True when ``forward`` reads x (B, 1 + T, D): shared embeddings, then each task's own copy.
    embeddings_per_task = False
    #: The exact number of tasks the architecture is defined for (None: any number ≥ 1).
    required_num_tasks: int | None = None
    #: True when every task's output depends on every parameter (no task owns any, e.g. ESMM).
    every_parameter_shared = False
    #: False when the architecture is defined for binary tasks only (``output_dims`` all 1).
    supports_multi_class = True

    def __init__(self, task_names: list[str], output_dims: dict[str, int] | None = None):
        super().__init__()
        if not task_names:
            raise ValueError("an architecture needs at least one task")
        self.task_names = list(task_names)
        unknown = sorted(set(output_dims or {}) - set(self.task_names))
        if unknown:
            raise ValueError(f"output_dims names unknown task(s) {unknown}")
        self.output_dims = {task: int((output_dims or {}).get(task, 1)) for task in self.task_names}
        self.record_gates = False
        self.last_gate_weights: dict[str, torch.Tensor] = {}
        self.last_representation: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) → {task: (B,) logit, or (B, C) class logits}."""
        raise NotImplementedError

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A scalar regulariser computed from this forward's outputs (and the parameters), or None."""
        return None

    @classmethod
    def untrained_tasks_of(cls, task_names: list[str]) -> frozenset[str]:
        """Tasks whose output is evaluated but has no loss of its own, for these task names."""
        return frozenset()

    def untrained_tasks(self) -> frozenset[str]:
        return self.untrained_tasks_of(self.task_names)

    def make_towers(
        self,
        input_dim: int,
        hidden_units: Sequence[int] | dict[str, Sequence[int]],
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> nn.ModuleDict:
        """One ``Tower`` per task over a (B, input_dim) input, each with its task's output width.

        Args:
            hidden_units: the towers' MLP widths, or {task: widths} (tasks not named get no hidden layer).
        """
        if isinstance(hidden_units, dict):
            unknown = sorted(set(hidden_units) - set(self.task_names))
            if unknown:
                raise ValueError(f"tower_hidden_units names unknown task(s) {unknown}")
        widths = {
            task: list(hidden_units.get(task, ()) if isinstance(hidden_units, dict) else hidden_units)
            for task in self.task_names
        }
        return nn.ModuleDict(
            {
                task: Tower(input_dim, widths[task], activation, dropout, self.output_dims[task])
                for task in self.task_names
            }
        )

    def reverse_gradients(self, task: str, reversal: GradientReversal) -> None:
        """Put ``reversal`` in front of ``task``'s tower (an adversarial task): the tower learns to predict its
        label from what it reads, and what it reads learns not to carry it.

        Raises:
            ValueError: the architecture has no tower of its own for ``task`` (``towers[task]``).
        """
        towers = getattr(self, "towers", None)
        if not isinstance(towers, nn.ModuleDict) or task not in towers:
            name = type(self).__name__
            raise ValueError(f"{name} has no tower of its own for task '{task}' to reverse gradients into")
        towers[task] = ReversedInputs(towers[task], reversal)

    def task_modules(self, task: str) -> list[nn.Module]:
        """The modules whose parameters belong to ``task`` alone."""
        raise NotImplementedError

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        for module in self.task_modules(task):
            yield from module.parameters()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used by more than one task (what gradient-balancing methods act on)."""
        owned = {id(p) for task in self.task_names for p in self.task_parameters(task)}
        return (p for p in self.parameters() if id(p) not in owned)

    def gate_experts(self, gate: str, width: int) -> tuple[str, list[str]]:
        """Where a gate of ``last_gate_weights`` sits: its level, and the experts its ``width`` columns weigh.

        Expert names are unique within a level: two gates of a level that name the same expert weigh
        the same expert (diagnostics use this to find experts no gate uses). Default: the level is the
        prefix before the gate name's last '.' ('' when there is none) and column i weighs ``e{i}``.
        """
        return gate.rpartition(".")[0], [f"e{index}" for index in range(width)]

    def _remember_representation(self, representation: torch.Tensor) -> None:
        """Keep (in training only) the shared tensor every task reads, for representation-level weighting."""
        if self.training:
            self.last_representation = representation

    def _remember_gates(self, gates: dict[str, torch.Tensor]) -> None:
        if self.record_gates:
            self.last_gate_weights = {task: weights.detach() for task, weights in gates.items()}
