"""The CUDA path of training: the fused expert stack, bf16 autocast, compilation (Triton), sparse embedding
updates and a whole run on the GPU against the same run on the CPU. Skipped without a CUDA device;
``benchmarks/gpu_check.py`` runs these on a machine with one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtlrec.app import build
from mtlrec.app.run_files import RunFiles
from mtlrec.model.compiled import compile_model
from mtlrec.nn.expert_stack import expert_stack, expert_stack_eager
from mtlrec.training.distributed import DistributedContext
from mtlrec.training.precision import resolve_precision

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CUDA = torch.device("cuda")


def small_trainer(tmp_path, device: torch.device, run: str, **train):
    from tests.small_runs import good_rows, small_config, write_csv

    train_file = tmp_path / "train.csv"
    if not train_file.exists():
        write_csv(train_file, good_rows(120))
    config = small_config(train_file, {"params": {"num_experts": 2}}, precision="fp32", **train)
    files = RunFiles(tmp_path / run)
    files.root.mkdir()
    context = DistributedContext(device=device)
    pipeline, data = build.training_data(config, files, False, context)
    torch.manual_seed(0)
    model = build.build_model(config, pipeline).to(device)
    return build.build_trainer(config, model, pipeline, files, show_progress_bar=False, context=context), data


def expert_inputs(device: torch.device, num_side: int = 3):
    generator = torch.Generator().manual_seed(0)

    def leaf(*shape):
        return torch.randn(*shape, generator=generator).to(device).requires_grad_()

    return (leaf(64, 24), 4, leaf(4 * 32 + num_side, 24), leaf(4 * 32 + num_side), [leaf(4, 16, 32)],
            [leaf(4, 16, 1)], nn.ReLU(), nn.Identity(), num_side)  # fmt: skip


def test_fused_expert_stack_on_cuda_equals_autograd():
    arguments = expert_inputs(CUDA)
    leaves = [arguments[0], arguments[2], arguments[3], *arguments[4], *arguments[5]]
    results = []
    for function in (expert_stack, expert_stack_eager):
        outputs, side = function(*arguments)
        loss = outputs.square().sum() + side.sum()
        results.append((outputs, side, torch.autograd.grad(loss, leaves)))
    assert results[0][0].grad_fn.name() == "_ExpertStackBackward"
    torch.testing.assert_close(results[0][:2], results[1][:2], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[0][2], results[1][2], rtol=1e-4, atol=1e-3)


def test_bf16_autocast_on_cuda_takes_the_fused_path_with_fp32_gradients():
    arguments = expert_inputs(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        outputs, side = expert_stack(*arguments)
    assert outputs.dtype == torch.bfloat16 and outputs.grad_fn.name() == "_ExpertStackBackward"
    (outputs.float().sum() + side.float().sum()).backward()
    assert arguments[2].grad.dtype == torch.float32 and torch.isfinite(arguments[2].grad).all()


def test_precision_auto_on_cuda_follows_the_device():
    assert resolve_precision("auto", CUDA) == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")


def test_a_run_on_cuda_trains_like_the_same_run_on_the_cpu(tmp_path):
    cpu, data = small_trainer(tmp_path, torch.device("cpu"), "cpu", epochs=2)
    cpu_result = cpu.fit(data["train"], data["valid"])
    gpu, data = small_trainer(tmp_path, CUDA, "gpu", epochs=2)
    gpu_result = gpu.fit(data["train"], data["valid"])
    assert all(parameter.device.type == "cuda" for parameter in gpu.model.parameters())
    for cpu_record, gpu_record in zip(cpu_result.history, gpu_result.history, strict=True):
        for task, loss in cpu_record["train_loss"].items():
            assert gpu_record["train_loss"][task] == pytest.approx(loss, rel=2e-2)


def test_compiled_training_on_cuda(tmp_path):
    trainer, data = small_trainer(tmp_path, CUDA, "compiled", epochs=1, compile=True)
    result = trainer.fit(data["train"], data["valid"])
    assert result.setup["compile"]["compiled"] and trainer.compiled is not None
    assert all(torch.isfinite(torch.tensor(list(r["train_loss"].values()))).all() for r in result.history)


def test_compiled_forward_on_cuda_equals_eager(tmp_path):
    trainer, data = small_trainer(tmp_path, CUDA, "forward")
    batch = next(iter(trainer._source(data["train"]).epoch(0))).to(CUDA)
    eager = trainer.model(batch.inputs)
    compiled = trainer.model(batch.inputs, compiled=compile_model(trainer.model))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
