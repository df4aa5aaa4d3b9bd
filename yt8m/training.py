"""Build, compile and fit a model for one stage (pretrain or finetune) of a run."""
from __future__ import annotations

import math
import os

import keras
import tensorflow as tf

from models import registry
from yt8m import (augment, backup, datasets, distribute, evaluation, finetune_prior, health, i3d_weights,
                  losses, multi_worker, pass_count, rundir, segment_context, swa)
from yt8m.callbacks import (SaveModelAtomically, StopAtStep, StopOnNonFiniteLoss, Validation,
                            WriteConfigAtFirstStep)
from yt8m.rundir import MODEL_FILE, TrainResult, load_trained_model
from yt8m.backup import AtomicBackupAndRestore
from yt8m.config import Config
from yt8m.data import readers
from yt8m.errors import UserError
from yt8m.fileio import match_files
from yt8m.labels import context
from yt8m.optimizers import make_optimizer
from yt8m.progress import keras_verbose



def train(config: Config) -> TrainResult:
    """Runs one stage under config.training.train_dir; resumes from its backup after a kill. A run that fails
    before saving a model or a backup leaves no config.json, logs/ or new directory behind."""
    before = rundir.RunDir.before(config.training.train_dir) if config.training.train_dir and distribute.is_chief() else None
    try:
        return _train(config)
    except BaseException:
        if before is not None:
            before.cleanup_after_failure()
        raise


