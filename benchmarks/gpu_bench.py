"""One step of benchmarks/gpu.sh: training examples/s on the device, one JSON line per result.

    python benchmarks/gpu_bench.py STEP --results=FILE [--smoke]

Steps (each a fresh process, so `mirrored` can carve logical devices before TF starts):
  env            TF's devices, the GPU's name, the mixed-precision policy the run picks
  data           the synthetic 120-300-frame set of benchmarks/training.py (generated once)
  dbof           ours: DbofModel as yt8m/training.py compiles it, Model.fit on cached batches
  model_garden   the TF Model Garden DBoF (benchmarks/model_garden_worker.py) on the same batches,
                 in the virtualenv benchmarks/training.py builds (or $MG_VENV); skipped when absent
  nextvlad       NeXtVLADMixture, fp32 and --mixed_precision
  nextvlad_jit   ... with --jit_compile, fp32 and --mixed_precision
  input_share    benchmarks/reader.py's input-bound share of a small DBoF step
  mirrored       --strategy=mirrored over two logical GPUs carved from the one device (two logical
                 CPUs with --smoke): examples/s of the DBoF
  mirrored_train one yt8m.training.train run under the same strategy (steps, replicas, loss)
--smoke: tiny sizes and a second or so per timing, on CPU (the test suite runs it end to end).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import tensorflow as tf  # noqa: E402

NUM_CLASSES = 3862
SIZES = {False: dict(cluster_size=3000, hidden_size=2000, num_mixtures=5, sample_frames=300, batch_size=32),
         True: dict(cluster_size=16, hidden_size=16, num_mixtures=2, sample_frames=10, batch_size=8)}
TRAIN_RUN_PARAMS = {False: dict(cluster_size=256, hidden_size=256, num_mixtures=2, sample_frames=30),
                    True: dict(cluster_size=16, hidden_size=16, num_mixtures=2, sample_frames=30)}
NEXTVLAD = {False: {}, True: dict(cluster_size_0=8, cluster_size_1=8, cluster_size_2=8, hidden_size=16,
                                  gru_units=8, attention_units=8)}


def carve_two_logical_devices() -> str:
    """Two logical devices from the first GPU (or the CPU): must run before TensorFlow initialises."""
    gpus = tf.config.list_physical_devices("GPU")
    device = gpus[0] if gpus else tf.config.list_physical_devices("CPU")[0]
    config = tf.config.LogicalDeviceConfiguration(memory_limit=40 * 1024) if gpus else \
        tf.config.LogicalDeviceConfiguration()
    tf.config.set_logical_device_configuration(device, [config, config])
    return device.device_type


def data_pattern(smoke: bool) -> str:
    """The generated training videos, made under $DATA_DIR (default: the repository's data/) if missing."""
    import dataclasses

    from yt8m.data import synthetic
    import training as training_benchmark

    data_dir = os.environ.get("DATA_DIR") or os.path.join(ROOT, "data")
    if smoke:
        config = dataclasses.replace(training_benchmark.LONG_VIDEOS, num_train_videos=24, min_frames=20,
                                     max_frames=40)
        return synthetic.ensure(os.path.join(data_dir, "gpu-smoke-videos"), config).frame_train
    return synthetic.ensure(os.path.join(data_dir, "benchmark-long-videos"),
                            training_benchmark.LONG_VIDEOS).frame_train


def cached(batches) -> tf.data.Dataset:
    return functools.reduce(lambda a, b: a.concatenate(b), [tf.data.Dataset.from_tensors(b) for b in batches]).repeat()


def fit_rate(model, dataset, batch_size: int, seconds: float) -> float:
    """Examples/s of Model.fit on `dataset` for about `seconds` after a warm-up (traced) fit."""
    from training import StopAfter

    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    stop = StopAfter(seconds)
    model.fit(dataset, steps_per_epoch=10**6, epochs=1, verbose=0, callbacks=[stop])
    return stop.steps * batch_size / (time.perf_counter() - stop.start)


def step_env(args) -> list[dict]:
    from yt8m import training

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return [{"tf": tf.__version__, "gpus": names, "cpus": os.cpu_count(),
             "mixed_precision_policy": training.mixed_precision_policy()}]


def step_data(args) -> list[dict]:
    return [{"pattern": data_pattern(args.smoke)}]


def step_dbof(args) -> list[dict]:
    import training as training_benchmark

    sizes = SIZES[args.smoke]
    batches = training_benchmark.read_batches(data_pattern(args.smoke), sizes["batch_size"], 4)
    ours = training_benchmark.Ours(sizes, batches)
    return [{"model": "DbofModel (ours)", **sizes, "examples_per_second": ours.rate(args.seconds)}]


def step_model_garden(args) -> list[dict]:
    import tempfile

    import training as training_benchmark

    python = os.path.join(os.environ.get("MG_VENV", training_benchmark.VENV), "bin", "python")
    probe = subprocess.run([python, "-c", "import official.projects.yt8m.modeling.yt8m_model, tensorflow as tf; "
                            "print(len(tf.config.list_physical_devices('GPU')))"], capture_output=True, text=True) \
        if os.path.exists(python) else None
    if probe is None or probe.returncode:
        return [{"model": "Model Garden DBoF", "skipped": f"no Model Garden virtualenv at {python} (build it with "
                 "python benchmarks/training.py where the package index is reachable, or set MG_VENV)"}]
    sizes = SIZES[args.smoke]
    batches = training_benchmark.read_batches(data_pattern(args.smoke), sizes["batch_size"], 4)
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "batches.npz")
        training_benchmark.model_garden_batches(batches, sizes["sample_frames"], npz)
        request = json.dumps({"config": {**sizes, "num_classes": NUM_CLASSES, "learning_rate": 1e-3},
                              "batches": npz, "seconds": args.seconds})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **({"CUDA_VISIBLE_DEVICES": ""} if args.smoke else {})}
        worker = subprocess.run([python, os.path.join(ROOT, "benchmarks", "model_garden_worker.py")], input=request + "\n",
                                capture_output=True, text=True, env=env, check=True)
    reply = json.loads(worker.stdout.strip().splitlines()[-1])
    return [{"model": "Model Garden DBoF", **sizes, "gpus_seen": int(probe.stdout.strip() or 0),
             "examples_per_second": reply["examples_per_second"]}]


