"""`python train.py` with no data flag: the whole pipeline on the embedded synthetic dataset.

generate (once, cached) -> pretrain on video labels -> finetune on segment ratings
-> eval -> segment submissions scored against the test truth. Nothing here is
specific to synthetic data except where the files come from: each stage is the
same call a real run makes.
"""
from __future__ import annotations

import os

import numpy as np

from yt8m import evaluation, metrics, training
from yt8m.cli import print_table
from yt8m.config import Config
from yt8m.data import synthetic

DATA_DIR = os.path.join("data", "synthetic")
RUN_DIR = os.path.join("runs", "demo")
# Sizes for a few minutes on 2 CPU cores; any flag given on the command line wins.
DEMO_MODEL = "DbofModel"
DEMO_MODEL_PARAMS = {"cluster_size": 256, "hidden_size": 128, "num_mixtures": 2, "sample_frames": 30}
DEMO_TRAINING = {"batch_size": 64, "base_learning_rate": 0.005, "max_steps": 400, "steps_per_epoch": 100}
FINETUNE = {"max_steps": 100, "base_learning_rate": 0.001}  # a gentler second stage


def run_demo(flag_values) -> dict:
    """Runs every stage; flags given on the command line override the demo's settings."""
    from yt8m.flags import config_from_flags

    paths = synthetic.ensure(DATA_DIR, synthetic.SyntheticConfig.demo())
    overrides = {name: getattr(config_from_flags(), name) for name in Config.__dataclass_fields__
                 if name in flag_values and flag_values[name].present}
    base = Config(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(1024, 128),
                  num_classes=paths.num_classes, model=DEMO_MODEL, model_params=DEMO_MODEL_PARAMS,
                  **DEMO_TRAINING).replace(**overrides)
    run_dir = overrides.get("train_dir") or RUN_DIR
    pretrain = base.replace(train_data_pattern=paths.frame_train, train_dir=os.path.join(run_dir, "pretrain"),
                            eval_data_pattern=paths.frame_validate)
    finetune = pretrain.replace(stage="finetune", init_from=pretrain.train_dir, segment_labels=True,
                                train_data_pattern=paths.frame_validate,
                                train_dir=os.path.join(run_dir, "finetune"),
                                **{k: overrides.get(k, v) for k, v in FINETUNE.items()})
    print("\n== stage 1: pretrain on video-level labels ==")
    training.train(pretrain)
    print("\n== stage 2: finetune on segment ratings ==")
    training.train(finetune)

    print("\n== evaluation ==")
    results = {f"pretrain video {k}": v for k, v in evaluation.evaluate(pretrain).items() if k != "output_file"}
    truth = metrics.read_segment_truth(paths.test_truth)
    for stage in (pretrain, finetune):
        csv = os.path.join(stage.train_dir, "submission.csv")
        evaluation.write_submission(stage.replace(input_data_pattern=paths.frame_test, segment_labels=True,
                                                  output_file=csv))
        results[f"{os.path.basename(stage.train_dir)} test segment MAP@K"] = metrics.segment_map_at_k(
            metrics.read_segment_submission(csv), truth)
    results["random ranking test segment MAP@K"] = _random_ranking_map(truth, base.seed)
    print_table("demo results", results)
    print_table("where everything went", {"data": paths.root, "pretrain run": pretrain.train_dir,
                                          "finetune run": finetune.train_dir,
                                          "submission": os.path.join(finetune.train_dir, "submission.csv"),
                                          "tensorboard": f"tensorboard --logdir {run_dir}"})
    return results


def _random_ranking_map(truth, seed: int) -> float:
    """MAP@K of ranking each class's rated test segments at random: the floor to beat."""
    scores = np.random.default_rng(seed).random(len(truth))
    return metrics.rated_segment_map(truth["class_id"].to_numpy(), scores, truth["score"].to_numpy())
