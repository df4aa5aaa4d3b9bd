"""Per-class classifiers given as a tensor (e.g. by a GCN over label nodes)."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="yt8m")
class LabelDotProduct(keras.layers.Layer):
    """`(features (B, H), classifiers (C, H)) -> sigmoid(features W^T + b)` (B, C), b a learned per-class bias."""

    def build(self, features_shape, classifiers_shape):
        self.bias = self.add_weight(name="bias", shape=(classifiers_shape[0],), initializer="zeros")

    def call(self, features, classifiers):
        return tf.sigmoid(tf.matmul(features, classifiers, transpose_b=True) + self.bias)

    def compute_output_shape(self, features_shape, classifiers_shape):
        return (features_shape[0], classifiers_shape[0])
