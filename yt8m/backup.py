"""The training backup that a kill -9 at any instant leaves restorable."""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from yt8m.errors import UserError
from yt8m.fileio import atomic_output

METADATA_FILE = "training_metadata.json"


def backup_weights_path(backup_dir: str) -> str:
    """The weights file the backup's metadata names (keras's own name for older backups)."""
    with tf.io.gfile.GFile(os.path.join(backup_dir, METADATA_FILE)) as handle:
        return os.path.join(backup_dir, json.load(handle).get("weights", "latest.weights.h5"))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """keras's BackupAndRestore without its torn states.

    keras overwrites `latest.weights.h5` in place and then rewrites the metadata, so
    a kill during the save leaves a truncated HDF5 file (the next start fails) or new
    weights under the old epoch. Here every save writes its own weights file
    (`epoch-E-batch-B.weights.h5`); only once it is complete does the metadata, replaced
    atomically, name it. The metadata therefore always names a whole file of the epoch it
    states; older weights files are removed after the switch.
    """

    def _save_model(self):
        if not all_finite(self.model):  # never back up a diverged state: the previous backup stays
            return
        tf.io.gfile.makedirs(self.backup_dir)
        name = f"epoch-{self._current_epoch}-batch-{self._last_batch_seen}.weights.h5"
        try:
            self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        except BaseException:  # a full disk, a kill: no partial weights file, the metadata still names the last
            if tf.io.gfile.exists(os.path.join(self.backup_dir, name)):
                tf.io.gfile.remove(os.path.join(self.backup_dir, name))
            raise
        with atomic_output(self._training_metadata_path) as handle:
            handle.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen,
                                     "step": int(self.model.optimizer.iterations.numpy()), "weights": name}))
        for old in tf.io.gfile.glob(os.path.join(self.backup_dir, "*.weights.h5")):
            if os.path.basename(old) != name:
                tf.io.gfile.remove(old)

    def _load_model(self):
        if not tf.io.gfile.exists(self._training_metadata_path):
            return
        self._weights_path = backup_weights_path(self.backup_dir)
        super()._load_model()
        if not all_finite(self.model):  # written before backups were checked
            raise UserError(f"the backup in {self.backup_dir} holds non-finite weights; remove that directory "
                            f"to train from the start (or give another --train_dir)")
        print(f"resuming from step {int(self.model.optimizer.iterations.numpy())} "
              f"(the backup of epoch {completed_epochs(self.backup_dir)})")


def all_finite(model) -> bool:
    """True when every weight of the model and of its optimizer is finite."""
    variables = list(model.weights) + list(getattr(model.optimizer, "variables", []) or [])
    return all(bool(np.isfinite(np.asarray(v)).all()) for v in variables
               if np.issubdtype(np.asarray(v).dtype, np.floating))


def completed_epochs(backup_dir: str) -> int:
    """The epochs a run had completed at its backup (0 without one)."""
    return _metadata(backup_dir).get("epoch", 0)


def completed_steps(backup_dir: str, steps_per_epoch: int) -> int:
    """The optimizer steps a run had taken at its backup (0 without one; older backups: epochs x
    `steps_per_epoch`). A run's last epoch can be short (--max_steps), so the epoch alone can miscount."""
    metadata = _metadata(backup_dir)
    return int(metadata.get("step", metadata.get("epoch", 0) * steps_per_epoch))


def _metadata(backup_dir: str) -> dict:
    path = os.path.join(backup_dir, METADATA_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def describe_saved(train_dir: str, model_file: str) -> str:
    """What a run directory holds after a stop: its backup's epoch and whether a model.keras exists."""
    metadata = os.path.join(train_dir, "backup", METADATA_FILE)
    model = tf.io.gfile.exists(os.path.join(train_dir, model_file))
    if tf.io.gfile.exists(metadata):
        with tf.io.gfile.GFile(metadata) as handle:
            epoch = int(json.load(handle).get("epoch", 0))
        return (f"{train_dir} keeps the last finite state, the backup of epoch {epoch}"
                f"{' and its ' + model_file if model else ''}; the same command resumes from it")
    if model:
        return f"{train_dir} keeps {model_file} of an earlier run; no backup of this one was written"
    return f"nothing was saved in {train_dir} (no epoch ended with finite weights); a rerun starts from scratch"