def nextvlad_rates(args, variants) -> list[dict]:
    """NeXtVLADMixture examples/s under each (mixed_precision, jit_compile) of `variants`."""
    import keras
    import numpy as np

    from models import registry
    from yt8m import losses, optimizers, training
    from yt8m.config import Config

    batch, frames = (4, 10) if args.smoke else (32, 300)
    rng = np.random.default_rng(0)
    x = {"frames": rng.integers(0, 256, (batch, frames, 1152), dtype=np.uint8),
         "num_frames": np.full(batch, frames, np.int32)}
    y = (rng.random((batch, NUM_CLASSES)) < 0.001).astype("float32")
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    rows = []
    for mixed, jit in variants:
        config = Config.from_flags(frame_features=True, num_classes=NUM_CLASSES, batch_size=batch, mixed_precision=mixed,
                        jit_compile=jit, base_learning_rate=1e-4)
        keras.utils.set_random_seed(0)
        build = functools.partial(registry.build, "NeXtVLADMixture", num_classes=NUM_CLASSES, feature_size=1152,
                                  **NEXTVLAD[args.smoke])
        model = training._with_precision(config, build)
        model.compile(optimizer=optimizers.make_optimizer(config), loss=losses.make_loss(config), jit_compile=jit)
        rows.append({"model": "NeXtVLADMixture", "mixed_precision": mixed, "jit_compile": jit, "batch_size": batch,
                     "frames": frames, "policy": training.mixed_precision_policy() if mixed else "float32",
                     "examples_per_second": fit_rate(model, dataset, batch, args.seconds)})
    return rows


