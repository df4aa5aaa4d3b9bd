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


def masked_moments(values, mask):
    """Per-feature mean and (biased) variance of (B, T, K) `values` over the frames where
    `mask` (B, T) is True, float32. The masked sums are (B*T) x K mat-vec products, one
    read of `values` each, rather than a broadcast mask and a select per element."""
    values = tf.cast(values, tf.float32)
    flat = tf.reshape(values, (-1, tf.shape(values)[-1]))
    weights = tf.reshape(tf.cast(mask, tf.float32), (-1,))
    count = tf.maximum(tf.reduce_sum(weights), 1.0)
    mean = tf.linalg.matvec(flat, weights, transpose_a=True) / count
    variance = tf.linalg.matvec(tf.square(flat - mean), weights, transpose_a=True) / count
    return mean, variance


def batch_statistics(norm: keras.layers.BatchNormalization, values, mask, training):
    """The (mean, variance) that `norm` normalises `values` with: the masked batch moments in
    training (moving averages updated as keras's BatchNormalization does), else the moving ones."""
    if not training:
        return tf.cast(norm.moving_mean, tf.float32), tf.cast(norm.moving_variance, tf.float32)
    mean, variance = masked_moments(values, mask)
    for moving, batch in ((norm.moving_mean, mean), (norm.moving_variance, variance)):
        moving.assign(moving * norm.momentum + batch * (1.0 - norm.momentum))
    return mean, variance


@keras.saving.register_keras_serializable(package="yt8m")
class DbofPooling(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> (B, cluster_size)`.

    [input BN] -> frame projection to `cluster_size` -> BN (or a bias) -> activation
    -> masked pooling over the valid frames. Batch statistics use valid frames only,
    so padding changes nothing in training or inference.

    The input BN is folded into the projection: BN(x) W = x (s W) + (beta - mean s) W with
    s = gamma / sqrt(variance + eps) per input feature, the same function (and gradients)
    without a normalised copy of the frames, and without the gradient with respect to the
    frames when nothing before this layer trains (one big matmul fewer per step).
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
        if not self.add_batch_norm:
            return masked_pool(self.activation_fn(self.cluster(frames)), mask, self.pooling)
        x = self._normalized_projection(frames, mask, training)
        mean, variance = batch_statistics(self.cluster_norm, x, mask, training)
        x = tf.nn.batch_normalization(x, tf.cast(mean, x.dtype), tf.cast(variance, x.dtype),
                                      tf.cast(self.cluster_norm.beta, x.dtype),
                                      tf.cast(self.cluster_norm.gamma, x.dtype), self.cluster_norm.epsilon)
        return masked_pool(self.activation_fn(x), mask, self.pooling)

    def _normalized_projection(self, frames, mask, training):
        """cluster(input_bn(frames)) as one matmul with the BN folded into the kernel."""
        norm = self.input_norm
        mean, variance = batch_statistics(norm, frames, mask, training)
        gamma, beta, kernel = (tf.cast(v, tf.float32) for v in (norm.gamma, norm.beta, self.cluster.kernel))
        scale = gamma * tf.math.rsqrt(variance + norm.epsilon)
        shift = beta - mean * scale
        folded = tf.cast(scale[:, None] * kernel, frames.dtype)
        bias = tf.cast(tf.linalg.matvec(kernel, shift, transpose_a=True), frames.dtype)
        return tf.tensordot(frames, folded, 1) + bias

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], self.cluster_size)

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "add_batch_norm": self.add_batch_norm, "activation": self.activation,
                "pooling": self.pooling}
