"""The training optimizer: keras Adam with TensorFlow's fused Adam kernel (or SGD), per-layer rates and L2 decay."""
from __future__ import annotations

from typing import Mapping

import keras
import tensorflow as tf
from absl import logging

from yt8m.config import Config
from yt8m.errors import UserError

# The label-graph layers of the graph models (models/kssnet.py, dbof_gcn.py, srdl.py): --gcn_learning_rate.
GRAPH_LAYERS = ("label_nodes", "gcn", "label_gcn")
NOT_DECAYED = ("bias", "beta", "adjacency")   # mssnet's decay_mult 0: biases (BN's too) and the graph


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """The run's optimizer: config.training.learning_rate decayed by --learning_rate_decay every
    --learning_rate_decay_examples, clipped by --clip_gradient_norm; the label-graph layers at
    config.training.graph_learning_rate (a multiplier of the base rate: decayed with it; none when the base rate is 0)."""
    rate, graph_rate = config.training.learning_rate, config.training.graph_learning_rate
    decay_steps = max(1, config.training.learning_rate_decay_examples // config.training.batch_size)
    schedule = keras.optimizers.schedules.ExponentialDecay(rate, decay_steps, config.training.learning_rate_decay,
                                                           staircase=True)
    multipliers = {}
    if rate > 0 and graph_rate != rate:
        multipliers = dict.fromkeys(GRAPH_LAYERS, graph_rate / rate)
    clip = config.training.clip_gradient_norm or None
    if config.training.optimizer == "sgd":
        if config.training.weight_decay:
            raise UserError("--weight_decay works with --optimizer=adam")
        return LayerRateSGD(schedule, momentum=0.9, global_clipnorm=clip, learning_rate_multipliers=multipliers)
    return FusedAdam(schedule, global_clipnorm=clip, learning_rate_multipliers=multipliers,
                     l2_decay=config.training.weight_decay)


def layer_multipliers(variables, multipliers: Mapping[str, float]) -> list[float]:
    """Per variable, the factor of the first layer name in its path found in `multipliers` (else 1)."""
    found = [next((multipliers[p] for p in variable.path.split("/") if p in multipliers), 1.0)
             for variable in variables]
    if multipliers and all(m == 1.0 for m in found):   # every model without graph layers under the default
        logging.info("learning rate multipliers of layers %s: the model has no such layer", sorted(multipliers))
    return found


@keras.saving.register_keras_serializable(package="yt8m")
class LayerRateSGD(keras.optimizers.SGD):
    """keras SGD (momentum) whose `learning_rate_multipliers` {layer name: factor} scale the rate of the
    variables under that layer, as FusedAdam's."""

    def __init__(self, *args, learning_rate_multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.learning_rate_multipliers = dict(learning_rate_multipliers or {})

    def build(self, variables):
        super().build(variables)
        self._multipliers = layer_multipliers(variables, self.learning_rate_multipliers)

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multipliers[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * multiplier if multiplier != 1.0 else learning_rate)

    def get_config(self):
        return {**super().get_config(), "learning_rate_multipliers": self.learning_rate_multipliers}


def _handle(variable):
    """The resource handle of a keras or tf variable (the local copy inside a strategy update)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="yt8m")
class FusedAdam(keras.optimizers.Adam):
    """keras Adam whose dense update runs as one `ResourceApplyAdam` kernel per variable.

    Same update as keras Adam (alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t); m, v moving
    averages; var -= alpha m / (sqrt(v) + epsilon)), same slots, same checkpoints; keras
    spells it as about ten element-wise ops per variable, each a pass over the variable,
    which on a MoE head of millions of weights is a large part of a step. AMSGrad and
    sparse (IndexedSlices) gradients take keras's own path. `global_clipnorm` clips with
    `tf.clip_by_global_norm` (norms by `l2_loss`, no squared copy of every gradient).

    `learning_rate_multipliers` {layer name: factor} scales the rate of every variable
    whose path has that layer name as a component (the schedule's decay applies to all).
    `l2_decay` adds l2_decay * w to the (clipped) gradient of every variable but biases,
    betas and adjacencies, as torch Adam's weight_decay (coupled L2, not AdamW's
    decoupled decay), the way mssnet trains KSSNet. Neither changes the update when unset.
    """

    def __init__(self, *args, learning_rate_multipliers: Mapping[str, float] | None = None,
                 l2_decay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.learning_rate_multipliers = dict(learning_rate_multipliers or {})
        self.l2_decay = float(l2_decay)

    def build(self, variables):
        super().build(variables)
        self._multipliers = layer_multipliers(variables, self.learning_rate_multipliers)
        self._decayed = [bool(self.l2_decay) and variable.path.split("/")[-1] not in NOT_DECAYED
                         for variable in variables]

    def _clip_gradients(self, grads):
        if not (self.global_clipnorm and self.global_clipnorm > 0) or any(g is None for g in grads):
            return super()._clip_gradients(grads)
        return tf.clip_by_global_norm(grads, self.global_clipnorm)[0]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self._multipliers[index] != 1.0:
            learning_rate = learning_rate * self._multipliers[index]
        if self._decayed[index]:   # coupled L2: g + lambda w
            gradient = tf.convert_to_tensor(gradient) + tf.cast(self.l2_decay, variable.dtype) * _value(variable)
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)

    def get_config(self):
        return {**super().get_config(), "learning_rate_multipliers": self.learning_rate_multipliers,
                "l2_decay": self.l2_decay}


def _value(variable):
    """The current value of a keras or tf variable."""
    return tf.convert_to_tensor(variable.value if isinstance(variable, keras.Variable) else variable)