def step_nextvlad(args) -> list[dict]:
    return nextvlad_rates(args, [(False, False), (True, False)])


def step_nextvlad_jit(args) -> list[dict]:
    """XLA compiles are slow (tens of seconds on CPU): --smoke compiles one, with both flags."""
    return nextvlad_rates(args, [(True, True)] if args.smoke else [(False, True), (True, True)])


def step_input_share(args) -> list[dict]:
    import numpy as np
    import reader

    batch = 16 if args.smoke else 128
    rounds = reader.input_bound_share(data_pattern(args.smoke), batch, NUM_CLASSES,
                                      steps=4 if args.smoke else 20, rounds=1 if args.smoke else 3)
    real, cached_step = (float(np.median([r[i] for r in rounds])) for i in (0, 1))   # steady-state s/step
    shares = [max(0.0, 1 - r[1] / r[0]) for r in rounds]   # paired within each round
    return [{"model": "DbofModel 256/256 (reader.py)", "batch_size": batch, "rounds": len(rounds),
             "real_s_per_step": real, "cached_s_per_step": cached_step,
             "input_bound_share": float(np.median(shares)), "input_bound_share_range": [min(shares), max(shares)]}]


def step_mirrored(args) -> list[dict]:
    kind = carve_two_logical_devices()
    import training as training_benchmark
    from yt8m import distribute

    sizes = SIZES[args.smoke]
    pattern = data_pattern(args.smoke)
    batches = training_benchmark.read_batches(pattern, sizes["batch_size"], 4)
    strategy = distribute.make_strategy("mirrored")
    row = {"model": "DbofModel (ours), --strategy=mirrored", "logical_devices": f"2 x {kind}", **sizes,
           "replicas": strategy.num_replicas_in_sync}
    with strategy.scope():
        ours = training_benchmark.Ours(sizes, batches)
    row["examples_per_second"] = ours.rate(args.seconds)
    return [row]


def step_mirrored_train(args) -> list[dict]:
    """yt8m.training.train with --strategy=mirrored: a process of its own (a second MirroredStrategy in
    one process reuses the first one's collective instance keys: its all-reduces then fail on a shape
    mismatch, as found with --smoke)."""
    kind = carve_two_logical_devices()
    import tempfile

    from yt8m import training
    from yt8m.config import Config

    sizes, steps = SIZES[args.smoke], 4 if args.smoke else 20
    with tempfile.TemporaryDirectory() as tmp:
        result = training.train(Config.from_flags(
            train_data_pattern=data_pattern(args.smoke), frame_features=True, feature_names=("rgb", "audio"),
            feature_sizes=(1024, 128), num_classes=NUM_CLASSES, model="DbofModel",
            model_params=TRAIN_RUN_PARAMS[args.smoke], batch_size=sizes["batch_size"],
            strategy="mirrored", max_steps=steps, steps_per_epoch=steps, train_dir=os.path.join(tmp, "run")))
    return [{"model": "DbofModel, yt8m.training.train --strategy=mirrored", "logical_devices": f"2 x {kind}",
             **TRAIN_RUN_PARAMS[args.smoke], "batch_size": sizes["batch_size"], "steps": result.steps,
             "replicas": result.replicas, "final_loss": result.final_loss}]


STEPS = {name[len("step_"):]: function for name, function in globals().items() if name.startswith("step_")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--results", required=True, help="JSON lines are appended here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU (tests)")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per measurement")
    args = parser.parse_args()
    args.seconds = args.seconds or (0.3 if args.smoke else 5.0)
    start = time.perf_counter()
    rows = STEPS[args.step](args)
    with open(args.results, "a") as handle:
        for row in rows:
            line = json.dumps({"step": args.step, **row, "step_seconds": round(time.perf_counter() - start, 1)})
            handle.write(line + "\n")
            print(line, flush=True)


if __name__ == "__main__":
    main()
