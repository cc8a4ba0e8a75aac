"""STAR's layers against naive references: star FCN, partitioned normalisation, auxiliary network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.architectures.star import STAR, PartitionedNorm, StarFCN, StarLinear
from mtlrec.nn import MLP


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def randomise_domain_parameters(module: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if "domain" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))


def test_star_fcn_at_initialisation_equals_an_mlp_with_the_shared_weights():
    torch.manual_seed(0)
    fcn = StarFCN(5, [6, 3], num_domains=4, activation="tanh")
    mlp = MLP(5, [6, 3], activation="tanh")
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, layer in zip(linears, fcn.layers):
            linear.weight.copy_(layer.weight.T)
            linear.bias.copy_(layer.bias)
    x, domain = randn(9, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3])
    assert fcn.output_dim() == 3
    torch.testing.assert_close(fcn(x, domain), mlp(x))


def test_star_linear_equals_a_per_sample_reference():
    torch.manual_seed(0)
    layer = StarLinear(4, 3, num_domains=3)
    randomise_domain_parameters(layer)
    x, domain = randn(7, 4), torch.tensor([2, 0, 1, 1, 2, 0, 2])
    output = layer(x, domain)
    for row in range(7):
        p = domain[row]
        weight = layer.weight * layer.domain_weight[:, p, :]  # W ⊙ W_p, (in, out)
        expected = x[row] @ weight + layer.bias + layer.domain_bias[p]
        torch.testing.assert_close(output[row], expected)


def test_star_linear_gives_no_gradient_to_absent_domains():
    layer = StarLinear(4, 3, num_domains=3)
    layer(randn(5, 4), torch.tensor([0, 2, 0, 2, 2])).sum().backward()
    assert torch.count_nonzero(layer.domain_weight.grad[:, 1]) == 0
    assert torch.count_nonzero(layer.domain_bias.grad[1]) == 0
    assert torch.count_nonzero(layer.domain_weight.grad[:, 0]) > 0


def test_partitioned_norm_in_eval_uses_each_domains_running_statistics():
    norm = PartitionedNorm(2, num_domains=2).eval()
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([[1.0, 0.0], [3.0, -2.0]]))
        norm.running_var.copy_(torch.tensor([[4.0, 1.0], [0.25, 9.0]]))
        norm.domain_seen.fill_(True)
        norm.weight.copy_(torch.tensor([2.0, 1.0]))  # γ
        norm.bias.copy_(torch.tensor([0.5, 0.0]))  # β
        norm.domain_weight.copy_(torch.tensor([[1.0, 3.0], [0.5, 1.0]]))  # γ_p
        norm.domain_bias.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))  # β_p
    x = torch.tensor([[3.0, 1.0], [3.0, 1.0]])  # the same sample in domains 0 and 1
    output = norm(x, torch.tensor([0, 1]))
    eps = norm.eps
    expected = torch.tensor(
        [
            [2 * 1 * (3 - 1) / (4 + eps) ** 0.5 + 0.5, 1 * 3 * (1 - 0) / (1 + eps) ** 0.5 + 1.0],
            [2 * 0.5 * (3 - 3) / (0.25 + eps) ** 0.5 + 0.5 - 1.0, 1 * 1 * (1 + 2) / (9 + eps) ** 0.5 + 0.0],
        ]
    )
    torch.testing.assert_close(output, expected)
    assert not torch.allclose(output[0], output[1])


def test_partitioned_norm_in_eval_uses_global_statistics_for_unseen_domains():
    norm = PartitionedNorm(1, num_domains=3)
    norm(torch.tensor([[1.0], [3.0], [10.0], [14.0]]), torch.tensor([0, 0, 1, 1]))  # domain 2 never seen
    norm.eval()
    assert norm.domain_seen.tolist() == [True, True, False]
    x = torch.tensor([[5.0]])
    expected = (5.0 - norm.global_mean) / torch.sqrt(norm.global_var + norm.eps)
    torch.testing.assert_close(norm(x, torch.tensor([2]))[0], expected)
    torch.testing.assert_close(norm.global_mean, torch.tensor([0.1 * 7.0]))


def test_running_statistics_update_per_domain_in_training_only():
    norm = PartitionedNorm(1, num_domains=3, momentum=0.1)
    x = torch.tensor([[1.0], [3.0], [2.0], [2.0], [8.0]])
    domain = torch.tensor([0, 0, 1, 1, 1])
    norm(x, domain)
    # domain 0: mean 2, unbiased var 2; domain 1: mean 4, unbiased var 12; domain 2 absent: unchanged
    torch.testing.assert_close(norm.running_mean[:, 0], torch.tensor([0.2, 0.4, 0.0]))
    torch.testing.assert_close(norm.running_var[:, 0], torch.tensor([0.9 + 0.2, 0.9 + 1.2, 1.0]))
    before = {name: buffer.clone() for name, buffer in norm.named_buffers()}
    norm.eval()
    norm(x, domain)
    for name, buffer in norm.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_training_normalises_each_domain_with_its_own_batch_statistics():
    norm = PartitionedNorm(3, num_domains=3)
    x = torch.cat([randn(6, 3) * 5 + 10, randn(4, 3, seed=1) - 3, randn(1, 3, seed=2)])
    domain = torch.tensor([0] * 6 + [1] * 4 + [2])
    output = norm(x, domain)
    for rows in (slice(0, 6), slice(6, 10)):
        torch.testing.assert_close(output[rows].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
        torch.testing.assert_close(output[rows].var(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    # a lone sample has no variance estimate: it is normalised with the whole batch's statistics
    expected = (x[10] - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + norm.eps)
    torch.testing.assert_close(output[10], expected)


def test_batch_statistics_option_normalises_with_the_whole_batch():
    norm = PartitionedNorm(2, num_domains=2, statistics="batch")
    x, domain = randn(8, 2) * 3 + 1, torch.tensor([0, 1] * 4)
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + norm.eps)
    torch.testing.assert_close(norm(x, domain), expected)
    with pytest.raises(ValueError):
        PartitionedNorm(2, num_domains=2, statistics="layer")


def test_star_output_is_the_tower_plus_the_auxiliary_logit():
    torch.manual_seed(0)
    model = STAR(5, ["ctr", "cvr"], num_domains=3, hidden_units=[6], tower_hidden_units=[4], output_dims={"cvr": 3})
    randomise_domain_parameters(model)
    model.eval()
    x, domain = randn(7, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    outputs = model(x, domain)
    shared = model.fcn(model.norm(x, domain), domain)
    auxiliary = model.auxiliary(torch.cat([model.domain_embedding(domain), x], dim=1))
    for task in ("ctr", "cvr"):
        torch.testing.assert_close(outputs[task], model.towers[task](shared) + model.auxiliary_heads[task](auxiliary))
    assert outputs["ctr"].shape == (7,) and outputs["cvr"].shape == (7, 3)


def test_star_task_modules_are_tower_and_auxiliary_head():
    model = STAR(5, ["ctr", "cvr"], num_domains=2, hidden_units=[6])
    owned = {id(p) for p in model.task_parameters("ctr")}
    expected = [*model.towers["ctr"].parameters(), *model.auxiliary_heads["ctr"].parameters()]
    assert owned == {id(p) for p in expected}
    shared = {id(p) for p in model.shared_parameters()}
    assert {id(p) for p in model.fcn.parameters()} | {id(p) for p in model.norm.parameters()} <= shared
