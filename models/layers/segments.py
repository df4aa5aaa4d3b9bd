"""Whole-video batches' segment plumbing, shared by the context models (models/context.py) and the
segment-attention models (models/segment_attention.py): their inputs, each segment's frames cut out,
a video's row per segment, per-segment values scattered back to (B, S, C)."""
import keras
import tensorflow as tf

from models import contract


def whole_video_inputs(feature_size: int) -> dict:
    """The inputs of a model of whole-video batches: frames, num_frames, segment_starts."""
    return {contract.FRAMES_INPUT: keras.Input((None, feature_size), dtype="uint8", name=contract.FRAMES_INPUT),
            contract.NUM_FRAMES_INPUT: keras.Input((), dtype="int32", name=contract.NUM_FRAMES_INPUT),
            contract.SEGMENT_STARTS_INPUT: keras.Input((None,), dtype="int32", name=contract.SEGMENT_STARTS_INPUT)}


@keras.saving.register_keras_serializable(package="yt8m")
class CutSegments(keras.layers.Layer):
    """(frames (B, T, D), num_frames (B,), starts (B, S), -1 = none) -> the N existing segments' frames
    [start, start + 5) (N, 5, D) (zeros past the video's end, as readers._cut_segments), their real frame
    counts (N,) and their videos (N,); segments in row-major (video, start) order."""

    def call(self, frames, num_frames, starts):
        where = tf.where(starts >= 0)                            # (N, 2) [video, slot], row-major
        owner = tf.cast(where[:, 0], tf.int32)
        start = tf.gather_nd(starts, where)
        offsets = start[:, None] + tf.range(contract.SEGMENT_FRAMES, dtype=start.dtype)[None, :]
        real = offsets < tf.gather(num_frames, owner)[:, None]
        padded = tf.pad(frames, [[0, 0], [0, contract.SEGMENT_FRAMES], [0, 0]])
        index = tf.stack([tf.broadcast_to(owner[:, None], tf.shape(offsets)), offsets], axis=-1)
        cut = tf.gather_nd(padded, index) * tf.cast(real, frames.dtype)[:, :, None]
        return cut, tf.reduce_sum(tf.cast(real, tf.int32), axis=1), owner

    def compute_output_spec(self, frames, num_frames, starts):
        return (keras.KerasTensor((None, contract.SEGMENT_FRAMES, frames.shape[-1]), dtype=frames.dtype),
                keras.KerasTensor((None,), dtype="int32"), keras.KerasTensor((None,), dtype="int32"))


@keras.saving.register_keras_serializable(package="yt8m")
class GatherRows(keras.layers.Layer):
    """(values (B, H), owner (N,)) -> values[owner] (N, H): each segment's video's row."""

    def call(self, values, owner):
        return tf.gather(values, owner)

    def compute_output_shape(self, values_shape, owner_shape):
        return (None, values_shape[-1])


@keras.saving.register_keras_serializable(package="yt8m")
class ScatterSegments(keras.layers.Layer):
    """(values (N, C) of the existing segments in CutSegments' order, starts (B, S)) -> (B, S, C), 0 where
    no segment is."""

    def call(self, values, starts):
        where = tf.where(starts >= 0)
        shape = tf.concat([tf.shape(starts, out_type=tf.int64), tf.shape(values, out_type=tf.int64)[1:]], 0)
        return tf.scatter_nd(where, values, shape)

    def compute_output_shape(self, values_shape, starts_shape):
        return (starts_shape[0], starts_shape[1], values_shape[-1])
