"""`--model=Ensemble`: trained runs (`--members`) combined by `models.ensemble`, weights fitted here.

One way to make one: `python train.py --model=Ensemble --members=A,B [--weights=..]
[--fit_weights_on=PATTERN] --train_dir=DIR` (yt8m/cli.py hands it to `write_run`) loads the
members, fits the weights when asked (no gradient step), and writes DIR/model.keras,
config.json and ensemble.json (the weights, the fitted MAP). Every tool then loads DIR like
any run (eval, inference, gating, SavedModel export): nothing else knows ensembles.

Fitting (`--fit_weights_on`, rated validate segments): one pass keeps every member's
score of each rated (segment, class) pair and, for `--ensemble_method=rank`, the
full predictions of the first MAX_REFERENCE_ROWS segments (their per-class
quantiles define the ranks); then a coordinate search over each member's weight on
a grid maximises segment MAP@K of the combined scores (`fit_weights`).
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from models import ensemble as combine
from yt8m import metrics, rundir
from yt8m.config import Config
from yt8m.data import readers
from yt8m.errors import UserError
from yt8m.fileio import atomic_output, save_model_atomically
from yt8m.progress import keras_verbose

MAX_REFERENCE_ROWS = 4096     # segments whose full predictions give the rank quantiles
NUM_QUANTILES = 101
WEIGHT_GRID = np.linspace(0.0, 1.0, 11)
FIT_ROUNDS = 3
REPORT_FILE = "ensemble.json"


def load_members(config: Config) -> list[keras.Model]:
    return [rundir.load_trained_model(directory, flag="members") for directory in config.model_.members]


def build(config: Config, progress: bool = True) -> tuple[keras.Model, dict]:
    """The ensemble of config.model_.members and a report {members, weights, method, fitted_map?}."""
    members = load_members(config)
    weights = np.asarray(config.model_.weights or [1.0] * len(members), np.float64)
    weights = weights / weights.sum()
    report = {"members": list(config.model_.members), "method": config.model_.ensemble_method}
    quantiles = None
    if config.model_.fit_weights_on:
        pair_scores, class_ids, ratings, reference = member_scores(members, config, progress)
        if config.model_.ensemble_method == "rank":
            quantiles = np.stack([combine.reference_quantiles(r, NUM_QUANTILES) for r in reference])
            pair_scores = pair_ranks(pair_scores, class_ids, quantiles)
        k = config.submission_top_k
        report["equal_weights_map"] = metrics.rated_segment_map(class_ids, pair_scores.mean(axis=1), ratings, k=k)
        report["member_maps"] = [metrics.rated_segment_map(class_ids, pair_scores[:, m], ratings, k=k)
                                 for m in range(len(members))]
        weights, report["fitted_map"] = fit_weights(pair_scores, class_ids, ratings, initial=weights, k=k)
    elif config.model_.ensemble_method == "rank":
        raise UserError("--ensemble_method=rank needs --fit_weights_on=PATTERN: the rated segments whose "
                        "per-class score quantiles define the members' ranks")
    report["weights"] = [float(w) for w in weights]
    try:
        model = combine.build_ensemble(members, member_weights=weights, method=config.model_.ensemble_method,
                                       quantiles=quantiles)
    except ValueError as exc:
        raise UserError(f"--members: {exc}") from None
    return model, report


def write_run(config: Config, progress: bool = True) -> rundir.TrainResult:
    """train.py --model=Ensemble: the ensemble's model.keras, config.json and ensemble.json in --train_dir."""
    if not config.training.train_dir:
        raise UserError("--train_dir is empty; give the directory the ensemble is written to")
    member = rundir.saved_config(config.model_.members[0])
    if member is not None:
        for name in ("frame_features", "feature_names", "feature_sizes", "num_classes"):
            if member.flag(name) != config.flag(name):
                raise UserError(f"--{name}={config.flag(name)} differs from the member {config.model_.members[0]}'s "
                                f"{member.flag(name)}; give the members' data flags")
    model, report = build(config, progress)
    tf.io.gfile.makedirs(config.training.train_dir)
    config.save(os.path.join(config.training.train_dir, rundir.CONFIG_FILE))
    path = os.path.join(config.training.train_dir, rundir.MODEL_FILE)
    save_model_atomically(model, path)
    with atomic_output(os.path.join(config.training.train_dir, REPORT_FILE)) as handle:
        json.dump(report, handle, indent=2)
    print(f"ensemble of {len(config.model_.members)} member(s), weights {report['weights']}: {path}")
    return rundir.TrainResult(config.training.train_dir, path, 0, float("nan"), 1)


