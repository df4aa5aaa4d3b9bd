"""After a stage's fit: is the trained model alive? One look at a held batch and the loss history.

A model that dies in training (its outputs the same for every example, or pinned at 0/1 where the
clipped cross-entropy has no gradient, or a loss that climbed) still exits 0; `check` names the
symptom and the flags to try, so the run says so. The batch's judgement is over the classes present
in it (a positive label in some example): a 3862-class model's unseen classes may rightly sit
constant near 0, the classes the batch has may not. The loss's judgement compares like with like:
the mean loss of the fit's first steps against that of its last steps (`LossWindows` records them
during the fit), not one batch against an epoch's mean.
"""
from __future__ import annotations

import collections
from typing import NamedTuple

import keras
import numpy as np

# Beyond the loss's clip (yt8m/losses.py, epsilon 1e-7) a prediction has no gradient.
SATURATED = 1e-7
# A class's logit varies less than this across the batch's examples: constant (its ranking is noise).
CONSTANT_LOGIT_STD = 1e-3
# Share of the present classes that are constant, or of their (example, class) pairs that are saturated
# (positives at p < SATURATED, negatives at p > 1 - SATURATED), from which the batch is judged dead.
DEAD_SHARE = 0.5
# The mean loss of the fit's last steps above this multiple of its first steps' mean: the run diverged.
LOSS_GROWTH = 2.0
# Steps in each of the two loss windows: at most this many, and at most a quarter of the fit's steps.
LOSS_WINDOW = 10
# What to try, per symptom.
FLAGS = {"constant": "--base_learning_rate (lower), --gcn_learning_rate, --model_params (e.g. prior, cosine)",
         "saturated": "--base_learning_rate (lower), --clip_gradient_norm, --model_params=cosine=true",
         "loss": "--base_learning_rate (lower), --clip_gradient_norm"}


class Windows(NamedTuple):
    """The mean training loss over the fit's first steps and over its last ones; steps are the
    optimizer's, first and last inclusive."""
    first: float
    first_steps: tuple[int, int]
    last: float
    last_steps: tuple[int, int]


class LossWindows(keras.callbacks.Callback):
    """Records the loss of a fit's first and last steps for `symptoms`, without reading a tensor: the
    logs Keras hands a batch end are numbers already. Keras's fit reports the epoch's running mean
    (`running_mean`), so n steps into an epoch the epoch's sum so far is n times it; the multi-worker loop
    (yt8m/multi_worker.py) reports each step's loss (running_mean=False). The fit's cumulative loss sums
    are kept at its first LOSS_WINDOW steps and its latest ones: each window's mean is a difference of
    two sums. With --steps_per_execution the windows are whole executions (K steps or a few more); Keras
    weights its mean by batch size, so a pass's partial last batch counts here as a full one."""

    async_safe = True   # the points carry their step: their order of arrival does not matter

    def __init__(self, running_mean: bool = True):
        super().__init__()
        self.running_mean = running_mean

    def on_train_begin(self, logs=None):
        self.head = [(0, 0.0)]                                # (step of the fit, loss summed to it)
        self.tail = collections.deque([(0, 0.0)], maxlen=LOSS_WINDOW + 2)
        self.before = (0, 0.0)                                # the steps and sum of the fit's ended epochs
        self.end_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self.in_epoch = (0, 0.0)                              # the epoch's latest (steps, sum) on its own

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        steps = batch + 1
        within = steps * float(loss) if self.running_mean else self.in_epoch[1] + float(loss)
        self.in_epoch = max(self.in_epoch, (steps, within))
        point = (self.before[0] + steps, self.before[1] + within)
        if self.head[-1][0] < LOSS_WINDOW:
            self.head.append(point)
        self.tail.append(point)

    def on_epoch_end(self, epoch, logs=None):
        steps, within = self.in_epoch
        self.before = (self.before[0] + steps, self.before[1] + within)

    def on_train_end(self, logs=None):
        self.end_step = int(self.model.optimizer.iterations.numpy())

    def windows(self) -> Windows | None:
        """The fit's two windows, K = min(LOSS_WINDOW, steps / 4) steps each (at least 1); None for a fit
        of fewer than 2 steps."""
        tail = sorted(self.tail)
        total = tail[-1][0]
        if total < 2 or self.end_step is None:
            return None
        k = max(1, min(LOSS_WINDOW, total // 4))
        head_end, head_sum = min(point for point in self.head if point[0] >= k)
        tail_start, tail_sum = max(point for point in tail if point[0] <= total - k)
        offset = self.end_step - total   # the optimizer's step before the fit's first
        return Windows(head_sum / head_end, (offset + 1, offset + head_end),
                       (tail[-1][1] - tail_sum) / (total - tail_start), (offset + tail_start + 1, self.end_step))


def _logits(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, SATURATED, 1.0 - SATURATED)
    return np.log(clipped) - np.log1p(-clipped)


def symptoms(probabilities: np.ndarray, labels: np.ndarray, windows: Windows | None) -> list[tuple[str, str]]:
    """The symptoms of a dead model as (kind, description) pairs, kind a key of FLAGS: predictions (B, C)
    on a held batch with its 0/1 labels (B, C), and the fit's loss windows (None: not judged).
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
    if windows is not None and np.isfinite([windows.first, windows.last]).all() \
            and windows.last > LOSS_GROWTH * windows.first:
        found.append(("loss", f"its loss ended at {windows.last:.6g} (the mean of steps {_steps(windows.last_steps)}), "
                              f"above {LOSS_GROWTH:g}x its start {windows.first:.6g} (the mean of steps "
                              f"{_steps(windows.first_steps)})"))
    return found


def _steps(span: tuple[int, int]) -> str:
    return f"{span[0]}-{span[1]}" if span[0] != span[1] else str(span[0])


def check(model, batch, windows: Windows | None) -> tuple[str, ...]:
    """`symptoms` of `model` on one training batch `(features, labels, weights)`, each printed on one line
    as a warning naming the flags to try; returns their descriptions (TrainResult.health)."""
    from yt8m.data import readers

    features, labels = batch[0], batch[1]
    probabilities = np.asarray(model(readers.model_inputs(features), training=False))
    found = symptoms(probabilities, np.asarray(labels), windows)
    for kind, symptom in found:
        print(f"WARNING: the trained model looks dead: {symptom}; try {FLAGS[kind]}")
    return tuple(symptom for _, symptom in found)
