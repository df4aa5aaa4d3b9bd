"""Model inputs: the Keras input dicts of the contract, dequantisation, frame masks."""
import keras
import tensorflow as tf

from yt8m.data import schema


def video_inputs(feature_size: int) -> dict:
    """`{"features": float32 (B, D)}`, the video-level model input."""
    return {schema.VIDEO_INPUT: keras.Input((feature_size,), dtype="float32", name=schema.VIDEO_INPUT)}


def frame_inputs(feature_size: int) -> dict:
    """`{"frames": uint8 (B, T, D), "num_frames": int32 (B,)}` with T dynamic."""
    return {
        schema.FRAMES_INPUT: keras.Input((None, feature_size), dtype="uint8", name=schema.FRAMES_INPUT),
        schema.NUM_FRAMES_INPUT: keras.Input((), dtype="int32", name=schema.NUM_FRAMES_INPUT),
    }


def frame_mask(num_frames, num_steps):
    """Bool (B, T): True on the first `num_frames[b]` of `num_steps` frames."""
    return tf.sequence_mask(num_frames, maxlen=num_steps)


@keras.saving.register_keras_serializable(package="yt8m")
class Dequantize(keras.layers.Layer):
    """uint8 features -> float32 with the official formula (`schema.dequantize`), on the device."""

    def __init__(self, max_quantized_value: float = schema.MAX_QUANTIZED,
                 min_quantized_value: float = -schema.MAX_QUANTIZED, **kwargs):
        super().__init__(**kwargs)
        self.max_quantized_value = max_quantized_value
        self.min_quantized_value = min_quantized_value

    def call(self, quantized):
        return schema.dequantize(tf.cast(quantized, tf.float32),
                                 self.max_quantized_value, self.min_quantized_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_quantized_value": self.max_quantized_value,
                "min_quantized_value": self.min_quantized_value}
