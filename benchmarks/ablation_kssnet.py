"""KSSNet ablation on the proving ground, 3 seeds, paired differences; DbofGCN vs DBoF; I3D step times.

    python benchmarks/ablation_kssnet.py                      # every row, seeds 0, 1, 2
    python benchmarks/ablation_kssnet.py --seeds=0            # a quick look
    python benchmarks/ablation_kssnet.py --write_results      # the tables into docs/results.md (their own
                                                              # marked block in the issue-6 section)

Seed s generates `SyntheticConfig.proving(s)` with the label space cut to NUM_CLASSES
(the GCN and its graph run over every class: 500 nodes instead of 3862 keep a run
in seconds; the 104 active classes and their 60 rated ones are the same kind of set)
and trains with seed s. Segment task through `yt8m.training.train`, the code path of
`train.py`: pretrain on the train split's video labels, finetune on the validate
ratings, the test submission scored against the test truth (MAP@K); Adam at lr 0.005 then 0.001, the
label-graph layers at the CLI's `--gcn_learning_rate` default of each stage unless given. Each KSSNetTemporal
row changes only the KS flags or the GCN depth against the reference row
("KS, GCN depth 4": lambda=0.6, tau=0.03, eta=0.4); the same seed's ASGE label
embeddings (trained once per seed on the train labels) for every row.

Knowledge graph (A_K): the generator's class hierarchy, read from the vocabulary's
descriptions ("child of <name>"): one IsA edge of weight 1 from each class to its
parent, written as a `--knowledge_edges` CSV. The row "KS, knowledge = shared verticals"
(not in the default --rows, as depth 3 and lambda 0.8) uses the CLI's default source instead.
Finished rows are kept per seed in `<run_dir>/results-seed<s>.json` (resume; seeds
may run as parallel processes, `--write_results` alone merges them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import models  # noqa: E402,F401
from benchmarks.results_section import write_section  # noqa: E402
from benchmarks.seed_results import load_results, save_results, paired  # noqa: E402
from yt8m import evaluation, metrics, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic, vocabulary  # noqa: E402

NUM_CLASSES = 500
EMBEDDING_DIM = 32
KSSNET = ("KSSNetTemporal", {"width": 64, "num_stages": 3, "gcn_layers": 4})
DBOF = {"cluster_size": 256, "hidden_size": 64, "sample_frames": 30}
REFERENCE = "KS (lambda=0.6), GCN depth 4"
# row: (model, model params, flag changes, knowledge source: "hierarchy" or "verticals")
ROWS = {
    "no graph (eta=0: A_KS = I)": (*KSSNET, {"ks_eta": 0.0}, "hierarchy"),
    "statistics only (lambda=1)": (*KSSNET, {"ks_lambda": 1.0}, "hierarchy"),
    "knowledge only (lambda=0)": (*KSSNET, {"ks_lambda": 0.0}, "hierarchy"),
    REFERENCE: (*KSSNET, {}, "hierarchy"),
    "KS, GCN depth 2": (KSSNET[0], {**KSSNET[1], "gcn_layers": 2}, {}, "hierarchy"),
    "KS, lambda=0.3": (*KSSNET, {"ks_lambda": 0.3}, "hierarchy"),
    "DBoF": ("DbofModel", {**DBOF, "num_mixtures": 2}, {}, "hierarchy"),
    "DBoF + GCN": ("DbofGCNModel", {**DBOF, "gcn_hidden_size": 64}, {}, "hierarchy"),
    # Not in the default run (--rows): the lock's 15 minutes hold 8 rows x 3 seeds.
    "KS, GCN depth 3": (KSSNET[0], {**KSSNET[1], "gcn_layers": 3}, {}, "hierarchy"),
    "KS, lambda=0.8": (*KSSNET, {"ks_lambda": 0.8}, "hierarchy"),
    "KS, knowledge = shared verticals": (*KSSNET, {}, "verticals"),
}
DEFAULT_ROWS = list(ROWS)[:8]
TABLES = (("KSSNetTemporal: which graph, how deep, which lambda", [REFERENCE, "no graph (eta=0: A_KS = I)"],
           [r for r in ROWS if ROWS[r][0] == "KSSNetTemporal"]),
          ("DBoF + GCN (seed 003 Fig.4) against DBoF", ["DBoF"], ["DBoF", "DBoF + GCN"]))
# Its own block inside docs/results.md's issue-6 section (which holds other tables and prose too).
SECTION = ("<!-- kssnet ablation begin -->", "<!-- kssnet ablation end -->")


def hierarchy_edges(vocabulary_file: str, path: str) -> int:
    """The vocabulary's "child of <name>" descriptions as a --knowledge_edges CSV (head,relation,tail,weight:
    child, IsA, parent, 1); returns the number of edges."""
    table = vocabulary.read_vocabulary(vocabulary_file)
    parents = [re.search(r"child of ([^,.]+)", str(d)) for d in table["WikiDescription"]]
    edges = pd.DataFrame([{"head": name, "relation": "IsA", "tail": match.group(1), "weight": 1.0}
                          for name, match in zip(table["Name"], parents) if match])
    edges.to_csv(path, index=False)
    return len(edges)


def prepare_seed(seed: int, data_dir: str, run_dir: str) -> dict:
    """The seed's data, rated ids inside the cut label space, hierarchy edges and ASGE embeddings."""
    from yt8m.labels import embeddings
    from yt8m.labels.statistics import count_labels

    config = dataclasses.replace(synthetic.SyntheticConfig.proving(seed), num_classes=NUM_CLASSES)
    paths = synthetic.ensure(os.path.join(data_dir, f"seed{seed}"), config)
    work = os.path.join(run_dir, f"seed{seed}")
    os.makedirs(work, exist_ok=True)
    rated_ids = os.path.join(work, "segment_label_ids.csv")
    ids = vocabulary.read_segment_label_ids()
    pd.DataFrame({"Index": ids[ids < NUM_CLASSES]}).to_csv(rated_ids, index=False)
    edges = os.path.join(work, "hierarchy_edges.csv")
    count = hierarchy_edges(paths.vocabulary, edges)
    label_embeddings = os.path.join(work, "label_embeddings.npy")
    if not os.path.exists(label_embeddings):
        stats = count_labels(paths.frame_train, NUM_CLASSES, frame_features=True)
        np.save(label_embeddings, embeddings.train_asge(stats, EMBEDDING_DIM, Config().model_.asge_steps, seed=seed,
                                                        verbose=False))
    return {"paths": paths, "rated_ids": rated_ids, "edges": edges, "num_edges": count,
            "label_embeddings": label_embeddings}


