"""The training callbacks of a stage's fit: stop at --max_steps, stop on a non-finite loss, write the config
at the first step, save the model, validate.

None of them reads a tensor on every step (a host sync per step stalls a GPU's pipeline and keeps
Keras from dispatching callbacks asynchronously): the step is counted in Python from the fit's own
batch indices (one read of the optimizer's step per fit), the loss is read every NAN_CHECK_EVERY
steps and at each epoch end.
"""
from __future__ import annotations

import json
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from yt8m import backup, rundir
from yt8m.config import Config
from yt8m.fileio import atomic_output, save_model_atomically

# Steps between two reads of the loss by StopOnNonFiniteLoss (and at every epoch end).
NAN_CHECK_EVERY = 100


class WriteConfigAtFirstStep(keras.callbacks.Callback):
    """Writes the run's config.json once its first training step is done: a run that never trains
    does not replace the config of the run it would have continued."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.written = False

    def on_train_batch_end(self, batch, logs=None):
        if not self.written:
            self.config.save(os.path.join(self.config.training.train_dir, rundir.CONFIG_FILE))
            self.written = True


class _StepCounter(keras.callbacks.Callback):
    """The optimizer's step after the current execution, counted in Python: read once, at the first batch
    of a fit (after BackupAndRestore's restore in on_train_begin), then advanced by the fit's steps."""

    def on_train_begin(self, logs=None):
        self.step = None

    def _advance(self) -> int:
        if self.step is None:
            self.step = int(self.model.optimizer.iterations.numpy())
        self.step += int(getattr(self.model, "steps_per_execution", 1) or 1)
        return self.step


class StopAtStep(_StepCounter):
    """Ends training once the optimizer has taken `max_steps` steps (also after a resume). The stop is set
    before the batch that reaches max_steps runs, so the fit ends right after it, with no read per step."""

    def __init__(self, max_steps: int):
        super().__init__()
        self.max_steps = max_steps

    def on_train_batch_begin(self, batch, logs=None):
        if self._advance() >= self.max_steps:
            self.model.stop_training = True


class StopOnNonFiniteLoss(_StepCounter):
    """Stops at a NaN/inf loss and remembers when it was seen, so the run can say so clearly.

    The loss Keras reports is the epoch's running mean, so a non-finite step stays visible until the
    epoch ends: reading it every `every` steps and at the epoch end (before the backup and the model
    are saved, this callback being first in the list) misses none.
    """

    # Its batch-end read may run on Keras's callback thread: a stop lands a step later at worst, and the
    # epoch end (which waits for that thread) sees bad_step before anything is saved.
    async_safe = True

    def __init__(self, every: int = NAN_CHECK_EVERY):
        super().__init__()
        self.every = every
        self.bad_step = None
        self.bad_value = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.next_check = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._advance()

    def on_train_batch_end(self, batch, logs=None):
        if self.step >= self.next_check:   # the fit's first step, then every `every`
            self.next_check = (self.step // self.every + 1) * self.every
            self._check((logs or {}).get("loss"))

    def on_epoch_end(self, epoch, logs=None):
        self._check((logs or {}).get("loss"))

    def _check(self, loss) -> None:
        if loss is None or self.bad_step is not None:
            return
        loss = float(loss)
        if not np.isfinite(loss):
            self.bad_step = self.step
            self.bad_value = loss
            self.model.stop_training = True


class SaveModelAtomically(keras.callbacks.Callback):
    """Saves the whole model at every epoch end through a temporary file; never a non-finite one."""

    def __init__(self, path: str, nan_guard: StopOnNonFiniteLoss):
        super().__init__()
        self.path = path
        self.nan_guard = nan_guard

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard.bad_step is None and backup.all_finite(self.model):
            save_model_atomically(self.model, self.path)


# The metric that ranks validations for --keep_best_checkpoint, the first of these a result has.
BEST_BY = ("segment_map_at_k", "gap")


class Validation(_StepCounter):
    """Scores the model being trained on held-out data: at each epoch end, or every `every_steps` steps
    (and once at the end). `score(model) -> {metric: value}` is evaluation.score's (the same metrics as
    eval.py). Each result is printed on one line and written to TensorBoard under `log_dir` (step: the
    optimizer's); with `best_model` the model of the best result (BEST_BY) is saved there, its metrics
    and step in `best_eval` (read back on a resume, so a resumed run keeps the earlier best). With
    `at_start` the model is also scored before its first step (step 0; not on a resume): a finetune's
    starting point, its --init_from model, then competes for the best, so a finetune that only lowers
    the validation keeps the model it started from."""

    def __init__(self, score: Callable[[keras.Model], dict], log_dir: str, every_steps: int = 0,
                 nan_guard: StopOnNonFiniteLoss | None = None, best_model: str = "", best_eval: str = "",
                 at_start: bool = False):
        super().__init__()
        self.at_start = at_start
        self.score = score
        self.log_dir = log_dir
        self.every_steps = every_steps
        self.nan_guard = nan_guard
        self.best_model = best_model
        self.best_eval = best_eval
        self.history: list[dict] = []   # {"step": s, metric: value, ...} per validation
        self.best: dict | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.next_check = self.every_steps
        self.writer = tf.summary.create_file_writer(self.log_dir)
        if self.best_eval and tf.io.gfile.exists(self.best_eval):
            with tf.io.gfile.GFile(self.best_eval) as handle:
                self.best = json.load(handle)
        if self.at_start and int(self.model.optimizer.iterations.numpy()) == 0:
            self._validate(0)

    def on_train_batch_begin(self, batch, logs=None):
        if self.every_steps:
            self._advance()

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps and self.step >= self.next_check:
            self.next_check = (self.step // self.every_steps + 1) * self.every_steps
            self._validate(self.step)

    def on_epoch_end(self, epoch, logs=None):
        if not self.every_steps:
            self._validate(int(self.model.optimizer.iterations.numpy()))

    def on_train_end(self, logs=None):
        trained = self.step is not None   # a fit that took a step (not the rerun of a finished run)
        step = int(self.model.optimizer.iterations.numpy())
        if self.every_steps and trained and (not self.history or self.history[-1]["step"] != step):
            self._validate(step)
        self.writer.close()

    def _validate(self, step: int) -> None:
        if self.nan_guard is not None and self.nan_guard.bad_step is not None:
            return
        result = self.score(self.model)
        self.history.append({"step": step, **result})
        with self.writer.as_default():
            for name, value in result.items():
                tf.summary.scalar(name, value, step=step)
        self.writer.flush()
        shown = "  ".join(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                          for name, value in result.items())
        print(f"validation at step {step}: {shown}", flush=True)
        if self.best_model:
            self._keep_if_best(step, result)

    def _keep_if_best(self, step: int, result: dict) -> None:
        metric = next(name for name in BEST_BY if name in result)
        if self.best is not None and self.best.get("metric") == metric and not result[metric] > self.best["value"]:
            return
        save_model_atomically(self.model, self.best_model)
        self.best = {"metric": metric, "value": result[metric], "step": step, "metrics": result}
        with atomic_output(self.best_eval) as handle:
            json.dump(self.best, handle, indent=2, sort_keys=True)
        print(f"best {metric} so far: {result[metric]:.4f} at step {step}, saved to {self.best_model}", flush=True)
