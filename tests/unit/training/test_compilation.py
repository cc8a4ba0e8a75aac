"""train.compile: the compiled model computes what the eager one does, keeps its parameter names, trains with
sparse embedding updates and resumes; ``auto`` decides by its probe; train.precision auto."""

from __future__ import annotations

import logging

import pytest
import torch
from tests.small_runs import built_trainer

from mtlrec.model.compiled import compile_model
from mtlrec.training import compilation
from mtlrec.training.compilation import probe_compile
from mtlrec.training.precision import native_bf16, resolve_precision

ROWS = 120  # 90 train rows: 9 steps of 10; 30 valid
MODEL = {"params": {"num_experts": 2}}


def trainer_of(tmp_path, run="run", **train):
    return built_trainer(tmp_path, rows=ROWS, model=MODEL, run=run, precision="fp32", **train)


def test_compiled_forward_and_backward_equal_the_eager_ones_and_names_are_kept(tmp_path):
    trainer, data = trainer_of(tmp_path)
    model = trainer.model
    batch = next(iter(trainer._source(data["train"]).epoch(0)))
    names = list(model.state_dict())

    def outputs_and_gradients(compiled=None):
        model.zero_grad(set_to_none=True)
        logits = model(batch.inputs, compiled=compiled)
        torch.stack([value.sum() for value in logits.values()]).sum().backward()
        gradients = {name: p.grad.to_dense() for name, p in model.named_parameters() if p.grad is not None}
        return {task: value.detach().clone() for task, value in logits.items()}, gradients

    eager_logits, eager_gradients = outputs_and_gradients()
    compiled = compile_model(model)
    compiled_logits, compiled_gradients = outputs_and_gradients(compiled)
    assert compiled.names() == ["architecture"]
    assert compiled.architecture._orig_mod is model.architecture  # a compiled wrapper sharing the parameters
    assert list(model.state_dict()) == names  # the model itself is unchanged: checkpoints and exports too
    torch.testing.assert_close(compiled_logits, eager_logits, rtol=1e-4, atol=1e-5)
    assert compiled_gradients.keys() == eager_gradients.keys()
    torch.testing.assert_close(compiled_gradients, eager_gradients, rtol=1e-4, atol=1e-5)
    assert all(table.grad.is_sparse for table in model.embedding_parameters())  # lookups stay eager, row-sparse


def test_a_compiled_run_trains_like_an_eager_one_and_resumes(tmp_path):
    eager, data = trainer_of(tmp_path, run="eager", epochs=2)
    eager_result = eager.fit(data["train"], data["valid"])
    compiled, data = trainer_of(tmp_path, run="compiled", epochs=2, max_steps=9, compile="true")  # one epoch
    compiled.fit(data["train"], data["valid"])
    resumed, data = trainer_of(tmp_path, run="compiled_again", epochs=2, compile="true")
    resumed.files = compiled.files  # the same run directory, a fresh process's objects
    result = resumed.fit(data["train"], data["valid"], resume=True)
    assert result.setup["compile"]["compiled"] and result.setup["compile"]["compile_seconds"] >= 0
    assert result.setup["precision"] == "fp32"
    # Adam's first steps move each weight by about ±lr whatever its gradient's size, so the rounding-level
    # differences of fused kernels (the forward and backward agree to 1e-5 above) show in the losses
    assert len(result.history) == 2
    for eager_record, record in zip(eager_result.history, result.history):
        for task, loss in eager_record["train_loss"].items():
            assert record["train_loss"][task] == pytest.approx(loss, rel=2e-2)
        for task, metrics in eager_record["valid"].items():
            assert record["valid"][task]["logloss"] == pytest.approx(metrics["logloss"], rel=2e-2)


@pytest.mark.parametrize("gain, compiles", [(0.0, True), (float("inf"), False)])
def test_auto_compiles_when_the_probe_shows_a_gain_and_leaves_the_run_unchanged(tmp_path, monkeypatch, gain, compiles):
    monkeypatch.setattr(compilation, "MIN_GAIN", gain)
    eager, data = trainer_of(tmp_path, run="eager", seed=3)
    eager_result = eager.fit(data["train"], data["valid"])
    probed, data = trainer_of(tmp_path, run="auto", seed=3, compile="auto")
    result = probed.fit(data["train"], data["valid"])
    report = result.setup["compile"]
    assert report["requested"] == "auto" and report["compiled"] is compiles
    assert report["eager_ms"] > 0 and report["compiled_ms"] > 0 and report["compile_seconds"] >= 0
    assert (report.get("modules") == ["architecture"]) is compiles
    # the probe takes no optimizer step and restores the random state: the same losses as never probing
    # (exactly when it stays eager; to the compiled kernels' rounding, as above, when it compiles)
    for task, loss in eager_result.history[0]["train_loss"].items():
        assert result.history[0]["train_loss"][task] == pytest.approx(loss, rel=2e-2 if compiles else 1e-7)


def test_the_probe_leaves_no_gradient_and_restores_the_random_state(tmp_path):
    trainer, data = trainer_of(tmp_path)
    batch = next(iter(trainer._source(data["train"]).epoch(0)))
    state = torch.get_rng_state()
    report, compiled = probe_compile(trainer.model, batch.inputs)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(parameter.grad is None for parameter in trainer.model.parameters())
    assert report.compiled == (report.eager_ms / report.compiled_ms >= compilation.MIN_GAIN)
    assert (compiled is not None) == report.compiled


def test_precision_auto_is_bf16_where_the_device_has_it_natively(tmp_path, caplog):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if torch.cpu._is_avx512_bf16_supported() else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", cpu)
    with caplog.at_level(logging.INFO, logger="mtlrec.train"):
        trainer, _ = built_trainer(tmp_path, rows=ROWS, model=MODEL)  # the config's default: auto
    assert trainer.precision == ("bf16" if native_bf16(cpu) else "fp32") and trainer.bf16 == native_bf16(cpu)
    assert f"train.precision auto: {trainer.precision} on cpu" in caplog.text
