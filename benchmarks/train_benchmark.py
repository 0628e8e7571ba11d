"""Measure the training figures quoted in the README and datasets/README.md.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/train_benchmark.py [--quick]

1. The default ``segkit train`` on toy Carvana (the preset ``carvana`` and the table's
   speed switches: bf16 where the CPU has it, channels_last, the image cache): training
   seconds until val Dice first reaches 0.98, the final Dice, and the wall time.
2. A student project's Carvana settings (RMSprop lr 1e-5, momentum 0.999, weight decay
   1e-8, batch 1) on the same data, same model, same 60 s of training: its val Dice.
3. The trained U-Net on toy sea/sky and toy VOC (compare with benchmarks/threshold_baseline.py).

A benchmark, not a test: timings depend on the machine. Results are printed as a table
and written to build/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from segkit.cli import build_parser, train_config
from segkit.recipe import TrainConfig, run_training


def cli_config(*argv: str) -> TrainConfig:
    """The TrainConfig that ``segkit train <argv>`` runs (with the preset named after the
    dataset unless ``--preset`` names another)."""
    return train_config(build_parser().parse_args(["train", *argv]))


def first_reaching(history, key: str, target: float) -> float | None:
    for r in history.records:
        if r.get(key, -1) >= target:
            return r["elapsed"]
    return None


def run(name: str, cfg: TrainConfig) -> dict:
    t0 = time.monotonic()
    result = run_training(cfg, log=lambda s: print(f"  [{name}] {s}"), show_progress=False)
    wall = time.monotonic() - t0
    h = result.history
    key = "val_dice" if "val_dice" in h.last else "val_miou"
    row = {"run": name, "epochs": len(h), "train_s": round(h.last["elapsed"], 1),
           "wall_s": round(wall, 1), key: round(h.last[key], 4),
           f"best_{key}": round(h.best(key)[key], 4)}
    if key == "val_dice":
        reached = first_reaching(h, "val_dice", 0.98)
        row["s_to_dice_0.98"] = None if reached is None else round(reached, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="training budget per run")
    ap.add_argument("--only", nargs="*", default=None,
                    help="subset of: default rmsprop seasky voc")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    budget = ["--max-seconds", str(args.seconds)]
    runs = {
        "default": cli_config(*budget, "--out-dir", "build/bench/default"),
        "rmsprop": cli_config("--preset", "rmsprop-1e-5", *budget, "--out-dir", "build/bench/rmsprop"),
        "seasky": cli_config("--dataset", "seasky", *budget, "--out-dir", "build/bench/seasky"),
        "voc": cli_config("--dataset", "voc", *budget, "--out-dir", "build/bench/voc"),
    }
    rows = [run(n, cfg) for n, cfg in runs.items() if args.only is None or n in args.only]
    print()
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r.get(k, "")) for k in keys))
    Path("build").mkdir(exist_ok=True)
    Path("build/benchmark.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
