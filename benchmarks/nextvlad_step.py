"""Training step time of NeXtVLADMixture (seed 003) at the paper's sizes and at the ablation's tiny sizes.

    python benchmarks/nextvlad_step.py [--batch_size=32] [--frames=300,5] [--steps=2]

Random uint8 frames (1024 rgb + 128 audio), 3862 classes, Adam, the starter's
BCE; the first step (graph building) is timed apart. All sizes run side by side
in one process, so their ratios are comparable even on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import models  # noqa: E402,F401
from models import registry  # noqa: E402
from yt8m.losses import MultiLabelCrossentropy  # noqa: E402

SIZES = {
    "paper (112/136/112, hidden 2048, GRU 512)": {},
    "tiny (ablation_003: 16/20/16, hidden 64, GRU 32)": {
        "cluster_size_0": 16, "cluster_size_1": 20, "cluster_size_2": 16, "hidden_size": 64, "gru_units": 32,
        "attention_units": 16, "dropout": 0.3},
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--frames", default="300,5")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for label, params in SIZES.items():
        keras.utils.set_random_seed(0)
        model = registry.build("NeXtVLADMixture", num_classes=3862, feature_size=1152, **params)
        model.compile(keras.optimizers.Adam(1e-4), loss=MultiLabelCrossentropy())
        for frames in (int(f) for f in args.frames.split(",")):
            x = {"frames": rng.integers(0, 256, (args.batch_size, frames, 1152), dtype=np.uint8),
                 "num_frames": np.full(args.batch_size, frames, np.int32)}
            y = (rng.random((args.batch_size, 3862)) < 0.001).astype("float32")
            start = time.perf_counter()
            model.train_on_batch(x, y)
            first = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            step = (time.perf_counter() - start) / args.steps
            rows.append((label, frames, model.count_params(), first, step))
            print(f"{label} | T={frames} | params {model.count_params() / 1e6:.1f}M | first step {first:.1f}s "
                  f"| step {step:.3f}s", flush=True)
    base = {frames: step for label, frames, _, _, step in rows if label == next(iter(SIZES))}
    print(f"\nbatch {args.batch_size}, CPU, {args.steps} timed steps after the first")
    print("| sizes | frames | params | first step (s) | step (s) | vs paper sizes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, frames, params, first, step in rows:
        print(f"| {label} | {frames} | {params / 1e6:.1f}M | {first:.1f} | {step:.3f} | {step / base[frames]:.3f}x |")


if __name__ == "__main__":
    main()
