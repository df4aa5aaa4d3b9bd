"""Model inputs: the Keras input dicts of the contract, dequantisation, frame masks."""
import keras
import tensorflow as tf

from models import contract


def video_inputs(feature_size: int) -> dict:
    """`{"features": float32 (B, D)}`, the video-level model input."""
    return {contract.VIDEO_INPUT: keras.Input((feature_size,), dtype="float32", name=contract.VIDEO_INPUT)}


def frame_inputs(feature_size: int) -> dict:
    """`{"frames": uint8 (B, T, D), "num_frames": int32 (B,)}` with T dynamic."""
    return {
        contract.FRAMES_INPUT: keras.Input((None, feature_size), dtype="uint8", name=contract.FRAMES_INPUT),
        contract.NUM_FRAMES_INPUT: keras.Input((), dtype="int32", name=contract.NUM_FRAMES_INPUT),
    }


def frame_mask(num_frames, num_steps):
    """Bool (B, T): True on the first `num_frames[b]` of `num_steps` frames."""
    return tf.sequence_mask(num_frames, maxlen=num_steps)


@keras.saving.register_keras_serializable(package="yt8m")
class Dequantize(keras.layers.Layer):
    """uint8 features -> float32 with the official formula (`contract.dequantize`), on the device."""

    def __init__(self, max_quantized_value: float = contract.MAX_QUANTIZED,
                 min_quantized_value: float = -contract.MAX_QUANTIZED, **kwargs):
        super().__init__(**kwargs)
        self.max_quantized_value = max_quantized_value
        self.min_quantized_value = min_quantized_value

    def call(self, quantized):
        return contract.dequantize(tf.cast(quantized, tf.float32),
                                 self.max_quantized_value, self.min_quantized_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_quantized_value": self.max_quantized_value,
                "min_quantized_value": self.min_quantized_value}


@keras.saving.register_keras_serializable(package="yt8m")
class NormalizeFrames(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> frames / ||frames||_2` over D.

    The starter's train.py/eval.py feed every model tf.nn.l2_normalize(model_input, feature_dim)
    of the dequantized (rgb ++ audio) frames; its reader pads with zero rows, which stay 0. Here
    the padding rows (uint8 0, dequantized to ~-2) are zeroed, so they stay 0 as well.
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, frames, num_frames):
        mask = tf.cast(frame_mask(num_frames, tf.shape(frames)[1]), frames.dtype)[:, :, None]
        return tf.nn.l2_normalize(frames, axis=-1, epsilon=self.epsilon) * mask  # x / sqrt(max(sum x^2, eps))

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return frames_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="yt8m")
class FrameMean(keras.layers.Layer):
    """`(frames float32 (B, T, D), num_frames (B,)) -> (B, D)`: the mean of each video's valid
    frames (padding ignored; 0 for an empty video), the starter's FrameLevelLogisticModel pooling."""

    def call(self, frames, num_frames):
        mask = tf.cast(frame_mask(num_frames, tf.shape(frames)[1]), frames.dtype)
        total = tf.linalg.matvec(frames, mask, transpose_a=True)  # sum_t mask_t x_t, (B, D)
        return tf.math.divide_no_nan(total, tf.reduce_sum(mask, axis=1, keepdims=True))

    def compute_output_shape(self, frames_shape, num_frames_shape=None):
        return (frames_shape[0], frames_shape[-1])
