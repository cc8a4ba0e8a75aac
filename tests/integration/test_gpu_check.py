"""benchmarks/gpu_check.py skips cleanly where torch sees no CUDA device (and reports failed steps where it does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script runs in full")
def test_without_a_gpu_the_script_prints_a_skip_and_exits_0():
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}


def test_a_failed_step_anywhere_in_the_report_counts(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    assert gpu_check._failed({"train": {"returncode": 0}, "export": {"returncode": 1}})
    assert not gpu_check._failed({"fp32": {"returncode": 0, "result": {}}, "nccl": {"skipped": "one GPU"}})
