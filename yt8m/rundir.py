"""A run directory: its layout (the file names), the model, config and result a run saves there (every
path through tf.io.gfile), and its guards: checked before the first write, never another run's files
replaced (unless --overwrite), stale temporary files of killed processes removed, nothing left behind
by a run that failed before it saved anything. Training, evaluation, export, plots, ensembles and
candidates all read and write runs through here."""
from __future__ import annotations

import dataclasses
import json
import os

import keras
import tensorflow as tf

import models  # noqa: F401  (registers the layers, so load_model needs no custom objects)
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.fileio import atomic_output, probe_writable, remove_stale_temp_files

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
STATS_FILE = "label_stats.npz"   # the pretraining set's label statistics (yt8m/labels/context.py)
BACKUP_DIR = "backup"
BEST_MODEL_FILE = "best_model.keras"   # --keep_best_checkpoint: the model of the best validation ...
BEST_EVAL_FILE = "best_eval.json"      # ... and its metrics and step
RESULT_FILE = "train_result.json"      # what the stage's train returned: a rerun of a finished run prints it
PASS_COUNT_FILE = "pass_count.json"    # --num_epochs: the count of one pass over the training files (pass_count.pass_steps)
EVAL_FILE = "eval.json"                # eval.py's metrics, unless --output_file names another file
# What makes a run directory hold "another run": a checkpoint of one cannot continue as the other.
IDENTITY = ("model", "model_params", "num_classes", "feature_names", "feature_sizes", "frame_features", "stage")
# What --overwrite removes: every file train.py (and eval.py) writes there.
RUN_FILES = (CONFIG_FILE, MODEL_FILE, BACKUP_DIR, "logs", "workers", EVAL_FILE, STATS_FILE, BEST_MODEL_FILE,
             BEST_EVAL_FILE, RESULT_FILE, PASS_COUNT_FILE)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a stage's train returns (and saves as RESULT_FILE; an ensemble's run returns one too)."""
    train_dir: str
    model_path: str
    steps: int
    final_loss: float
    replicas: int
    health: tuple[str, ...] = ()    # yt8m/health.py: the symptoms of a dead model, empty when it looks alive
    validation: tuple[dict, ...] = ()  # --eval_data_pattern while training: {"step", metric: value} each time
    best: dict | None = None        # --keep_best_checkpoint: the best validation (metric, value, step, metrics)


def load_trained_model(train_dir: str, flag: str = "train_dir", model_file: str = MODEL_FILE) -> keras.Model:
    """The model a run saved (without optimizer state; `model_file`: its last, or BEST_MODEL_FILE), or a
    clear error naming the flag."""
    path = os.path.join(train_dir, model_file)
    if not train_dir or not tf.io.gfile.exists(path):
        how = ("train.py --eval_data_pattern=... --keep_best_checkpoint keeps one" if model_file == BEST_MODEL_FILE
               else "train a model there first (python train.py --train_dir=...)")
        raise UserError(f"no {model_file} under --{flag}={train_dir!r}; {how}")
    return keras.models.load_model(path, compile=False)


def load_evaluated_model(config: Config) -> keras.Model:
    """The model eval.py, inference.py and exports use: the run's model.keras, or with --best_checkpoint its
    best_model.keras."""
    return load_trained_model(config.training.train_dir,
                              model_file=BEST_MODEL_FILE if config.evaluation.best_checkpoint else MODEL_FILE)


def saved_config(train_dir: str) -> Config | None:
    """The config a run saved in `train_dir`, None when it holds none."""
    path = os.path.join(train_dir, CONFIG_FILE) if train_dir else ""
    return Config.load(path) if path and tf.io.gfile.exists(path) else None


def load_config(train_dir: str, flag: str = "train_dir") -> Config:
    """The config a run saved, or a clear error naming the flag."""
    config = saved_config(train_dir)
    if config is None:
        raise UserError(f"no {CONFIG_FILE} under --{flag}={train_dir!r}; give a directory written by train.py")
    return config


def save_result(result: TrainResult) -> None:
    with atomic_output(os.path.join(result.train_dir, RESULT_FILE)) as handle:
        json.dump(dataclasses.asdict(result), handle, indent=2)


def saved_result(train_dir: str) -> TrainResult | None:
    """The TrainResult a run saved when its stage ended, None when it has none (stopped before, or older)."""
    path = os.path.join(train_dir, RESULT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        fields = json.load(handle)
    return TrainResult(**{**fields, "health": tuple(fields.get("health", ())),
                          "validation": tuple(fields.get("validation", ()))})


class RunDir:
    """What a training run's directory held before the run (`before`), to clean up after a failure."""

    def __init__(self, path: str, created: bool, existed: frozenset):
        self.path = path
        self.created = created
        self.existed = existed

    @classmethod
    def before(cls, path: str) -> "RunDir":
        """Reads only: whether the directory exists and which of RUN_FILES it holds."""
        return cls(path, not tf.io.gfile.exists(path),
                   frozenset(name for name in RUN_FILES if tf.io.gfile.exists(os.path.join(path, name))))

    def saved_anything(self) -> bool:
        return (tf.io.gfile.exists(os.path.join(self.path, MODEL_FILE))
                or tf.io.gfile.exists(os.path.join(self.path, BACKUP_DIR, "training_metadata.json")))

    def cleanup_after_failure(self) -> None:
        """A run that failed before saving a model or a backup removes what it wrote (config.json, logs/,
        label statistics, the directory it created); what was there before stays."""
        if self.saved_anything():
            return
        for name in set(RUN_FILES) - self.existed:
            _remove(os.path.join(self.path, name))
        if self.created and tf.io.gfile.exists(self.path) and not tf.io.gfile.listdir(self.path):
            tf.io.gfile.rmtree(self.path)


