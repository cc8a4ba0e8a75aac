"""E parallel ReLU MLP experts with a hand-written backward: the training hot path of the MoE models.

The experts' first layers read the same input, so they are one GEMM with an (E·H₁ + S, D) weight whose
last S rows are *side* projections (the linear gates of MMoE, OMoE and PLE): the gates then cost no
GEMM of their own, and in backward their logit gradients join the experts' in one buffer, so the
input and weight gradients are still one GEMM each. Activations stay feature-major, (E, H, B), so no
layer needs a transposed copy, except the last, which writes (E, B, H): read as (B, E, H) that is
what ``mix_experts``' batched matmul takes without a copy. The backward applies each ReLU mask in
place on a gradient buffer it owns and writes the first layer's gradient straight into the shared
buffer, saving the allocations and copies autograd would make. Numerically it is the same function
as ``expert_stack_eager`` (tested against it and with finite differences).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

_threshold_backward_into = torch.ops.aten.threshold_backward.grad_input


class _ExpertStack(torch.autograd.Function):
    """Forward and backward of ``expert_stack`` for ReLU experts without dropout (first-order only), in the
    inputs' dtype (fp32, or bf16 under autocast)."""

    @staticmethod
    def forward(ctx, x, num_experts, num_side, first_weight, first_bias, *later):
        weights, biases = later[0::2], later[1::2]
        expert_rows = first_weight.shape[0] - num_side
        if not weights:  # a single layer: batch-major, (B, E·H₁ + S)
            hidden = torch.addmm(first_bias, x, first_weight.t())
            outputs = hidden[:, :expert_rows].view(x.shape[0], num_experts, -1).relu_()
            side = hidden[:, expert_rows:]
            activations = [outputs]
        else:
            hidden = torch.addmm(first_bias.unsqueeze(1), first_weight, x.t())  # (E·H₁ + S, B)
            side = hidden[expert_rows:].t()
            activations = [hidden[:expert_rows].view(num_experts, -1, x.shape[0]).relu_()]
            for index, (weight, bias) in enumerate(zip(weights, biases)):
                previous = activations[-1]
                if index < len(weights) - 1:
                    activations.append(_bmm(weight, previous, bias).relu_())  # (E, H', B)
                else:  # (E, B, H) memory, returned as a (B, E, H) view
                    last = _bmm(previous.transpose(1, 2), weight.transpose(1, 2), bias.transpose(1, 2))
                    activations.append(last.relu_().transpose(0, 1))
            outputs = activations[-1]
        ctx.save_for_backward(x, first_weight, *weights, *activations)
        ctx.num_side, ctx.num_later = num_side, len(weights)
        return outputs, side

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_side):
        x, first_weight, *rest = ctx.saved_tensors
        weights, activations = rest[: ctx.num_later], rest[ctx.num_later :]
        expert_rows = first_weight.shape[0] - ctx.num_side
        needs = _needed_gradients(ctx)
        needs_first = needs[0] or needs[3] or needs[4]
        later_grads: list[torch.Tensor | None] = [None] * (2 * len(weights))
        if not weights:
            first = x.new_empty(x.shape[0], first_weight.shape[0])  # (B, E·H₁ + S)
            into = first[:, :expert_rows].view_as(grad_outputs)
            _threshold_backward_into(grad_outputs, activations[-1], 0, grad_input=into)
            side_block = first[:, expert_rows:]
        else:
            first = x.new_empty(first_weight.shape[0], x.shape[0]) if needs_first else None  # (E·H₁ + S, B)
            grad = torch.ops.aten.threshold_backward(grad_outputs, activations[-1], 0)  # (B, E, H)
            grad = grad.transpose(0, 1).transpose(1, 2)  # (E, H, B): every layer's formulas are feature-major
            for index in range(len(weights) - 1, -1, -1):
                weight, previous = weights[index], activations[index]
                if needs[5 + 2 * index]:
                    later_grads[2 * index] = _bmm(grad, previous.transpose(1, 2))
                if needs[6 + 2 * index]:
                    later_grads[2 * index + 1] = grad.sum(2, keepdim=True)
                if not (needs_first or any(needs[5 : 5 + 2 * index])):
                    break  # nothing below this layer is asked for (e.g. autograd.grad of one layer)
                into = first[:expert_rows].view_as(previous) if index == 0 else torch.empty_like(previous)
                _bmm(weight.transpose(1, 2), grad, out=into)
                grad = _threshold_backward_into(into, previous, 0, grad_input=into)
            if first is None:
                return None, None, None, None, None, *later_grads
            side_block = first[expert_rows:].t()
        if grad_side is None:
            side_block.zero_()
        else:
            side_block.copy_(grad_side)
        batch_major = not weights
        grad_x = (first @ first_weight if batch_major else first.t() @ first_weight) if needs[0] else None
        grad_first_weight = (first.t() @ x if batch_major else first @ x) if needs[3] else None
        grad_first_bias = first.sum(0 if batch_major else 1) if needs[4] else None
        return grad_x, None, None, grad_first_weight, grad_first_bias, *later_grads


