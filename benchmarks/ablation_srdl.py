"""SRDL ablation on the proving ground, 3 seeds, paired differences: CAR alone, CAR + OE, top-K, alpha.

    python benchmarks/ablation_srdl.py                         # every row, seeds 0, 1, 2
    python benchmarks/ablation_srdl.py --seeds=0 --rows=car,oe  # a quick look
    python benchmarks/ablation_srdl.py --rows=logistic,car,oe,car_direct,oe_direct  # issue 15's rows
    python benchmarks/ablation_srdl.py --rows=oe,oe_wide       # is the 16-wide frame encoder the limit?
    python benchmarks/ablation_srdl.py --rows=logistic,car_wide,oe_wide,a3_wide   # erasing at width 64
    python benchmarks/ablation_srdl.py --write_results         # the tables into docs/results.md (issue 7)

Seed s reads the proving ground made with generator seed s (`SyntheticConfig.proving(s)`,
generated under --data_dir when missing) and trains with seed s. Every row is one
`yt8m.training.train` run (the code path of `train.py`) on the train split's video
labels, then scored as the CMA paper's Table 4: video-level Hit@1, PERR, MAP, GAP on the
validate split (`evaluation.evaluate` on half its files, for time) and segment MAP@K of a test submission against
the test truth. The label statistics and ASGE label embeddings are made once per seed
and shared by every SRDL row, so the rows differ only in CAR/OE settings. Paired
differences are taken seed by seed against CAR alone and the frame logistic baseline.
Finished rows are kept in `<run_dir>/results-seed<s>.json` (a stopped run resumes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import models  # noqa: E402,F401
from benchmarks.results_section import write_section  # noqa: E402
from benchmarks.seed_results import load_results, save_results, paired  # noqa: E402
from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402
from yt8m.labels import context, embeddings  # noqa: E402

SECTION = ("<!-- issue 7 begin -->", "<!-- issue 7 end -->")
SMALL = {"hidden_size": 16, "gcn_hidden_size": 16, "sample_frames": 32, "class_block": 1024}
UNSCALED = {**SMALL, "label_norm": "none"}  # h_c as the paper gates with them (how the K, alpha sweep ran)
DIRECT = {**UNSCALED, "adjacency_form": "direct"}  # the adjacency's entries trained directly (before issue 15)
WIDE = {**UNSCALED, "hidden_size": 64, "gcn_hidden_size": 64}  # the builder's widths, frames still sampled
# key: (row name, model, model params)
ROWS = {
    "logistic": ("frame logistic", "FrameLevelLogisticModel", {}),
    "car": ("CAR only", "SRDLModel", {**UNSCALED, "srdl_top_k": 0}),
    "oe": ("CAR+OE, K=3, alpha=0.5", "SRDLModel", {**UNSCALED, "srdl_top_k": 3, "srdl_alpha": 0.5}),
    "k1": ("CAR+OE, K=1, alpha=0.5", "SRDLModel", {**UNSCALED, "srdl_top_k": 1, "srdl_alpha": 0.5}),
    "k5": ("CAR+OE, K=5, alpha=0.5", "SRDLModel", {**UNSCALED, "srdl_top_k": 5, "srdl_alpha": 0.5}),
    "a3": ("CAR+OE, K=3, alpha=0.3", "SRDLModel", {**UNSCALED, "srdl_top_k": 3, "srdl_alpha": 0.3}),
    "a7": ("CAR+OE, K=3, alpha=0.7", "SRDLModel", {**UNSCALED, "srdl_top_k": 3, "srdl_alpha": 0.7}),
    # The label_norm option (h_c L2-normalised) at the same sizes: CAR alone and the paper's K and alpha.
    "l2_car": ("CAR only, h_c L2-normalised", "SRDLModel", {**SMALL, "srdl_top_k": 0, "label_norm": "l2"}),
    "l2_oe": ("CAR+OE, K=3, alpha=0.5, h_c L2-normalised", "SRDLModel",
              {**SMALL, "srdl_top_k": 3, "srdl_alpha": 0.5, "label_norm": "l2"}),
    # The adjacency trained as its entries (the form every row used before issue 15), CAR alone and K=3, alpha=0.5.
    "car_direct": ("CAR only, direct adjacency", "SRDLModel", {**DIRECT, "srdl_top_k": 0}),
    "oe_direct": ("CAR+OE, K=3, alpha=0.5, direct adjacency", "SRDLModel",
                  {**DIRECT, "srdl_top_k": 3, "srdl_alpha": 0.5}),
    "defaults": ("SRDLModel, builder defaults", "SRDLModel", {}),
    # Is the 16-wide frame encoder SRDL's limit? K=3, alpha=0.5 at the builder's widths, frames still sampled.
    "oe_wide": ("CAR+OE, K=3, alpha=0.5, hidden 64, GCN 64", "SRDLModel",
                {**WIDE, "srdl_top_k": 3, "srdl_alpha": 0.5}),
    # Does erasing pay at those widths? CAR alone, and the hidden-16 sweep's best alpha (0.3), at 64.
    "car_wide": ("CAR only, hidden 64, GCN 64", "SRDLModel",
                 {**WIDE, "srdl_top_k": 0}),
    "a3_wide": ("CAR+OE, K=3, alpha=0.3, hidden 64, GCN 64", "SRDLModel",
                {**WIDE, "srdl_top_k": 3, "srdl_alpha": 0.3}),
}
# Not in the default --rows (minutes a row, or issue 15's).
SLOW = ("defaults", "oe_wide", "car_direct", "oe_direct", "car_wide", "a3_wide")
REFERENCES = ("car", "logistic")
# (title, {row: the row it is paired with})
PAIRS = (("the same row with h_c unscaled (`label_norm=none`)", {"l2_car": "car", "l2_oe": "oe"}),
         ("the same row with the direct adjacency", {"car": "car_direct", "oe": "oe_direct"}),
         ("the same row at hidden 16, GCN 16", {"oe_wide": "oe", "car_wide": "car", "a3_wide": "a3"}),
         ("CAR only at hidden 64, GCN 64", {"oe_wide": "car_wide", "a3_wide": "car_wide"}))
EVAL_BATCH = 64
COLUMNS = ("hit_at_one", "perr", "map", "gap", "segment_map_at_k")
HEADERS = ("Hit@1", "PERR", "MAP", "GAP", "seg MAP@K")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default=",".join(r for r in ROWS if r not in SLOW),
                        help=f"comma-separated of {', '.join(ROWS)}")
    parser.add_argument("--max_steps", type=int, default=60)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=0.01, help="train.py's default")
    parser.add_argument("--embedding_dim", type=int, default=64, help="ASGE label embedding size")
    parser.add_argument("--gcn_learning_rate", type=float, default=Config().training.graph_learning_rate,
                        help="label_nodes' and label_gcn's rate (train.py's default; the rows before issue 15 ran "
                             "at the base rate)")
    parser.add_argument("--data_dir", default=os.path.join("data", "proving_ground"),
                        help="seed s reads <data_dir>/proving_seed<s>")
    parser.add_argument("--run_dir", default=os.path.join("runs", "ablation_srdl"))
    parser.add_argument("--write_results", action="store_true")
    args = parser.parse_args(argv)
    recipe = {k: getattr(args, k) for k in ("max_steps", "batch_size", "learning_rate", "embedding_dim",
                                            "gcn_learning_rate")}
    done = load_results(args.run_dir, recipe)
    started = time.time()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    bases, labels = {}, {}
    for key in [r for r in args.rows.split(",") if r]:  # rows outer: a stopped sweep leaves whole rows
        for seed in seeds:
            if _key(seed, key) in done:
                continue
            if seed not in bases:
                paths = synthetic.ensure(os.path.join(args.data_dir, f"proving_seed{seed}"),
                                         synthetic.SyntheticConfig.proving(seed))
                # Video-level metrics on half the validate files (validate000[01]: 400 of 800 videos), for time.
                bases[seed] = paths, Config.from_flags(
                    train_data_pattern=paths.frame_train,
                    eval_data_pattern=os.path.join(os.path.dirname(paths.frame_validate), "validate000[01].tfrecord"),
                    frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                    num_classes=paths.num_classes, seed=seed, batch_size=args.batch_size,
                    base_learning_rate=args.learning_rate, gcn_learning_rate=args.gcn_learning_rate,
                    max_steps=args.max_steps,
                    steps_per_epoch=args.max_steps, label_embedding_dim=args.embedding_dim)
            paths, base = bases[seed]
            _, model, params = ROWS[key]
            config = base.replace(model=model, model_params=params,
                                  train_dir=os.path.join(args.run_dir, f"seed{seed}", key))
            if model == "SRDLModel":
                if seed not in labels:
                    labels[seed] = _shared_labels(base, os.path.join(args.run_dir, f"seed{seed}", "labels"))
                config = config.replace(**labels[seed])
            row_start = time.time()
            done[_key(seed, key)] = {**_run(config, paths), "seconds": time.time() - row_start}
            save_results(args.run_dir, recipe, done, seed)
            print(f"[{time.time() - started:6.0f}s] seed {seed} | {ROWS[key][0]}: {done[_key(seed, key)]}", flush=True)
    done = load_results(args.run_dir, recipe)
    text = _markdown(done, args)
    print("\n" + text)
    if args.write_results:
        write_section(SECTION, text)


def _shared_labels(base: Config, directory: str) -> dict:
    """The seed's label statistics and ASGE embeddings, made once (and kept) for every SRDL row."""
    stats_file, vectors_file = os.path.join(directory, context.STATS_FILE), os.path.join(directory, "asge.npy")
    if not os.path.exists(vectors_file):
        os.makedirs(directory, exist_ok=True)
        stats = context.label_statistics(base.replace(train_dir=directory))
        np.save(vectors_file + ".tmp.npy", embeddings.initial_embeddings(base.replace(train_dir=directory), stats))
        os.replace(vectors_file + ".tmp.npy", vectors_file)
    return {"label_stats": stats_file, "label_embeddings": vectors_file}


