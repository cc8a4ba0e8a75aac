"""GradNorm: the weights' gradient, renormalisation, L(0), and balancing very different loss scales."""

from __future__ import annotations

import torch
from torch import nn

from mtlrec.weighting import GradNorm


def test_the_weight_gradient_is_sign_of_g_minus_target_times_the_gradient_norm():
    # L_t = a_t · W with ‖∇_W L_t‖ = ‖a_t‖ = (3, 1); at the first step r_t = 1, target = mean(G) = 2.
    directions = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    weight = torch.ones(2, requires_grad=True)
    losses = directions @ weight
    strategy = GradNorm(2)
    weights = strategy.backward(losses, [nn.Parameter(torch.zeros(1)), weight])
    torch.testing.assert_close(strategy.task_weights.grad, torch.tensor([3.0, -1.0]))  # G = (3, 1)
    torch.testing.assert_close(strategy.initial_losses, losses.detach())
    torch.testing.assert_close(weight.grad, weights @ directions)  # the model gets Σ w_t ∇L_t


def test_weights_are_renormalised_to_sum_t_and_l0_is_kept():
    strategy = GradNorm(3)
    weight = torch.ones(3, requires_grad=True)
    strategy.backward(torch.stack([weight[0], 2 * weight[1], 3 * weight[2]]), [weight])
    with torch.no_grad():
        strategy.task_weights.copy_(torch.tensor([2.0, 1.0, -0.5]))
    weights = strategy.backward(torch.stack([weight[0], weight[1], weight[2]]) * 0.5, [weight])
    torch.testing.assert_close(weights.sum(), torch.tensor(3.0))
    assert (weights > 0).all()
    torch.testing.assert_close(strategy.initial_losses, torch.tensor([1.0, 2.0, 3.0]))


def gradient_norms(model: nn.Sequential, heads: nn.ModuleList, x: torch.Tensor, ys: torch.Tensor, w: torch.Tensor):
    """G_t = ‖∇_W w_t L_t‖ at the last shared parameter."""
    hidden = model(x)
    last = list(model.parameters())[-1]
    losses = [nn.functional.mse_loss(head(hidden).squeeze(-1), ys[:, t]) for t, head in enumerate(heads)]
    return torch.stack(
        [w[t] * torch.autograd.grad(loss, last, retain_graph=True)[0].norm() for t, loss in enumerate(losses)]
    )


def test_gradient_norms_of_very_different_loss_scales_move_toward_each_other():
    torch.manual_seed(0)
    x = torch.randn(256, 5)
    ys = torch.stack([x[:, 0] - x[:, 1], 30 * (x[:, 2] + 0.5 * x[:, 3])], dim=1)  # loss scales ~1 : 1000
    trunk = nn.Sequential(nn.Linear(5, 8), nn.Tanh())
    heads = nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])
    strategy = GradNorm(2, alpha=1.5)
    before = gradient_norms(trunk, heads, x, ys, torch.ones(2))
    optimizer = torch.optim.Adam([*trunk.parameters(), *heads.parameters(), *strategy.parameters()], lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        hidden = trunk(x)
        losses = torch.stack([nn.functional.mse_loss(h(hidden).squeeze(-1), ys[:, t]) for t, h in enumerate(heads)])
        strategy.backward(losses, list(trunk.parameters()))
        optimizer.step()
    with torch.no_grad():
        weights = strategy.task_weights.clamp(min=1e-4) * 2 / strategy.task_weights.clamp(min=1e-4).sum()
    after = gradient_norms(trunk, heads, x, ys, weights)
    ratio_before, ratio_after = (before[1] / before[0]).log().abs(), (after[1] / after[0]).log().abs()
    assert ratio_before > 2.0  # ≈ 20× apart at the start
    assert ratio_after < 0.5 * ratio_before, (before, after)
    assert weights[0] > weights[1]
