"""The graph, CMA and SRDL models under the CLI defaults (issues 14 and 15's "Must show"): docs/results.md.

    python benchmarks/cli_defaults.py                                          # every row, seed 0
    python benchmarks/cli_defaults.py --rows="KSSNetTemporal demo"             # one row (rows may run as parallel processes)
    python benchmarks/cli_defaults.py --rows="CmaSNetModel demo;FrameLevelLogisticModel demo" --seeds=0,1,2

Each row is one model on one set: `SyntheticConfig.proving(seed)` (demo) or `.easy(seed)` (easy), for each of
--seeds (data only; training keeps --seed's default), made under --data_dir if missing. Both stages go through
train.py's own flag parsing (yt8m.flags -> Config) with nothing but `--model=M --frame_features --batch_size=32`,
the data, `--num_epochs=3` for the pretrain and `--stage=finetune --segment_labels --max_steps=50` on the validate
ratings; every other flag is the CLI's default (the CMA and SRDL models' label embeddings: ASGE, trained at the
pretrain's start from the train labels, as a user's first `train.py --model=CmaSNetModel` does). After each stage
the model scores every test segment: test MAP (rated pairs against the test truth, the segment MAP@K's ranking), a
random ranking's, and the median over the rated classes of each class's probability std (and logit std) across
the segments. A finished stage is saved at once in <run_dir>/results-<row>[_seed<N>].json (a rerun skips it).
The last table pairs each model's test MAP with the frame logistic's on the same set and seed.

With --held_out the finetune trains on the first half of the validate files and validates on the other half every
--eval_every steps from step 0 (its --init_from model) with --keep_best_checkpoint; the stage "best" is the probe of
its best_model.keras (rows then go to results-<row>[_seed<N>]-held_out.json).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import flags as absl_flags  # noqa: E402

import models  # noqa: E402,F401
from benchmarks.seed_results import paired  # noqa: E402
from yt8m import datasets, evaluation, flags, metrics, rundir, training  # noqa: E402
from yt8m.data import synthetic  # noqa: E402

SETS = {"demo": synthetic.SyntheticConfig.proving, "easy": synthetic.SyntheticConfig.easy}
BASELINE = "FrameLevelLogisticModel"
MODELS = ("KSSNetTemporal", "DbofGCNModel", "DbofModel", BASELINE)   # issue 14: both sets
DEMO_MODELS = ("CmaSNetModel", "CmaFCModel", "SRDLModel")             # issue 15: the demo set
ROWS = [f"{m} {s}" for m in MODELS for s in SETS] + [f"{m} demo" for m in DEMO_MODELS]


def _config(argv: list[str]):
    """The Config train.py builds from these flags."""
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["train.py", *argv])
    return flags.config_from_flags()


def probe(train_dir: str, paths, model_file: str = rundir.MODEL_FILE) -> dict:
    """Test MAP, random MAP and the spread of the rated classes' outputs across the test segments."""
    config = rundir.load_config(train_dir).replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                                   batch_size=512)
    model = rundir.load_trained_model(train_dir, model_file=model_file)
    ids, probabilities = [], []
    for features, _, p in evaluation.predict_batches(model, datasets.inference_dataset(config),
                                                     config.data.input_data_pattern, "input_data_pattern", progress=False):
        ids.append(np.array([name.decode() for name in features["id"]]))
        probabilities.append(p)
    ids, p = np.concatenate(ids), np.concatenate(probabilities)
    truth = metrics.read_segment_truth(paths.test_truth)
    row_of = {name: i for i, name in enumerate(ids)}
    rows = np.array([row_of[s] for s in truth["segment_id"].astype(str)])
    classes, ratings = truth["class_id"].to_numpy(), truth["score"].to_numpy()
    rated = p[:, np.unique(classes)]
    logits = np.log(np.clip(rated, 1e-12, 1.0)) - np.log(np.clip(1.0 - rated, 1e-12, 1.0))
    return {"test_map": float(metrics.rated_segment_map(classes, p[rows, classes], ratings)),
            "random_map": float(metrics.rated_segment_map(classes, np.random.default_rng(0).random(len(classes)),
                                                          ratings)),
            "std": float(np.median(rated.std(axis=0))), "logit_std": float(np.median(logits.std(axis=0)))}


