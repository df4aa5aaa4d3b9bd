"""Stochastic weight averaging (Izmailov et al. 2018) of the fine-tuning checkpoints: `--swa_from_step=N`.

At every epoch end (a checkpoint: `--steps_per_epoch` steps with --max_steps) whose
optimizer step is >= N, the model's trainable weights join a running mean; when
training ends the mean replaces them and the model is saved as model.keras (so
eval/inference use the averaged model; the last checkpoint's own weights are gone
from model.keras, the backup/ keeps them).

BatchNorm statistics (non-trainable): we KEEP THE LAST epoch's moving mean and
variance rather than recomputing them with a pass over the training data. Fine-
tuning runs at a low learning rate from one pretrained model, so the averaged
weights stay close to the last ones and a recompute pass (a full read of the
training data, plus Keras's momentum-based moving averages that would not give
exact statistics anyway) buys little; the choice is documented in the closing
note and `docs/results.md` measures the averaged model as it is.

The running mean is saved beside the model (`swa_state.npz`, atomically, with the
last averaged step) at each epoch end, so a run killed and resumed from its
backup continues the same average and never counts an epoch twice.
"""
from __future__ import annotations

import io
import os

import keras
import numpy as np
import tensorflow as tf

from yt8m.fileio import atomic_output, save_model_atomically

STATE_FILE = "swa_state.npz"


class StochasticWeightAveraging(keras.callbacks.Callback):
    """Running mean of the trainable weights at the epoch ends from `from_step` on; at the end the
    model takes the mean and is saved to `model_path` (nothing is saved if no epoch qualified)."""

    def __init__(self, from_step: int, model_path: str, state_path: str | None = None, nan_guard=None):
        super().__init__()
        if from_step < 1:
            raise ValueError(f"from_step must be >= 1, got {from_step}")
        self.from_step = int(from_step)
        self.model_path = model_path
        self.state_path = state_path or os.path.join(os.path.dirname(model_path), STATE_FILE)
        self.nan_guard = nan_guard
        self.count = 0
        self.last_step = -1
        self.average: list[np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        if not tf.io.gfile.exists(self.state_path):
            return
        with tf.io.gfile.GFile(self.state_path, "rb") as handle:
            state = np.load(io.BytesIO(handle.read()))
            arrays = [state[f"w{i}"] for i in range(len(state.files) - 2)]
            count, last_step = int(state["count"]), int(state["last_step"])
        shapes = [tuple(w.shape) for w in self.model.trainable_weights]
        if [a.shape for a in arrays] == shapes:   # a state of another model is ignored
            self.average, self.count, self.last_step = arrays, count, last_step

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard is not None and self.nan_guard.bad_step is not None:
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step < self.from_step or step <= self.last_step:
            return
        current = [np.asarray(w.numpy(), np.float64) for w in self.model.trainable_weights]
        if self.average is None:
            self.average = current
        else:
            self.average = [a + (c - a) / (self.count + 1) for a, c in zip(self.average, current)]
        self.count += 1
        self.last_step = step
        buffer = io.BytesIO()  # zip needs a seekable file; GFile writes are not
        np.savez(buffer, count=self.count, last_step=self.last_step,
                 **{f"w{i}": a for i, a in enumerate(self.average)})
        with atomic_output(self.state_path, "wb") as handle:
            handle.write(buffer.getvalue())

    def on_train_end(self, logs=None):
        if self.average is None:
            print(f"stochastic weight averaging: no checkpoint at or after step {self.from_step}; "
                  f"model.keras keeps the last weights")
            return
        for variable, value in zip(self.model.trainable_weights, self.average):
            variable.assign(value.astype(variable.dtype))
        save_model_atomically(self.model, self.model_path)
        print(f"stochastic weight averaging: the mean of {self.count} checkpoint(s) (steps >= "
              f"{self.from_step}, up to {self.last_step}) saved to {self.model_path}")
