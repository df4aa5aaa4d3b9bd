"""SNet (CMA paper, video part): a stack of Conv1D + pooling blocks squeezing the time axis of frame features."""
import keras
import tensorflow as tf

from models.layers.inputs import frame_mask

# BatchNorm's moving-average momentum for SNet's stack. Keras's 0.99 still holds 13% of the initial
# (0, 1) statistics after 200 steps and lags weights that move, so a short run infers with statistics its
# training never saw (CMA-SNet: +5.5 Hit@1 from re-estimating them); 0.9 averages the last ~10 batches:
# +1.3 Hit@1 for CmaSNetModel in 3/3 seeds. FrameFC's one BN keeps Keras's 0.99 (FC_BN_MOMENTUM): 0.9
# cost CmaFCModel 1.5 Hit@1 in 3/3 (docs/results.md, issue 5).
BN_MOMENTUM = 0.9
FC_BN_MOMENTUM = 0.99


@keras.saving.register_keras_serializable(package="yt8m")
class SNet(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> (features (B, T', F), num_frames' (B,))`.

    `num_blocks` x [Conv1D(filters, kernel_size, 'same') -> BN -> ReLU -> max-pool
    (pool_size, stride pool_size)], so T' = ceil(T / pool_size^num_blocks) and a video of
    n valid frames keeps ceil(n / pool_size^num_blocks) valid steps. Padding changes
    nothing: before every convolution and pooling the steps past a video's length are
    zeroed (what 'same' padding puts at a sequence's end anyway, and after a ReLU a zero
    never wins a max over a valid value), BN statistics use valid steps only, and the
    output is zero past num_frames'.

    `return_scales=True` returns every block's output instead, `([features_1 .. features_n],
    [num_frames_1 .. num_frames_n])`, block b at time stride pool_size^b (multi-scale CMA).
    """

    def __init__(self, filters: int = 256, num_blocks: int = 4, kernel_size: int = 3, pool_size: int = 2,
                 return_scales: bool = False, bn_momentum: float = BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_blocks = num_blocks
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.return_scales = return_scales
        self.bn_momentum = bn_momentum
        self.convolutions = [keras.layers.Conv1D(filters, kernel_size, padding="same", use_bias=False,
                                                 name=f"conv_{i}") for i in range(num_blocks)]
        self.norms = [keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn_{i}")
                      for i in range(num_blocks)]

    def build(self, frames_shape, num_frames_shape=None):
        width = frames_shape[-1]
        for convolution, norm in zip(self.convolutions, self.norms):
            convolution.build((None, None, width))
            norm.build((None, None, self.filters))
            width = self.filters

    def call(self, frames, num_frames, training=None):
        x = frames
        lengths = tf.cast(num_frames, tf.int32)
        outputs, output_lengths = [], []
        for convolution, norm in zip(self.convolutions, self.norms):
            mask = frame_mask(lengths, tf.shape(x)[1])
            x = x * tf.cast(mask, x.dtype)[..., None]
            x = convolution(x)
            x = tf.nn.relu(norm(x, training=training, mask=mask))
            x = x * tf.cast(mask, x.dtype)[..., None]
            x = tf.nn.max_pool1d(x, self.pool_size, self.pool_size, padding="SAME")
            lengths = (lengths + self.pool_size - 1) // self.pool_size
            outputs.append(x * tf.cast(frame_mask(lengths, tf.shape(x)[1]), x.dtype)[..., None])
            output_lengths.append(tf.cast(lengths, num_frames.dtype))
        if self.return_scales:
            return outputs, output_lengths
        return outputs[-1], output_lengths[-1]

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        if self.return_scales:
            return ([(frames_shape[0], None, self.filters)] * self.num_blocks,
                    [num_frames_shape] * self.num_blocks)
        return (frames_shape[0], None, self.filters), num_frames_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_blocks": self.num_blocks,
                "kernel_size": self.kernel_size, "pool_size": self.pool_size,
                "return_scales": self.return_scales, "bn_momentum": self.bn_momentum}


@keras.saving.register_keras_serializable(package="yt8m")
class FrameFC(keras.layers.Layer):
    """The FC backbone of the table-4 grid: `(frames (B, T, D), num_frames) -> (B, T, units)`, one
    Dense -> BN (valid frames' statistics) -> ReLU per frame, zero past num_frames (time kept)."""

    def __init__(self, units: int = 512, bn_momentum: float = FC_BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.bn_momentum = bn_momentum
        self.dense = keras.layers.Dense(units, use_bias=False, name="fc")
        self.norm = keras.layers.BatchNormalization(momentum=bn_momentum, name="bn")

    def build(self, frames_shape, num_frames_shape=None):
        self.dense.build((None, None, frames_shape[-1]))
        self.norm.build((None, None, self.units))

    def call(self, frames, num_frames, training=None):
        mask = frame_mask(num_frames, tf.shape(frames)[1])
        x = tf.nn.relu(self.norm(self.dense(frames), training=training, mask=mask))
        return x * tf.cast(mask, x.dtype)[..., None]

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], frames_shape[1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "bn_momentum": self.bn_momentum}
