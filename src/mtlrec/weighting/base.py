"""The weighting-strategy contract (after LibMTL's AbsWeighting, without state injected by a trainer).

A strategy gets the per-task loss vector (T,) and the shared parameters, nothing else. Loss-level
strategies only combine the losses; gradient-level strategies (GradNorm, MGDA, PCGrad, ...) override
``backward`` to shape the gradients of the shared parameters themselves. Learnable state lives in
the module's ``state_dict`` so it survives checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn


class WeightingStrategy(nn.Module):
    """Base class.

    Args:
        num_tasks: T.
    """

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = num_tasks

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Populate ``.grad`` of every parameter from the loss vector (T,); return the weights used (T,).

        ``regularizer`` (a scalar, e.g. an architecture's auxiliary loss) is added to the objective
        unweighted: it is not a task, so no strategy balances it. ``representation`` is the
        architecture's shared representation of this forward pass (e.g. MMoE's expert outputs), for
        gradient-level strategies that work on it; others ignore it.
        """
        raise NotImplementedError

    def end_epoch(self, epoch: int, mean_losses: torch.Tensor) -> None:
        """Hook for strategies that adapt per epoch (DWA, dynamic weights); no-op by default."""


class LossWeighting(WeightingStrategy):
    """A strategy that backpropagates Σ_t w_t · L_t for weights computed from the losses."""

    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """(T,) loss vector → (T,) weights."""
        raise NotImplementedError

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        weights = self.weights(losses)
        weighted_objective(weights, losses, regularizer).backward()
        return weights.detach()


GradientTarget = Literal["parameters", "representation"]
GRADIENT_TARGETS = ("parameters", "representation")