def member_scores(members, config: Config, progress: bool = True):
    """One pass over --fit_weights_on: (pair scores (N, M), rated classes (N,), ratings (N,),
    reference: per member the full (<= MAX_REFERENCE_ROWS, C) predictions)."""
    if not (config.data.segment_labels and config.data.frame_features):
        raise UserError("--fit_weights_on fits on rated segments; add --segment_labels --frame_features")
    dataset = readers.segment_dataset(config.model_.fit_weights_on, rated=True, num_classes=config.data.num_classes,
                                      feature_spec=config.data.feature_spec, batch_size=config.training.batch_size,
                                      flag="fit_weights_on")
    forward = tf.function(lambda x: tf.stack([m(x, training=False) for m in members]), reduce_retracing=True)
    bar = keras.utils.Progbar(None, unit_name="segment", verbose=keras_verbose(progress))
    scores, classes, ratings, reference = [], [], [], []
    kept = 0
    with readers.data_errors(config.model_.fit_weights_on, "fit_weights_on"):
        for features, labels, _ in dataset:
            predictions = forward(readers.model_inputs(features)).numpy()           # (M, B, C)
            rated = features["segment_class"].numpy()
            rows = np.arange(rated.size)
            scores.append(predictions[:, rows, rated].T)
            classes.append(rated)
            ratings.append(labels.numpy()[rows, rated])
            if kept < MAX_REFERENCE_ROWS:
                reference.append(predictions[:, :MAX_REFERENCE_ROWS - kept])
                kept += reference[-1].shape[1]
            bar.add(rated.size)
    if not classes:
        raise UserError(f"--fit_weights_on={config.model_.fit_weights_on!r} has no rated segments")
    return (np.concatenate(scores), np.concatenate(classes), np.concatenate(ratings),
            np.concatenate(reference, axis=1))


def pair_ranks(pair_scores: np.ndarray, class_ids: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(N, M) scores of rated pairs -> their per-class ranks, the combination layer's own formula."""
    ranks = []
    for start in range(0, len(class_ids), 65536):
        chunk = slice(start, start + 65536)
        values = tf.constant(pair_scores[chunk].T[:, None, :], tf.float32)            # (M, 1, n)
        pair_quantiles = tf.constant(quantiles[:, class_ids[chunk], :], tf.float32)  # (M, n, Q)
        ranks.append(combine.per_class_ranks(values, pair_quantiles).numpy()[:, 0, :].T)
    return np.concatenate(ranks)


def fit_weights(pair_scores: np.ndarray, class_ids: np.ndarray, ratings: np.ndarray, *,
                initial=None, k: int | None = 100000, grid=WEIGHT_GRID, rounds: int = FIT_ROUNDS):
    """Coordinate search for non-negative member weights (sum 1) maximising rated segment MAP@K.

    Starts from the best of `initial` (default equal) and each member alone; each round
    tries every grid value for each member's weight in turn (the others fixed, then
    renormalised), keeping the best (ties keep the current weights); stops when a
    round changes nothing. Returns (weights, MAP@K), never worse than the start.
    """
    num_members = pair_scores.shape[1]
    weights = np.full(num_members, 1.0 / num_members) if initial is None else np.asarray(initial, np.float64)

    def score(w):
        if w.sum() <= 0:
            return -np.inf
        return metrics.rated_segment_map(class_ids, pair_scores @ (w / w.sum()), ratings, k=k)

    best = score(weights)
    for single in np.eye(num_members):   # start from the best of the given weights and each member alone
        single_score = score(single)
        if single_score > best + 1e-12:
            weights, best = single, single_score
    for _ in range(rounds):
        changed = False
        for member in range(num_members):
            for value in grid:
                trial = weights.copy()
                trial[member] = value
                trial_score = score(trial)
                if trial_score > best + 1e-12:
                    weights, best, changed = trial / trial.sum(), trial_score, True
        if not changed:
            break
    return weights / weights.sum(), float(best)
