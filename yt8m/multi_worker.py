"""The training loop for MultiWorkerMirroredStrategy.

Keras 3's `fit` cannot drive that strategy (keras-team/keras#20585: it
all-reduces the first batch and the metrics as nested structures, which the
collective ops refuse). This loop runs the same callbacks (BackupAndRestore,
TensorBoard, our savers and guards) around a `strategy.run` step, so a
multi-worker run writes and resumes exactly like a one-machine run.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def fit(model: keras.Model, dataset: tf.data.Dataset, *, callbacks, epochs: int, steps_per_epoch: int,
        verbose) -> keras.callbacks.History:
    """Trains `model` (compiled inside the strategy's scope) for `epochs` x `steps_per_epoch` steps."""
    strategy = model.distribute_strategy
    x, y, sample_weight = next(iter(dataset.take(1)))
    with strategy.scope():  # create the optimizer's and the compiled loss's variables before tracing
        model.optimizer.build(model.trainable_variables)
        model.compute_loss(x=x, y=y, y_pred=model(x, training=False), sample_weight=sample_weight)
    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                                                 verbose=verbose, epochs=epochs, steps=steps_per_epoch)
    step = _train_step(model, strategy)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    # BackupAndRestore sets _initial_epoch on train begin, as fit reads it.
    for epoch in range(getattr(model, "_initial_epoch", None) or 0, epochs):
        callback_list.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            logs = {"loss": float(step(iterator))}
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return model.history


def _train_step(model, strategy):
    @tf.function
    def step(iterator):
        def replica_step(batch):
            x, y, sample_weight = batch
            with tf.GradientTape() as tape:
                predictions = model(x, training=True)
                # As fit computes it (the model's own additions included, e.g. SRDL's erased branch),
                # already scaled by 1/replicas.
                loss = model.compute_loss(x=x, y=y, y_pred=predictions, sample_weight=sample_weight)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=(next(iterator),)), axis=None)

    return step
