"""The tf.distribute strategy named by --strategy, and this process's task in the TF_CONFIG cluster (read here
only)."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from yt8m.errors import UserError


def make_strategy(name: str) -> tf.distribute.Strategy:
    """default: one device; mirrored: every local GPU (or logical CPU); multi_worker: the cluster
    in TF_CONFIG; tpu: the TPU cluster of the environment."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy=multi_worker needs TF_CONFIG describing the cluster "
                            "(see docs/ARCHITECTURE.md, Distribution)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as exc:
            reason = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0]
            raise UserError(f"--strategy=tpu found no TPU ({reason}); run on a TPU VM (or set TPU_NAME), "
                            f"or use --strategy=default or mirrored") from None
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown --strategy={name!r}")


def _tf_config() -> dict:
    """TF_CONFIG's cluster and task ({} off a cluster)."""
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def is_chief() -> bool:
    """True on the one worker that writes the run's files (always, off a cluster)."""
    tf_config = _tf_config()
    task = tf_config.get("task")
    if not task or task.get("type") == "chief":
        return True
    no_chief = "chief" not in tf_config.get("cluster", {})
    return no_chief and task.get("type") == "worker" and task.get("index", 0) == 0


def task_name() -> str:
    """'<type>-<index>' of this process's TF_CONFIG task (a non-chief worker's directory name), 'worker-0' off one."""
    task = _tf_config().get("task", {})
    return f"{task.get('type', 'worker')}-{task.get('index', 0)}"
