"""After a stage's fit: is the trained model alive? One look at a held batch and the loss history.

A model that dies in training (its outputs the same for every example, or pinned at 0/1 where the
clipped cross-entropy has no gradient, or a loss that climbed) still exits 0; `check` names the
symptom and the flags to try, so the run says so. The batch's judgement is over the classes present
in it (a positive label in some example): a 3862-class model's unseen classes may rightly sit
constant near 0, the classes the batch has may not.
"""
from __future__ import annotations

import numpy as np

# Beyond the loss's clip (yt8m/losses.py, epsilon 1e-7) a prediction has no gradient.
SATURATED = 1e-7
# A class's logit varies less than this across the batch's examples: constant (its ranking is noise).
CONSTANT_LOGIT_STD = 1e-3
# Share of the present classes that are constant, or of their (example, class) pairs that are saturated
# (positives at p < SATURATED, negatives at p > 1 - SATURATED), from which the batch is judged dead.
DEAD_SHARE = 0.5
# The last epoch's loss above this multiple of the first step's or epoch's: the run diverged.
LOSS_GROWTH = 2.0
# What to try, per symptom.
FLAGS = {"constant": "--base_learning_rate (lower), --gcn_learning_rate, --model_params (e.g. prior, cosine)",
         "saturated": "--base_learning_rate (lower), --clip_gradient_norm, --model_params=cosine=true",
         "loss": "--base_learning_rate (lower), --clip_gradient_norm"}


def _logits(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, SATURATED, 1.0 - SATURATED)
    return np.log(clipped) - np.log1p(-clipped)


def symptoms(probabilities: np.ndarray, labels: np.ndarray, epoch_losses) -> list[tuple[str, str]]:
    """The symptoms of a dead model as (kind, description) pairs, kind a key of FLAGS: predictions (B, C)
    on a held batch with its 0/1 labels (B, C), and the losses (the first step's, then each epoch's).
    Empty for a healthy model."""
    probabilities = np.asarray(probabilities, np.float64)
    positive = np.asarray(labels) > 0.5
    present = np.flatnonzero(positive.any(axis=0))
    if not len(present):                     # a batch without labels: judge every class
        present = np.arange(probabilities.shape[1])
    p, pos = probabilities[:, present], positive[:, present]
    found = []
    if len(p) > 1:
        constant = _logits(p).std(axis=0) < CONSTANT_LOGIT_STD
        if constant.mean() >= DEAD_SHARE:
            found.append(("constant", f"its predictions are the same for every example of a held batch of {len(p)} "
                                      f"for {int(constant.sum())} of the {len(present)} classes the batch has "
                                      f"(logit std across examples < {CONSTANT_LOGIT_STD:g})"))
    zero_share = float((p[pos] < SATURATED).mean()) if pos.any() else 0.0
    one_share = float((p[~pos] > 1.0 - SATURATED).mean()) if (~pos).any() else 0.0
    if zero_share >= DEAD_SHARE:
        found.append(("saturated", f"it predicts p < {SATURATED:g} (no gradient) for {zero_share:.0%} of the held "
                                   f"batch's positive labels"))
    if one_share >= DEAD_SHARE:
        found.append(("saturated", f"it predicts p > 1 - {SATURATED:g} (no gradient) for {one_share:.0%} of the "
                                   f"negatives of the {len(present)} classes the held batch has"))
    losses = [float(v) for v in epoch_losses if np.isfinite(v)]
    if len(losses) >= 2 and losses[-1] > LOSS_GROWTH * losses[0]:
        found.append(("loss", f"its loss ended at {losses[-1]:.6g}, above {LOSS_GROWTH:g}x the first "
                              f"{losses[0]:.6g}"))
    return found


def check(model, batch, epoch_losses) -> tuple[str, ...]:
    """`symptoms` of `model` on one training batch `(features, labels, weights)`, each printed on one line
    as a warning naming the flags to try; returns their descriptions (TrainResult.health)."""
    from yt8m.data import readers

    features, labels = batch[0], batch[1]
    probabilities = np.asarray(model(readers.model_inputs(features), training=False))
    found = symptoms(probabilities, np.asarray(labels), epoch_losses)
    for kind, symptom in found:
        print(f"WARNING: the trained model looks dead: {symptom}; try {FLAGS[kind]}")
    return tuple(symptom for _, symptom in found)
