"""Training examples/s of our DbofModel against the TF Model Garden YouTube-8M DBoF, same batches.

    python benchmarks/training.py [--quick] [--rounds=3] [--seconds=8]

The Model Garden side (tf-models-official 2.20.0: TF 2.20 + tf-keras) cannot share
an environment with the project's TF 2.21 / Keras 3, so on first use this script
creates its own virtualenv under build/model-garden-venv (git-ignored; a few
minutes, needs the package index) and runs benchmarks/model_garden_worker.py
there. The wheel has the yt8m model and task but not their dataloaders, so both
models are fed from the same parsed batches: our frame reader reads a few
batches once of a synthetic set with YouTube-8M's video lengths (120-300 frames,
generated once under data/benchmark-long-videos; the demo set's 30-120 frames
would flatter ours, which computes each distinct drawn frame once); ours trains
on them as its reader hands them over (uint8 frames, sampling and dequantisation
inside the model), the Model Garden's task.train_step on what its dataloader would hand over
(`sample_frames` frames sampled per video and dequantized to float32, outside
the timed step). Both: Adam, global clip 1.0, fp32, same cluster/hidden/mixture
sizes, batch, 3862 classes, average pooling + ReLU (the Model Garden's
defaults). Ours is timed through keras Model.fit on the cached batches (the
production step), theirs through tf.function(task.train_step) (what its
trainer runs). Rounds alternate between the two (one process waits while the
other runs); the best round of each counts.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from yt8m.data import synthetic  # noqa: E402

VENV = os.path.join(ROOT, "build", "model-garden-venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
# tf-models-official's declared requirements include tensorflow-text, opencv, ...; these are
# the ones its yt8m task actually imports (found by importing it), installed beside it.
VENV_PACKAGES = ["tensorflow-cpu==2.20.0", "tf-keras==2.20.1", "gin-config", "pyyaml", "tensorflow-datasets",
                 "scipy", "pycocotools", "opencv-python-headless", "matplotlib"]
NUM_CLASSES = 3862
# YouTube-8M videos run 120-500 s, frame features at 1 Hz capped at 300 frames; the demo set's
# 30-120 frames would flatter ours (each distinct drawn frame is computed once).
LONG_VIDEOS = dataclasses.replace(synthetic.SyntheticConfig.demo(), min_frames=120, max_frames=300,
                                  num_train_videos=256, num_validate_videos=4, num_test_videos=4,
                                  files_per_split=2)
CONFIGS = {  # name: sizes shared by both models
    "default": dict(cluster_size=3000, hidden_size=2000, num_mixtures=5, sample_frames=300, batch_size=32),
    "default, 30 frames": dict(cluster_size=3000, hidden_size=2000, num_mixtures=5, sample_frames=30,
                               batch_size=32),
    "small": dict(cluster_size=256, hidden_size=256, num_mixtures=5, sample_frames=300, batch_size=32),
}


def ensure_venv() -> None:
    if os.path.exists(VENV_PYTHON) and subprocess.run(
            [VENV_PYTHON, "-c", "import official.projects.yt8m.modeling.yt8m_model"],
            capture_output=True).returncode == 0:
        return
    print(f"creating the Model Garden virtualenv in {VENV} (tf-models-official 2.20.0, TF 2.20, tf-keras)")
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [VENV_PYTHON, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *VENV_PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", "tf-models-official==2.20.0"], check=True)


def read_batches(pattern: str, batch_size: int, count: int) -> list:
    from yt8m.data import readers, schema

    dataset = readers.frame_dataset(pattern, num_classes=NUM_CLASSES, batch_size=batch_size,
                                    feature_spec=schema.FeatureSpec.parse(None, None, frame_features=True),
                                    shuffle=True, num_epochs=None, drop_remainder=True, flag="data_pattern")
    return [(readers.model_inputs(f), labels, weights) for f, labels, weights in dataset.take(count)]


def model_garden_batches(batches, sample_frames: int, path: str, seed: int = 0) -> None:
    """What the Model Garden dataloader hands its train step: sampled, dequantized float32 frames."""
    from yt8m.data import schema

    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (inputs, labels, _) in enumerate(batches):
        frames, num_frames = inputs["frames"].numpy(), inputs["num_frames"].numpy()
        index = (rng.random((len(frames), sample_frames)) * num_frames[:, None]).astype(np.int64)
        sampled = np.take_along_axis(frames, index[:, :, None], axis=1)
        arrays[f"video_matrix{i}"] = schema.dequantize(sampled.astype(np.float32))
        arrays[f"labels{i}"] = labels.numpy()
        arrays[f"num_frames{i}"] = np.full(len(frames), sample_frames, np.float32)
    np.savez(path, **arrays)


class StopAfter(keras.callbacks.Callback):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.steps, self.start = seconds, 0, None

    def on_train_batch_begin(self, batch, logs=None):
        if self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps >= 2 and time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


class Ours:
    """Our DbofModel compiled exactly as yt8m/training.py compiles it, trained by fit on cached batches."""

    def __init__(self, sizes: dict, batches: list):
        from models import registry
        from yt8m import losses, optimizers
        from yt8m.config import Config

        config = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), model="DbofModel",
                        num_classes=NUM_CLASSES, batch_size=sizes["batch_size"], base_learning_rate=1e-3)
        keras.utils.set_random_seed(0)
        self.model = registry.build("DbofModel", num_classes=NUM_CLASSES, feature_size=1152,
                                    cluster_size=sizes["cluster_size"], hidden_size=sizes["hidden_size"],
                                    num_mixtures=sizes["num_mixtures"], sample_frames=sizes["sample_frames"],
                                    pooling="average", activation="relu")
        self.model.compile(optimizer=optimizers.make_optimizer(config), loss=losses.make_loss(config))
        self.batch_size = sizes["batch_size"]
        self.dataset = functools.reduce(
            lambda a, b: a.concatenate(b), [tf.data.Dataset.from_tensors(b) for b in batches]).repeat()
        self.model.fit(self.dataset, steps_per_epoch=2, epochs=1, verbose=0)  # trace + warm up

    def rate(self, seconds: float) -> float:
        stop = StopAfter(seconds)
        self.model.fit(self.dataset, steps_per_epoch=10**6, epochs=1, verbose=0, callbacks=[stop])
        return stop.steps * self.batch_size / (time.perf_counter() - stop.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_pattern", default="",
                        help="frame-level files; default: a synthetic set of 120-300-frame videos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per model per round")
    parser.add_argument("--batches", type=int, default=4, help="distinct batches cycled through")
    parser.add_argument("--quick", action="store_true", help="only the small configuration")
    args = parser.parse_args()

    ensure_venv()
    if args.data_pattern:
        pattern = args.data_pattern
    else:
        pattern = synthetic.ensure(os.path.join(ROOT, "data", "benchmark-long-videos"), LONG_VIDEOS).frame_train
    configs = {k: v for k, v in CONFIGS.items() if not args.quick or k == "small"}
    worker = subprocess.Popen([VENV_PYTHON, os.path.join(ROOT, "benchmarks", "model_garden_worker.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    print(f"{os.cpu_count()} CPUs, TF {tf.__version__} / Keras {keras.__version__} (ours) vs "
          f"tf-models-official 2.20.0 / TF 2.20 / tf-keras (Model Garden), {NUM_CLASSES} classes, fp32; "
          f"best of {args.rounds} rounds of ~{args.seconds:.0f} s each")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, sizes in configs.items():
            batches = read_batches(pattern, sizes["batch_size"], args.batches)
            lengths = np.concatenate([inputs["num_frames"].numpy() for inputs, _, _ in batches]).astype(float)
            distinct = lengths * (1 - (1 - 1 / lengths) ** sizes["sample_frames"])
            print(f"  {name}: videos of {lengths.mean():.0f} frames on average; {sizes['sample_frames']} draws "
                  f"with replacement hit {distinct.mean():.0f} distinct frames (what ours computes)", flush=True)
            npz = os.path.join(tmp, f"{len(rows)}.npz")
            model_garden_batches(batches, sizes["sample_frames"], npz)
            ours = Ours(sizes, batches)
            request = json.dumps({"config": {**sizes, "num_classes": NUM_CLASSES, "learning_rate": 1e-3},
                                  "batches": npz, "seconds": args.seconds})
            best_ours = best_theirs = 0.0
            for _ in range(args.rounds):
                worker.stdin.write(request + "\n")
                worker.stdin.flush()
                reply = worker.stdout.readline()
                if not reply:
                    raise SystemExit("the Model Garden worker stopped; run it by hand to see why: "
                                     f"{VENV_PYTHON} benchmarks/model_garden_worker.py")
                best_theirs = max(best_theirs, json.loads(reply)["examples_per_second"])
                best_ours = max(best_ours, ours.rate(args.seconds))
            rows.append((name, sizes, best_ours, best_theirs))
            print(f"  {name}: ours {best_ours:.1f} ex/s, Model Garden {best_theirs:.1f} ex/s", flush=True)
            del ours
    worker.stdin.close()
    worker.wait()
    print(f"\n{'config':<20} {'cluster':>7} {'hidden':>6} {'MoE':>3} {'frames':>6} {'batch':>5} "
          f"{'ours ex/s':>9} {'MG ex/s':>8} {'ours/MG':>8}")
    for name, s, mine, theirs in rows:
        print(f"{name:<20} {s['cluster_size']:>7} {s['hidden_size']:>6} {s['num_mixtures']:>3} "
              f"{s['sample_frames']:>6} {s['batch_size']:>5} {mine:>9.1f} {theirs:>8.1f} {mine / theirs:>7.2f}x")
    worst = min(mine / theirs for _, _, mine, theirs in rows)
    print(f"target: ours >= 1.5x the Model Garden at equal sizes -> {'met' if worst >= 1.5 else 'NOT met'} "
          f"(lowest ratio {worst:.2f}x)")


if __name__ == "__main__":
    main()
