"""The GPU path end to end, as one JSON document: CUDA unit tests, the 1M-row benchmark on the GPU (fp32,
bf16, compiled), a two-task census run trained on the GPU, exported and scored, and NCCL under torchrun.

Usage, on a machine with a CUDA device (from the repository root, after ``make test`` made the venv):

    .venv/bin/python benchmarks/gpu_check.py [--synth bench_data/synth_1m.csv.gz] [--out gpu_check.json]

Without a CUDA device it prints ``{"skipped": ...}`` and exits 0. Each step runs as a subprocess with a
time limit; a failing step is reported (its exit code and the end of its output) and the others still run;
the exit code is 1 when any step failed. The 1M benchmark needs the synthetic file of
``../shared/bench/make_synth.py --rows 1000000 --seed 0`` (found at ``--synth``, or made when that script is
beside the repository); without it that step is skipped with the reason. NCCL needs two GPUs (a rank per
GPU); with one it is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CUDA_TESTS = [
    "tests/unit/test_cuda_paths.py",
    "tests/unit/nn",
    "tests/unit/training/test_distributed_context.py",
    "tests/unit/training/test_sparse_adam.py",
]
CENSUS_TEST = "data/census-income/census-income.test.gz"
CENSUS = ["configs/census/mmoe.yaml", "--set", "train.epochs=2", "--set", "train.device=cuda"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth", default="bench_data/synth_1m.csv.gz", help="the 1M-row synthetic file")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per step")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device (torch.cuda.is_available() is False)"}))
        return 0
    report: dict[str, object] = {
        "device": torch.cuda.get_device_name(0),
        "devices": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        report["unit_tests"] = _step([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CUDA_TESTS], args)
        report["benchmark_1m"] = _benchmark(_synth_file(Path(args.synth), work), args)
        report["census"] = _census(work, args)
        report["nccl"] = _nccl(work, args)
    failed = [name for name, value in report.items() if isinstance(value, dict) and _failed(value)]
    report["failed"] = failed
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if failed else 0


def _failed(result: dict) -> bool:
    if "returncode" in result:
        return result["returncode"] != 0
    return any(isinstance(value, dict) and _failed(value) for value in result.values())


def _step(command: list[str], args: argparse.Namespace, parse_json: bool = False) -> dict[str, object]:
    """Run ``command`` from the repository root: exit code, seconds, its JSON line (or output tail)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"returncode": 124, "seconds": args.timeout, "error": f"timed out after {args.timeout} s"}
    result: dict[str, object] = {"returncode": done.returncode, "seconds": round(time.perf_counter() - started, 1)}
    lines = done.stdout.strip().splitlines()
    if parse_json and done.returncode == 0 and lines:
        result["result"] = json.loads(lines[-1])
    else:
        result["tail"] = (done.stdout + done.stderr)[-1500:]
    return result


def _synth_file(path: Path, work: Path) -> Path | None:
    if path.exists():
        return path
    maker = ROOT.parent / "shared" / "bench" / "make_synth.py"
    if not maker.exists():
        return None
    target = work / "synth_1m.csv.gz"
    subprocess.run([PYTHON, str(maker), "--rows", "1000000", "--seed", "0", "--out", str(target)], check=True)
    return target


def _benchmark(data: Path | None, args: argparse.Namespace) -> dict[str, object]:
    """benchmarks/train_throughput.py on the GPU: MMoE and PLE, fp32, bf16 and compiled bf16."""
    if data is None:
        return {"skipped": "no 1M synthetic file (--synth) and no ../shared/bench/make_synth.py to make it"}
    variants = {"fp32": ("fp32", "false"), "bf16": ("bf16", "false"), "bf16_compiled": ("bf16", "true")}
    results = {}
    for architecture in ("mmoe", "ple"):
        for name, (precision, compiled) in variants.items():
            command = [
                PYTHON, "benchmarks/train_throughput.py", "--config", f"benchmarks/configs/synth_{architecture}.yaml",
                "--data", str(data), "--set", "train.device=cuda", "--set", f"train.precision={precision}",
                "--set", f"train.compile={compiled}",
            ]  # fmt: skip
            results[f"{architecture}_{name}"] = _step(command, args, parse_json=True)
    return results


def _census(work: Path, args: argparse.Namespace) -> dict[str, object]:
    """Train the census MMoE on the GPU, export its weights (ONNX, parity checked) and score the test file."""
    run, artifact, scores = work / "census_run", work / "census_artifact", work / "census_scores.parquet"
    mtlrec = [PYTHON, "-m", "mtlrec"]
    steps = {
        "train": _step([*mtlrec, "train", *CENSUS, "--output", str(run), "--no-progress"], args),
        "export": _step([*mtlrec, "export", str(run), "--output", str(artifact)], args),
        "predict": _step([*mtlrec, "predict", str(artifact), "--data", CENSUS_TEST, "-o", str(scores)], args),
    }
    if (run / "metrics.json").exists():
        steps["metrics"] = json.loads((run / "metrics.json").read_text())
    if (artifact / "manifest.json").exists():
        steps["parity"] = json.loads((artifact / "manifest.json").read_text()).get("parity")
    return steps


def _nccl(work: Path, args: argparse.Namespace) -> dict[str, object]:
    """Two ranks under torchrun, one per GPU: NCCL's gradient averaging and sharded validation."""
    if torch.cuda.device_count() < 2:
        return {"skipped": "one GPU: NCCL needs a GPU per rank"}
    command = [
        PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtlrec", "train",
        *CENSUS, "--output", str(work / "census_ddp"), "--no-progress",
    ]  # fmt: skip
    return _step(command, args)  # on CUDA devices the process group is NCCL (training.distributed)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