def run_row(row: str, seed: int, prepared: dict, run_dir: str, args) -> float:
    model, params, changes, knowledge = ROWS[row]
    paths = prepared["paths"]
    train_dir = os.path.join(run_dir, f"seed{seed}", "".join(c if c.isalnum() else "_" for c in row))
    if os.path.exists(train_dir):
        shutil.rmtree(train_dir)   # a fresh run (a backup there would resume)
    pretrain = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                      num_classes=NUM_CLASSES, model=model, model_params=params, seed=seed,
                      label_embeddings=prepared["label_embeddings"], vocabulary_file=paths.vocabulary,
                      knowledge_edges=prepared["edges"] if knowledge == "hierarchy" else "",
                      batch_size=args.batch_size, base_learning_rate=args.pretrain_learning_rate,
                      gcn_learning_rate=args.gcn_learning_rate,
                      max_steps=args.pretrain_steps, steps_per_epoch=args.pretrain_steps,
                      train_data_pattern=paths.frame_train, train_dir=os.path.join(train_dir, "pretrain"),
                      **changes)
    finetune = pretrain.replace(stage="finetune", init_from=pretrain.training.train_dir, segment_labels=True,
                                train_data_pattern=paths.frame_validate, train_dir=os.path.join(train_dir, "finetune"),
                                base_learning_rate=args.finetune_learning_rate, max_steps=args.finetune_steps,
                                steps_per_epoch=args.finetune_steps)
    training.train(pretrain)
    training.train(finetune)
    csv = os.path.join(finetune.training.train_dir, "submission.csv")
    evaluation.write_submission(finetune.replace(input_data_pattern=paths.frame_test, output_file=csv,
                                                 segment_label_ids_file=prepared["rated_ids"]), progress=False)
    return float(metrics.segment_map_at_k(metrics.read_segment_submission(csv),
                                          metrics.read_segment_truth(paths.test_truth)))


