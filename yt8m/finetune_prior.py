"""A Gaussian prior toward the pretrained weights for the finetune stage (L2-SP, `--finetune_prior`).

The penalty strength/2 * ||w - w0||^2 is added to the training loss (a per-example mean, so the
strength is a precision per example) for every trainable weight the model had when it was loaded
from --init_from; w0 is that weight's value at loading. A resumed finetune loads --init_from again
before its backup is restored, so it pulls toward the same w0. Weights added after loading (input
noise, a segment-context head) get no prior. It is attached as each variable's regularizer, so
Keras adds it to `model.losses` inside the train step; a regularizer the layer already had (the
MoE's SlimL2) is kept and added to.
"""
from __future__ import annotations

import keras
import tensorflow as tf


class PullTowards(keras.regularizers.Regularizer):
    """strength/2 * sum((w - w0)^2), plus the variable's own regularizer if it had one.

    Attached at training time only: layers serialise their own regularizer arguments, not this one,
    so a saved model carries no prior."""

    def __init__(self, anchor, strength: float, inner: keras.regularizers.Regularizer | None = None):
        self.anchor = tf.constant(anchor)
        self.strength = float(strength)
        self.inner = inner

    def __call__(self, weights):
        penalty = self.strength * tf.nn.l2_loss(weights - tf.cast(self.anchor, weights.dtype))  # lambda/2 ||w-w0||^2
        return penalty if self.inner is None else penalty + self.inner(weights)

    def get_config(self):
        return {"strength": self.strength}


def attach(model: keras.Model, strength: float) -> int:
    """Pulls every trainable weight of `model` toward its current value with `strength`; returns the
    number of scalars under the prior. Call it right after loading the pretrained model."""
    variables = model.trainable_weights
    for variable in variables:
        inner = variable.regularizer
        if isinstance(inner, PullTowards):
            raise ValueError(f"{variable.path} already has a finetune prior")
        variable.regularizer = PullTowards(variable.numpy(), strength, inner)
    return sum(int(tf.size(v)) for v in variables)
