"""Seed 003's ablations (tables 2-15) on the proving ground, 3 seeds, paired differences.

    python benchmarks/ablation_003.py                        # every table, seeds 0, 1, 2
    python benchmarks/ablation_003.py --seeds=0 --tables=3   # a quick look
    python benchmarks/ablation_003.py --write_results        # the tables into docs/results.md

--write_results replaces the whole issue-4 section with the tables asked for (its hand-written notes go).

Seed s generates the proving ground with generator seed s (the demo preset: label
hierarchy, incomplete labels; `yt8m/data/synthetic.py`) and trains with seed s, so a
seed changes both the data and the initialisation. --train_seed_offset=k finetunes with seed
s + k instead (the finetune's shuffling, frame sampling and dropout; same data, same
pretrained checkpoint; default 0, the tables as measured): another training order of the
same rows, kept apart in the results files. Everything goes through
`yt8m.training.train`, the code path of `train.py`: each architecture is pretrained
once per seed on the video labels (its run saves the label statistics of the
training files), and every finetuning of that architecture starts from that
checkpoint on the rated validate segments, so the rows of tables 3 and 4 differ
only in the finetuning loss. Score: segment MAP@K of the test submission on the
test truth. Each row is compared with its table's reference row(s) seed by seed
(paired differences: mean, min, max and how many seeds are positive).

Finished rows are kept per seed in `<run_dir>/results-seed<s>.json`: a run stopped
half way resumes with the rows it has not done, and seeds can run as parallel
processes (`--seeds=0 & --seeds=1 & ...`, then `--write_results` alone merges them).
Sizes are small (the paper's scaled down); the numbers show directions, not the
paper's values.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import models  # noqa: E402,F401
from benchmarks.results_section import write_section  # noqa: E402
from benchmarks.seed_results import load_results, save_results, paired  # noqa: E402
from yt8m import evaluation, metrics, rundir, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402

# Training runs of 16 consecutive frames (every frame at inference) keep a pretraining step cheap.
NEXTVLAD = {"hidden_size": 64, "groups": 4, "expansion": 2, "dropout": 0.3, "gru_units": 32,
            "attention_units": 16, "classifier_kind": "logistic", "sample_frames": 16}
# The paper's clusters 112/136/112 scaled down by 7 (16/20/16), its gating reductions kept.
MIXTURE_SAME = {"mixture_gate": "video", "cluster_size_0": 16, "cluster_size_1": 16, "cluster_size_2": 16, "gating_reduction_0": 16,
                "gating_reduction_1": 16, "gating_reduction_2": 16}
MIXTURE_DIFFERENT = {"mixture_gate": "video", "cluster_size_0": 16, "cluster_size_1": 20, "cluster_size_2": 16, "gating_reduction_0": 16,
                     "gating_reduction_1": 16, "gating_reduction_2": 8}
# bn_momentum 0.99: the hidden BN these tables were measured with (DbofModel's default is 0.9 since issue 14)
DBOF = {"cluster_size": 256, "hidden_size": 64, "sample_frames": 30, "num_mixtures": 2, "bn_momentum": 0.99}
ARCHITECTURES = {
    "frame logistic": ("FrameLevelLogisticModel", {}),
    "1 NeXtVLAD": ("NeXtVLADModel", {k: v for k, v in NEXTVLAD.items() if not k.startswith(("gru", "attention"))}
                   | {"cluster_size": 16}),
    "3 NeXtVLAD, same sizes": ("NeXtVLADMixture", {**NEXTVLAD, **MIXTURE_SAME, "attention_gru": False}),
    "3 NeXtVLAD, different sizes": ("NeXtVLADMixture", {**NEXTVLAD, **MIXTURE_DIFFERENT, "attention_gru": False}),
    "3 NeXtVLAD + Attention-GRU": ("NeXtVLADMixture", {**NEXTVLAD, **MIXTURE_DIFFERENT, "attention_gru": True}),
    "Attention-GRU alone": ("AttentionGRUModel", {k: v for k, v in NEXTVLAD.items()
                                                  if k in ("gru_units", "attention_units", "classifier_kind",
                                                           "sample_frames")}),
    "mixture, global gate": ("NeXtVLADMixture", {**NEXTVLAD, **MIXTURE_DIFFERENT, "attention_gru": True,
                                                 "mixture_gate": "global"}),
    "mixture, no branch losses": ("NeXtVLADMixture", {**NEXTVLAD, **MIXTURE_DIFFERENT, "attention_gru": True,
                                                      "branch_loss_weight": 0.0}),
    "DBoF": ("DbofModel", DBOF),
    "DBoF + GCN": ("DbofGCNModel", {**{k: v for k, v in DBOF.items() if k not in ("num_mixtures", "bn_momentum")},
                                    "gcn_hidden_size": 64}),
    "DBoF + GCN, plain x W^T": ("DbofGCNModel", {**{k: v for k, v in DBOF.items() if k not in ("num_mixtures", "bn_momentum")},
                                                 "gcn_hidden_size": 64, "cosine": False}),
}
MIXTURE = "3 NeXtVLAD + Attention-GRU"
RATED_ONLY = {"loss": "bce"}                                   # BCE on the rated class alone
PAPER_LOSS = {"loss": "reweighted", "reweight_m": 2.5, "reweight_n": 0.1, "unrated_classes": "seen"}
# Tables 9-10 finetune with SGD (momentum 0.9) at their own rate and length, fixed before the run (one for
# every row and seed): Adam's per-weight steps give the n-weighted terms full-size steps (docs/results.md).
SGD_FINETUNE = {"optimizer": "sgd", "base_learning_rate": 0.1, "max_steps": 400, "steps_per_epoch": 400}
# Tables 11-12: the same with a Gaussian prior toward the pretrained weights (--finetune_prior), its strength the
# linear benchmark's precision 30 over its 6400-row sum as a per-example mean, chosen on exploration seed 3.
PRIOR = {"finetune_prior": 0.005}
# The plain finetune of tables 3, 7 and 13: every class of the label space trained towards 0, m = n = 1.
EVERY_CLASS = {"loss": "reweighted", "reweight_m": 1.0, "reweight_n": 1.0, "unrated_classes": "seen"}
# Table 15: the mixture's Adam finetune at 3x Table 13's rate and length (Table 13's 100 steps at 1e-3 left (a) at its
# pretrain), picked on exploration seed 3 among 1e-3/3e-3 x 100/300 steps by (a)'s test MAP alone, before seeds 0-2.
MIXTURE_FINETUNE = {"base_learning_rate": 0.003, "max_steps": 300, "steps_per_epoch": 300}


PRETRAIN_ONLY = None   # a row that scores the pretrained checkpoint itself, no finetuning


def _loss_rows(arch: str, finetune: dict, prior: dict | None = None) -> list:
    rows = [("(a) rated class alone (BCE)", RATED_ONLY), ("(b) reweighted m = 2.5, n = 0.1", PAPER_LOSS),
            ("(c) (b) + correlation tau = 0.5", {**PAPER_LOSS, "label_smoothing": "correlation", "tau": 0.5})]
    return [("pretrain only", arch, PRETRAIN_ONLY)] + [(row, arch, {**changes, **finetune, **(prior or {})})
                                                       for row, changes in rows]


def _step_size_rows() -> list:
    """Table 14: under SGD (b)'s m multiplies the rated class's gradient, hence its step, by m against (a)'s, so
    (b) at lr / m takes (a)'s rated step at lr, (a) at lr * m (b)'s; (a) and (b) at lr are Table 10's rows."""
    lr, m = SGD_FINETUNE["base_learning_rate"], PAPER_LOSS["reweight_m"]
    correlation = {**PAPER_LOSS, "label_smoothing": "correlation", "tau": 0.5}
    rows = [(f"(a) rated class alone (BCE), lr {lr:g}", RATED_ONLY, lr),
            (f"(b) reweighted m = {m:g}, n = 0.1, lr {lr:g}", PAPER_LOSS, lr),
            (f"(b) at lr {lr / m:g}: the rated step of (a) at {lr:g}", PAPER_LOSS, lr / m),
            (f"(a) at lr {lr * m:g}: the rated step of (b) at {lr:g}", RATED_ONLY, lr * m),
            (f"(c) (b) + correlation tau = 0.5 at lr {lr / m:g}", correlation, lr / m),
            (f"(a) at lr {lr / m:g}: the rate of (b) above", RATED_ONLY, lr / m)]  # a control, added after seeds 0-2
    return [(row, "DBoF", {**changes, **SGD_FINETUNE, "base_learning_rate": rate}) for row, changes, rate in rows]