def graph_rates(args) -> tuple[float, float]:
    """The label-graph layers' rate in the pretrain and in the finetune (Config.training.graph_learning_rate)."""
    pretrain = Config.from_flags(base_learning_rate=args.pretrain_learning_rate,
                                 gcn_learning_rate=args.gcn_learning_rate)
    finetune = pretrain.replace(stage="finetune", init_from="pretrain", base_learning_rate=args.finetune_learning_rate)
    return pretrain.training.graph_learning_rate, finetune.training.graph_learning_rate


def i3d_step_times(repeats: int = 5) -> list[dict]:
    """One train step of KSSNetI3D against I3DModel (width 0.25, 4 clips of 16 x 64 x 64), interleaved."""
    import keras

    from models import registry

    rng = np.random.default_rng(0)
    clip = {"clip": rng.integers(0, 256, (4, 16, 64, 64, 3), dtype=np.uint8)}
    labels = (rng.random((4, 12)) < 0.2).astype("float32")
    graph = np.eye(12, dtype="float32") * 0.6 + 0.4 * (rng.random((12, 12)) < 0.2)
    built = {"I3DModel": registry.build("I3DModel", num_classes=12, feature_size=1, width_multiplier=0.25),
             "KSSNetI3D": registry.build("KSSNetI3D", num_classes=12, feature_size=1, width_multiplier=0.25,
                                         embedding_dim=64, label_graph=graph)}
    for model in built.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
        model.train_on_batch(clip, labels)   # trace
    times = {name: [] for name in built}
    for _ in range(repeats):
        for name, model in built.items():
            start = time.perf_counter()
            model.train_on_batch(clip, labels)
            times[name].append(time.perf_counter() - start)
    return [{"model": name, "params": model.count_params(), "median_step_s": float(np.median(times[name]))}
            for name, model in built.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", default=";".join(DEFAULT_ROWS), help="row names separated by ';'")
    parser.add_argument("--pretrain_steps", type=int, default=100)
    parser.add_argument("--finetune_steps", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--pretrain_learning_rate", type=float, default=0.005)
    parser.add_argument("--finetune_learning_rate", type=float, default=0.001)
    parser.add_argument("--gcn_learning_rate", type=float, default=None,
                        help="the label-graph layers' rate in both stages; unset: the CLI's default by stage "
                             "(Config.training.graph_learning_rate); 0: the stage's base rate (the saved results "
                             "made before the flag existed)")
    parser.add_argument("--data_dir", default=os.path.join("data", f"proving_c{NUM_CLASSES}"))
    parser.add_argument("--run_dir", default=os.path.join("runs", "ablation_kssnet"))
    parser.add_argument("--i3d", action="store_true", help="also time KSSNetI3D against I3DModel")
    parser.add_argument("--write_results", action="store_true")
    parser.add_argument("--no_run", action="store_true", help="only the table of the finished rows")
    args = parser.parse_args(argv)
    recipe = {k: getattr(args, k) for k in ("pretrain_steps", "finetune_steps", "batch_size",
                                            "pretrain_learning_rate", "finetune_learning_rate")}
    if args.gcn_learning_rate is None:   # the CLI's default: the rate of each stage
        recipe["gcn_learning_rate"] = list(graph_rates(args))
    elif args.gcn_learning_rate:   # absent from the recipe of the results saved before it existed (rate 0)
        recipe["gcn_learning_rate"] = args.gcn_learning_rate
    rows = [r for r in args.rows.split(";") if r]
    done = load_results(args.run_dir, recipe)
    started = time.time()
    for seed in [] if args.no_run else [int(s) for s in args.seeds.split(",") if s]:
        if all(_key(seed, r) in done for r in rows):
            continue
        prepared = prepare_seed(seed, args.data_dir, args.run_dir)
        truth = metrics.read_segment_truth(prepared["paths"].test_truth)
        done[_key(seed, "random ranking")] = float(metrics.rated_segment_map(
            truth["class_id"].to_numpy(), np.random.default_rng(seed).random(len(truth)), truth["score"].to_numpy()))
        for row in rows:
            if _key(seed, row) in done:
                continue
            row_start = time.time()
            done[_key(seed, row)] = run_row(row, seed, prepared, args.run_dir, args)
            save_results(args.run_dir, recipe, done, seed)
            print(f"[{time.time() - started:6.0f}s] seed {seed} | {row}: {done[_key(seed, row)]:.4f} "
                  f"({time.time() - row_start:.0f} s)", flush=True)
    done = load_results(args.run_dir, recipe)
    text = _markdown(done, args)
    if args.i3d:
        text += "\n\n" + _i3d_markdown(i3d_step_times())
    print("\n" + text)
    if args.write_results:
        write_section(SECTION, text)


def _key(seed: int, row: str) -> str:
    return json.dumps([seed, row])


def _markdown(done: dict, args) -> str:
    seeds = sorted({json.loads(k)[0] for k in done if json.loads(k)[1] != "random ranking"})
    random = [done.get(_key(s, "random ranking")) for s in seeds]
    lines = ["## KSSNet ablation on the proving ground (`python benchmarks/ablation_kssnet.py`)", "",
             f"`SyntheticConfig.proving(seed)` with the label space cut to {NUM_CLASSES} classes (the GCN runs "
             f"over every class), seeds {', '.join(map(str, seeds))} (data and training). Through "
             f"`yt8m.training.train`: pretrain {args.pretrain_steps} steps at lr {args.pretrain_learning_rate} on "
             f"the train video labels, finetune {args.finetune_steps} steps at lr {args.finetune_learning_rate} on "
             f"the validate ratings, batch {args.batch_size}"
             + ", the label-graph layers (`--gcn_learning_rate`{}) at lr {} in the pretrain and {} in the finetune".format(
                 " unset: the CLI's default" if args.gcn_learning_rate is None else f"={args.gcn_learning_rate}",
                 *graph_rates(args))
             + "; test segment MAP@K on the test truth. "
             f"KSSNetTemporal width {KSSNET[1]['width']}, {KSSNET[1]['num_stages']} stages, BatchNorm, "
             f"{EMBEDDING_DIM}-d ASGE label embeddings (one set per seed, every row). Knowledge graph: the "
             "generator's class hierarchy (IsA edges child -> parent, from the vocabulary's descriptions) "
             "unless the row says verticals. Random ranking: "
             + ", ".join(f"{r:.4f}" for r in random if r is not None) + ". Paired differences, seed by seed: "
             "mean [min, max], seeds where the row is higher.", ""]
    for title, references, rows in TABLES:
        values = {row: [done.get(_key(s, row)) for s in seeds] for row in rows}
        lines += [f"**{title}**", "",
                  "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | "
                  + " | ".join(f"vs {r}" for r in references) + " |",
                  "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: | " + " | ".join("---" for _ in references) + " |"]
        for row in rows:
            mine = values[row]
            if all(v is None for v in mine):
                continue
            mean = np.mean([v for v in mine if v is not None])
            lines.append(f"| {row} | " + " | ".join(f"{v:.4f}" if v is not None else "-" for v in mine)
                         + f" | {mean:.4f} | " + " | ".join(paired(mine, values[r]) if r != row else ""
                                                          for r in references) + " |")
        lines.append("")
    return "\n".join(lines)


def _i3d_markdown(rows) -> str:
    lines = ["Step time, KSSNetI3D against I3DModel (width 0.25, one train step on 4 clips of 16 x 64 x 64, "
             "12 labels, median of 5 interleaved steps after tracing):", "", "| model | params | step |",
             "| --- | --- | --- |"]
    return "\n".join(lines + [f"| {r['model']} | {r['params']:,} | {r['median_step_s'] * 1000:.0f} ms |" for r in rows])


if __name__ == "__main__":
    main()
