"""Training losses. Each returns per-element values (B, C); the reader's (B, C)
weights arrive as `sample_weight` (ones for video labels, the rated class's
one-hot for segment ratings)."""
from __future__ import annotations

import keras
from keras import ops

from yt8m.config import Config


@keras.saving.register_keras_serializable(package="yt8m")
class MultiLabelCrossentropy(keras.losses.Loss):
    """Binary cross-entropy on probabilities, summed over classes, averaged over the batch.

    The per-element values are scaled by C so that Keras's sum_over_batch_size
    reduction (a mean over B x C elements, which also keeps Keras's scaling
    under tf.distribute) yields the starter's sum over classes / B.
    """

    def __init__(self, epsilon: float = 1e-7, name: str = "multi_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return bce * ops.cast(ops.shape(y_pred)[-1], bce.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def make_loss(config: Config) -> keras.losses.Loss:
    """The loss named by --loss."""
    if config.loss == "bce":
        return MultiLabelCrossentropy()
    raise ValueError(f"unknown loss {config.loss!r}")
