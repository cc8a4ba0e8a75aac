"""Models of the synthetic MMoE experiment: the paper's parameter matching, the vmapped run ensemble, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlrec.app.experiments.mmoe_synthetic import SyntheticExperiment, run_experiment
from mtlrec.app.experiments.mmoe_synthetic_models import (
    MODELS,
    ModelSizes,
    RunEnsemble,
    build_model,
    matched_bottom_units,
    rule_weights,
)
from mtlrec.losses import LOSSES


def test_paper_sizes_give_the_papers_numbers():
    """MMoE paper Sec. 5: d = 100 → 100·16·8 + 16·8·2 = 13,056 weights, bottom 13056 / 116 ≈ 113."""
    sizes = ModelSizes(input_dim=100)
    assert sizes.moe_rule_weights() == 13_056
    assert matched_bottom_units(13_056, 100, 8) == 113
    assert sizes.bottom_units() == 113
    assert ModelSizes(input_dim=512).bottom_units() == 125  # 65,792 / 528 = 124.6


@pytest.mark.parametrize("input_dim", [100, 512])
def test_built_models_match_in_counted_weights(input_dim):
    sizes = ModelSizes(input_dim=input_dim)
    counts = {name: rule_weights(build_model(name, sizes)) for name in MODELS}
    assert counts["omoe"] == counts["mmoe"] == sizes.moe_rule_weights()
    h = sizes.bottom_units()
    assert counts["shared_bottom"] == h * input_dim + 2 * h * 8  # the bottom and two towers' hidden layers
    # rounding h to an integer leaves at most half a unit's weights (d + 16) / 2 of difference
    assert abs(counts["shared_bottom"] - counts["mmoe"]) <= (input_dim + 16) / 2
    all_params = {name: sum(p.numel() for p in build_model(name, sizes).parameters()) for name in MODELS}
    assert all_params["mmoe"] - all_params["omoe"] == input_dim * 8 + 8  # the second gate, and nothing else


@pytest.mark.parametrize("name", MODELS)
def test_ensemble_training_equals_separate_trainings(name):
    """Adam on the stacked parameters with the summed run losses = each run trained alone."""
    sizes = ModelSizes(input_dim=12, num_experts=3, expert_units=4, tower_units=3)
    torch.manual_seed(0)
    members = [build_model(name, sizes) for _ in range(3)]
    alone = [build_model(name, sizes) for _ in range(3)]
    for member, copy in zip(members, alone):
        copy.load_state_dict(member.state_dict())
    ensemble = RunEnsemble(members)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=0.01)
    optimizers = [torch.optim.Adam(model.parameters(), lr=0.01) for model in alone]
    mse = LOSSES["mse"]()
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        x, y = torch.randn(3, 16, 12, generator=generator), torch.randn(3, 16, 2, generator=generator)
        optimizer.zero_grad()
        ensemble.losses(x, y).sum().backward()
        optimizer.step()
        for run, (model, single) in enumerate(zip(alone, optimizers)):
            outputs = model(x[run])
            loss = (mse(outputs["task1"], y[run, :, 0]) + mse(outputs["task2"], y[run, :, 1])) / 2
            single.zero_grad()
            loss.backward()
            single.step()
    for run, model in enumerate(alone):
        for key, value in ensemble.unstacked(run).items():
            torch.testing.assert_close(value, model.state_dict()[key], rtol=1e-4, atol=1e-5)


def test_a_short_training_lowers_every_models_held_out_loss():
    settings = SyntheticExperiment(
        correlations=(0.9,),
        runs=2,
        steps=150,
        eval_every=50,
        batch_size=64,
        learning_rates=(0.01,),
        test_samples=512,
        sizes=ModelSizes(input_dim=32),
    )
    curves = run_experiment(settings)
    assert curves.steps == [0, 50, 100, 150]
    for model in MODELS:
        loss = curves.loss[(model, 0.01, 0.9)]
        assert loss.shape == (2, 4) and np.isfinite(loss).all()
        assert (loss[:, -1] < 0.6 * loss[:, 0]).all(), (model, loss)
        assert np.isnan(curves.train_loss[(model, 0.01, 0.9)][:, 0]).all()


def test_curves_depend_neither_on_the_other_correlations_nor_on_eval_every():
    """The data of p come from the run's seed alone (u1, u2, α, β, x, ε shared by the correlations)."""
    common = {"runs": 2, "steps": 40, "batch_size": 16, "test_samples": 64, "sizes": ModelSizes(input_dim=16)}
    both = run_experiment(SyntheticExperiment(correlations=(0.5, 0.9), eval_every=20, **common))
    alone = run_experiment(SyntheticExperiment(correlations=(0.9,), eval_every=10, **common))
    for model in MODELS:
        np.testing.assert_allclose(
            both.loss[(model, 1e-3, 0.9)][:, -1], alone.loss[(model, 1e-3, 0.9)][:, -1], rtol=1e-5
        )
        np.testing.assert_allclose(both.loss[(model, 1e-3, 0.9)][:, 0], alone.loss[(model, 1e-3, 0.9)][:, 0], rtol=1e-6)
    assert not np.allclose(both.loss[("mmoe", 1e-3, 0.5)][:, -1], both.loss[("mmoe", 1e-3, 0.9)][:, -1])
