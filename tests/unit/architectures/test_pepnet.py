"""PEPNet: EPNet's field gates, PPNet's layer gates, and the paper's stop-gradients (Chang et al., KDD 2023)."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures.pepnet import GateNU, PEPNet

TASKS = ["ctr", "cvr"]
FIELDS = [3, 1, 2]  # D = 6


def _model(**params) -> PEPNet:
    torch.manual_seed(0)
    return PEPNet(6, TASKS, domain_dim=2, prior_dim=3, field_dims=FIELDS, tower_hidden_units=[5, 4], **params)


def _inputs(rows: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randn(rows, width, generator=generator) for width in (6, 2, 3))


def _reference(model: PEPNet, x, domain, prior) -> dict[str, torch.Tensor]:
    """Eq. 4–8 written out: per-field gate spread by hand, then each tower layer gated by its own GateNU."""
    delta = model.epnet(torch.cat([domain, x], dim=1))  # (B, F)
    spread = torch.cat([delta[:, f : f + 1].expand(-1, width) for f, width in enumerate(FIELDS)], dim=1)
    personalized = x * spread
    gate_input = torch.cat([prior, personalized], dim=1)
    outputs = {}
    for task in TASKS:
        tower = model.towers[task]
        hidden = personalized
        for gate, layer in zip(tower.gates, tower.layers):
            hidden = torch.relu(layer(hidden * gate(gate_input)))
        outputs[task] = tower.head(hidden).squeeze(1)
    return outputs


def test_pepnet_matches_the_equations():
    model = _model()
    x, domain, prior = _inputs()
    outputs, expected = model(x, domain, prior), _reference(model, x, domain, prior)
    for task in TASKS:
        torch.testing.assert_close(outputs[task], expected[task])


def test_gate_nu_is_scaled_into_zero_two():
    torch.manual_seed(0)
    gate = GateNU(4, 3, hidden_dim=5)
    with torch.no_grad():
        gate.output.weight.mul_(100)  # saturate both ends
    values = gate(torch.randn(200, 4))
    assert values.min() >= 0 and values.max() <= 2
    assert values.min() < 0.05 and values.max() > 1.95


def test_epnet_gate_does_not_push_gradients_into_the_general_embeddings():
    """∂y/∂x only through O_ep = δ ⊙ x with δ held constant (the paper's stop-gradient on E in the gate)."""
    model = _model()
    x, domain, prior = _inputs()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x, domain, prior)["ctr"].sum(), x)
    held = x.detach().clone().requires_grad_(True)
    delta = model.epnet(torch.cat([domain, x.detach()], dim=1)).detach()
    spread = torch.cat([delta[:, f : f + 1].expand(-1, w) for f, w in enumerate(FIELDS)], dim=1)
    personalized = held * spread
    gate_input = torch.cat([prior, personalized.detach()], dim=1)
    tower = model.towers["ctr"]
    hidden = personalized
    for gate, layer in zip(tower.gates, tower.layers):
        hidden = torch.relu(layer(hidden * gate(gate_input)))
    (expected,) = torch.autograd.grad(tower.head(hidden).sum(), held)
    torch.testing.assert_close(grad, expected)


def test_the_scenario_and_prior_reach_the_outputs():
    model = _model()
    x, domain, prior = _inputs()
    base = model(x, domain, prior)
    assert not torch.allclose(model(x, domain + 1, prior)["ctr"], base["ctr"])
    assert not torch.allclose(model(x, domain, prior + 1)["cvr"], base["cvr"])


def test_without_field_widths_every_column_is_a_field():
    torch.manual_seed(0)
    model = PEPNet(6, TASKS, domain_dim=2, prior_dim=3)
    assert model.epnet.output.out_features == 6
    torch.testing.assert_close(model.field_spread, torch.eye(6))


@pytest.mark.parametrize("fields", [[3, 2], [3, 0, 3]])
def test_field_widths_must_cover_the_input(fields):
    with pytest.raises(ValueError, match="field_dims"):
        PEPNet(6, TASKS, domain_dim=2, prior_dim=3, field_dims=fields)
