"""Layers of ``mtlrec.nn`` against reference implementations built from the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.nn import ACTIVATIONS, MLP, ParallelExperts, SoftmaxGate, Tower, mix_experts


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def reference_experts(experts: ParallelExperts, x: torch.Tensor, activation: nn.Module) -> torch.Tensor:
    """E separately computed MLPs using slices of the fused weights: (B, D) → (B, E, H)."""
    outputs = []
    for e in range(experts.num_experts):
        hidden = x
        for weight, bias in experts.expert_layers(e):
            hidden = activation(hidden @ weight + bias)
        outputs.append(hidden)
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden_units", [[5], [6, 4], [7, 5, 3]])
def test_parallel_experts_equal_a_loop_over_separate_experts(hidden_units, activation):
    torch.manual_seed(0)
    experts = ParallelExperts(input_dim=4, num_experts=3, hidden_units=hidden_units, activation=activation)
    x = randn(9, 4)
    output = experts(x)
    assert output.shape == (9, 3, hidden_units[-1])
    assert experts.output_dim() == hidden_units[-1]
    expected = reference_experts(experts, x, ACTIVATIONS[activation]())
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)


def test_parallel_experts_equal_nn_linear_experts_with_copied_weights():
    """``expert_layers`` exposes (in, out) weights: the transposes of ``nn.Linear`` weights."""
    torch.manual_seed(0)
    experts = ParallelExperts(input_dim=4, num_experts=2, hidden_units=[6, 3])
    x = randn(5, 4)
    for e in range(2):
        mlp = MLP(4, [6, 3])
        linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, (weight, bias) in zip(linears, experts.expert_layers(e)):
                linear.weight.copy_(weight.T)
                linear.bias.copy_(bias)
        torch.testing.assert_close(experts(x)[:, e], mlp(x), rtol=1e-5, atol=1e-5)


def test_parallel_experts_gradients_match_the_reference_loop():
    torch.manual_seed(0)
    experts = ParallelExperts(input_dim=4, num_experts=3, hidden_units=[5, 4])
    x = randn(6, 4)
    target = randn(6, 3, 4, seed=1)
    fused_grads = torch.autograd.grad((experts(x) * target).sum(), list(experts.parameters()))
    loop_grads = torch.autograd.grad(
        (reference_experts(experts, x, nn.ReLU()) * target).sum(), list(experts.parameters())
    )
    for fused, loop in zip(fused_grads, loop_grads):
        torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-5)


def test_parallel_experts_need_a_hidden_layer():
    with pytest.raises(ValueError):
        ParallelExperts(input_dim=4, num_experts=2, hidden_units=[])


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    return -(probabilities * probabilities.log()).sum(-1)


def test_softmax_gate_rows_are_distributions():
    torch.manual_seed(0)
    gate = SoftmaxGate(input_dim=4, num_experts=5)
    weights = gate(randn(7, 4))
    assert weights.shape == (7, 5)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(7))
    torch.testing.assert_close(weights, torch.softmax(gate.linear(randn(7, 4)), dim=-1))


def test_softmax_gate_temperature_controls_sharpness():
    torch.manual_seed(0)
    x = randn(8, 4)
    gates = {}
    for temperature in [0.25, 1.0, 4.0]:
        gate = SoftmaxGate(input_dim=4, num_experts=5, temperature=temperature)
        gates[temperature] = gate
    for gate in gates.values():  # same logits for all temperatures
        gate.load_state_dict(gates[1.0].state_dict())
    logits = gates[1.0].linear(x)
    entropies = {}
    for temperature, gate in gates.items():
        weights = gate(x)
        torch.testing.assert_close(weights, torch.softmax(logits / temperature, dim=-1))
        torch.testing.assert_close(weights.sum(-1), torch.ones(8))
        entropies[temperature] = entropy(weights)
    assert (entropies[0.25] < entropies[1.0]).all()
    assert (entropies[1.0] < entropies[4.0]).all()
    # the argmax expert is the same at every temperature; only the sharpness changes
    assert torch.equal(gates[0.25](x).argmax(-1), gates[4.0](x).argmax(-1))


def test_mix_experts_equals_einsum():
    experts = randn(6, 4, 3)
    weights = torch.softmax(randn(6, 2, 4, seed=1), dim=-1)  # two tasks
    mixed = mix_experts(experts, weights)
    assert mixed.shape == (6, 2, 3)
    torch.testing.assert_close(mixed, torch.einsum("bte,beh->bth", weights, experts))


def test_mix_experts_reads_the_strided_output_of_parallel_experts():
    experts = ParallelExperts(input_dim=5, num_experts=3, hidden_units=[4, 6])
    outputs = experts(randn(7, 5))
    assert not outputs.is_contiguous()  # a view of feature-major memory
    weights = torch.softmax(randn(7, 1, 3, seed=2), dim=-1)
    torch.testing.assert_close(mix_experts(outputs, weights)[:, 0], (weights[:, 0, :, None] * outputs).sum(1))


def test_mix_experts_with_one_hot_weights_selects_an_expert():
    experts = randn(4, 3, 2)
    choice = torch.tensor([2, 0, 1, 2])
    weights = nn.functional.one_hot(choice, 3).float().unsqueeze(1)
    torch.testing.assert_close(mix_experts(experts, weights)[:, 0], experts[torch.arange(4), choice])


@pytest.mark.parametrize(("hidden_units", "expected_dim"), [([], 5), ([8], 8), ([8, 3], 3)])
def test_mlp_output_dim(hidden_units, expected_dim):
    mlp = MLP(5, hidden_units, activation="gelu")
    assert mlp.output_dim() == expected_dim
    x = randn(4, 5)
    output = mlp(x)
    assert output.shape == (4, expected_dim)
    if not hidden_units:
        assert torch.equal(output, x)


def test_mlp_applies_linear_then_activation_per_layer():
    torch.manual_seed(0)
    mlp = MLP(3, [4, 2], activation="tanh")
    first, second = (m for m in mlp.layers if isinstance(m, nn.Linear))
    x = randn(5, 3)
    torch.testing.assert_close(mlp(x), torch.tanh(second(torch.tanh(first(x)))))


def test_mlp_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    mlp = MLP(3, [64], dropout=0.5)
    x = randn(4, 3)
    assert any(isinstance(m, nn.Dropout) for m in mlp.layers)
    mlp.eval()
    assert torch.equal(mlp(x), mlp(x))
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))


@pytest.mark.parametrize("hidden_units", [[], [6, 3]])
def test_tower_gives_one_logit_per_sample(hidden_units):
    torch.manual_seed(0)
    tower = Tower(5, hidden_units)
    x = randn(7, 5)
    output = tower(x)
    assert output.shape == (7,)
    torch.testing.assert_close(output, tower.head(tower.mlp(x))[:, 0])
    assert tower(randn(1, 5)).shape == (1,)


def test_softmax_gate_with_an_mlp_is_softmax_of_linear_over_the_mlp():
    torch.manual_seed(0)
    gate = SoftmaxGate(input_dim=4, num_experts=3, hidden_units=[6, 5])
    x = randn(9, 4)
    hidden = torch.relu(gate.mlp.layers[2](torch.relu(gate.mlp.layers[0](x))))
    torch.testing.assert_close(gate(x), torch.softmax(gate.linear(hidden), dim=-1))
    assert gate.linear.in_features == 5


def test_softmax_gate_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        SoftmaxGate(input_dim=4, num_experts=3, temperature=0.0)
