"""Table 4 of the CMA paper (video part) on the demo synthetic set: {CMA, self-attention} x {SNet, FC}.

    python benchmarks/table4_cma.py [--seeds=0,1] [--max_steps=150] [--run_dir=runs/table4]

Each model is trained (pretrain stage, video-level labels, frame features) through the same
training/evaluation calls as train.py / eval.py / inference.py, then scored:
  Hit@1, PERR, MAP, GAP   video-level eval on the validate files (the starter's eval_util)
  seg MAP@K               a segment submission for the test files against their truth
Rows are mean +- std over the seeds. The CMA models get their ASGE label embeddings
trained (and cached) inside each run, as a real run does.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402

DATA_DIR = os.path.join("data", "synthetic")
# Small but sensible sizes for 2 CPU cores; the same width everywhere so only the head and
# backbone differ. SNet squeezes time 16x (4 blocks of stride-2 pooling).
BACKBONE = {"snet": {"filters": 128}, "fc": {"hidden_size": 128}}
MODELS = {
    "CMA-SNet": ("CmaSNetModel", {**BACKBONE["snet"], "transformer_units": 128}),
    "self-attention-SNet": ("SelfAttentionSNetModel", {**BACKBONE["snet"], "transformer_units": 128,
                                                       "attention_dim": 64}),
    "CMA-FC": ("CmaFCModel", {**BACKBONE["fc"], "transformer_units": 128}),
    "self-attention-FC": ("SelfAttentionFCModel", {**BACKBONE["fc"], "transformer_units": 128,
                                                   "attention_dim": 64}),
}
COLUMNS = ("hit_at_one", "perr", "map", "gap", "segment_map_at_k")
HEADERS = ("Hit@1", "PERR", "MAP", "GAP", "seg MAP@K")


def run_one(paths, name: str, seed: int, args) -> dict:
    model, params = MODELS[name]
    train_dir = os.path.join(args.run_dir, f"{model}_seed{seed}")
    config = Config(train_data_pattern=paths.frame_train, eval_data_pattern=paths.frame_validate,
                    frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                    num_classes=paths.num_classes, model=model, model_params=params, seed=seed,
                    batch_size=args.batch_size, base_learning_rate=args.learning_rate,
                    max_steps=args.max_steps, steps_per_epoch=args.max_steps, train_dir=train_dir,
                    label_embedding_dim=args.embedding_dim, asge_steps=args.asge_steps)
    start = time.time()
    result = training.train(config)
    seconds = time.time() - start
    scores = {k: v for k, v in evaluation.evaluate(config, progress=False).items() if k in COLUMNS}
    csv = os.path.join(train_dir, "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                               output_file=csv), progress=False)
    scores["segment_map_at_k"] = metrics.segment_map_at_k(metrics.read_segment_submission(csv),
                                                          metrics.read_segment_truth(paths.test_truth))
    scores["train_seconds"] = seconds
    scores["step_ms"] = 1000 * seconds / max(result.steps, 1)
    return scores


def table(results: dict, seeds) -> str:
    lines = [f"| model | {' | '.join(HEADERS)} | train s/run |", "|" + " --- |" * (len(HEADERS) + 2)]
    for name, runs in results.items():
        cells = []
        for column in COLUMNS:
            values = np.array([r[column] for r in runs]) * 100
            cells.append(f"{values.mean():.1f} ± {values.std():.1f}" if len(runs) > 1 else f"{values.mean():.1f}")
        seconds = np.mean([r["train_seconds"] for r in runs])
        lines.append(f"| {name} | {' | '.join(cells)} | {seconds:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--max_steps", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=0.002)
    parser.add_argument("--embedding_dim", type=int, default=64)
    parser.add_argument("--asge_steps", type=int, default=300)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--run_dir", default=os.path.join("runs", "table4"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = synthetic.ensure(DATA_DIR, synthetic.SyntheticConfig.demo())
    results = {}
    for name in args.models.split(","):
        results[name] = []
        for seed in seeds:
            scores = run_one(paths, name, seed, args)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)
            results[name].append(scores)
    print(f"\nTable 4 on the demo synthetic set, {len(seeds)} seed(s), {args.max_steps} steps of batch "
          f"{args.batch_size}; values x100, mean ± std over seeds:\n")
    print(table(results, seeds))


if __name__ == "__main__":
    main()