def _train(config: Config) -> TrainResult:
    if not config.training.train_dir:
        raise UserError("--train_dir is empty; give the directory the run writes to")
    strategy = distribute.make_strategy(config.training.strategy)
    chief = distribute.is_chief()
    work_dir = config.training.train_dir if chief else os.path.join(config.training.train_dir, "workers", distribute.task_name())
    if chief:  # every check of the run directory before its first write; config.json at the first step
        rundir.prepare(config, overwrite=config.training.overwrite)
    else:
        tf.io.gfile.makedirs(work_dir)
        _resume_from_chief_backup(config.training.train_dir, work_dir)
    keras.utils.set_random_seed(config.training.seed)
    print(f"training {config.training.stage} on {strategy.num_replicas_in_sync} replica(s) into {config.training.train_dir}")

    corrupt = readers.CorruptRecords() if config.data.skip_corrupt_records else None
    in_context = config.model_.segment_context != "none"   # whole videos, every segment scored (yt8m/segment_context.py)
    if in_context and config.training.stage != "finetune":
        raise UserError(f"--segment_context={config.model_.segment_context} finetunes a pretrained frame-level model on "
                        f"whole rated videos; pretrain without it, then --stage=finetune "
                        f"--segment_context={config.model_.segment_context}")
    train_data = datasets.training_dataset(config, corrupt, whole_videos=in_context)
    source = datasets.training_source(config)
    pass_steps = None   # --num_epochs: the steps of one pass, None where Keras finds the end of each pass
    if not config.training.max_steps:
        with readers.data_errors(*source):
            pass_steps = pass_count.pass_steps(config, in_context, work_dir)
    dataset = _to_device(_continued(train_data, config, work_dir, repeat=pass_steps is not None), config)
    # The pretraining set's label statistics: every pretrain saves them (for its finetunes), whatever its loss.
    stats = (context.label_statistics(config, save=chief)
             if (chief and config.training.stage == "pretrain") or losses.needs_label_statistics(config) else None)
    loss = losses.make_loss(config, stats)
    if in_context:
        loss = segment_context.PerSegmentLoss(loss)
    with strategy.scope():
        model = _with_precision(config, _initial_model, config, stats)
        if config.loss_.finetune_prior:  # w0: the weights just loaded from --init_from (a resume loads them again)
            held = finetune_prior.attach(model, config.loss_.finetune_prior)
            print(f"finetune prior: {config.loss_.finetune_prior}/2 * ||w - w0||^2 on the {held} weights of "
                  f"--init_from={config.training.init_from}")
        if config.training.noise_std > 0:  # seed 003: finetune stage; any stage that asks
            model = augment.add_input_noise(model, config.training.noise_std, config.training.noise_mask_rate, config.training.seed)
        if in_context:
            model = segment_context.wrap(model, config)
        model.compile(optimizer=make_optimizer(config), loss=loss, jit_compile=config.training.jit_compile,
                      steps_per_execution=config.training.steps_per_execution)
        # The optimizer's slots before fit: created inside the first step's trace, they make
        # tf.function trace the whole train step a second time (half of a small run's start-up).
        model.optimizer.build(model.trainable_variables)
    nan_guard = StopOnNonFiniteLoss()
    # The health guard's loss windows: multi_worker.fit's logs hold each step's loss, fit's the epoch's mean.
    loss_windows = health.LossWindows(running_mean=not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy))
    validating = _validates(config)
    callbacks = [
        nan_guard,
        loss_windows,
        *([WriteConfigAtFirstStep(config)] if chief else []),
        AtomicBackupAndRestore(os.path.join(work_dir, "backup"), delete_checkpoint=False),
        keras.callbacks.TensorBoard(os.path.join(work_dir, "logs")),
    ]
    if chief:
        callbacks.append(SaveModelAtomically(os.path.join(work_dir, MODEL_FILE), nan_guard))
        if config.training.swa_from_step:  # after the epoch-end save: at the end, the average replaces it
            callbacks.append(swa.StochasticWeightAveraging(config.training.swa_from_step, os.path.join(work_dir, MODEL_FILE),
                                                           nan_guard=nan_guard))
        if validating:  # after the saves: a failing validation loses no checkpoint
            callbacks.append(_validation(config, nan_guard))
    if config.training.max_steps:
        steps_per_epoch = config.training.max_steps_epoch
        epochs = math.ceil(config.training.max_steps / steps_per_epoch)
        callbacks.append(StopAtStep(config.training.max_steps))
    elif config.training.strategy == "multi_worker":
        raise UserError("--strategy=multi_worker needs --max_steps (workers must agree on the number of steps)")
    else:
        steps_per_epoch, epochs = pass_steps, config.training.num_epochs
    verbose = keras_verbose()   # plain epoch lines when stdout is not a terminal
    with readers.data_errors(*source), pass_count.quiet_pass_ends(steps_per_epoch is None):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            history = multi_worker.fit(model, dataset, callbacks=callbacks, epochs=epochs,
                                       steps_per_epoch=steps_per_epoch, verbose=verbose)
        else:
            history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                                shuffle=False, verbose=verbose)
    if nan_guard.bad_step is not None:
        raise UserError(f"the training loss became {nan_guard.bad_value} by step {nan_guard.bad_step}; "
                        f"lower --base_learning_rate or check the data; "
                        f"{backup.describe_saved(config.training.train_dir, MODEL_FILE)}")
    if corrupt is not None:
        print(corrupt.report(config.data.train_data_pattern, "train_data_pattern"))
    if chief and not history.epoch:   # every epoch was done before: the rerun of a finished run
        return _finished_run(config, int(model.optimizer.iterations.numpy()), strategy.num_replicas_in_sync)
    losses_seen = history.history.get("loss", [])
    # The first batch of the stream: a resumed run's input would read the skipped steps again to get one.
    probe = (model, next(iter(train_data))) if chief else None
    if chief and in_context:   # the rated segments' rows, as the per-segment reader's batches hold them
        probe = segment_context.rated_rows(*probe)
    found = health.check(*probe, loss_windows.windows()) if chief else ()
    validation = next((c for c in callbacks if isinstance(c, Validation)), None)
    result = TrainResult(config.training.train_dir, os.path.join(config.training.train_dir, MODEL_FILE),
                         int(model.optimizer.iterations.numpy()), float(losses_seen[-1]) if losses_seen else math.nan,
                         strategy.num_replicas_in_sync, found,
                         tuple(validation.history) if validation else (), validation.best if validation else None)
    if chief:
        rundir.save_result(result)
    return result