def _mixture_loss_rows() -> list:
    """Tables 3-4 on the mixture, reduced to one row each: Table 2's finetune (Adam, the script's rate and length),
    so (a) is Table 2's mixture row."""
    return [("pretrain only", MIXTURE, PRETRAIN_ONLY), ("(a) rated class alone (BCE)", MIXTURE, RATED_ONLY),
            ("every class at 0 (m = n = 1)", MIXTURE, EVERY_CLASS),
            ("(b) reweighted m = 2.5, n = 0.1", MIXTURE, PAPER_LOSS),
            ("(c) (b) + correlation tau = 0.5", MIXTURE, {**PAPER_LOSS, "label_smoothing": "correlation", "tau": 0.5})]


# table: (title, reference rows for the paired differences, [(row, architecture, finetuning flags)])
TABLES = {
    2: ("Table 2: mixture of NeXtVLADs (finetune: BCE on the rated class)", ["frame logistic", "1 NeXtVLAD"],
        [(arch, arch, RATED_ONLY) for arch in ("frame logistic", "1 NeXtVLAD", "3 NeXtVLAD, same sizes",
                                               "3 NeXtVLAD, different sizes", MIXTURE, "Attention-GRU alone")]),
    3: ("Table 3: label reweighting, n = 0.1, unrated targets 0 (the mixture)",
        ["rated class alone (BCE)", "every class at 0 (m = n = 1)"],
        [("rated class alone (BCE)", MIXTURE, RATED_ONLY),
         ("every class at 0 (m = n = 1)", MIXTURE, EVERY_CLASS)]
        + [(f"reweighted m = {m}", MIXTURE, {**PAPER_LOSS, "reweight_m": m}) for m in (2.0, 2.5, 3.0)]
        + [("reweighted m = 2.5, unrated targets = video labels", MIXTURE,
            {**PAPER_LOSS, "unrated_targets": "video_labels"})]),
    4: ("Table 4: correlation-smoothed targets on the reweighted loss m = 2.5 (the mixture)",
        ["no smoothing"],
        [("no smoothing", MIXTURE, PAPER_LOSS)]
        + [(f"tau = {tau}", MIXTURE, {**PAPER_LOSS, "label_smoothing": "correlation", "tau": tau})
           for tau in (0.4, 0.5, 0.6)]),
    5: ("Table 5: DBoF vs DBoF + GCN (finetune: BCE on the rated class)", ["frame logistic", "DBoF"],
        [(arch, arch, RATED_ONLY) for arch in ("frame logistic", "DBoF", "DBoF + GCN", "DBoF + GCN, plain x W^T")]),
    7: ("Table 3 on DBoF: label reweighting, n = 0.1, unrated targets 0",
        ["rated class alone (BCE)", "every class at 0 (m = n = 1)"],
        [("rated class alone (BCE)", "DBoF", RATED_ONLY),
         ("every class at 0 (m = n = 1)", "DBoF", EVERY_CLASS)]
        + [(f"reweighted m = {m}", "DBoF", {**PAPER_LOSS, "reweight_m": m}) for m in (2.0, 2.5, 3.0)]
        + [("reweighted m = 2.5, unrated targets = video labels", "DBoF",
            {**PAPER_LOSS, "unrated_targets": "video_labels"})]),
    8: ("Table 4 on DBoF: correlation-smoothed targets on the reweighted loss m = 2.5", ["no smoothing"],
        [("no smoothing", "DBoF", PAPER_LOSS)]
        + [(f"tau = {tau}", "DBoF", {**PAPER_LOSS, "label_smoothing": "correlation", "tau": tau})
           for tau in (0.4, 0.5, 0.6)]),
    9: ("Seed 003's losses on the frame logistic, SGD finetune", ["(a) rated class alone (BCE)",
        "(b) reweighted m = 2.5, n = 0.1"], _loss_rows("frame logistic", SGD_FINETUNE)),
    10: ("Seed 003's losses on DBoF, SGD finetune", ["(a) rated class alone (BCE)", "(b) reweighted m = 2.5, n = 0.1"],
         _loss_rows("DBoF", SGD_FINETUNE)),
    11: (f"Seed 003's losses on the frame logistic, SGD finetune, prior toward the pretrained weights "
         f"{PRIOR['finetune_prior']}", ["(a) rated class alone (BCE)", "(b) reweighted m = 2.5, n = 0.1"],
         _loss_rows("frame logistic", SGD_FINETUNE, PRIOR)),
    12: (f"Seed 003's losses on DBoF, SGD finetune, prior toward the pretrained weights {PRIOR['finetune_prior']}",
         ["(a) rated class alone (BCE)", "(b) reweighted m = 2.5, n = 0.1"], _loss_rows("DBoF", SGD_FINETUNE, PRIOR)),
    13: ("Seed 003's losses on the mixture, Adam finetune of Table 2", ["(a) rated class alone (BCE)",
         "(b) reweighted m = 2.5, n = 0.1"], _mixture_loss_rows()),
    14: ("Seed 003's losses on DBoF, SGD finetune: the rated class's step, lr / m and lr * m",
         [row for row, _, _ in _step_size_rows()[:3]], _step_size_rows()),
    15: (f"Seed 003's losses on the mixture, Adam finetune lr {MIXTURE_FINETUNE['base_learning_rate']:g}, "
         f"{MIXTURE_FINETUNE['max_steps']} steps", ["(a) rated class alone (BCE)", "(b) reweighted m = 2.5, n = 0.1"],
         _loss_rows(MIXTURE, MIXTURE_FINETUNE)
         + [("every class at 0 (m = n = 1)", MIXTURE, {**EVERY_CLASS, **MIXTURE_FINETUNE})]),
    6: ("Mixture options (linrongc's per-video gate and branch losses; finetune: BCE on the rated class)",
        [MIXTURE],
        [(arch, arch, RATED_ONLY) for arch in (MIXTURE, "mixture, global gate", "mixture, no branch losses")]),
}
SECTION = ("<!-- issue 4 begin -->", "<!-- issue 4 end -->")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--tables", default="2,3,4,5,6,7,8,9,10,11,12,13,14,15")
    parser.add_argument("--pretrain_steps", type=int, default=200)
    parser.add_argument("--finetune_steps", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--pretrain_learning_rate", type=float, default=0.005)
    parser.add_argument("--finetune_learning_rate", type=float, default=0.001)
    parser.add_argument("--data_dir", default=os.path.join("data", "proving"))
    parser.add_argument("--run_dir", default=os.path.join("runs", "ablation_003"))
    parser.add_argument("--train_seed_offset", type=int, default=0,
                        help="the finetune's seed is the data seed + this (another training order; 0: the tables)")
    parser.add_argument("--write_results", action="store_true")
    args = parser.parse_args(argv)
    if args.write_results and args.train_seed_offset:
        parser.error("--write_results writes the tables of --train_seed_offset=0; the other orders are printed")
    offset = args.train_seed_offset
    seeds = [int(s) for s in args.seeds.split(",")]
    tables = [int(t) for t in args.tables.split(",")]
    recipe = {k: getattr(args, k) for k in ("pretrain_steps", "finetune_steps", "batch_size",
                                            "pretrain_learning_rate", "finetune_learning_rate")}
    done = load_results(args.run_dir, recipe)
    started = time.time()
    for seed in seeds:
        paths = synthetic.ensure(os.path.join(args.data_dir, f"seed{seed}"), synthetic.SyntheticConfig.demo(seed))
        truth = metrics.read_segment_truth(paths.test_truth)
        done.setdefault(_key(seed, "random ranking", {}), _random_map(truth, seed))
        base = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                      num_classes=paths.num_classes, batch_size=args.batch_size, seed=seed,
                      base_learning_rate=args.pretrain_learning_rate, max_steps=args.pretrain_steps,
                      steps_per_epoch=args.pretrain_steps, train_data_pattern=paths.frame_train)
        for table in tables:
            for row, arch, changes in TABLES[table][2]:
                key = _key(seed, arch, changes, offset)
                if key in done:
                    continue
                model, params = ARCHITECTURES[arch]
                pretrain = base.replace(model=model, model_params=params,
                                        train_dir=_dir(args.run_dir, seed, arch, "pretrain"))
                if not os.path.exists(os.path.join(pretrain.training.train_dir, rundir.MODEL_FILE)):
                    _fresh_train(pretrain)
                if changes is PRETRAIN_ONLY:
                    done[key] = _test_map(pretrain.replace(stage="finetune", init_from=pretrain.training.train_dir,
                                                           segment_labels=True), paths, truth)
                    save_results(args.run_dir, recipe, done, seed)
                    continue
                finetune = pretrain.replace(**{  # a row's own rate and length (tables 9-12) replace the recipe's
                    "stage": "finetune", "init_from": pretrain.training.train_dir, "segment_labels": True,
                    "train_data_pattern": paths.frame_validate, "base_learning_rate": args.finetune_learning_rate,
                    "max_steps": args.finetune_steps, "steps_per_epoch": args.finetune_steps, "seed": seed + offset,
                    "train_dir": _dir(args.run_dir, seed, arch, key), **changes})
                _fresh_train(finetune)
                done[key] = _test_map(finetune, paths, truth)
                save_results(args.run_dir, recipe, done, seed)
                print(f"[{time.time() - started:6.0f}s] seed {seed} | table {table} | {row}: {done[key]:.4f}",
                      flush=True)
    done = load_results(args.run_dir, recipe)  # with the rows of seeds run by other processes
    print("\n" + _markdown(done, tables, sorted({json.loads(k)[0] for k in done}), args))
    if args.write_results:
        write_section(SECTION, _markdown(done, tables, sorted({json.loads(k)[0] for k in done}), args))


