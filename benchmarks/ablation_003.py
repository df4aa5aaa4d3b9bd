"""Seed 003's ablations (tables 2-5) on the demo synthetic set, as segment MAP@K on the test truth.

    python benchmarks/ablation_003.py                 # every table, seeds 0 and 1
    python benchmarks/ablation_003.py --seeds=0 --tables=3,4 --write_results

Each architecture is pretrained once per seed on the video labels; every
finetuning variant of that architecture starts from the same checkpoint, so the
rows of tables 3 and 4 differ only in the finetuning loss (rows repeating a
finetuning reuse it). Sizes are tiny, so the numbers show directions, not the
paper's values; still, 5 pretrainings and 11 finetunings take ~20 min per seed
on 2 shared CPU cores (graph building is a large part); `--seeds=0
--tables=3,4` is the quick look. With --write_results the table replaces this benchmark's section
of docs/results.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import models  # noqa: E402,F401
from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402
from yt8m.labels import context  # noqa: E402

NEXTVLAD = {"hidden_size": 64, "groups": 8, "expansion": 2, "dropout": 0.3, "gru_units": 32,
            "attention_units": 16, "classifier_kind": "logistic", "sample_frames": 10}
ARCHITECTURES = {  # the paper's sizes scaled down by 7: clusters 112/136/112 -> 16/20/16, reductions kept
    "3 NeXtVLAD, same sizes": ("NeXtVLADMixture", {**NEXTVLAD, "cluster_size_0": 16, "cluster_size_1": 16,
                                                   "cluster_size_2": 16, "gating_reduction_0": 16,
                                                   "gating_reduction_1": 16, "gating_reduction_2": 16,
                                                   "attention_gru": False}),
    "3 NeXtVLAD, different sizes": ("NeXtVLADMixture", {**NEXTVLAD, "cluster_size_0": 16, "cluster_size_1": 20,
                                                        "cluster_size_2": 16, "gating_reduction_0": 16,
                                                        "gating_reduction_1": 16, "gating_reduction_2": 8,
                                                        "attention_gru": False}),
    "3 NeXtVLAD + Attention-GRU": ("NeXtVLADMixture", {**NEXTVLAD, "cluster_size_0": 16, "cluster_size_1": 20,
                                                       "cluster_size_2": 16, "gating_reduction_0": 16,
                                                       "gating_reduction_1": 16, "gating_reduction_2": 8,
                                                       "attention_gru": True}),
    "DBoF": ("DbofModel", {"cluster_size": 256, "hidden_size": 64, "sample_frames": 10, "num_mixtures": 2}),
    "DBoF + GCN": ("DbofGCNModel", {"cluster_size": 256, "hidden_size": 64, "sample_frames": 10,
                                    "gcn_hidden_size": 64}),
}
BASELINE_FINETUNE = {"loss": "bce"}
TABLES = {
    2: ("Table 2: mixture of NeXtVLADs (finetune: BCE on the rated class)",
        [(arch, arch, BASELINE_FINETUNE) for arch in list(ARCHITECTURES)[:3]]),
    3: ("Table 3: label reweighting, n = 0.1 (3 NeXtVLAD + Attention-GRU)",
        [("BCE on the rated class only", "3 NeXtVLAD + Attention-GRU", BASELINE_FINETUNE)]
        + [(f"reweighted m = {m}", "3 NeXtVLAD + Attention-GRU", {"loss": "reweighted", "reweight_m": m})
           for m in (2.0, 2.5, 3.0)]),
    4: ("Table 4: correlation-smoothed targets, reweighted m = 2.5 (3 NeXtVLAD + Attention-GRU)",
        [("no smoothing", "3 NeXtVLAD + Attention-GRU", {"loss": "reweighted"})]
        + [(f"tau = {tau}", "3 NeXtVLAD + Attention-GRU",
            {"loss": "reweighted", "label_smoothing": "correlation", "tau": tau}) for tau in (0.4, 0.5, 0.6)]),
    5: ("Table 5: DBoF vs DBoF + GCN (finetune: BCE on the rated class)",
        [(arch, arch, BASELINE_FINETUNE) for arch in ("DBoF", "DBoF + GCN")]),
}
RESULTS_FILE = os.path.join("docs", "results.md")
SECTION = ("<!-- issue 4 begin -->", "<!-- issue 4 end -->")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--tables", default="2,3,4,5")
    parser.add_argument("--pretrain_steps", type=int, default=120)
    parser.add_argument("--finetune_steps", type=int, default=40)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--run_dir", default=os.path.join("runs", "ablation_003"))
    parser.add_argument("--write_results", action="store_true")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tables = [int(t) for t in args.tables.split(",")]

    paths = synthetic.ensure(os.path.join("data", "synthetic"), synthetic.SyntheticConfig.demo())
    truth = metrics.read_segment_truth(paths.test_truth)
    base = Config(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                  num_classes=paths.num_classes, batch_size=args.batch_size, base_learning_rate=0.005,
                  max_steps=args.pretrain_steps, steps_per_epoch=args.pretrain_steps,
                  train_data_pattern=paths.frame_train)
    stats_file = os.path.join(args.run_dir, "label_stats.npz")
    if not os.path.exists(stats_file):
        os.makedirs(args.run_dir, exist_ok=True)
        context.label_statistics(base).save(stats_file)
    base = base.replace(label_stats=stats_file)

    scores: dict[tuple[int, str], list[float]] = {}
    random_map = _random_map(truth)
    started = time.time()
    for seed in seeds:
        pretrained: dict[str, Config] = {}
        finetuned: dict[tuple, float] = {}
        for table in tables:
            for row, arch, finetune_changes in TABLES[table][1]:
                if arch not in pretrained:
                    model, params = ARCHITECTURES[arch]
                    pretrained[arch] = base.replace(model=model, model_params=params, seed=seed,
                                                    train_dir=_dir(args.run_dir, seed, arch, "pretrain"))
                    _train(pretrained[arch])
                pre = pretrained[arch]
                finetune = pre.replace(stage="finetune", init_from=pre.train_dir, segment_labels=True,
                                       train_data_pattern=paths.frame_validate, base_learning_rate=0.001,
                                       max_steps=args.finetune_steps, steps_per_epoch=args.finetune_steps,
                                       train_dir=_dir(args.run_dir, seed, arch, row), **finetune_changes)
                key = (arch, tuple(sorted(finetune_changes.items())))
                if key not in finetuned:  # rows that repeat a finetuning (e.g. baselines) reuse it
                    _train(finetune)
                    finetuned[key] = _test_map(finetune, paths, truth)
                value = finetuned[key]
                scores.setdefault((table, row), []).append(value)
                print(f"[{time.time() - started:6.0f}s] seed {seed} | table {table} | {row}: {value:.4f}", flush=True)
                if args.write_results:  # as it goes, so an interrupted run still leaves its rows
                    _write_section(_markdown(scores, tables, seeds, args, random_map), quiet=True)

    text = _markdown(scores, tables, seeds, args, random_map)
    print("\n" + text)
    if args.write_results:
        _write_section(text)


def _dir(root: str, seed: int, arch: str, row: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in f"{arch}__{row}").strip("_")
    return os.path.join(root, f"seed{seed}", slug)


def _train(config: Config) -> None:
    if os.path.exists(os.path.join(config.train_dir, training.MODEL_FILE)):
        import shutil

        shutil.rmtree(config.train_dir)  # a fresh run each time (BackupAndRestore would resume)
    training.train(config)


def _test_map(config: Config, paths, truth) -> float:
    csv = os.path.join(config.train_dir, "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, output_file=csv),
                                progress=False)
    return float(metrics.segment_map_at_k(metrics.read_segment_submission(csv), truth))


def _random_map(truth) -> float:
    scores = np.random.default_rng(0).random(len(truth))
    return float(metrics.rated_segment_map(truth["class_id"].to_numpy(), scores, truth["score"].to_numpy()))


def _markdown(scores, tables, seeds, args, random_map: float) -> str:
    seeds = seeds[:max((len(v) for v in scores.values()), default=0)]  # the seeds with results so far
    lines = ["## Seed 003 ablations (3rd YouTube-8M challenge): `benchmarks/ablation_003.py`", "",
             f"Demo synthetic set, segment MAP@K on the test truth; seeds {', '.join(map(str, seeds))}; "
             f"pretrain {args.pretrain_steps} steps, finetune {args.finetune_steps} steps on the validate "
             f"ratings, batch {args.batch_size}, tiny sizes (see the script). A random ranking scores "
             f"{random_map:.4f}. mean ± half-range over the seeds.", ""]
    for table in tables:
        title, rows = TABLES[table]
        lines += [f"**{title}**", "", "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± spread |",
                  "| --- | " + " | ".join("---" for _ in seeds) + " | --- |"]
        for row, _, _ in rows:
            values = scores.get((table, row), [])
            if not values:
                continue
            mean, spread = np.mean(values), (max(values) - min(values)) / 2
            cells = [f"{v:.4f}" for v in values] + ["-"] * (len(seeds) - len(values))
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean:.4f} ± {spread:.4f} |")
        lines.append("")
    return "\n".join(lines)


def _write_section(text: str, quiet: bool = False) -> None:
    """Replaces this benchmark's section of docs/results.md (creating the file or the section)."""
    begin, end = SECTION
    current = open(RESULTS_FILE).read() if os.path.exists(RESULTS_FILE) else "# Results\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    with open(RESULTS_FILE, "w") as handle:
        handle.write(current)
    if not quiet:
        print(f"wrote {RESULTS_FILE}")


if __name__ == "__main__":
    main()
