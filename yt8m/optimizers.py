"""The training optimizer: keras Adam with TensorFlow's fused Adam kernel."""
import keras
import tensorflow as tf


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
    """

    def _clip_gradients(self, grads):
        if not (self.global_clipnorm and self.global_clipnorm > 0) or any(g is None for g in grads):
            return super()._clip_gradients(grads)
        return tf.clip_by_global_norm(grads, self.global_clipnorm)[0]

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)