def _run(config: Config, paths) -> dict:
    if os.path.exists(config.training.train_dir):
        shutil.rmtree(config.training.train_dir)  # a fresh run each time (the backup would resume)
    training.train(config)
    config = config.replace(batch_size=EVAL_BATCH)  # fewer batches: SRDL's GCN over C labels runs once per batch
    scores = {k: float(v) for k, v in evaluation.evaluate(config, progress=False).items() if k in COLUMNS}
    csv = os.path.join(config.training.train_dir, "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                               output_file=csv), progress=False)
    scores["segment_map_at_k"] = float(metrics.segment_map_at_k(metrics.read_segment_submission(csv),
                                                                metrics.read_segment_truth(paths.test_truth)))
    return scores


def _key(seed: int, row: str) -> str:
    return json.dumps([seed, row])


def _markdown(done: dict, args) -> str:
    seeds = sorted({json.loads(k)[0] for k in done})
    rows = [key for key in ROWS if any(_key(s, key) in done for s in seeds)]

    def values(key, column):
        return [done[_key(s, key)][column] if _key(s, key) in done else None for s in seeds]

    lines = ["## SRDL on video: CAR and per-class interval erasing (issue 7; `python benchmarks/ablation_srdl.py`)", "",
             f"Proving ground (`SyntheticConfig.proving(seed)`), seeds {', '.join(map(str, seeds))} (data and "
             f"training). Each row: one `training.train` run on the train split's video labels, "
             f"{args.max_steps} steps, batch {args.batch_size}, Adam lr {args.learning_rate} "
             f"(label_nodes and label_gcn at {args.gcn_learning_rate or args.learning_rate}); SRDL rows "
             f"hidden_size={SMALL['hidden_size']}, gcn_hidden_size={SMALL['gcn_hidden_size']}, "
             f"sample_frames={SMALL['sample_frames']} unless the row names its widths (the builder-defaults row: "
             "64, 64, every frame), the "
             "row-softmax adjacency unless the row says direct, ASGE label "
             f"embeddings of size {args.embedding_dim} shared within a seed. Video-level Hit@1, PERR, MAP, GAP on "
             "half the validate split (files validate0000-0001, 400 videos); segment MAP@K of the test "
             "submission on the test truth. Mean (std) over seeds; "
             "s: wall seconds per row on 2 shared CPU cores (training, evaluation, test inference).", "",
             "| row | " + " | ".join(HEADERS) + " | s |", "| --- |" + " ---: |" * (len(HEADERS) + 1)]
    for key in rows:
        cells = []
        for column in COLUMNS + ("seconds",):
            v = [x for x in values(key, column) if x is not None]
            cells.append(f"{np.mean(v):.0f}" if column == "seconds" else
                         f"{np.mean(v):.4f} ({np.std(v):.4f})" + ("" if len(v) == len(seeds) else f" n={len(v)}"))
        lines.append(f"| {ROWS[key][0]} | " + " | ".join(cells) + " |")
    for reference in REFERENCES:
        if reference not in rows:
            continue
        lines += ["", f"Paired differences against {ROWS[reference][0]}, seed by seed: mean [min, max], seeds higher.",
                  "", "| row | " + " | ".join(HEADERS) + " |", "| --- |" + " --- |" * len(HEADERS)]
        for key in rows:
            if key not in (reference, "logistic"):
                lines.append(f"| {ROWS[key][0]} | " + " | ".join(
                    paired(values(key, c), values(reference, c)) for c in COLUMNS) + " |")
    for title, pairs in PAIRS:
        present = [(k, r) for k, r in pairs.items() if k in rows and r in rows]
        if present:
            lines += ["", f"Paired differences against {title}, seed by seed.",
                      "", "| row | " + " | ".join(HEADERS) + " |", "| --- |" + " --- |" * len(HEADERS)]
            for key, reference in present:
                lines.append(f"| {ROWS[key][0]} | " + " | ".join(
                    paired(values(key, c), values(reference, c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