def prepare(config: Config, overwrite: bool = False) -> None:
    """Checks --train_dir before the run writes anything (creating it when needed).

    Raises UserError when it is not writable, or holds another run (other IDENTITY fields) and
    `overwrite` is false; with `overwrite` that run's files are removed first. Removes the stale
    temporary files of killed processes there.
    """
    path = config.training.train_dir
    saved = os.path.join(path, CONFIG_FILE)
    if tf.io.gfile.exists(saved):
        difference = _difference(_load(saved), config)
        if difference and not overwrite:
            raise UserError(f"--train_dir={path} holds another run ({difference}); give another --train_dir, "
                            f"or --overwrite to replace that run")
        if difference:
            for name in RUN_FILES:
                _remove(os.path.join(path, name))
    probe_writable(path, "train_dir")
    for directory in (path, os.path.join(path, BACKUP_DIR)):
        if tf.io.gfile.isdir(directory):
            remove_stale_temp_files(directory)


def _remove(path: str) -> None:
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def _load(path: str) -> Config:
    try:
        return Config.load(path)
    except (UserError, ValueError, TypeError) as exc:
        raise UserError(f"{path} cannot be read as a run config ({exc}); give another --train_dir, "
                        f"or remove that file") from None


def _difference(old: Config, new: Config) -> str:
    """'--model=A, not B; ...' for the IDENTITY fields that differ, '' when none does."""
    parts = []
    for name in IDENTITY:
        before, after = old.flag(name), new.flag(name)
        if _normal(before) != _normal(after):
            parts.append(f"--{name}={_shown(before)}, not {_shown(after)}")
    return "; ".join(parts)


def model_params_difference(built: Config, given: Config) -> str:
    """'--model_params=X differ from ... (Y)' when `given` names model params other than the run `built`
    was made with, '' when it names none or the same (compared as config.json holds them)."""
    before, after = built.flag("model_params"), given.flag("model_params")
    if not after or _normal(before) == _normal(after):
        return ""
    return f"--model_params={_shown(after)} differ from those of the model --init_from built ({_shown(before)})"


def _normal(value):
    if isinstance(value, (list, tuple)):
        return tuple(map(_normal, value))
    if isinstance(value, dict):
        return tuple(sorted((key, _normal(item)) for key, item in value.items()))
    return value


def _shown(value) -> str:
    if isinstance(value, dict):
        return "'" + ",".join(f"{k}={v}" for k, v in sorted(value.items())) + "'"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