def _finished_run(config: Config, steps: int, replicas: int) -> TrainResult:
    """A rerun with nothing left to train says so and returns the results the run saved when it ended."""
    saved = rundir.saved_result(config.training.train_dir)
    target = f" of --max_steps={config.training.max_steps}" if config.training.max_steps else f", {config.training.num_epochs} epochs"
    if saved is None:
        print(f"nothing to train: {config.training.train_dir} holds a finished run (step {steps}{target}) without "
              f"{rundir.RESULT_FILE} (stopped before its end, or older); its losses are in TensorBoard (logs/train)")
        return TrainResult(config.training.train_dir, os.path.join(config.training.train_dir, MODEL_FILE), steps, math.nan, replicas)
    print(f"nothing to train: {config.training.train_dir} holds a finished run (step {steps}{target}); its results as "
          f"trained (a larger --max_steps or --num_epochs continues it, another --train_dir starts afresh)")
    return saved


def _validates(config: Config) -> bool:
    """Whether this stage scores --eval_data_pattern while it trains (train.py: whenever it is given)."""
    if config.training.keep_best_checkpoint and not (config.data.eval_data_pattern and config.training.eval_every_steps is not None):
        raise UserError("--keep_best_checkpoint keeps the model of the best validation; give --eval_data_pattern")
    if not (config.data.eval_data_pattern and config.training.eval_every_steps is not None):
        return False
    match_files(config.data.eval_data_pattern, "eval_data_pattern")   # before the first step, not at the epoch end
    return True


def _validation(config: Config, nan_guard: StopOnNonFiniteLoss) -> Validation:
    """The Validation callback: evaluation.score's metrics (eval.py's) of the model being trained."""
    best = bool(config.training.keep_best_checkpoint)
    return Validation(lambda model: evaluation.score(config, model, progress=False),
                      os.path.join(config.training.train_dir, "logs", "validation"), config.training.eval_every_steps, nan_guard,
                      best_model=os.path.join(config.training.train_dir, rundir.BEST_MODEL_FILE) if best else "",
                      best_eval=os.path.join(config.training.train_dir, rundir.BEST_EVAL_FILE) if best else "",
                      at_start=config.training.stage == "finetune")


def _initial_model(config: Config, stats=None) -> keras.Model:
    if config.training.stage == "finetune":
        pretrain = rundir.saved_config(config.training.init_from)
        # The model is loaded as saved: params that differ from its own would silently do nothing.
        difference = rundir.model_params_difference(pretrain, config) if pretrain else ""
        if difference:
            raise UserError(f"{difference}; a finetune trains that model as saved: drop --model_params, "
                            f"or pretrain with them")
        return load_trained_model(config.training.init_from, flag="init_from")
    try:
        frame_level = registry.is_frame_level(config.model_.model)
        clips = registry.input_kind(config.model_.model) == "clip"
        if clips != bool(config.data.clip_data_pattern):
            raise UserError(f"--model={config.model_.model} reads RGB clips; give --clip_data_pattern" if clips else
                            f"--clip_data_pattern feeds clip models (KSSNetI3D, I3DModel); --model={config.model_.model} "
                            f"reads YouTube-8M features, give --train_data_pattern instead")
        if not clips and frame_level != config.data.frame_features:
            fix = "add --frame_features" if frame_level else "drop --frame_features"
            raise UserError(f"--model={config.model_.model} reads {'frame' if frame_level else 'video'}-level "
                            f"features; {fix}")
        label_params = context.label_params(config, registry.params(config.model_.model), stats)
        return registry.build(config.model_.model, num_classes=config.data.num_classes,
                              feature_size=config.data.feature_spec.total_size, **label_params,
                              **_pretrained_weights(config), **config.model_.model_params)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _pretrained_weights(config: Config) -> dict:
    """{"inflated_weights": arrays} from --i3d_weights (yt8m/i3d_weights.py reads it) for models that take them."""
    if not config.model_.i3d_weights:
        return {}
    if "inflated_weights" not in registry.params(config.model_.model):
        raise UserError(f"--i3d_weights is for the I3D models; --model={config.model_.model} takes no backbone weights")
    return {"inflated_weights": i3d_weights.load(config.model_.i3d_weights)}