class GradientWeighting(WeightingStrategy):
    """A strategy that shapes the shared parameters' gradient from the per-task gradients.

    Per-task gradients are taken with respect to the *shared dense parameters only*: G (T, P) holds
    g_t = ∇_θ L_t flattened over ``shared_parameters`` (a parameter a task does not reach gives
    zeros). The subclass maps G to a direction d (P,) and loss weights w (T,) in ``combine``. Then

    * the shared parameters receive d (+ ∇_θ R for a ``regularizer`` R);
    * every other parameter — task-specific towers/gates and the embedding tables — receives
      Σ_t w_t ∇L_t (+ ∇R), i.e. the gradient of the weighted objective.

    This is how we define per-task gradients when large embedding tables are shared: the methods'
    papers treat "shared parameters" as the trunk; taking per-task gradients of million-row tables
    would cost T dense copies of them, so the tables get the weighted-sum gradient instead.

    The result equals backpropagating Σ_t w_t L_t + R once for all parameters and adding
    (d − Σ_t w_t g_t) to the shared ``.grad``. To skip recomputing the shared gradients in that pass
    (we already hold them in G), the final pass is restricted to the graph's other leaf tensors,
    found by walking the autograd graph (parameters used only inside a reentrant
    ``torch.utils.checkpoint`` region would be invisible to that walk; nothing in mtlrec uses one).
    With no shared parameters the strategy falls back to the equal-weight sum Σ_t L_t (+ R).
    The cost is T extra backward passes through the shared layers per step.

    With ``on="representation"`` the per-task gradients are taken of the architecture's shared
    representation instead (``_backward_on_representation``): much cheaper, and MGDA's upper-bound
    variant (MGDA-UB). Architectures without a representation fall back to the parameters.

    Args:
        num_tasks: T.
        on: ``parameters`` (the shared dense parameters) or ``representation``.
    """

    def __init__(self, num_tasks: int, on: GradientTarget = "parameters"):
        super().__init__(num_tasks)
        if on not in GRADIENT_TARGETS:
            raise ValueError(f"on must be one of {GRADIENT_TARGETS}, got {on!r}")
        self.on = on

    def combine(self, grads: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-task gradients G (T, P) and detached losses (T,) → (direction (P,), loss weights (T,))."""
        raise NotImplementedError

    def _backward_on_representation(
        self, losses: torch.Tensor, representation: torch.Tensor, regularizer: torch.Tensor | None
    ) -> torch.Tensor:
        """The methods on the shared representation z (MGDA-UB, Sener & Koltun 2018, Sec. 3.3).

        G holds g_t = ∇_z L_t (one cheap backward per task through the towers and gates only); the
        method's direction d replaces Σ_t w_t g_t as the gradient entering z, in ONE backward pass:
        backward of Σ_t w_t L_t (+ R) with an extra (d − Σ_t w_t g_t) fed into z. So the layers below z
        get d, everything else Σ_t w_t ∇L_t — about the cost of ``equal``.
        """
        grads = torch.stack([flat_gradient(loss, [representation]) for loss in losses])
        direction, weights = self.combine(grads, losses.detach())
        weights = weights.detach().to(losses.dtype)
        objective = weighted_objective(weights, losses, regularizer)
        correction = (direction - weights.to(grads.dtype) @ grads).view_as(representation)
        torch.autograd.backward([objective, representation], [torch.ones_like(objective), correction])
        return weights

    def backward(
        self,
        losses: torch.Tensor,
        shared_parameters: Sequence[nn.Parameter],
        regularizer: torch.Tensor | None = None,
        representation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.on == "representation" and representation is not None:
            return self._backward_on_representation(losses, representation, regularizer)
        shared = [p for p in shared_parameters if p.requires_grad]
        if not shared:
            weights = torch.ones_like(losses).detach()
            weighted_objective(weights, losses, regularizer).backward()
            return weights
        grads = task_gradients(losses, shared)
        direction, weights = self.combine(grads, losses.detach())
        weights = weights.detach().to(losses.dtype)
        parts = direction.split([parameter.numel() for parameter in shared])
        directions = [part.view_as(parameter) for part, parameter in zip(parts, shared)]
        objective = weighted_objective(weights, losses, regularizer)
        backward_with_shared_directions(objective, shared, directions, regularizer)
        return weights


def backward_with_shared_directions(
    objective: torch.Tensor,
    shared: Sequence[nn.Parameter],
    directions: Sequence[torch.Tensor],
    regularizer: torch.Tensor | None = None,
) -> None:
    """Give each shared parameter its direction (+ ∇R of the regularizer) as gradient, and every other leaf of
    ``objective``'s graph the gradient of ``objective``, without backpropagating into the shared ones again."""
    if regularizer is not None and regularizer.requires_grad:
        extra = torch.autograd.grad(regularizer, shared, retain_graph=True, allow_unused=True)
        directions = [d if g is None else d + g for d, g in zip(directions, extra)]
    shared_ids = {id(p) for p in shared}
    others = [leaf for leaf in graph_leaves(objective) if id(leaf) not in shared_ids]
    if others:
        torch.autograd.backward(objective, inputs=others)
    for parameter, direction in zip(shared, directions):
        if parameter.grad is None:
            parameter.grad = direction.detach().clone()
        else:
            parameter.grad.add_(direction)


def weighted_objective(weights: torch.Tensor, losses: torch.Tensor, regularizer: torch.Tensor | None) -> torch.Tensor:
    """Σ_t w_t L_t, plus the unweighted regularizer when there is one."""
    objective = (weights * losses).sum()
    return objective if regularizer is None else objective + regularizer


def flat_gradient(output: torch.Tensor, parameters: Sequence[torch.Tensor]) -> torch.Tensor:
    """∇ of a scalar w.r.t. ``parameters``, flattened and concatenated (P,); zeros where unused."""
    grads = torch.autograd.grad(output, parameters, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(parameters, grads)])


def task_gradients(losses: torch.Tensor, parameters: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-task gradients G (T, P) of the loss vector (T,), keeping the graph for a later backward."""
    return torch.stack([flat_gradient(loss, parameters) for loss in losses])


def graph_leaves(output: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors (parameters) whose gradients ``output.backward()`` would accumulate."""
    leaves, seen = [], set()
    stack = [output.grad_fn] if output.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return leaves


def generator_state(seed: int) -> torch.Tensor:
    """The state (a uint8 tensor, to keep as a buffer) of a CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed).get_state()


def draw(state: torch.Tensor, sample: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """Call ``sample`` with a generator restored from ``state``, then store the advanced state back in place."""
    generator = torch.Generator()
    generator.set_state(state.cpu())
    result = sample(generator)
    state.copy_(generator.get_state())
    return result
