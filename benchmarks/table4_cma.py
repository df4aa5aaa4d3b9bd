"""Table 4 of the CMA paper (video part) and its ablations on the proving ground, 3 seeds, paired differences.

    python benchmarks/table4_cma.py                          # every row, seeds 0, 1, 2
    python benchmarks/table4_cma.py --seeds=0 --rows=CMA-SNet  # a quick look
    python benchmarks/table4_cma.py --write_results          # the tables into docs/results.md

Seed s reads the proving ground of generator seed s (`SyntheticConfig.proving(s)`, under
--data_dir/proving_seed<s>) and trains with seed s. Every row is a pretrain run on the train
video labels through `yt8m.training.train` (the code path of train.py). The CMA rows get the
ASGE label embeddings a run trains by default (`embeddings.train_asge` on the train labels,
trained once per seed and handed to each run as --label_embeddings; the same array), then:
  Hit@1, PERR, MAP, GAP   video-level eval on validate files 0-1 (400 videos; the starter's eval_util)
  seg MAP@K               a segment submission for the test files against their truth
Rows are compared seed by seed (paired differences) with the frame logistic baseline and
with the row each ablation changes. Finished rows are kept per seed in
`<run_dir>/results-seed<s>.json` (a stopped run resumes; seeds can run as parallel processes).
Sizes are small (the paper's scaled down); the numbers show directions, not the paper's values.
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

WIDTH = 64          # SNet filters / FC units and the CMA transformer, the same everywhere
EMBEDDING_DIM = 32  # ASGE (or random) label embeddings
OLD_BN = {"bn_momentum": 0.99}  # Keras's: the rows measured before SNet's BN_MOMENTUM became 0.9 (FC's default)
SNET = {"filters": WIDTH, **OLD_BN}
FC = {"hidden_size": WIDTH, **OLD_BN}
CMA = {"transformer_units": WIDTH}
# row: (model, model params, config changes)
ROWS = {
    "frame logistic": ("FrameLevelLogisticModel", {}, {}),
    # CmaSNetModel as the registry builds it now (BN momentum 0.9, scales=3), at the widths above; "CMA-FC"
    # below is CmaFCModel's registry default (0.99), "CMA-FC, BN momentum 0.9" the momentum it lost to.
    "CmaSNetModel": ("CmaSNetModel", {"filters": WIDTH, **CMA}, {}),
    "CMA-FC, BN momentum 0.9": ("CmaFCModel", {"hidden_size": WIDTH, **CMA, "bn_momentum": 0.9}, {}),
    "CMA-SNet": ("CmaSNetModel", {**SNET, **CMA, "scales": 1}, {}),
    "self-attention-SNet": ("SelfAttentionSNetModel", SNET, {}),
    "CMA-FC": ("CmaFCModel", {**FC, **CMA}, {}),
    "self-attention-FC": ("SelfAttentionFCModel", FC, {}),
    "CMA-SNet multi-scale (3 blocks)": ("CmaSNetModel", {**SNET, **CMA, "scales": 3}, {}),
    "CMA-SNet random embeddings": ("CmaSNetModel", {**SNET, **CMA, "scales": 1}, {"label_embeddings": "random"}),
    "CMA-SNet beta 0.4": ("CmaSNetModel", {**SNET, **CMA, "scales": 1}, {"loss": "class_balanced", "beta": 0.4}),
}
BASELINE = "frame logistic"
# (row, the row it changes): the paired comparisons of the ablations
PAIRS = [("CmaSNetModel", "CMA-SNet multi-scale (3 blocks)"), ("CMA-FC, BN momentum 0.9", "CMA-FC"),
         ("CMA-SNet", "self-attention-SNet"), ("CMA-FC", "self-attention-FC"),
         ("CMA-SNet multi-scale (3 blocks)", "CMA-SNet"), ("CMA-SNet", "CMA-SNet random embeddings"),
         ("CMA-SNet beta 0.4", "CMA-SNet")]
COLUMNS = ("hit_at_one", "perr", "map", "gap", "segment_map_at_k")
HEADERS = ("Hit@1", "PERR", "MAP", "GAP", "seg MAP@K")
SECTION = ("<!-- issue 5 begin -->", "<!-- issue 5 end -->")


def run_one(paths, row: str, seed: int, args) -> dict:
    model, params, changes = ROWS[row]
    slug = "".join(c if c.isalnum() else "_" for c in row)
    train_dir = os.path.join(args.run_dir, f"seed{seed}", slug)
    if os.path.exists(train_dir):
        shutil.rmtree(train_dir)  # a fresh run (the backup would resume)
    os.makedirs(train_dir)
    if model.startswith("Cma"):
        changes = {"label_embeddings": _label_embeddings(paths, seed, args, changes.get("label_embeddings", "asge")),
                   **{k: v for k, v in changes.items() if k != "label_embeddings"}}
    validate = ",".join(os.path.join(os.path.dirname(paths.frame_validate), f"validate000{i}.tfrecord")
                        for i in range(args.validate_files))
    config = Config.from_flags(train_data_pattern=paths.frame_train, eval_data_pattern=validate,
                    frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                    num_classes=paths.num_classes, model=model, model_params=params, seed=seed,
                    batch_size=args.batch_size, base_learning_rate=args.learning_rate,
                    max_steps=args.max_steps, steps_per_epoch=args.max_steps, train_dir=train_dir,
                    label_embedding_dim=EMBEDDING_DIM, **changes)
    start = time.time()
    training.train(config)
    scores = {k: float(v) for k, v in evaluation.evaluate(config, progress=False).items() if k in COLUMNS}
    csv = os.path.join(train_dir, "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                               output_file=csv), progress=False)
    scores["segment_map_at_k"] = float(metrics.segment_map_at_k(metrics.read_segment_submission(csv),
                                                                metrics.read_segment_truth(paths.test_truth)))
    scores["seconds"] = time.time() - start
    return scores


def _label_embeddings(paths, seed: int, args, kind: str) -> str:
    """The seed's (C, E) label embeddings as a .npy: ASGE on the train labels (what a run trains by
    default, with the default alpha) or seeded standard normal ("random")."""
    path = os.path.join(args.run_dir, f"seed{seed}", f"{kind}_embeddings.npy")
    if not os.path.exists(path):
        from yt8m.labels import embeddings
        from yt8m.labels.statistics import count_labels

        if kind == "asge":
            stats = count_labels(paths.frame_train, paths.num_classes, frame_features=True)
            array = embeddings.train_asge(stats, EMBEDDING_DIM, args.asge_steps, alpha=Config().model_.asge_alpha,
                                          seed=seed, verbose=False)
        else:
            array = np.random.default_rng(seed).standard_normal((paths.num_classes, EMBEDDING_DIM))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, array.astype("float32"))
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=0.005)
    parser.add_argument("--asge_steps", type=int, default=300)
    parser.add_argument("--validate_files", type=int, default=2)
    parser.add_argument("--data_dir", default=os.path.join("data", "proving_ground"))
    parser.add_argument("--run_dir", default=os.path.join("runs", "table4_cma"))
    parser.add_argument("--write_results", action="store_true")
    args = parser.parse_args(argv)
    recipe = {k: getattr(args, k) for k in ("max_steps", "batch_size", "learning_rate", "asge_steps",
                                            "validate_files")}
    recipe.update(width=WIDTH, embedding_dim=EMBEDDING_DIM)
    done = load_results(args.run_dir, recipe)
    started = time.time()
    for seed in [int(s) for s in args.seeds.split(",")]:
        paths = synthetic.ensure(os.path.join(args.data_dir, f"proving_seed{seed}"),
                                 synthetic.SyntheticConfig.proving(seed), progress=False)
        for row in args.rows.split(","):
            key = _key(seed, row)
            if key in done:
                continue
            done[key] = run_one(paths, row, seed, args)
            save_results(args.run_dir, recipe, done, seed)
            print(f"[{time.time() - started:6.0f}s] seed {seed} | {row}: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in done[key].items()), flush=True)
    done = load_results(args.run_dir, recipe)  # with the rows of seeds run by other processes
    text = _markdown(done, args)
    print("\n" + text)
    if args.write_results:
        write_section(SECTION, text)


def _key(seed: int, row: str) -> str:
    return json.dumps([seed, row])


def _values(done: dict, row: str, seeds, column: str) -> list:
    return [done[_key(s, row)][column] * 100 if _key(s, row) in done else None for s in seeds]


def _markdown(done: dict, args) -> str:
    seeds = sorted({json.loads(k)[0] for k in done})
    rows = [r for r in ROWS if any(_key(s, r) in done for s in seeds)]
    lines = ["## CMA table 4 and its ablations on the proving ground (`python benchmarks/table4_cma.py`)", "",
             f"Proving ground (`SyntheticConfig.proving(seed)`), seeds {', '.join(map(str, seeds))} (data and "
             f"training), pretrain only: {args.max_steps} Adam steps of batch {args.batch_size} at lr "
             f"{args.learning_rate} on the train video labels, widths {WIDTH}, label embeddings of width "
             f"{EMBEDDING_DIM} (ASGE, {args.asge_steps} steps, alpha 0.1). Video-level metrics on "
             f"validate files 0-{args.validate_files - 1}, segment MAP@K of a test submission against the test truth. Values x100, "
             "mean ± std over the seeds.", "",
             "| model | " + " | ".join(HEADERS) + " | s/run |", "| --- |" + " ---: |" * (len(HEADERS) + 1)]
    for row in rows:
        cells = []
        for column in COLUMNS:
            values = [v for v in _values(done, row, seeds, column) if v is not None]
            cells.append(f"{np.mean(values):.1f} ± {np.std(values):.1f}")
        seconds = np.mean([done[_key(s, row)]["seconds"] for s in seeds if _key(s, row) in done])
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    lines += ["", "Paired differences (x100), seed by seed: mean [min, max] and the seeds where the first "
              "row is higher.", "", "| row | vs | " + " | ".join(HEADERS) + " |",
              "| --- | --- |" + " --- |" * len(HEADERS)]
    pairs = [(r, BASELINE) for r in rows if r != BASELINE] + PAIRS
    for first, second in pairs:
        if first in rows and second in rows:
            lines.append(f"| {first} | {second} | " + " | ".join(
                paired(_values(done, first, seeds, c), _values(done, second, seeds, c), digits=1) for c in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