def mixed_precision_policy() -> str:
    """--mixed_precision's keras policy: mixed_float16 with a GPU (its tensor cores; Keras adds loss
    scaling), else mixed_bfloat16 (float32's range, no loss scaling; float16 is emulated, slow, on CPUs)."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def _with_precision(config: Config, build, *args) -> keras.Model:
    """`build(*args)` under `mixed_precision_policy()` with --mixed_precision (compute in float16 or
    bfloat16, variables float32), its output cast back to float32 probabilities. The global policy is
    restored afterwards."""
    if not config.training.mixed_precision:
        return build(*args)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        model = build(*args)
        if model.output.dtype == "float32":
            return model
        probabilities = keras.layers.Activation("linear", dtype="float32", name="probabilities")(model.output)
        return keras.Model(model.inputs, probabilities, name=model.name)
    finally:
        keras.config.set_dtype_policy(previous)


def _continued(dataset: tf.data.Dataset, config: Config, work_dir: str, repeat: bool = True) -> tf.data.Dataset:
    """The input a resumed run continues with: the batches an uninterrupted run would see next.

    With --max_steps the input is one seeded stream (the reader repeats the files): the steps the backup
    had taken are skipped. Otherwise it is the seeded passes of --num_epochs one after another (each
    repetition reshuffled as a new iterator of the pass would be; without `repeat` one pass, which fit
    iterates anew each epoch): the passes of the completed epochs are started and dropped first, so the
    next order is the one the uninterrupted run's next epoch draws.
    """
    backup_dir = os.path.join(work_dir, "backup")
    epochs = backup.completed_epochs(backup_dir)
    if config.training.max_steps:
        return dataset.skip(backup.completed_steps(backup_dir, config.training.max_steps_epoch)) if epochs else dataset
    for _ in range(epochs):
        iter(dataset)
    return dataset.repeat() if repeat else dataset


def _to_device(dataset: tf.data.Dataset, config: Config) -> tf.data.Dataset:
    """With one GPU and the default strategy, batches (uint8 frames, 4x smaller than floats) are
    copied to it ahead of the step; strategies do this themselves."""
    gpus = tf.config.list_logical_devices("GPU")
    if config.training.strategy != "default" or len(gpus) != 1:
        return dataset
    return dataset.apply(tf.data.experimental.prefetch_to_device(gpus[0].name, buffer_size=2))


def _resume_from_chief_backup(train_dir: str, work_dir: str) -> None:
    """A restarted non-chief worker restores the chief's backup, not its own: a kill can land
    after the chief saved an epoch and before this worker did, and workers that resume at
    different epochs wait on each other's collectives forever. (Before any epoch ends nobody
    writes a backup, so the chief's is complete while the job starts.)"""
    chief_backup, own_backup = os.path.join(train_dir, "backup"), os.path.join(work_dir, "backup")
    if not tf.io.gfile.exists(os.path.join(chief_backup, "training_metadata.json")):
        return
    if tf.io.gfile.exists(own_backup):
        tf.io.gfile.rmtree(own_backup)
    tf.io.gfile.makedirs(own_backup)
    for name in tf.io.gfile.listdir(chief_backup):
        tf.io.gfile.copy(os.path.join(chief_backup, name), os.path.join(own_backup, name), overwrite=True)

