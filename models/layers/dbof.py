"""Deep Bag of Frames pooling: project every frame to a wide 'cluster' space, pool over time."""
import keras
import tensorflow as tf

from models.layers.inputs import frame_mask

POOLING_METHODS = ("max", "average")


def weighted_moments(values, weights):
    """Per-feature mean and (biased) variance of the rows of `values` (N, K), row i counted
    `weights[i]` times; float32. The weighted sums are mat-vec products, one read of `values`."""
    values = tf.cast(values, tf.float32)
    count = tf.maximum(tf.reduce_sum(weights), 1.0)
    mean = tf.linalg.matvec(values, weights, transpose_a=True) / count
    variance = tf.linalg.matvec(tf.square(values - mean), weights, transpose_a=True) / count
    return mean, variance


def batch_statistics(norm: keras.layers.BatchNormalization, values, weights, training):
    """The (mean, variance) that `norm` normalises `values` (N, K) with: the weighted batch
    moments in training (moving averages updated as keras's BatchNormalization does), else
    the moving ones."""
    if not training:
        return tf.cast(norm.moving_mean, tf.float32), tf.cast(norm.moving_variance, tf.float32)
    mean, variance = weighted_moments(values, weights)
    for moving, batch in ((norm.moving_mean, mean), (norm.moving_variance, variance)):
        moving.assign(moving * norm.momentum + batch * (1.0 - norm.momentum))
    return mean, variance


def pool_rows(values, weights, video, num_videos, method: str = "max"):
    """Pool the rows of `values` (N, K) into their videos (`video` (N,) in [0, num_videos)):
    max, or the average with row i counted `weights[i]` (> 0) times. A video without rows
    pools to zeros."""
    totals = tf.math.unsorted_segment_sum(weights, video, num_videos)
    if method == "max":
        pooled = tf.math.unsorted_segment_max(values, video, num_videos)
    elif method == "average":
        sums = tf.math.unsorted_segment_sum(values * tf.cast(weights, values.dtype)[:, None], video, num_videos)
        pooled = tf.math.divide_no_nan(sums, tf.cast(totals, values.dtype)[:, None])
    else:
        raise ValueError(f"unknown pooling method {method!r}; use one of {POOLING_METHODS}")
    return tf.where((totals > 0)[:, None], pooled, tf.zeros_like(pooled))


@keras.saving.register_keras_serializable(package="yt8m")
class DbofPooling(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,) or frame counts (B, T)) -> (B, cluster_size)`.

    [input BN] -> frame projection to `cluster_size` -> BN (or a bias) -> activation
    -> pooling over the frames. With `num_frames` every valid frame counts once; with
    counts (FrameSampleCounts: how often training drew each frame) each frame counts that
    often, in the batch statistics and the average, exactly as if it were repeated.
    Only frames with a count (no padding, each distinct drawn frame once) are computed.

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
        cluster_input = (None, frames_shape[-1])
        if self.add_batch_norm:
            self.input_norm.build(cluster_input)
            self.cluster_norm.build((None, self.cluster_size))
        self.cluster.build(cluster_input)

    def call(self, frames, num_frames, training=None):
        """`num_frames`: (B,) valid frames per video, or (B, T) how often each frame counts."""
        counts = (tf.cast(frame_mask(num_frames, tf.shape(frames)[1]), tf.float32) if num_frames.shape.rank == 1
                  else tf.cast(num_frames, tf.float32))
        cells = tf.where(counts > 0)                            # (N, 2): (video, frame) of each computed row
        rows, weights = tf.gather_nd(frames, cells), tf.gather_nd(counts, cells)
        if self.add_batch_norm:
            x = self._normalized_projection(rows, weights, training)
            mean, variance = batch_statistics(self.cluster_norm, x, weights, training)
            x = tf.nn.batch_normalization(x, tf.cast(mean, x.dtype), tf.cast(variance, x.dtype),
                                          tf.cast(self.cluster_norm.beta, x.dtype),
                                          tf.cast(self.cluster_norm.gamma, x.dtype), self.cluster_norm.epsilon)
        else:
            x = self.cluster(rows)
        return pool_rows(self.activation_fn(x), weights, cells[:, 0], tf.shape(frames, out_type=tf.int64)[0],
                         self.pooling)

    def _normalized_projection(self, rows, weights, training):
        """cluster(input_bn(rows)) as one matmul with the BN folded into the kernel."""
        norm = self.input_norm
        mean, variance = batch_statistics(norm, rows, weights, training)
        gamma, beta, kernel = (tf.cast(v, tf.float32) for v in (norm.gamma, norm.beta, self.cluster.kernel))
        scale = gamma * tf.math.rsqrt(variance + norm.epsilon)
        shift = beta - mean * scale
        folded = tf.cast(scale[:, None] * kernel, rows.dtype)
        bias = tf.cast(tf.linalg.matvec(kernel, shift, transpose_a=True), rows.dtype)
        return tf.matmul(rows, folded) + bias

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], self.cluster_size)

    def get_config(self):
        return {**super().get_config(), "cluster_size": self.cluster_size,
                "add_batch_norm": self.add_batch_norm, "activation": self.activation,
                "pooling": self.pooling}
