"""The hand-written expert-stack backward against autograd's (the eager path) and finite differences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.nn import ParallelExperts, SoftmaxGate, gated_experts
from mtlrec.nn.expert_stack import _bmm, expert_stack, expert_stack_eager

DOUBLE = torch.float64


def make_inputs(hidden_units: list[int], num_side: int, num_experts: int = 3, batch: int = 7, dim: int = 5):
    """Random float64 leaves: x, the (E·H₁ + S, D) first weight and bias, the later layers."""
    generator = torch.Generator().manual_seed(len(hidden_units) * 10 + num_side)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=DOUBLE).requires_grad_()

    first_weight = leaf(num_experts * hidden_units[0] + num_side, dim)
    first_bias = leaf(num_experts * hidden_units[0] + num_side)
    weights = [leaf(num_experts, w_out, w_in) for w_in, w_out in zip(hidden_units, hidden_units[1:])]
    biases = [leaf(num_experts, w_out, 1) for w_out in hidden_units[1:]]
    return leaf(batch, dim), first_weight, first_bias, weights, biases


def run(function, inputs, num_side: int, num_experts: int = 3):
    x, first_weight, first_bias, weights, biases = inputs
    return function(x, num_experts, first_weight, first_bias, weights, biases, nn.ReLU(), nn.Identity(), num_side)


@pytest.mark.parametrize("num_side", [0, 4])
@pytest.mark.parametrize("hidden_units", [[5], [6, 4], [7, 5, 3]])
def test_fused_backward_equals_autograd_on_the_eager_path(hidden_units, num_side):
    inputs = make_inputs(hidden_units, num_side)
    leaves = [inputs[0], inputs[1], inputs[2], *inputs[3], *inputs[4]]
    fused_outputs, fused_side = run(expert_stack, inputs, num_side)
    assert fused_outputs.grad_fn.name() == "_ExpertStackBackward"
    eager_outputs, eager_side = run(expert_stack_eager, inputs, num_side)
    torch.testing.assert_close(fused_outputs, eager_outputs)
    torch.testing.assert_close(fused_side, eager_side)
    projection = torch.randn(fused_outputs.shape, dtype=DOUBLE, generator=torch.Generator().manual_seed(1))
    side_projection = torch.randn(fused_side.shape, dtype=DOUBLE, generator=torch.Generator().manual_seed(2))

    def gradients(outputs, side):
        loss = (outputs * projection).sum() + (side * side_projection).sum()
        return torch.autograd.grad(loss, leaves)

    for fused, eager in zip(gradients(fused_outputs, fused_side), gradients(eager_outputs, eager_side)):
        torch.testing.assert_close(fused, eager)


@pytest.mark.parametrize("hidden_units", [[4], [4, 3], [4, 3, 2]])
def test_fused_backward_passes_finite_differences(hidden_units):
    inputs = make_inputs(hidden_units, num_side=2, batch=4, dim=3)
    x, first_weight, first_bias, weights, biases = inputs

    def function(*tensors):
        x, first_weight, first_bias, *later = tensors
        outputs, side = expert_stack(
            x, 3, first_weight, first_bias, later[0::2], later[1::2], nn.ReLU(), nn.Identity(), 2
        )
        return outputs, side

    later = [tensor for pair in zip(weights, biases) for tensor in pair]
    assert torch.autograd.gradcheck(function, (x, first_weight, first_bias, *later))


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_evenly_spread_batched_matmul_equals_bmm(count, threads):
    generator = torch.Generator().manual_seed(count)
    a, b = torch.randn(count, 4, 6, generator=generator), torch.randn(count, 6, 3, generator=generator)
    bias = torch.randn(count, 1, 3, generator=generator)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the split into one batched GEMM and single ones depends on it
    try:
        torch.testing.assert_close(_bmm(a, b), torch.bmm(a, b))
        torch.testing.assert_close(_bmm(a, b, bias), torch.baddbmm(bias, a, b))
        out = torch.full((count, 4, 3), float("nan"))
        assert _bmm(a, b, out=out) is out
        torch.testing.assert_close(out, torch.bmm(a, b))
    finally:
        torch.set_num_threads(before)


def test_unused_side_projections_get_a_zero_gradient():
    inputs = make_inputs([5, 4], num_side=3)
    outputs, _ = run(expert_stack, inputs, num_side=3)
    grad_weight, grad_bias = torch.autograd.grad(outputs.sum(), [inputs[1], inputs[2]])
    assert torch.all(grad_weight[-3:] == 0) and torch.all(grad_bias[-3:] == 0)
    assert grad_weight[:-3].abs().sum() > 0


def test_only_the_gradients_asked_for_are_computed():
    inputs = make_inputs([5, 4], num_side=0)
    x = inputs[0].detach()  # the input needs no gradient: the weights still get theirs
    outputs, _ = expert_stack(x, 3, inputs[1], inputs[2], inputs[3], inputs[4], nn.ReLU(), nn.Identity())
    eager, _ = expert_stack_eager(x, 3, inputs[1], inputs[2], inputs[3], inputs[4], nn.ReLU(), nn.Identity())
    fused_grads = torch.autograd.grad(outputs.sum(), [inputs[1], *inputs[3]])
    eager_grads = torch.autograd.grad(eager.sum(), [inputs[1], *inputs[3]])
    for fused, reference in zip(fused_grads, eager_grads):
        torch.testing.assert_close(fused, reference)


def test_eager_path_serves_inference_other_activations_and_dropout():
    inputs = make_inputs([5, 4], num_side=0)
    x, first_weight, first_bias, weights, biases = inputs
    with torch.no_grad():
        outputs, _ = expert_stack(x, 3, first_weight, first_bias, weights, biases, nn.ReLU(), nn.Identity())
    assert outputs.grad_fn is None
    outputs, _ = expert_stack(x, 3, first_weight, first_bias, weights, biases, nn.GELU(), nn.Identity())
    assert outputs.grad_fn.name() != "_ExpertStackBackward"
    dropout = nn.Dropout(0.5).train()
    outputs, _ = expert_stack(x, 3, first_weight, first_bias, weights, biases, nn.ReLU(), dropout)
    assert outputs.grad_fn.name() != "_ExpertStackBackward"
    with torch.autocast("cpu", dtype=torch.float16):
        single_layer = (first_weight.float(), first_bias.float(), [], [])
        outputs, _ = expert_stack(x.float(), 3, *single_layer, nn.ReLU(), nn.Identity())
    assert outputs.grad_fn.name() != "_ExpertStackBackward"


@pytest.mark.parametrize("num_side", [0, 4])
@pytest.mark.parametrize("hidden_units", [[16], [32, 16], [32, 24, 16]])
def test_bf16_autocast_runs_the_fused_path_like_autocast_runs_the_eager_one(hidden_units, num_side):
    """Under bf16 autocast the fused GEMMs run in bf16 (as autocast runs the eager ones) and fp32 leaves get
    fp32 gradients; both agree to bf16 precision, and both stay near the fp32 function."""
    inputs = make_inputs(hidden_units, num_side, num_experts=4, batch=64, dim=24)
    x, first_weight, first_bias, weights, biases = (
        tensor.detach().float().requires_grad_() if isinstance(tensor, torch.Tensor) else
        [t.detach().float().requires_grad_() for t in tensor]
        for tensor in inputs
    )  # fmt: skip
    leaves = [x, first_weight, first_bias, *weights, *biases]
    layers = (x, 4, first_weight, first_bias, weights, biases, nn.ReLU(), nn.Identity(), num_side)
    results = {}
    for name, function, enabled in [("fused", expert_stack, True), ("eager", expert_stack_eager, True),
                                    ("fp32", expert_stack_eager, False)]:  # fmt: skip
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            outputs, side = function(*layers)
        loss = outputs.float().square().sum() + side.float().sum()
        results[name] = (outputs, side, torch.autograd.grad(loss, leaves))
    assert results["fused"][0].grad_fn.name() == "_ExpertStackBackward"
    assert results["fused"][0].dtype == results["eager"][0].dtype == torch.bfloat16

    def pairs(name, reference):  # (name's, reference's) outputs, side projections and each leaf's gradient
        ours, theirs = results[name], results[reference]
        return [(a.float(), b.float()) for a, b in [*zip(ours[:2], theirs[:2]), *zip(ours[2], theirs[2])] if b.numel()]

    for fused, eager in pairs("fused", "eager"):
        torch.testing.assert_close(fused, eager, rtol=2e-2, atol=2e-2 * eager.abs().max().item())
    eager_errors = [(eager - fp32).norm() for eager, fp32 in pairs("eager", "fp32")]
    for (fused, fp32), eager_error in zip(pairs("fused", "fp32"), eager_errors):  # as far from fp32 as autocast's
        assert (fused - fp32).norm() <= 1.5 * eager_error + 1e-3 * fp32.norm()
    assert all(gradient.dtype == torch.float32 for gradient in results["fused"][2])


@pytest.mark.parametrize("gate_hidden_units", [[], [6]])
def test_gated_experts_equal_experts_and_gates_computed_apart(gate_hidden_units):
    torch.manual_seed(0)
    experts = ParallelExperts(input_dim=5, num_experts=3, hidden_units=[6, 4])
    gates = [SoftmaxGate(5, 3, hidden_units=gate_hidden_units), SoftmaxGate(5, 3, temperature=0.5)]
    x = torch.randn(8, 5, requires_grad=True)
    outputs, weights = gated_experts(experts, gates, x)
    torch.testing.assert_close(outputs, experts(x))
    for gate, gate_weights in zip(gates, weights):
        torch.testing.assert_close(gate_weights, gate(x))
    parameters = [x, *experts.parameters(), *(p for gate in gates for p in gate.parameters())]
    target = torch.randn(8, 3, 4)
    loss = (outputs * target).sum() + sum((w * torch.arange(3.0)).sum() for w in weights)
    apart = (experts(x) * target).sum() + sum((gate(x) * torch.arange(3.0)).sum() for gate in gates)
    for fused, reference in zip(torch.autograd.grad(loss, parameters), torch.autograd.grad(apart, parameters)):
        torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)


def test_functorch_transforms_take_the_eager_path():
    """``torch.func.vmap`` (the batched synthetic experiments) cannot run the custom backward."""
    inputs = make_inputs([5, 4], num_side=0)
    x, first_weight, first_bias, weights, biases = inputs
    stacked = torch.stack([x, 2 * x])

    def experts_of(batch: torch.Tensor) -> torch.Tensor:
        return expert_stack(batch, 3, first_weight, first_bias, weights, biases, nn.ReLU(), nn.Identity())[0]

    batched = torch.func.vmap(experts_of)(stacked)
    torch.testing.assert_close(batched[1], experts_of(2 * x))


@pytest.mark.parametrize("produced", [False, True])
def test_autograd_grad_of_some_parameters_skips_the_first_layer_gemms(produced):
    """Gradient-level weighting strategies ask for a few parameters' gradients many times (GradNorm:
    one layer's), for leaves and for inputs produced by other nodes (the embedding output, the
    first weight concatenated with the gates')."""
    x, first_weight, first_bias, weights, biases = make_inputs([5, 4, 3], num_side=2)
    inputs = (x * 1.0, torch.cat([first_weight[:-2], first_weight[-2:]])) if produced else (x, first_weight)
    layers = (*inputs[1:], first_bias, weights, biases, nn.ReLU(), nn.Identity(), 2)
    outputs, side = expert_stack(inputs[0], 3, *layers)
    eager_outputs, eager_side = expert_stack_eager(inputs[0], 3, *layers)
    fused_loss, eager_loss = outputs.sum() + side.sum(), eager_outputs.sum() + eager_side.sum()
    with torch.profiler.profile() as profile:
        fused = torch.autograd.grad(fused_loss, [weights[-1], biases[1]], retain_graph=True)
    assert not [event for event in profile.events() if event.name in ("aten::mm", "aten::matmul")]
    eager = torch.autograd.grad(eager_loss, [weights[-1], biases[1]], retain_graph=True)
    for fused_grad, eager_grad in zip(fused, eager):
        torch.testing.assert_close(fused_grad, eager_grad)
    fused = torch.autograd.grad(fused_loss, [x, first_weight, weights[0]], retain_graph=True)
    eager = torch.autograd.grad(eager_loss, [x, first_weight, weights[0]], retain_graph=True)
    for fused_grad, eager_grad in zip(fused, eager):
        torch.testing.assert_close(fused_grad, eager_grad)