def _key(seed: int, arch: str, changes: dict | None, offset: int = 0) -> str:
    """A row's results key; a finetune at another training order (offset != 0) gets its own."""
    if changes is PRETRAIN_ONLY:
        return json.dumps([seed, arch, "pretrain only"])
    return json.dumps([seed, arch, sorted(changes.items())] + ([{"train_seed_offset": offset}] if offset else []))


def _dir(root: str, seed: int, arch: str, row: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in f"{arch}__{row}").strip("_")
    if len(slug) > 120:  # long rows stay apart: cut, plus a digest of the whole row
        slug = slug[:111] + "_" + hashlib.sha1(row.encode()).hexdigest()[:8]
    return os.path.join(root, f"seed{seed}", slug)


def _fresh_train(config: Config) -> None:
    if os.path.exists(config.training.train_dir):
        shutil.rmtree(config.training.train_dir)  # a fresh run each time (the backup would resume)
    training.train(config)


def _test_map(config: Config, paths, truth) -> float:
    csv = os.path.join(config.training.train_dir, "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, output_file=csv),
                                progress=False)
    return float(metrics.segment_map_at_k(metrics.read_segment_submission(csv), truth))


def _random_map(truth, seed: int) -> float:
    scores = np.random.default_rng(seed).random(len(truth))
    return float(metrics.rated_segment_map(truth["class_id"].to_numpy(), scores, truth["score"].to_numpy()))


