"""Learned convex mixing of several classifiers' probabilities."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="yt8m")
class SoftmaxMixture(keras.layers.Layer):
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

    def call(self, inputs):
        stacked = tf.stack(inputs, axis=-1)                                     # (B, C, M)
        return tf.reduce_sum(stacked * self.mixture_weights(), axis=-1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
