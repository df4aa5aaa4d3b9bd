"""KSSNet ablation on the synthetic demo data: which graph, how deep, which lambda; I3D step times.

    python benchmarks/ablation_kssnet.py [--steps=300] [--skip_i3d]

Segment task, KSSNetTemporal: pretrain on frame/train video labels, finetune on the
rated validate segments, write the test segment submission and score it (MAP@K)
against the test truth, as the demo does. Graph variants through the KS flags:
no graph (eta=0: A_KS = I), statistics only (lambda=1), knowledge only (lambda=0,
shared verticals of vocabulary.csv), KS (lambda=0.6); GCN depth 2/3/4 on KS; a
lambda sweep. Data: the demo preset with the label space cut to 500 classes (the
GCN runs over every class: 500 instead of 3862 nodes keeps a run under a minute).
Every variant has the same seed, data order and random 64-d label embeddings.
Then the step time of KSSNetI3D against I3DModel on one small clip batch, side by side.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic, vocabulary  # noqa: E402

NUM_CLASSES = 500
MODEL_PARAMS = {"width": 64, "num_stages": 3, "embedding_dim": 64, "dropout": 0.5}


def variants():
    yield "no graph (eta=0)", {"ks_eta": 0.0}, {}
    yield "statistics only (lambda=1)", {"ks_lambda": 1.0}, {}
    yield "knowledge only (lambda=0)", {"ks_lambda": 0.0}, {}
    yield "KS (lambda=0.6), GCN depth 4", {}, {}
    for depth in (2, 3):
        yield f"KS, GCN depth {depth}", {}, {"gcn_layers": depth}
    for lam in (0.2, 0.4, 0.8):
        yield f"KS, lambda={lam}", {"ks_lambda": lam}, {}


def run_variant(paths, work: str, name: str, flags: dict, params: dict, steps: int, embeddings: str,
                rated_ids: str) -> dict:
    run = os.path.join(work, name.replace(" ", "_").replace("(", "").replace(")", "").replace("=", "")
                       .replace(",", "").replace(".", ""))
    base = Config(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                  num_classes=NUM_CLASSES, model="KSSNetTemporal", model_params={**MODEL_PARAMS, **params},
                  label_embeddings=embeddings, batch_size=32, base_learning_rate=0.002, max_steps=steps,
                  steps_per_epoch=steps, vocabulary_file=paths.vocabulary, **flags)
    pretrain = base.replace(train_data_pattern=paths.frame_train, train_dir=os.path.join(run, "pretrain"))
    finetune = pretrain.replace(stage="finetune", init_from=pretrain.train_dir, segment_labels=True,
                                train_data_pattern=paths.frame_validate, train_dir=os.path.join(run, "finetune"),
                                max_steps=steps // 3, steps_per_epoch=steps // 3, base_learning_rate=0.0005)
    start = time.time()
    training.train(pretrain)
    training.train(finetune)
    csv = os.path.join(finetune.train_dir, "submission.csv")
    evaluation.write_submission(finetune.replace(input_data_pattern=paths.frame_test, output_file=csv,
                                                 segment_label_ids_file=rated_ids), progress=False)
    score = metrics.segment_map_at_k(metrics.read_segment_submission(csv), metrics.read_segment_truth(paths.test_truth))
    return {"variant": name, "segment_map": score, "seconds": time.time() - start}


def i3d_step_times(repeats: int = 5) -> list[dict]:
    import keras

    from models import registry

    rng = np.random.default_rng(0)
    clip = {"clip": rng.integers(0, 256, (4, 16, 64, 64, 3), dtype=np.uint8)}
    labels = (rng.random((4, 12)) < 0.2).astype("float32")
    graph = np.eye(12, dtype="float32") * 0.6 + 0.4 * (rng.random((12, 12)) < 0.2)
    rows = []
    models = {
        "I3DModel": registry.build("I3DModel", num_classes=12, feature_size=1, width_multiplier=0.25),
        "KSSNetI3D": registry.build("KSSNetI3D", num_classes=12, feature_size=1, width_multiplier=0.25,
                                    embedding_dim=64, label_graph=graph),
    }
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        model.train_on_batch(clip, labels)   # trace
    times = {name: [] for name in models}
    for _ in range(repeats):   # interleaved, so both see the same machine load
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(clip, labels)
            times[name].append(time.perf_counter() - start)
    for name, model in models.items():
        rows.append({"model": name, "params": model.count_params(), "median_step_s": float(np.median(times[name]))})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="pretrain steps (finetune: a third)")
    parser.add_argument("--work_dir", default=os.path.join("runs", "ablation_kssnet"))
    parser.add_argument("--data_dir", default=os.path.join("data", f"synthetic_demo_c{NUM_CLASSES}"))
    parser.add_argument("--skip_i3d", action="store_true")
    parser.add_argument("--skip_ablation", action="store_true")
    args = parser.parse_args()
    results = []
    if not args.skip_ablation:
        config = dataclasses.replace(synthetic.SyntheticConfig.demo(), num_classes=NUM_CLASSES)
        paths = synthetic.ensure(args.data_dir, config)
        os.makedirs(args.work_dir, exist_ok=True)
        embeddings = os.path.join(args.work_dir, "label_embeddings.npy")
        np.save(embeddings, np.random.default_rng(0).normal(
            size=(NUM_CLASSES, MODEL_PARAMS["embedding_dim"])).astype("float32"))
        truth = metrics.read_segment_truth(paths.test_truth)
        rated_ids = os.path.join(args.work_dir, "segment_label_ids.csv")   # the 2019 rated ids inside the cut space
        ids = vocabulary.read_segment_label_ids()
        pd.DataFrame({"Index": ids[ids < NUM_CLASSES]}).to_csv(rated_ids, index=False)
        random_map = metrics.rated_segment_map(truth["class_id"].to_numpy(), np.random.default_rng(0).random(len(truth)),
                                               truth["score"].to_numpy())
        for name, flags, params in variants():
            results.append(run_variant(paths, args.work_dir, name, flags, params, args.steps, embeddings, rated_ids))
            print(f"ABLATION | {results[-1]['variant']} | {results[-1]['segment_map']:.4f} | "
                  f"{results[-1]['seconds']:.0f} s", flush=True)
        print(f"ABLATION | random ranking | {random_map:.4f} | -")
    if not args.skip_i3d:
        for row in i3d_step_times():
            print(f"I3D | {row['model']} | {row['params']} | {row['median_step_s'] * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