def _bmm(
    a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """(E, M, K) @ (E, K, N) (+ a bias broadcast to (E, M, N)) with the work spread evenly over the threads.

    A batched GEMM hands each thread whole matrices, so E = 3 matrices on 2 threads leave one thread
    idle a third of the time (measured at these shapes: 118 GFLOP/s against 160 for E = 2 or 4). The
    E mod threads matrices left over are multiplied one at a time, each GEMM using every thread.

    Args:
        a: (E, M, K); b: (E, K, N); either may be a strided view.
        bias: None, or one per matrix: (E, M, 1) or (E, 1, N).
        out: None, or the (E, M, N) tensor to write (and return).
    """
    count = a.shape[0]
    whole = count - count % torch.get_num_threads()
    out = a.new_empty(count, a.shape[1], b.shape[2]) if out is None else out
    parts = ([slice(0, whole)] if whole else []) + [slice(e, e + 1) for e in range(whole, count)]
    for part in parts:
        if bias is None:
            torch.bmm(a[part], b[part], out=out[part])
        else:
            torch.baddbmm(bias[part], a[part], b[part], out=out[part])
    return out


def _needed_gradients(ctx) -> list[bool]:
    """``needs_input_grad`` narrowed to what the current backward pass reaches.

    ``torch.autograd.grad`` of some parameters (gradient-level weighting strategies) does not need
    the input's gradient, the largest GEMM of the backward, and GradNorm asks for one layer's: an
    input is dropped when the engine will not run the node that produced it. The engine cannot tell
    this for a leaf during ``autograd.grad`` (``expert_stack`` passes leaves through views), so a
    leaf's gradient is computed whenever it requires one.
    """
    needs = list(ctx.needs_input_grad)
    will_execute = getattr(torch._C, "_will_engine_execute_node", None)
    if will_execute is None or torch._C._current_graph_task_id() == -1:
        return needs
    tensor_inputs = [0, 3, 4, *range(5, len(needs))]  # next_functions skip num_experts and num_side
    for position, (node, _) in zip(tensor_inputs, ctx.next_functions):
        if needs[position] and node is not None and type(node).__name__ != "AccumulateGrad":
            needs[position] = will_execute(node)
    return needs


def expert_stack_eager(
    x: torch.Tensor,
    num_experts: int,
    first_weight: torch.Tensor,
    first_bias: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    activation: nn.Module,
    dropout: nn.Module,
    num_side: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``expert_stack`` with autograd's own backward: any activation, dropout, autocast, export."""
    expert_rows = first_weight.shape[0] - num_side
    if not weights:
        hidden = torch.addmm(first_bias, x, first_weight.t())  # (B, E·H₁ + S)
        pre = hidden if num_side == 0 else hidden[:, :expert_rows]  # in place on the whole tensor when it can be
        outputs = dropout(activation(pre)).reshape(x.shape[0], num_experts, -1)
        return outputs, hidden[:, expert_rows:]
    hidden = torch.addmm(first_bias.unsqueeze(1), first_weight, x.t())  # (E·H₁ + S, B)
    side = hidden[expert_rows:].t()
    pre = hidden if num_side == 0 else hidden[:expert_rows]
    hidden = dropout(activation(pre)).view(num_experts, -1, x.shape[0])
    for weight, bias in zip(weights[:-1], biases[:-1]):
        hidden = dropout(activation(torch.baddbmm(bias, weight, hidden)))  # (E, H', B)
    last = torch.baddbmm(biases[-1].transpose(1, 2), hidden.transpose(1, 2), weights[-1].transpose(1, 2))
    return dropout(activation(last)).transpose(0, 1), side  # (B, E, H) view of (E, B, H) memory


def expert_stack(
    x: torch.Tensor,
    num_experts: int,
    first_weight: torch.Tensor,
    first_bias: torch.Tensor,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    activation: nn.Module,
    dropout: nn.Module,
    num_side: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """E MLP experts over x, plus S side projections of x computed in the experts' first GEMM.

    Args:
        x: (B, D) input.
        num_experts: E.
        first_weight: (E·H₁ + S, D): expert e's first layer is rows e·H₁ … (e+1)·H₁, then S side rows.
        first_bias: (E·H₁ + S,).
        weights: the later layers' (E, H_out, H_in) weights.
        biases: their (E, H_out, 1) biases.
        activation: the experts' activation module; dropout: a Dropout or Identity module.
        num_side: S.

    Returns:
        (B, E, H) expert outputs (possibly a strided view) and the (B, S) side projections, no activation.
    """
    device = x.device.type
    autocast = torch.is_autocast_enabled(device)
    fused = (
        torch.is_grad_enabled()
        and type(activation) is nn.ReLU
        and not (isinstance(dropout, nn.Dropout) and dropout.training and dropout.p > 0)
        and not (autocast and torch.get_autocast_dtype(device) != torch.bfloat16)
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()  # inductor fuses the eager formulas itself
        and not torch._C._are_functorch_transforms_active()  # vmap / torch.func use autograd's backward
    )
    if not fused:
        layers = (first_weight, first_bias, weights, biases)
        return expert_stack_eager(x, num_experts, *layers, activation, dropout, num_side)
    later = [tensor for pair in zip(weights, biases) for tensor in pair]
    tensors = (x, first_weight, first_bias, *later)
    if autocast:  # bf16 autocast: every GEMM in bf16, as autocast would run them; fp32 gradients for fp32 inputs
        tensors = tuple(tensor.to(torch.bfloat16) for tensor in tensors)
    # every input enters through a view: the engine can tell whether a view's node runs in the current
    # backward pass, not whether a leaf's does (``_needed_gradients``)
    x, first_weight, first_bias, *later = (_viewed(t) for t in tensors)
    with torch.autocast(device, enabled=False):
        return _ExpertStack.apply(x, num_experts, num_side, first_weight, first_bias, *later)


def _viewed(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.view_as(tensor) if tensor.requires_grad and tensor.grad_fn is None else tensor
