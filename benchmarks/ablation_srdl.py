"""SRDL ablation on the demo synthetic set: CAR alone, CAR + OE, and the OE top-K / alpha sweeps.

    python benchmarks/ablation_srdl.py [--pretrain_steps=60] [--finetune_steps=30] [--write_results]

Each variant runs the pipeline a user runs (training.train pretrain on video
labels, finetune on segment ratings, evaluation.write_submission on the test
split) with the same seed, data and sizes, and is scored by segment MAP@K
against the test truth; a random ranking of the rated test segments is the
floor. Variants (srdl_top_k, srdl_alpha): CAR only (0), CAR+OE (3, 0.5), top-K
in {1, 3, 5} at alpha 0.5, alpha in {0.3, 0.5, 0.7} at top-K 3. Sizes are small
so the whole sweep takes minutes on 2 CPU cores; the numbers are single-seed.
`--write_results` puts the table in docs/results.md (issue 7's section).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402
from yt8m.labels import context, embeddings  # noqa: E402

DATA_DIR = os.path.join("data", "synthetic")
RESULTS = os.path.join("docs", "results.md")
BEGIN, END = "<!-- issue 7 begin -->", "<!-- issue 7 end -->"
VARIANTS = [("CAR only", 0, 0.5), ("CAR+OE", 3, 0.5), ("CAR+OE top-K=1", 1, 0.5), ("CAR+OE top-K=5", 5, 0.5),
            ("CAR+OE alpha=0.3", 3, 0.3), ("CAR+OE alpha=0.7", 3, 0.7)]


def run_variant(paths, work: str, name: str, top_k: int, alpha: float, args, label_stats: str,
                label_embeddings: str) -> dict:
    params = {"hidden_size": args.hidden_size, "gcn_hidden_size": args.gcn_hidden_size,
              "sample_frames": args.sample_frames, "srdl_top_k": top_k, "srdl_alpha": alpha}
    run = os.path.join(work, name.replace(" ", "_").replace("+", "").replace("=", ""))
    pretrain = Config(train_data_pattern=paths.frame_train, frame_features=True, feature_names=("rgb", "audio"),
                      feature_sizes=(1024, 128), num_classes=paths.num_classes, model="SRDLModel",
                      model_params=params, batch_size=args.batch_size, base_learning_rate=args.learning_rate,
                      max_steps=args.pretrain_steps, steps_per_epoch=args.pretrain_steps, seed=args.seed,
                      label_stats=label_stats, label_embeddings=label_embeddings,
                      train_dir=os.path.join(run, "pretrain"))
    finetune = pretrain.replace(stage="finetune", init_from=pretrain.train_dir, segment_labels=True,
                                train_data_pattern=paths.frame_validate, max_steps=args.finetune_steps,
                                steps_per_epoch=args.finetune_steps, base_learning_rate=args.learning_rate / 5,
                                train_dir=os.path.join(run, "finetune"))
    start = time.perf_counter()
    training.train(pretrain)
    pretrain_seconds = time.perf_counter() - start
    training.train(finetune)
    csv = os.path.join(run, "submission.csv")
    evaluation.write_submission(finetune.replace(input_data_pattern=paths.frame_test, output_file=csv,
                                                 batch_size=256), progress=False)
    total_seconds = time.perf_counter() - start
    truth = metrics.read_segment_truth(paths.test_truth)
    score = metrics.segment_map_at_k(metrics.read_segment_submission(csv), truth)
    return {"variant": name, "top_k": top_k, "alpha": alpha, "map": score,
            "pretrain_s": pretrain_seconds, "total_s": total_seconds}


def random_floor(paths, seed: int) -> float:
    truth = metrics.read_segment_truth(paths.test_truth)
    scores = np.random.default_rng(seed).random(len(truth))
    return metrics.rated_segment_map(truth["class_id"].to_numpy(), scores, truth["score"].to_numpy())


def markdown(rows, floor: float, args) -> str:
    lines = [
        "## SRDL on video: CAR and interval erasing (issue 7)",
        "",
        f"`python benchmarks/ablation_srdl.py --write_results` on the demo synthetic set (SyntheticConfig.demo(), "
        f"{args.num_classes} classes): SRDLModel hidden_size={args.hidden_size}, "
        f"gcn_hidden_size={args.gcn_hidden_size}, sample_frames={args.sample_frames}, batch {args.batch_size}; "
        f"pretrain {args.pretrain_steps} steps (lr {args.learning_rate}) on video labels, finetune "
        f"{args.finetune_steps} steps (lr {args.learning_rate / 5:g}) on segment ratings; seed {args.seed}, one run "
        "each; every variant starts from the same label statistics and ASGE label embeddings. Score: segment "
        "MAP@K of the test submission against the test truth. Times: wall seconds on 2 shared CPU cores (noisy) "
        "of the pretrain stage (model build and tracing included) and of the whole variant (pretrain, "
        "finetune, test inference); OE runs the per-class classifier a second time in every training step.",
        "",
        "| variant | srdl_top_k | srdl_alpha | test segment MAP@K | pretrain s | total s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['variant']} | {row['top_k']} | {row['alpha'] if row['top_k'] else '-'} | "
                     f"{row['map']:.4f} | {row['pretrain_s']:.0f} | {row['total_s']:.0f} |")
    lines.append(f"| random ranking | - | - | {floor:.4f} | - | - |")
    return "\n".join(lines) + "\n"


def write_section(text: str, path: str = RESULTS) -> None:
    """Replaces issue 7's section of docs/results.md (creating the file or the section if missing)."""
    current = open(path).read() if os.path.exists(path) else "# Results\n"
    section = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + section
    with open(path, "w") as handle:
        handle.write(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_steps", type=int, default=60)
    parser.add_argument("--finetune_steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--hidden_size", type=int, default=16)
    parser.add_argument("--gcn_hidden_size", type=int, default=16)
    parser.add_argument("--sample_frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated variant names to run (default: all)")
    parser.add_argument("--write_results", action="store_true", help=f"write the table into {RESULTS}")
    args = parser.parse_args()
    paths = synthetic.ensure(DATA_DIR, synthetic.SyntheticConfig.demo())
    args.num_classes = paths.num_classes
    variants = [v for v in VARIANTS if not args.only or v[0] in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ablation_srdl_") as work:
        # Label statistics and (ASGE) label embeddings once, shared by every variant.
        shared = Config(train_data_pattern=paths.frame_train, frame_features=True, feature_names=("rgb", "audio"),
                        feature_sizes=(1024, 128), num_classes=paths.num_classes, seed=args.seed,
                        train_dir=os.path.join(work, "labels"))
        os.makedirs(shared.train_dir)
        stats = context.label_statistics(shared)
        np.save(os.path.join(work, "labels", "initial.npy"), embeddings.initial_embeddings(shared, stats))
        label_stats = os.path.join(work, "labels", context.STATS_FILE)
        label_embeddings = os.path.join(work, "labels", "initial.npy")
        for name, top_k, alpha in variants:
            print(f"\n== {name} (srdl_top_k={top_k}, srdl_alpha={alpha}) ==", flush=True)
            rows.append(run_variant(paths, work, name, top_k, alpha, args, label_stats, label_embeddings))
            print(rows[-1], flush=True)
    text = markdown(rows, random_floor(paths, args.seed), args)
    print("\n" + text)
    if args.write_results:
        write_section(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
