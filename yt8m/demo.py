"""`python train.py` with no data flag: the mission on the proving ground, end to end.

generate (once, cached) -> pretrain on video labels (validated at each epoch end) -> finetune on the
segment ratings twice, plainly (BCE on the rated class) and with seed 003's label reweighting and
correlation-smoothed targets -> a segment submission of each stage scored against the test truth.
Nothing here is specific to synthetic data except where the files come from: each stage is the same
call a real run makes (train.py's flags name the same Config fields).
"""
from __future__ import annotations

import os

import numpy as np

from yt8m import evaluation, metrics, training
from yt8m.config import Config
from yt8m.data import synthetic
from yt8m.progress import print_table

DATA_DIR = os.path.join("data", "synthetic")
RUN_DIR = os.path.join("runs", "demo")
# Sizes for a few minutes on 2 CPU cores; any flag given on the command line wins.
DEMO_MODEL = "DbofModel"
DEMO_MODEL_PARAMS = {"cluster_size": 256, "hidden_size": 128, "num_mixtures": 2, "sample_frames": 30}
DEMO_TRAINING = {"batch_size": 64, "base_learning_rate": 0.005, "max_steps": 400, "steps_per_epoch": 200}
# Both finetunes: the recipe under which seed 003's finetune showed through train.py (docs/results.md, tables
# 9-10: SGD with momentum 0.9 at lr 0.1, 400 steps of batch 32, 2 epochs of the 6400 rated validate segments).
FINETUNE = {"optimizer": "sgd", "base_learning_rate": 0.1, "batch_size": 32, "max_steps": 400, "steps_per_epoch": 200}
# Seed 003's finetune (Eq.2-6): reweighting m/n and the threshold tau are Config's defaults (2.5, 0.1, 0.5).
SEED_003 = {"loss": "reweighted", "label_smoothing": "correlation"}


def run_demo(flag_values) -> dict:
    """Runs every stage and prints the table; flags given on the command line override the demo's settings."""
    from yt8m.flags import config_from_flags

    paths = synthetic.ensure(DATA_DIR, synthetic.SyntheticConfig.demo())
    overrides = {name: config_from_flags().flag(name) for name in Config.flag_names()
                 if name in flag_values and flag_values[name].present}
    base = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                  num_classes=paths.num_classes, model=DEMO_MODEL, model_params=DEMO_MODEL_PARAMS,
                  **DEMO_TRAINING).replace(**overrides)
    run_dir = overrides.get("train_dir") or RUN_DIR
    pretrain = base.replace(train_data_pattern=paths.frame_train, train_dir=os.path.join(run_dir, "pretrain"),
                            eval_data_pattern=paths.frame_validate, eval_every_steps=0)
    # The finetunes train on the validate ratings, so nothing validates them during training: the test truth scores.
    plain = pretrain.replace(stage="finetune", init_from=pretrain.training.train_dir, segment_labels=True,
                             train_data_pattern=paths.frame_validate, eval_data_pattern="", eval_every_steps=None,
                             train_dir=os.path.join(run_dir, "finetune"),
                             **{k: overrides.get(k, v) for k, v in FINETUNE.items()})
    seed_003 = plain.replace(train_dir=os.path.join(run_dir, "finetune_seed003"),
                             **{k: overrides.get(k, v) for k, v in SEED_003.items()})
    stages = [("pretrain (video labels)", pretrain, "stage 1: pretrain on video-level labels"),
              ("finetune, BCE on the rated class", plain, "stage 2a: finetune on segment ratings, plainly"),
              ("finetune, seed 003 (reweighted m=%g n=%g, correlation targets tau=%g)"
               % (seed_003.loss_.reweight_m, seed_003.loss_.reweight_n, seed_003.loss_.tau), seed_003,
               "stage 2b: finetune on segment ratings with seed 003's reweighting and correlation targets")]
    results = []
    for _, config, title in stages:
        print(f"\n== {title} ==")
        results.append(training.train(config))
    validation = results[0].validation[-1] if results[0].validation else {}

    print("\n== test submissions, scored against the test truth ==")
    truth = metrics.read_segment_truth(paths.test_truth)
    scores = {}
    for name, config, _ in stages:
        csv = os.path.join(config.training.train_dir, "submission.csv")
        evaluation.write_submission(config.replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                                   output_file=csv))
        scores[name] = metrics.segment_map_at_k(metrics.read_segment_submission(csv), truth)
    scores["random ranking"] = _random_ranking_map(truth, base.training.seed)
    print_table("pretrain, video-level validation (validate split)",
                {k: v for k, v in validation.items() if k != "step"})
    _print_mission_table(scores, [name for name, _, _ in stages])
    print_table("where everything went", {"data": paths.root, **{f"{name} run": c.training.train_dir for name, c, _ in stages},
                                          "submission": os.path.join(seed_003.training.train_dir, "submission.csv"),
                                          "tensorboard": f"tensorboard --logdir {run_dir}"})
    return {**{f"pretrain video {k}": v for k, v in validation.items() if k != "step"},
            **{f"{name} test segment MAP@K": v for name, v in scores.items()}}


def _print_mission_table(scores: dict, order: list) -> None:
    """Segment MAP@K per row with its difference to the pretrained model and to the plain finetune."""
    pretrained, plain = scores[order[0]], scores[order[1]]
    rows = [(name, scores[name]) for name in order] + [("random ranking", scores["random ranking"])]
    width = max(len(name) for name, _ in rows)
    print("\n== the mission: test segment MAP@K (one seed; docs/results.md measures three) ==")
    print(f"  {'row'.ljust(width)}  MAP@K   vs pretrain  vs plain finetune")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value:.4f}  {value - pretrained:+.4f}      {value - plain:+.4f}")
    gain = scores[order[2]] - plain
    print(f"  seed 003's finetune {'gains' if gain > 0 else 'does not gain'} over the plain one here: {gain:+.4f}")


def _random_ranking_map(truth, seed: int) -> float:
    """MAP@K of ranking each class's rated test segments at random: the floor to beat."""
    scores = np.random.default_rng(seed).random(len(truth))
    return metrics.rated_segment_map(truth["class_id"].to_numpy(), scores, truth["score"].to_numpy())
