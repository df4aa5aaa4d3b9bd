"""Training losses. Each returns per-element values (B, C); the reader's (B, C)
weights arrive as `sample_weight` (ones for video labels, the rated class's
one-hot for segment ratings)."""
from __future__ import annotations

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="yt8m")
class ClassBalancedCrossentropy(MultiLabelCrossentropy):
    """CMA Eq.12: BCE weighted per element by w_k = y_k e^{beta (1 - p_k)} + (1 - y_k) e^{beta p_k},
    p_k the label's training frequency (LabelStatistics.frequencies()): a rare label's positives
    and a frequent label's negatives weigh more. beta = 0 is plain BCE (the paper's printed
    "(1 - log y*)" read as log(1 - y*))."""

    def __init__(self, frequencies, beta: float = 1.0, epsilon: float = 1e-7,
                 name: str = "class_balanced_crossentropy", **kwargs):
        super().__init__(epsilon=epsilon, name=name, **kwargs)
        self.frequencies = np.asarray(frequencies, np.float32)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.cast(self.frequencies, y_pred.dtype)
        weights = y_true * ops.exp(self.beta * (1.0 - p)) + (1.0 - y_true) * ops.exp(self.beta * p)
        return weights * super().call(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "frequencies": self.frequencies.tolist(), "beta": self.beta}


def make_loss(config: Config) -> keras.losses.Loss:
    """The loss named by --loss."""
    if config.loss == "class_balanced":
        from yt8m.labels import context

        return ClassBalancedCrossentropy(context.label_statistics(config).frequencies(), config.beta)
    if config.loss == "bce":
        return MultiLabelCrossentropy()
    raise ValueError(f"unknown loss {config.loss!r}")
