"""MetaBalance: adapting the gradient magnitudes of auxiliary tasks (He, Feng, Cheng, Ji, Guo, Caverlee; WWW 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtlrec.weighting.base import WeightingStrategy, backward_with_shared_directions, weighted_objective


class MetaBalance(WeightingStrategy):
    """Each auxiliary gradient pulled, per shared parameter, towards the target gradient's magnitude.

    For every shared parameter θ separately (the paper adapts "each part of the network", Alg. 1),
    with the target gradient g_tar = Σ_{t ∈ targets} ∇_θ L_t and an auxiliary gradient g_k = ∇_θ L_k,
    the magnitudes' moving averages

        m_tar ← β m_tar + (1 − β) ‖g_tar‖,    m_k ← β m_k + (1 − β) ‖g_k‖

    (from 0 and updated before use, as in the authors' code; every average gets the same bias
    factor 1 − β^s, which cancels in the ratio) rescale the auxiliary gradient to

        g_k ← r · (m_tar / m_k) · g_k + (1 − r) · g_k,

    and θ receives g_tar + Σ_k g_k (+ ∇_θ R for a ``regularizer`` R). r = 1 gives every auxiliary
    gradient the target's (averaged) magnitude, r = 0 is the plain sum of gradients. Auxiliary
    gradients are both weakened and strengthened, as in the authors' code (the paper also studies
    weakening or strengthening only); r is tuned per dataset in the paper, 0.7 and β = 0.9 are the
    code's defaults (which also excludes r = 1, allowed here).
    Several target tasks are summed into one target gradient (the paper has a single target task).
    A task that has never reached θ (m_k = 0, so g_k = 0) is left as is; with m_tar = 0 the auxiliary
    gradients shrink to (1 − r) g_k, as the formula says.

    Every other parameter — task towers, gates, embedding tables — receives the plain Σ_t ∇L_t (+ ∇R),
    as the paper balances the shared layers only. The moving averages are the buffer ``magnitudes``
    (N, 1 + A) for N shared parameters (in ``shared_parameters`` order) and A auxiliary tasks, column 0
    the target; it is sized at the first step with shared parameters and survives ``state_dict``.

    ``backward`` returns the effective loss weights: 1 for a target task and, for an auxiliary task,
    its scale r · m_tar / m_k + 1 − r averaged (unweighted) over the shared parameters it has reached
    (1 if none). The cost is T extra backward passes through the shared layers per step.

    Args:
        num_tasks: T.
        target_tasks: indices of the target (main) tasks; the others are auxiliary.
        relax_factor: r in [0, 1].
        beta: β in [0, 1), the moving averages' decay.
    """

    def __init__(
        self, num_tasks: int, target_tasks: Sequence[int] = (0,), relax_factor: float = 0.7, beta: float = 0.9
    ):
        super().__init__(num_tasks)
        targets = sorted({int(t) for t in target_tasks})
        if not targets or len(targets) != len(target_tasks) or not all(0 <= t < num_tasks for t in targets):
            raise ValueError(f"target_tasks must be distinct indices in [0, {num_tasks}), got {list(target_tasks)}")
        if not 0.0 <= relax_factor <= 1.0:
            raise ValueError(f"relax_factor must be in [0, 1], got {relax_factor}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.target_tasks = targets
        self.auxiliary_tasks = [t for t in range(num_tasks) if t not in targets]
        self.relax_factor, self.beta = relax_factor, beta
        self.register_buffer("magnitudes", torch.zeros(0, 1 + len(self.auxiliary_tasks)))

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ones = torch.ones_like(losses).detach()
        objective = weighted_objective(ones, losses, regularizer)
        shared = [p for p in shared_parameters if p.requires_grad]
        if not shared:
            objective.backward()
            return ones
        directions, weights = self._directions(losses, shared)
        backward_with_shared_directions(objective, shared, directions, regularizer)
        ones[self.auxiliary_tasks] = weights.to(ones)
        return ones

    def _directions(self, losses: torch.Tensor, shared: list[nn.Parameter]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The balanced gradient of every shared parameter, and the auxiliary tasks' mean scales (A,)."""
        if self.magnitudes.shape[0] == 0:
            self.magnitudes = self.magnitudes.new_zeros(len(shared), self.magnitudes.shape[1])
        elif self.magnitudes.shape[0] != len(shared):
            raise ValueError(f"MetaBalance tracks {self.magnitudes.shape[0]} shared parameters, got {len(shared)}")
        per_task = [torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True) for loss in losses]
        grads = [
            torch.stack([torch.zeros_like(p) if g[i] is None else g[i] for g in per_task]).flatten(1)
            for i, p in enumerate(shared)
        ]  # N × (T, numel)
        targets = [g[self.target_tasks].sum(dim=0) for g in grads]
        norms = torch.stack(
            [torch.cat([t.norm().reshape(1), g[self.auxiliary_tasks].norm(dim=1)]) for t, g in zip(targets, grads)]
        )
        with torch.no_grad():
            self.magnitudes.mul_(self.beta).add_((1 - self.beta) * norms.to(self.magnitudes))
        scales, reached = auxiliary_scales(self.magnitudes, self.relax_factor)
        directions = [
            (target + scale.to(g) @ g[self.auxiliary_tasks]).view_as(p)
            for p, target, scale, g in zip(shared, targets, scales, grads)
        ]
        counts = reached.sum(dim=0)
        mean_scales = torch.where(counts > 0, (scales * reached).sum(dim=0) / counts.clamp_min(1), 1.0)
        return directions, mean_scales

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Size ``magnitudes`` like the saved averages first (a fresh strategy has none yet)."""
        saved = state_dict.get(prefix + "magnitudes")
        if isinstance(saved, torch.Tensor) and saved.dim() == 2 and saved.shape[1] == self.magnitudes.shape[1]:
            self.magnitudes = self.magnitudes.new_zeros(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def auxiliary_scales(magnitudes: torch.Tensor, relax_factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Moving averages (N, 1 + A), target first → the scales r · m_tar / m_k + 1 − r (N, A) and where m_k > 0."""
    target, auxiliary = magnitudes[:, :1], magnitudes[:, 1:]
    reached = auxiliary > 0
    ratio = torch.where(reached, target / auxiliary.where(reached, 1.0), 1.0)
    return relax_factor * ratio + (1 - relax_factor), reached
