"""Ablation of issue 9's ideas on the demo synthetic set: candidate gating, weak negatives,
ensembles, stochastic weight averaging.

    python benchmarks/ablation_beyond.py [--out=runs/ablation_beyond] [--pretrain_steps=300]

Pretrains one small DBoF on the video labels, finetunes variants from it on the rated
validate files 0-2 (validate file 3 is held out: ensemble weights are fitted on it and
the candidates' recall is measured on its ratings), and scores every variant on the
test split against its truth (segment MAP@K of the written submission). Gating is
measured on the baseline finetune with the candidates from the model itself and from
the pretrained video-level model, with inference timed side by side (best of
--repeats, alternating). Prints a markdown table for docs/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from yt8m import candidates, ensemble, evaluation, metrics, rundir, training  # noqa: E402
from yt8m.config import Config  # noqa: E402
from yt8m.data import synthetic  # noqa: E402

MODEL_PARAMS = {"cluster_size": 128, "hidden_size": 64, "num_mixtures": 2, "sample_frames": 30}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("runs", "ablation_beyond"))
    parser.add_argument("--data", default=os.path.join("data", "synthetic"))
    parser.add_argument("--pretrain_steps", type=int, default=300)
    parser.add_argument("--finetune_steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    paths = synthetic.ensure(args.data, synthetic.SyntheticConfig.demo())
    frame_dir = os.path.dirname(paths.frame_validate)
    finetune_files = ",".join(os.path.join(frame_dir, f"validate000{i}.tfrecord") for i in range(3))
    held_out = os.path.join(frame_dir, "validate0003.tfrecord")
    truth = metrics.read_segment_truth(paths.test_truth)
    base = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                  num_classes=paths.num_classes, model="DbofModel", model_params=MODEL_PARAMS, batch_size=64,
                  base_learning_rate=0.005, steps_per_epoch=100, max_steps=args.pretrain_steps,
                  train_data_pattern=paths.frame_train, train_dir=os.path.join(args.out, "pretrain"))
    if not os.path.exists(os.path.join(base.training.train_dir, rundir.MODEL_FILE)):
        training.train(base)
    finetune = base.replace(stage="finetune", init_from=base.training.train_dir, segment_labels=True,
                            train_data_pattern=finetune_files, max_steps=args.finetune_steps,
                            steps_per_epoch=10, base_learning_rate=0.001,
                            eval_data_pattern=held_out, input_data_pattern=paths.frame_test)
    variants = {
        "bce (baseline)": {},
        "weak_negative alpha=1": {"loss": "weak_negative"},
        "weak_negative alpha=0.3": {"loss": "weak_negative", "weak_negative_alpha": 0.3},
        "reweighted m=2.5 n=0.1": {"loss": "reweighted"},
        "reweighted + weak_negative alpha=1": {"loss": "reweighted", "weak_negative_alpha": 1.0},
        f"bce + SWA from step {args.finetune_steps // 2}": {"swa_from_step": args.finetune_steps // 2},
        "bce, seed 1": {"seed": 1},
    }
    rows, runs = [], {}
    for name, changes in variants.items():
        run = finetune.replace(train_dir=os.path.join(args.out, _slug(name)), **changes)
        if not os.path.exists(os.path.join(run.training.train_dir, "done")):
            training.train(run)
            open(os.path.join(run.training.train_dir, "done"), "w").close()
        runs[name] = run
        rows.append(_scores(name, run, truth, args.out))

    members = [runs["bce (baseline)"], runs["weak_negative alpha=1"], runs["bce, seed 1"]]
    for method, fit in (("mean", False), ("mean", True), ("rank", True)):
        name = f"ensemble of 3 ({method}{', weights fitted on validate 3' if fit else ', equal weights'})"
        config = finetune.replace(model="Ensemble", members=tuple(m.training.train_dir for m in members),
                                  ensemble_method=method, fit_weights_on=held_out if fit else "",
                                  train_dir=os.path.join(args.out, _slug(name)))
        training.train(config)
        with open(os.path.join(config.training.train_dir, ensemble.REPORT_FILE)) as handle:
            report = json.load(handle)
        rows.append(_scores(name, config, truth, args.out, note=f"weights {np.round(report['weights'], 2).tolist()}"))

    gating = _gating(runs["bce (baseline)"], base.training.train_dir, truth, args.out, args.repeats)
    print(_markdown(rows, gating, args))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _scores(name, run: Config, truth, out, note=""):
    held_out = evaluation.evaluate(run.replace(output_file=os.path.join(out, f"{_slug(name)}.eval.json")),
                                   progress=False)["segment_map_at_k"]
    csv = os.path.join(out, f"{_slug(name)}.csv")
    evaluation.write_submission(run.replace(output_file=csv), progress=False)
    test = metrics.segment_map_at_k(metrics.read_segment_submission(csv, truth=truth), truth)
    print(f"{name}: held-out validate MAP@K {held_out:.4f}, test MAP@K {test:.4f} {note}")
    return {"variant": name, "validate3": held_out, "test": test, "note": note}


def _gating(run: Config, video_model_dir: str, truth, out, repeats: int):
    """Recall and MAP@K per k for both candidate sources; inference time with and without gating."""
    results = []
    for source, video_dir in (("finetuned model itself", ""), ("pretrained video-level run", video_model_dir)):
        for k in (3, 5, 10, 20):
            gated = run.replace(candidate_top_k=k, video_model_dir=video_dir)
            held = evaluation.evaluate(gated.replace(output_file=os.path.join(out, "gated.eval.json")),
                                       progress=False)
            table = candidates.video_candidates(gated, gated.data.input_data_pattern, "input_data_pattern",
                                                rundir.load_trained_model(run.training.train_dir), progress=False)
            test_recall = candidates.candidate_recall(table, truth["segment_id"].to_numpy(),
                                                      truth["class_id"].to_numpy(), truth["score"].to_numpy())
            csv = os.path.join(out, "gated.csv")
            evaluation.write_submission(gated.replace(output_file=csv), progress=False)
            test = metrics.segment_map_at_k(metrics.read_segment_submission(csv, truth=truth), truth)
            results.append({"source": source, "k": k, "validate3_recall": held["candidate_recall"],
                            "test_recall": test_recall["candidate_recall"], "validate3": held["segment_map_at_k"],
                            "validate3_ungated": held["ungated_segment_map_at_k"], "test": test})
            print(results[-1])
    timings = {"ungated": [], "gated k=20 (self)": [], "gated k=20 (video-level run)": []}
    settings = {"ungated": run, "gated k=20 (self)": run.replace(candidate_top_k=20),
                "gated k=20 (video-level run)": run.replace(candidate_top_k=20, video_model_dir=video_model_dir)}
    for _ in range(repeats):
        for label, config in settings.items():
            start = time.perf_counter()
            evaluation.write_submission(config.replace(output_file=os.path.join(out, "timed.csv")), progress=False)
            timings[label].append(time.perf_counter() - start)
    return results, {label: min(values) for label, values in timings.items()}


def _markdown(rows, gating, args) -> str:
    results, timings = gating
    lines = [f"Demo synthetic set; DbofModel {MODEL_PARAMS}, pretrain {args.pretrain_steps} steps, each finetune "
             f"{args.finetune_steps} steps on validate files 0-2 from the same pretrain; validate file 3 held out.",
             "", "| variant | held-out validate MAP@K | test MAP@K | note |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['variant']} | {r['validate3']:.4f} | {r['test']:.4f} | {r['note']} |" for r in rows]
    lines += ["", "Candidate gating of the baseline finetune (non-candidates ranked after every candidate):", "",
              "| candidates from | k | recall, validate 3 | recall, test | validate 3 MAP@K gated (ungated) "
              "| test MAP@K gated |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['source']} | {r['k']} | {r['validate3_recall']:.4f} | {r['test_recall']:.4f} | "
              f"{r['validate3']:.4f} ({r['validate3_ungated']:.4f}) | {r['test']:.4f} |" for r in results]
    base = timings["ungated"]
    lines += ["", "Inference time on the test split (write_submission, best of "
              f"{args.repeats}, side by side): " + ", ".join(
                  f"{label} {seconds:.1f} s ({seconds / base:.2f}x)" for label, seconds in timings.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
