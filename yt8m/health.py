"""After a stage's fit: is the trained model alive? One look at a held batch and the loss history.

A model that dies in training (every output the same, or pinned at 0/1 where the
clipped cross-entropy has no gradient, or a loss that climbed) still exits 0;
`check` names the symptom and the flags to try, so the run says so.
"""
from __future__ import annotations

import numpy as np

# Beyond the loss's clip (yt8m/losses.py, epsilon 1e-7) a prediction has no gradient.
SATURATED = 1e-7
# A class's probabilities across the batch's examples vary less than this: constant.
CONSTANT_STD = 1e-6
# Share of the labelled (example, class) pairs at p < SATURATED, or of the others at p > 1 - SATURATED.
SATURATED_SHARE = 0.5
# The last epoch's loss above this multiple of the first epoch's: the run diverged.
LOSS_GROWTH = 2.0
FLAGS_TO_TRY = "--base_learning_rate, --clip_gradient_norm, --model_params"


def symptoms(probabilities: np.ndarray, labels: np.ndarray, epoch_losses) -> list[str]:
    """The symptoms of a dead model: predictions (B, C) on a held batch with its 0/1 labels (B, C), and
    the loss of each epoch. Empty for a healthy model."""
    probabilities = np.asarray(probabilities, np.float64)
    positive = np.asarray(labels) > 0.5
    found = []
    if len(probabilities) > 1 and float(probabilities.std(axis=0).max()) < CONSTANT_STD:
        found.append(f"its predictions are the same for every example of a held batch of {len(probabilities)} "
                     f"(std across examples < {CONSTANT_STD:g} for every class)")
    zero_share = float((probabilities[positive] < SATURATED).mean()) if positive.any() else 0.0
    one_share = float((probabilities[~positive] > 1.0 - SATURATED).mean()) if (~positive).any() else 0.0
    if zero_share >= SATURATED_SHARE:
        found.append(f"it predicts p < {SATURATED:g} (no gradient) for {zero_share:.0%} of the held batch's labels")
    if one_share >= SATURATED_SHARE:
        found.append(f"it predicts p > 1 - {SATURATED:g} (no gradient) for {one_share:.0%} of the classes a held "
                     f"example does not have")
    losses = [float(v) for v in epoch_losses if np.isfinite(v)]
    if len(losses) >= 2 and losses[-1] > LOSS_GROWTH * losses[0]:
        found.append(f"its loss ended at {losses[-1]:.6g}, above {LOSS_GROWTH:g}x the first epoch's "
                     f"{losses[0]:.6g}")
    return found


def check(model, batch, epoch_losses) -> tuple[str, ...]:
    """`symptoms` of `model` on one training batch `(features, labels, weights)`, each printed on one line
    as a warning naming the flags to try; returns them (TrainResult.health)."""
    from yt8m.data import readers

    features, labels = batch[0], batch[1]
    probabilities = np.asarray(model(readers.model_inputs(features), training=False))
    found = symptoms(probabilities, np.asarray(labels), epoch_losses)
    for symptom in found:
        print(f"WARNING: the trained model looks dead: {symptom}; try {FLAGS_TO_TRY} "
              f"(a lower learning rate, a smaller clip norm, other model params)")
    return tuple(found)