def run_row(row: str, seed: int, args) -> dict:
    model, set_name = row.split()
    paths = synthetic.ensure(os.path.join(args.data_dir, f"{'proving' if set_name == 'demo' else set_name}_seed{seed}"),
                             SETS[set_name](seed))
    name = row.replace(" ", "_") + (f"_seed{seed}" if seed else "")
    work = os.path.join(args.run_dir, name)
    saved_file = os.path.join(args.run_dir, f"results-{name}{'-held_out' if args.held_out else ''}.json")
    done = json.load(open(saved_file)) if os.path.exists(saved_file) else {}
    common = [f"--model={model}", "--frame_features", f"--batch_size={args.batch_size}"]
    finetune_data = (held_out_flags(paths.frame_validate, args.eval_every) if args.held_out
                     else [f"--train_data_pattern={paths.frame_validate}"])
    stages = {"pretrain": [*common, f"--train_data_pattern={paths.frame_train}", f"--train_dir={work}/pretrain",
                           f"--num_epochs={args.pretrain_epochs}"],
              "finetune": [*common, "--stage=finetune", f"--init_from={work}/pretrain", "--segment_labels",
                           *finetune_data, f"--train_dir={work}/finetune{'_held_out' if args.held_out else ''}",
                           f"--max_steps={args.finetune_steps}"]}
    for stage, argv in stages.items():
        if stage in done:
            continue
        start = time.time()
        result = training.train(_config(argv))
        done[stage] = {"steps": result.steps, "health": list(result.health), **probe(result.train_dir, paths),
                       "seconds": round(time.time() - start, 1)}
        if result.best is not None:
            done["best"] = {"steps": result.best["step"], "health": [], "validation": list(result.validation),
                            **probe(result.train_dir, paths, rundir.BEST_MODEL_FILE)}
        os.makedirs(args.run_dir, exist_ok=True)
        with open(saved_file + ".tmp", "w") as handle:
            json.dump(done, handle, indent=1)
        os.replace(saved_file + ".tmp", saved_file)
        print(f"{row} seed {seed} | {stage}: {json.dumps(done[stage])}", flush=True)
    return done


def held_out_flags(validate_pattern: str, eval_every: int) -> list[str]:
    """The finetune's data flags under --held_out: train on the first half of the validate files (sorted), score
    the second half every `eval_every` steps and at step 0, keeping the best model."""
    files = sorted(glob.glob(validate_pattern))
    if len(files) < 2:
        raise SystemExit(f"--held_out needs at least 2 validate files, found {len(files)} for {validate_pattern}")
    half = len(files) // 2
    return [f"--train_data_pattern={','.join(files[:half])}", f"--eval_data_pattern={','.join(files[half:])}",
            f"--eval_every_steps={eval_every}", "--keep_best_checkpoint"]


def markdown(results: dict) -> str:
    """results: {(row, seed): {stage: probe}}. Every stage's probe, then each model's test MAP against the frame
    logistic's on the same set, paired by seed."""
    lines = ["| model, set, seed | stage (steps) | test MAP | random | per-class std (median) | logit std (median) | s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (row, seed), stages in results.items():
        for i, (stage, r) in enumerate(stages.items()):
            lines.append(f"| {f'{row} {seed}' if i == 0 else ''} | {stage} ({r['steps']}) | {r['test_map']:.4f} | "
                         f"{r['random_map']:.4f} | {r['std']:.2g} | {r['logit_std']:.2f} | {r.get('seconds', '-')} |")
    pairs, stages = paired_rows(results), paired_stages(results)
    if pairs:
        lines += ["", f"Test MAP against {BASELINE}'s, paired by seed: mean [min, max], seeds higher.", "",
                  f"| model, set | seeds | {' | '.join(stages)} | {stages[-1]}, the model | {stages[-1]}, the baseline |",
                  "| --- | --- |" + " --- |" * (len(stages) + 2), *pairs]
    return "\n".join(lines)


def paired_stages(results: dict) -> list[str]:
    """The stages the paired table compares: pretrain, finetune and, when every run has it, best (--held_out)."""
    return ["pretrain", "finetune", *(["best"] if results and all("best" in r for r in results.values()) else [])]


def paired_rows(results: dict) -> list[str]:
    """One line per (model, set) with the baseline's finetune on at least one of its seeds."""
    def spread(values):
        return f"{np.mean(values):.4f} [{min(values):.4f}, {max(values):.4f}]"

    lines, stages = [], paired_stages(results)
    for row in dict.fromkeys(row for row, _ in results):
        model, set_name = row.split()
        seeds = [seed for r, seed in results if r == row and (f"{BASELINE} {set_name}", seed) in results
                 and all("finetune" in results[key] for key in ((row, seed), (f"{BASELINE} {set_name}", seed)))]
        if model == BASELINE or not seeds:
            continue
        mine = [results[(row, seed)] for seed in seeds]
        base = [results[(f"{BASELINE} {set_name}", seed)] for seed in seeds]
        cells = [paired([m[stage]["test_map"] for m in mine], [b[stage]["test_map"] for b in base]) for stage in stages]
        last = stages[-1]
        lines.append(f"| {row} | {','.join(map(str, seeds))} | {' | '.join(cells)} | "
                     f"{spread([m[last]['test_map'] for m in mine])} | "
                     f"{spread([b[last]['test_map'] for b in base])} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=";".join(ROWS), help="rows 'MODEL SET' separated by ';'")
    parser.add_argument("--data_dir", default=os.path.join("data", "proving_ground"))
    parser.add_argument("--run_dir", default=os.path.join("runs", "cli_defaults"))
    parser.add_argument("--seeds", default="0", help="the sets' seeds, comma-separated (data only; training keeps "
                                                      "--seed's default)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--pretrain_epochs", type=int, default=3)
    parser.add_argument("--finetune_steps", type=int, default=50)
    parser.add_argument("--held_out", action="store_true", help="finetune on half the validate files, keep the "
                                                                 "best of step 0 and every --eval_every steps on the rest")
    parser.add_argument("--eval_every", type=int, default=25)
    args = parser.parse_args(argv)
    flags.define_flags()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results = {(row, seed): run_row(row, seed, args) for row in args.rows.split(";") if row.strip() for seed in seeds}
    print("\n" + markdown(results))


if __name__ == "__main__":
    main()
