"""The industrial multi-task models side by side on the multi-scenario synthetic log, as JSON lines.

    .venv/bin/python benchmarks/industrial_models.py --seeds 0,1,2 --results runs/industrial.jsonl

Every model of ``configs/seqsynth/industrial/`` (MMoE, PLE, STAR, PEPNet, AdaTT, STEM, HoME, DBMTL; the
same features and budget: ``features.yaml``) trains in a fresh process (``train_throughput.py``) on the
data of ``../shared/bench/make_synth_seq.py --rows 1000000 --seed 0`` (written when missing; three
scenarios whose tasks weigh the hidden terms differently), once per training seed. Each run prints one
JSON line with the test AUC of click and conversion, overall and per scenario (the last 10% of the log).
Runs already in ``--results`` are not repeated, so an interrupted benchmark continues where it stopped.
The summary gives, per model, the mean and the 95% t-interval over seeds of every AUC and of the
scenario-averaged click AUC, and each model's paired difference to MMoE on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from scipy import stats

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
CONFIGS = REPO / "configs" / "seqsynth" / "industrial"
MODELS = ("mmoe", "ple", "star", "pepnet", "adatt", "stem", "home", "dbmtl")
TASKS = ("click", "conversion")
SHARED_BENCH = REPO.parent / "shared" / "bench"


def run(model: str, seed: int, data: str) -> dict:
    """One training run in a fresh process → {model, seed, overall and per-scenario AUCs, samples/s}."""
    command = [sys.executable, str(BENCHMARKS / "train_throughput.py"), "--config", str(CONFIGS / f"{model}.yaml")]
    command += ["--data", data, "--set", f"train.seed={seed}", "--slice-by", "scenario"]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if completed.returncode != 0:
        raise SystemExit(f"{model} seed {seed} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    scenarios = result["slices"]["scenario"]
    return {
        "model": model,
        "seed": seed,
        "auc": {task: result["metrics"][task]["auc"] for task in TASKS},
        "scenario_auc": {s: {task: values[task]["auc"] for task in TASKS} for s, values in scenarios.items()},
        "train_samples_per_s": result["train_samples_per_s"],
        "peak_rss_gb": result["peak_rss_gb"],
    }


def interval(values: list[float]) -> dict:
    """Mean and the 95% t-interval's half width (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": round(mean, 5), "half_width": 0.0, "n": len(values)}
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return {"mean": round(mean, 5), "half_width": round(half, 5), "n": len(values)}


def scenario_mean(row: dict, task: str) -> float:
    return statistics.fmean(values[task] for values in row["scenario_auc"].values())


def summarize(rows: list[dict]) -> dict:
    """Per model: every AUC's mean ± interval over seeds, and the paired difference to MMoE."""
    summary = {}
    baseline = {row["seed"]: scenario_mean(row, "click") for row in rows if row["model"] == "mmoe"}
    for model in dict.fromkeys([*MODELS, *(row["model"] for row in rows)]):  # ablations after the eight
        mine = [row for row in rows if row["model"] == model]
        if not mine:
            continue
        scenarios = sorted(mine[0]["scenario_auc"])
        entry = {task: interval([row["auc"][task] for row in mine]) for task in TASKS}
        entry["scenario_click"] = {s: interval([row["scenario_auc"][s]["click"] for row in mine]) for s in scenarios}
        entry["scenario_conversion"] = {
            s: interval([row["scenario_auc"][s]["conversion"] for row in mine]) for s in scenarios
        }
        entry["scenario_mean_click"] = interval([scenario_mean(row, "click") for row in mine])
        paired = [scenario_mean(row, "click") - baseline[row["seed"]] for row in mine if row["seed"] in baseline]
        if model != "mmoe" and paired:
            entry["minus_mmoe_scenario_mean_click"] = interval(paired)
        entry["train_samples_per_s"] = round(statistics.median(row["train_samples_per_s"] for row in mine))
        summary[model] = entry
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data", default=str(REPO / "bench_data" / "synth_seq_1m.parquet"))
    parser.add_argument("--results", default=str(REPO / "runs" / "industrial_models.jsonl"))
    args = parser.parse_args(argv)
    data, results = Path(args.data), Path(args.results)
    if not data.exists():
        generator = SHARED_BENCH / "make_synth_seq.py"
        subprocess.run([sys.executable, str(generator), "--rows", "1000000", "--seed", "0", "--out", str(data)],
                       check=True)
    results.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(row["model"], row["seed"]) for row in rows}
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        for model in args.models.split(","):
            if (model, seed) in done:
                continue
            row = run(model, seed, str(data))
            print(json.dumps(row), flush=True)
            with results.open("a") as out:  # one complete line per run: a killed benchmark resumes
                out.write(json.dumps(row) + "\n")
            rows.append(row)
    print(json.dumps({"summary": summarize(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
