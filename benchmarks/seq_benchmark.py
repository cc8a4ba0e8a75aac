"""The sequence benchmark: MMoE flat, with pooled lists and with DIN attention, over seeds; optionally
side by side with DeepCTR-Torch (its MMoE with mean-pooled lists, and its DIN), as JSON lines.

    .venv/bin/python benchmarks/seq_benchmark.py --seeds 0,1,2
    .venv/bin/python benchmarks/seq_benchmark.py --seeds 0 --peer-python ../peer-venv/bin/python --rounds 3

The data is written first, if missing, by ``../shared/bench/make_synth_seq.py`` (``--rows``, ``--seed``;
deterministic): users, items, tag lists and behaviour sequences whose labels depend on target attention
and tag overlap; its ``.meta.json`` gives the oracle AUCs. Each of our runs is ``train_throughput.py``
on ``configs/seqsynth/mmoe_{flat,pooled,attention}.yaml`` in a fresh process (the last 10% of the log
is the test set; one epoch, batch 1024, embedding 16, 2 threads), reading the data given here. With
``--peer-python`` (a scratch venv with ``../shared/bench/peers/requirements.txt``, never the project's),
each round runs, alternating, our pooled MMoE, the peer's ``mmoe_mean``, our attention MMoE and the
peer's ``din`` on the same file, and the summary gives median samples/s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
SHARED_BENCH = REPO.parent / "shared" / "bench"
VARIANTS = {name: REPO / "configs" / "seqsynth" / f"mmoe_{name}.yaml" for name in ("flat", "pooled", "attention")}
#: Our variant → the peer's variant it is measured against.
PEER_VARIANTS = {"pooled": "mmoe_mean", "attention": "din"}


def ours(variant: str, data: str, seed: int, overrides: list[str]) -> dict:
    """One of our runs in a fresh process: samples/s, inference, peak RSS and test AUCs."""
    command = [sys.executable, str(BENCHMARKS / "train_throughput.py"), "--config", str(VARIANTS[variant])]
    command += ["--data", data, "--set", f"train.seed={seed}"]
    command += [arg for override in overrides for arg in ("--set", override)]
    result = _json_line(command)
    row = {
        "lib": "mtlrec",
        "variant": variant,
        "seed": seed,
        "train_samples_per_s": result["train_samples_per_s"],
        "inference_samples_per_s": result["inference_samples_per_s"],
        "peak_rss_gb": result["peak_rss_gb"],
        "test_auc": {task: values["auc"] for task, values in result["metrics"].items()},
    }
    print(json.dumps(row), flush=True)
    return row


def peer(python: str, variant: str, data: str) -> dict:
    """One DeepCTR-Torch run (``peers/peer_seq.py``) in the peer's venv."""
    command = [python, str(SHARED_BENCH / "peers" / "peer_seq.py"), data, "--variants", variant]
    result = _json_line(command)
    row = {
        "lib": "deepctr-torch",
        "variant": variant,
        "train_samples_per_s": result["train_sps"],
        "peak_rss_gb": result["peak_rss_gb"],
        "test_auc": result["test_auc"],
    }
    print(json.dumps(row), flush=True)
    return row


def _json_line(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_data(path: Path, rows: int, seed: int) -> dict:
    """Write the benchmark file with the shared generator when it is missing; returns its meta data."""
    if not path.is_file():
        generator = SHARED_BENCH / "make_synth_seq.py"
        if not generator.is_file():
            raise SystemExit(f"{path} is missing and {generator} is not there to write it")
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(generator), "--rows", str(rows), "--seed", str(seed), "--out", str(path)]
        subprocess.run(command, check=True)
    meta = Path(f"{path}.meta.json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


def summarize(quality: list[dict], speed: list[dict], meta: dict) -> dict:
    """Per variant over the seeds: mean, min and max test AUC and median samples/s; from the side-by-side
    rounds, each side's median samples/s and our ratio to the peer."""
    oracle = meta.get("oracle", {})
    keys = ("auc_click", "auc_conversion", "auc_click_mean_pooled_history", "auc_click_no_history")
    summary: dict = {"oracle": {key: oracle.get(key) for key in keys}}
    for variant in dict.fromkeys(run["variant"] for run in quality):
        rows = [run for run in quality if run["variant"] == variant]
        entry: dict = {"seeds": [r["seed"] for r in rows]}
        entry["median_train_samples_per_s"] = statistics.median(r["train_samples_per_s"] for r in rows)
        for task in rows[0]["test_auc"]:
            values = [r["test_auc"][task] for r in rows]
            entry[f"{task}_auc"] = {"mean": round(statistics.mean(values), 5), "min": min(values), "max": max(values)}
        summary[variant] = entry
    for variant, peer_variant in PEER_VARIANTS.items():
        mine = [r["train_samples_per_s"] for r in speed if r["lib"] == "mtlrec" and r["variant"] == variant]
        peer_rows = [r for r in speed if r["lib"] != "mtlrec" and r["variant"] == peer_variant]
        theirs = [r["train_samples_per_s"] for r in peer_rows]
        if mine and theirs:
            summary[f"side_by_side_{variant}_vs_{peer_variant}"] = {
                "rounds": len(mine),
                "mtlrec_median_samples_per_s": statistics.median(mine),
                "peer_median_samples_per_s": statistics.median(theirs),
                "ratio": round(statistics.median(mine) / statistics.median(theirs), 2),
                "peer_test_auc": [r["test_auc"] for r in peer_rows],
            }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "bench_data" / "synth_seq_1m.parquet"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate when --data is missing")
    parser.add_argument("--data-seed", type=int, default=0, help="the generator's seed when --data is missing")
    parser.add_argument("--variants", default="flat,pooled,attention")
    parser.add_argument("--seeds", default="0", help="training seeds of the quality runs, e.g. 0,1,2")
    parser.add_argument("--peer-python", help="python of a venv with DeepCTR-Torch: side-by-side speed rounds")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds with the peer")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override our configs")
    args = parser.parse_args(argv)
    meta = ensure_data(Path(args.data), args.rows, args.data_seed)
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    quality = [ours(variant, args.data, seed, args.set) for seed in seeds for variant in variants]
    speed: list[dict] = []
    for _ in range(args.rounds if args.peer_python else 0):
        for variant, peer_variant in PEER_VARIANTS.items():
            speed.append(ours(variant, args.data, 0, args.set))
            speed.append(peer(args.peer_python, peer_variant, args.data))
    print(json.dumps({"summary": summarize(quality, speed, meta)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
