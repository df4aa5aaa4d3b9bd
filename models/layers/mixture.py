"""Mixing several classifiers into one prediction: one learned softmax, or a per-video gate.

Both layers keep what their last training call adds to the loss (`take_training_terms`):
the branch probabilities, for a model that adds each branch's own loss
(`branch_loss_weight`, linrongc's auxiliary losses), and for the per-video gate
linrongc's distillation term (`distill_weight`); at inference nothing is kept. They are
kept per thread: a MirroredStrategy runs each replica's step (call, then compute_loss)
in its own thread.
"""
import threading

import keras
import tensorflow as tf


class _BranchMixture(keras.layers.Layer):
    """Shared part: `branch_loss_weight` and the branch probabilities of the last training call."""

    def __init__(self, branch_loss_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if branch_loss_weight < 0:
            raise ValueError(f"branch_loss_weight must be >= 0, got {branch_loss_weight}")
        self.branch_loss_weight = branch_loss_weight
        self._kept = {}  # thread id -> (branch probabilities, distillation term) of its last training call

    def _keep(self, training, probabilities, distillation=None):
        if training and (self.branch_loss_weight or distillation is not None):
            self._kept[threading.get_ident()] = (list(probabilities) if self.branch_loss_weight else None,
                                                 distillation)

    def take_training_terms(self):
        """This thread's last training call's (branch probabilities [(B, C)] or None, weighted
        distillation term or None), then forgotten; (None, None) when nothing was kept."""
        return self._kept.pop(threading.get_ident(), (None, None))

    def get_config(self):
        return {**super().get_config(), "branch_loss_weight": self.branch_loss_weight}


@keras.saving.register_keras_serializable(package="yt8m")
class SoftmaxMixture(_BranchMixture):
    """`[p_1 (B, C), ..., p_M (B, C)] -> sum_m w_m p_m` with w = softmax(learned logits).

    The weights are one learned vector shared by every video and class (starting
    uniform), so the mixture stays a probability and the branches' shares can be read
    off with `mixture_weights()`.
    """

    def build(self, input_shapes):
        self.num_inputs = len(input_shapes)
        self.logits = self.add_weight(name="mixture_logits", shape=(self.num_inputs,), initializer="zeros")

    def mixture_weights(self):
        """(M,) softmax of the learned logits: non-negative, summing to 1."""
        return tf.nn.softmax(self.logits)

    def call(self, inputs, training=None):
        self._keep(training, inputs)
        stacked = tf.stack(inputs, axis=-1)                                     # (B, C, M)
        return tf.reduce_sum(stacked * self.mixture_weights(), axis=-1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package="yt8m")
class VideoGateMixture(_BranchMixture):
    """`(mean frame (B, D), [logits_1 (B, C), ..., logits_M]) -> sigmoid(sum_m w_m logits_m)`.

    linrongc's MixNeXtVladModel: w = softmax(FC(BN(mean frame))), one gate per video
    over the M branches (`mixture_weights`), mixing the branches' logits. With
    `distill_weight` > 0 a training call also keeps distill_weight x `distillation_loss`.
    """

    def __init__(self, branch_loss_weight: float = 0.0, distill_weight: float = 0.0,
                 distill_temperature: float = 3.0, **kwargs):
        super().__init__(branch_loss_weight, **kwargs)
        if distill_weight < 0 or distill_temperature <= 0:
            raise ValueError(f"distill_weight must be >= 0 and distill_temperature > 0, got {distill_weight}, "
                             f"{distill_temperature}")
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self.gate_norm = keras.layers.BatchNormalization(name="gate_bn")
        self.gate = keras.layers.Dense(1, name="gate")  # width M set in build

    def build(self, mean_frame_shape, logits_shape):
        self.num_inputs = len(logits_shape)
        self.gate.units = self.num_inputs
        self.gate_norm.build(mean_frame_shape)
        self.gate.build(mean_frame_shape)

    def mixture_weights(self, mean_frame, training=None):
        """(B, M) per-video softmax gate: non-negative, each row summing to 1."""
        return tf.nn.softmax(self.gate(self.gate_norm(mean_frame, training=training)), axis=-1)

    def call(self, mean_frame, logits, training=None):
        weights = self.mixture_weights(mean_frame, training=training)            # (B, M)
        mixed = tf.reduce_sum(tf.stack(logits, axis=1) * weights[..., None], axis=1)
        distillation = None
        if training and self.distill_weight:
            distillation = self.distill_weight * distillation_loss(mixed, logits, self.distill_temperature)
        self._keep(training, [tf.sigmoid(branch) for branch in logits], distillation)
        return tf.sigmoid(mixed)

    def compute_output_shape(self, mean_frame_shape, logits_shape):
        return logits_shape[0]

    def get_config(self):
        return {**super().get_config(), "distill_weight": self.distill_weight,
                "distill_temperature": self.distill_temperature}


def distillation_loss(mixed_logits, branch_logits, temperature: float):
    """linrongc's collaborative-learning term (nextvlad.py, MixNeXtVladModel, is_training): the batch
    mean of sum_m KL(softmax(mixed / T) || softmax(logits_m / T)), softmaxes over the classes, 1e-8
    inside the logs, gradients through both sides."""
    epsilon = 1e-8
    target = tf.nn.softmax(mixed_logits / temperature, axis=-1)[:, None, :]           # (B, 1, C)
    branches = tf.nn.softmax(tf.stack(branch_logits, axis=1) / temperature, axis=-1)  # (B, M, C)
    kl = tf.reduce_sum(target * (tf.math.log(target + epsilon) - tf.math.log(branches + epsilon)), axis=-1)
    return tf.reduce_mean(tf.reduce_sum(kl, axis=-1))


@keras.saving.register_keras_serializable(package="yt8m")
class ProbabilityLogits(keras.layers.Layer):
    """Probabilities (B, C) -> logits log(p / (1 - p)), p clipped to [eps, 1 - eps]: a MoE head's
    output in the logit space VideoGateMixture mixes."""

    def __init__(self, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, probabilities):
        p = tf.clip_by_value(probabilities, self.epsilon, 1.0 - self.epsilon)
        return tf.math.log(p) - tf.math.log1p(-p)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
