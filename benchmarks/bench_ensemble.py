"""Benchmark: train 5 replicates together (an Ensemble, one optimiser) vs one after another (a plain
per-replicate loop).

Usage: python benchmarks/bench_ensemble.py [--dataset digits] [--replicates 5] [--epochs 5] [--chapter]
Prints the wall time of both, the speed-up, and (with --chapter) the reversion chapter's wall time at `cpu`,
executed through papermill with a fresh run cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from steerlib.core.runtime import set_threads
from steerlib.core.seeds import replicates
from steerlib.vision.data import load_dataset
from steerlib.vision.losses import make_loss
from steerlib.vision.models import make_model
from steerlib.vision.train import TrainConfig, train_ensemble, train_separately


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--chapter", action="store_true", help="also time the reversion chapter at the cpu profile")
    args = ap.parse_args()
    print(f"torch threads: {set_threads()}")
    data = load_dataset(args.dataset)
    loss = make_loss("ce", data.num_classes)
    members = replicates(0, args.replicates)
    cfg = TrainConfig(epochs=args.epochs)

    def make() -> torch.nn.Module:
        return make_model("cnn", data.input_shape, loss.out_dim)

    t = time.perf_counter()
    train_separately(make, members, loss, data.x_train, data.y_train, cfg)
    loop = time.perf_counter() - t
    t = time.perf_counter()
    train_ensemble(make, members, loss, data.x_train, data.y_train, cfg, torch.device("cpu"))
    vec = time.perf_counter() - t
    samples = args.replicates * args.epochs * len(data.y_train)
    print(f"{args.dataset}, {args.replicates} replicates x {args.epochs} epochs ({samples} samples):")
    print(f"  one by one    : {loop:7.2f} s  ({samples / loop:8.0f} samples/s)")
    print(f"  ensemble      : {vec:7.2f} s  ({samples / vec:8.0f} samples/s)")
    print(f"  speed-up      : {loop / vec:7.2f}x")

    if args.chapter:
        book = Path(__file__).resolve().parents[1] / "book"
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "STEERLIB_CACHE": str(Path(tmp) / "cache")}
            for label in ("first run (trains)", "second run (cached)"):
                t = time.perf_counter()
                subprocess.run(
                    [
                        "papermill",
                        "extrapolation/reversion.ipynb",
                        str(Path(tmp) / "out.ipynb"),
                        "-p",
                        "profile",
                        "cpu",
                        "-p",
                        "out_dir",
                        str(Path(tmp) / "results"),
                        "--log-level",
                        "WARNING",
                    ],
                    cwd=book,
                    env=env,
                    check=True,
                )
                print(f"reversion chapter, cpu profile, {label}: {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
