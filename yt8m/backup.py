"""The training backup that a kill -9 at any instant leaves restorable."""
from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

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
        tf.io.gfile.makedirs(self.backup_dir)
        name = f"epoch-{self._current_epoch}-batch-{self._last_batch_seen}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        with atomic_output(self._training_metadata_path) as handle:
            handle.write(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen,
                                     "weights": name}))
        for old in tf.io.gfile.glob(os.path.join(self.backup_dir, "*.weights.h5")):
            if os.path.basename(old) != name:
                tf.io.gfile.remove(old)

    def _load_model(self):
        if tf.io.gfile.exists(self._training_metadata_path):
            self._weights_path = backup_weights_path(self.backup_dir)
        super()._load_model()
