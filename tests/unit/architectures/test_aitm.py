"""AITM against hand-computed references: the AIT attention, the funnel wiring and the calibrator."""

from __future__ import annotations

import math

import pytest
import torch

from mtlrec.architectures.aitm import AITM, AdaptiveInformationTransfer


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def fixed_attention() -> AdaptiveInformationTransfer:
    """d = k = 2 with hand-picked weights: h1 = identity, h2 = 2·identity + [1, 0], h3 = swap."""
    module = AdaptiveInformationTransfer(2, 2)
    with torch.no_grad():
        module.query.weight.copy_(torch.eye(2))
        module.query.bias.zero_()
        module.key.weight.copy_(2 * torch.eye(2))
        module.key.bias.copy_(torch.tensor([1.0, 0.0]))
        module.value.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        module.value.bias.zero_()
    return module


def test_attention_equals_a_hand_computed_reference():
    module = fixed_attention()
    transferred = torch.tensor([[1.0, 0.0], [0.5, -1.0]])  # p_{t−1}
    own = torch.tensor([[0.0, 2.0], [1.0, 1.0]])  # q_t
    z, weights = module(transferred, own)
    for row in range(2):
        p, q = transferred[row].tolist(), own[row].tolist()
        # ⟨h1(u), h2(u)⟩ = u·(2u + [1, 0]) = 2|u|² + u_0, divided by √2
        scores = [(2 * (u[0] ** 2 + u[1] ** 2) + u[0]) / math.sqrt(2) for u in (p, q)]
        total = math.exp(scores[0]) + math.exp(scores[1])
        w = [math.exp(s) / total for s in scores]
        expected = [w[0] * p[1] + w[1] * q[1], w[0] * p[0] + w[1] * q[0]]  # h3 swaps the coordinates
        torch.testing.assert_close(weights[row], torch.tensor(w))
        torch.testing.assert_close(z[row], torch.tensor(expected))


def test_attention_weights_are_a_softmax_over_the_two_inputs():
    module = AdaptiveInformationTransfer(4, 3)
    z, weights = module(randn(7, 4), randn(7, 4, seed=1))
    assert z.shape == (7, 3) and weights.shape == (7, 2)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(7))


def test_forward_follows_the_funnel():
    """z_1 = q_1; z_t = AIT(g_t(z_{t−1}), q_t); each output is its tower on z_t."""
    torch.manual_seed(0)
    tasks = ["click", "buy", "repurchase"]
    model = AITM(5, tasks, tower_hidden_units=[6, 4], head_hidden_units=[3])
    x = randn(8, 5)
    outputs = model(x)
    z = model.encoders["click"](x)
    torch.testing.assert_close(outputs["click"], model.towers["click"](z))
    for task in tasks[1:]:
        z, _ = model.transfer_attention[task](model.transfers[task](z), model.encoders[task](x))
        torch.testing.assert_close(outputs[task], model.towers[task](z))


def test_ownership_follows_the_information_flow():
    model = AITM(5, ["click", "buy", "repurchase"], tower_hidden_units=[4], head_hidden_units=[])
    owned = {task: {id(p) for p in model.task_parameters(task)} for task in model.task_names}
    assert owned["click"] == {id(p) for p in model.towers["click"].parameters()}
    last = [model.towers["repurchase"], model.encoders["repurchase"], model.transfers["repurchase"]]
    last.append(model.transfer_attention["repurchase"])
    assert owned["repurchase"] == {id(p) for module in last for p in module.parameters()}
    shared = {id(p) for p in model.shared_parameters()}
    assert {id(p) for p in model.encoders["click"].parameters()} <= shared
    assert {id(p) for p in model.transfer_attention["buy"].parameters()} <= shared


def test_single_task_owns_its_encoder_and_has_no_calibrator():
    model = AITM(5, ["click"], tower_hidden_units=[4])
    assert list(model.shared_parameters()) == []
    assert model.auxiliary_loss(model(randn(3, 5))) is None


def test_calibrator_is_zero_when_later_steps_are_less_likely():
    model = AITM(5, ["click", "buy", "repurchase"], tower_hidden_units=[4])
    logits = torch.tensor([2.0, 0.0, -1.0], requires_grad=True)
    outputs = {"click": logits, "buy": logits - 0.5, "repurchase": logits - 3.0}  # ŷ decreasing along the funnel
    loss = model.auxiliary_loss(outputs)
    assert loss.shape == () and loss.item() == 0.0


def test_calibrator_equals_the_hand_formula_and_has_finite_gradients():
    model = AITM(5, ["click", "buy", "repurchase"], tower_hidden_units=[4], calibrator_weight=0.6)
    click = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    buy = torch.tensor([1.0, 0.5, -3.0], requires_grad=True)
    repurchase = torch.tensor([0.0, 2.0, 5.0], requires_grad=True)
    loss = model.auxiliary_loss({"click": click, "buy": buy, "repurchase": repurchase})

    def sigmoid(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    def penalty(earlier: list[float], later: list[float]) -> float:
        return sum(max(sigmoid(b) - sigmoid(a), 0.0) for a, b in zip(earlier, later)) / len(earlier)

    expected = 0.6 * (penalty(click.tolist(), buy.tolist()) + penalty(buy.tolist(), repurchase.tolist()))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    for tensor in (click, buy, repurchase):
        assert torch.isfinite(tensor.grad).all()
    assert click.grad[0] < 0 and buy.grad[0] > 0  # pushes ŷ_click up and ŷ_buy down where out of order


def test_calibrator_skips_pairs_with_a_multi_class_task():
    model = AITM(5, ["click", "rating", "buy"], tower_hidden_units=[4], output_dims={"rating": 3})
    outputs = model(randn(6, 5))
    assert outputs["rating"].shape == (6, 3)
    assert model.auxiliary_loss(outputs) is None
    assert AITM(5, ["click", "buy"], calibrator_weight=0.0).auxiliary_loss({}) is None


def test_attention_weights_are_recorded_only_when_asked():
    model = AITM(5, ["click", "buy", "repurchase"], tower_hidden_units=[4])
    model(randn(6, 5))
    assert model.last_gate_weights == {}
    model.record_gates = True
    model(randn(6, 5))
    assert set(model.last_gate_weights) == {"buy", "repurchase"}
    for weights in model.last_gate_weights.values():
        assert weights.shape == (6, 2) and not weights.requires_grad
        torch.testing.assert_close(weights.sum(1), torch.ones(6))


def test_rejects_an_empty_encoder():
    with pytest.raises(ValueError):
        AITM(5, ["click", "buy"], tower_hidden_units=[])