def _markdown(done: dict, tables, seeds, args) -> str:
    seeds = [s for s in seeds if any(json.loads(k)[0] == s and json.loads(k)[1] != "random ranking" for k in done)]
    random = [done.get(_key(s, "random ranking", {})) for s in seeds]
    lines = ["## Seed 003 ablations (3rd YouTube-8M challenge): `benchmarks/ablation_003.py`", "",
             f"Proving ground (`SyntheticConfig.demo(seed)`: label hierarchy, incomplete labels), segment "
             f"MAP@K on the test truth; seeds {', '.join(map(str, seeds))} (data and training); pretrain "
             f"{args.pretrain_steps} steps at lr {args.pretrain_learning_rate} on the train video labels, finetune "
             f"{args.finetune_steps} steps at lr {args.finetune_learning_rate} on the validate ratings, batch "
             f"{args.batch_size}, small sizes (see the script). Random ranking: "
             + ", ".join(f"{r:.4f}" for r in random if r is not None) + ". Paired differences against "
             "the reference row, seed by seed: mean [min, max], and the number of seeds where the row is "
             "higher.", ""]
    for table in tables:
        title, references, rows = TABLES[table]
        values = {row: [done.get(_key(s, arch, changes, args.train_seed_offset)) for s in seeds]
                  for row, arch, changes in rows}
        order = f", finetune seed = data seed + {args.train_seed_offset}" if args.train_seed_offset else ""
        lines += [f"**{title}{order}**", "",
                  "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | "
                  + " | ".join(f"vs {r}" for r in references) + " |",
                  "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: | " + " | ".join("---" for _ in references) + " |"]
        for row, _, _ in rows:
            mine = values[row]
            if all(v is None for v in mine):
                continue
            cells = [f"{v:.4f}" if v is not None else "-" for v in mine]
            mean = np.mean([v for v in mine if v is not None])
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {mean:.4f} | "
                         + " | ".join(paired(mine, values[r]) if r != row else "" for r in references) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
