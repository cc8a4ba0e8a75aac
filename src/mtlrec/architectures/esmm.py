"""Entire Space Multi-task Model (Ma, Zhao, Hu, Zhu, Wang, Gai, Yang; SIGIR 2018)."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import MLP, Tower


def product_logit(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """logit(σ(a)·σ(b)) = −log(e^−a + e^−b + e^−(a+b)), computed as a stable logsumexp.

    Since σ(a)σ(b) = 1 / (1 + e^−a + e^−b + e^−(a+b)), the odds are 1 / (e^−a + e^−b + e^−(a+b)).
    BCE-with-logits on this logit is the paper's CTCVR loss on pCTR·pCVR, without forming the
    product of probabilities (no underflow for tiny rates, no log(0)).

    Args:
        first: (B,) logit a.
        second: (B,) logit b.

    Returns:
        (B,) logit of the product of the two probabilities.
    """
    return -torch.logsumexp(torch.stack([-first, -second, -(first + second)]), dim=0)


class ESMM(Architecture):
    """ESMM: CTR and CVR towers over the shared embeddings, trained on CTR and CTCVR over all impressions.

    The three tasks are taken by position: ``task_names = [ctr, cvr, ctcvr]`` (any names), e.g.
    ``[click, cvr, conversion]``. Outputs: the CTR logit, the CVR logit (p(conversion | click)) and
    the CTCVR logit with σ(ctcvr) = pCTR·pCVR (paper Eq. 1 and 3, computed by ``product_logit``).
    Only CTR and CTCVR have losses (Eq. 3); CVR is in ``untrained_tasks()`` and is evaluated on clicked
    impressions (give that task a sample space, e.g. ``click == 1``). Both towers feed pCTCVR, so
    every parameter is shared between tasks.
    Deviation: an optional shared bottom MLP below the towers (empty by default = the paper, where
    only the embeddings are shared).

    Args:
        input_dim: D.
        task_names: [ctr, cvr, ctcvr] names.
        tower_hidden_units: the CTR and CVR towers' MLP widths.
        bottom_hidden_units: shared MLP widths below the towers (empty = none).
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: must be 1 for every task (binary tasks only).
    """

    required_num_tasks = 3
    every_parameter_shared = True
    supports_multi_class = False

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        tower_hidden_units: list[int] = (256, 128, 64),
        bottom_hidden_units: list[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if len(self.task_names) != 3:
            raise ValueError(f"ESMM needs exactly three tasks [ctr, cvr, ctcvr], got {self.task_names}")
        if any(width != 1 for width in self.output_dims.values()):
            raise ValueError("ESMM's tasks are binary (output width 1)")
        self.ctr_task, self.cvr_task, self.ctcvr_task = self.task_names
        self.bottom = MLP(input_dim, list(bottom_hidden_units), activation, dropout)
        self.ctr_tower = Tower(self.bottom.output_dim(), list(tower_hidden_units), activation, dropout)
        self.cvr_tower = Tower(self.bottom.output_dim(), list(tower_hidden_units), activation, dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.bottom(x)
        ctr, cvr = self.ctr_tower(hidden), self.cvr_tower(hidden)
        return {self.ctr_task: ctr, self.cvr_task: cvr, self.ctcvr_task: product_logit(ctr, cvr)}

    @classmethod
    def untrained_tasks_of(cls, task_names: list[str]) -> frozenset[str]:
        return frozenset(task_names[1:2])

    def task_modules(self, task: str) -> list[nn.Module]:
        return []
