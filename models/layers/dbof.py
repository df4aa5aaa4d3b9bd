"""Deep Bag of Frames pooling: project every frame to a wide 'cluster' space, pool over time."""
import keras
import tensorflow as tf

from models.layers.inputs import frame_mask

POOLING_METHODS = ("max", "average")


def masked_pool(values, mask, method: str = "max"):
    """Pool (B, T, K) over T using only frames where `mask` (B, T) is True.

    A video with no valid frame pools to zeros.
    """
    values = tf.convert_to_tensor(values)
    mask = tf.convert_to_tensor(mask)[..., None]
    if method == "max":
        lowest = tf.fill(tf.shape(values), values.dtype.min)
        pooled = tf.reduce_max(tf.where(mask, values, lowest), axis=1)
    elif method == "average":
        weights = tf.cast(mask, values.dtype)
        pooled = tf.math.divide_no_nan(tf.reduce_sum(values * weights, axis=1),
                                       tf.reduce_sum(weights, axis=1))
    else:
        raise ValueError(f"unknown pooling method {method!r}; use one of {POOLING_METHODS}")
    return tf.where(tf.reduce_any(mask, axis=1), pooled, tf.zeros_like(pooled))


@keras.saving.register_keras_serializable(package="yt8m")
class DbofPooling(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> (B, cluster_size)`.

    [input BN] -> frame projection to `cluster_size` -> BN (or a bias) -> activation
    -> masked pooling over the valid frames. Batch statistics use valid frames only,
    so padding changes nothing in training or inference.
    """

    def __init__(self, cluster_size: int, add_batch_norm: bool = True, activation: str = "relu6",
                 pooling: str = "max", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLING_METHODS:
            raise ValueError(f"unknown pooling method {pooling!r}; use one of {POOLING_METHODS}")
        self.cluster_size = cluster_size
        self.add_batch_norm = add_batch_norm
        self.activation = activation
        self.pooling = pooling
        self.activation_fn = keras.activations.get(activation)
        self.input_norm = keras.layers.BatchNormalization(name="input_bn") if add_batch_norm else None
        self.cluster = keras.layers.Dense(cluster_size, use_bias=not add_batch_norm, name="cluster")
        self.cluster_norm = keras.layers.BatchNormalization(name="cluster_bn") if add_batch_norm else None

    def build(self, frames_shape, num_frames_shape=None):
        cluster_input = (None, None, frames_shape[-1])
        if self.add_batch_norm:
            self.input_norm.build(cluster_input)
            self.cluster_norm.build((None, None, self.cluster_size))
        self.cluster.build(cluster_input)

    def call(self, frames, num_frames, training=None):
        mask = frame_mask(num_frames, tf.shape(frames)[1])
        x = frames
        if self.add_batch_norm:
            x = self.input_norm(x, training=training, mask=mask)
        x = self.cluster(x)
        if self.add_batch_norm:
            x = self.cluster_norm(x, training=training, mask=mask)
        return masked_pool(self.activation_fn(x), mask, self.pooling)

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], self.cluster_size)

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "add_batch_norm": self.add_batch_norm, "activation": self.activation,
                "pooling": self.pooling}
