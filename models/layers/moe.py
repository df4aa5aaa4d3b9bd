"""Mixture of logistic experts, the starter's MoeModel head."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="yt8m")
class SlimL2(keras.regularizers.Regularizer):
    """The starter's `slim.l2_regularizer(penalty)`: penalty * sum(w^2) / 2, as `tf.nn.l2_loss`
    (one pass over the weights, one multiply in the gradient; keras's L2 takes a squared copy)."""

    def __init__(self, penalty: float):
        self.penalty = penalty

    def __call__(self, weights):
        return self.penalty * tf.nn.l2_loss(weights)

    def get_config(self):
        return {"penalty": self.penalty}


def slim_l2(penalty: float) -> keras.regularizers.Regularizer:
    return SlimL2(penalty)


@tf.custom_gradient
def wide_matmul(inputs, kernel):
    """inputs (B, H) @ kernel (H, N) for N much larger than B: the input gradient is taken as
    (kernel dy^T)^T, which oneDNN runs about twice as fast on CPU as dy kernel^T at these shapes."""
    def gradient(dy):
        return tf.transpose(tf.matmul(kernel, dy, transpose_b=True)), tf.matmul(inputs, dy, transpose_a=True)
    return tf.matmul(inputs, kernel), gradient


def _dense_logits(dense: keras.layers.Dense, inputs):
    logits = wide_matmul(inputs, tf.cast(dense.kernel, inputs.dtype))
    return logits + tf.cast(dense.bias, inputs.dtype) if dense.use_bias else logits


@keras.saving.register_keras_serializable(package="yt8m")
class MixtureOfExperts(keras.layers.Layer):
    """(B, H) -> class probabilities (B, C).

    Per class, a softmax gate over `num_mixtures` logistic experts plus one dummy
    expert that always predicts 0; the probability is sum_m gate_m * sigmoid(expert_m).
    """

    def __init__(self, num_classes: int, num_mixtures: int = 2, l2_penalty: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        if num_mixtures < 1:
            raise ValueError(f"num_mixtures must be >= 1, got {num_mixtures}")
        self.num_classes = num_classes
        self.num_mixtures = num_mixtures
        self.l2_penalty = l2_penalty
        self.gates = keras.layers.Dense(num_classes * (num_mixtures + 1), use_bias=False,
                                        kernel_regularizer=slim_l2(l2_penalty), name="gates")
        self.experts = keras.layers.Dense(num_classes * num_mixtures,
                                          kernel_regularizer=slim_l2(l2_penalty), name="experts")

    def build(self, input_shape):
        self.gates.build(input_shape)
        self.experts.build(input_shape)

    def gate_probabilities(self, inputs):
        """(B, C, M + 1) softmax over the experts, the dummy expert last."""
        logits = tf.reshape(_dense_logits(self.gates, inputs), (-1, self.num_classes, self.num_mixtures + 1))
        return tf.nn.softmax(logits, axis=-1)

    def expert_probabilities(self, inputs):
        """(B, C, M) each expert's sigmoid."""
        logits = tf.reshape(_dense_logits(self.experts, inputs), (-1, self.num_classes, self.num_mixtures))
        return tf.sigmoid(logits)

    def call(self, inputs):
        gates = self.gate_probabilities(inputs)[..., : self.num_mixtures]
        return tf.reduce_sum(gates * self.expert_probabilities(inputs), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "num_mixtures": self.num_mixtures, "l2_penalty": self.l2_penalty}
