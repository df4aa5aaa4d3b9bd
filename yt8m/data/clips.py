"""tf.data reader of RGB clip records (the Charades frames layout) for the 3-D models.

A record is a SequenceExample with context `id` (bytes) and `labels` (int64 list)
and one JPEG-encoded RGB frame per step in the feature list `image/encoded`. The
reader batches serialized records, parses the batch at once, picks `clip_frames`
frames per video (`sampling`: "tsn", KSSNet's recipe: one frame of each of
`clip_frames` equal segments, random in training, the segment centres in
evaluation; "consecutive": a run from a random start in training, the centred
run in evaluation, a video shorter than the clip looping), scales each frame so its shorter
side is `clip_size * 8/7` (256 for 224, I3D's recipe) and crops `clip_size` square
(a random crop and horizontal flip per video in training, the centre otherwise).
It yields `({id, clip uint8 (B, T, S, S, 3)}, multi-hot labels (B, C), ones (B, C))`.
"""
from __future__ import annotations

import tensorflow as tf

from yt8m.data import readers, schema

CLIP_SHUFFLE_BUFFER = 64      # records; a clip record holds many JPEG frames
SAMPLINGS = ("tsn", "consecutive")
RESIZE_RATIO = 256 / 224      # shorter side before the crop


def clip_dataset(pattern: str, *, num_classes: int, batch_size: int, clip_frames: int, clip_size: int,
                 training: bool, shuffle: bool = False, seed: int = 0, num_epochs: int | None = 1,
                 drop_remainder: bool = False, flag: str = "clip_data_pattern",
                 sampling: str = "tsn") -> tf.data.Dataset:
    """Clips of `clip_frames` frames, `clip_size` square; random sampling and crops when `training`."""
    if clip_frames <= 0 or clip_size <= 0:
        raise ValueError(f"clip_frames and clip_size must be positive, got {clip_frames}, {clip_size}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"clip sampling {sampling!r} is not one of {', '.join(SAMPLINGS)}")
    batches = readers.record_batches(pattern, flag=flag, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                     num_epochs=num_epochs, shuffle_buffer=CLIP_SHUFFLE_BUFFER,
                                     drop_remainder=drop_remainder)
    resize_to = int(round(clip_size * RESIZE_RATIO))
    sampler = _Uniform(seed) if training else None

    def parse(serialized, _files):   # the records' files name data errors in readers; unused here
        context, sequences, _ = tf.io.parse_sequence_example(
            serialized,
            context_features={schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                              schema.LABELS_KEY: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)},
            sequence_features={schema.CLIP_FRAME_KEY: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64)})
        frames = sequences[schema.CLIP_FRAME_KEY]
        encoded = _sample_frames(frames, clip_frames, sampling, sampler)            # (B, T) JPEG strings
        count = tf.shape(encoded)[0]
        if sampler is not None:
            offsets = sampler.uniform([count, 2])
            flips = sampler.uniform([count]) < 0.5
        else:
            offsets = tf.fill([count, 2], 0.5)
            flips = tf.zeros([count], tf.bool)
        per_frame = (tf.reshape(encoded, [-1]), tf.repeat(offsets, clip_frames, axis=0),
                     tf.repeat(flips, clip_frames, axis=0))
        images = tf.map_fn(lambda args: _decode_crop(*args, resize_to, clip_size), per_frame,
                           fn_output_signature=tf.TensorSpec((clip_size, clip_size, 3), tf.uint8),
                           parallel_iterations=16)
        clip = tf.reshape(images, [count, clip_frames, clip_size, clip_size, 3])
        labels = readers.multi_hot_labels(context[schema.LABELS_KEY], num_classes)
        return {schema.ID_KEY: context[schema.ID_KEY], schema.CLIP_INPUT: clip}, labels, tf.ones_like(labels)

    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


class _Uniform:
    """Seeded uniform draws inside the dataset's map (stateful random ops, one op seed each)."""

    def __init__(self, seed: int):
        self.seed = seed

    def uniform(self, shape):
        return tf.random.uniform(shape, seed=self.seed)


def _sample_frames(frames: tf.RaggedTensor, clip_frames: int, sampling: str, sampler) -> tf.Tensor:
    """(B, clip_frames) strings: each video's frames at `frame_indices`."""
    lengths = frames.row_lengths()
    check = tf.debugging.Assert(tf.reduce_all(lengths > 0), [
        f"a clip record has no '{schema.CLIP_FRAME_KEY}' frames; clip records need one JPEG frame per step"])
    with tf.control_dependencies([check]):
        index = frame_indices(lengths, clip_frames, sampling, sampler)
    return tf.gather(frames.flat_values, frames.row_starts()[:, None] + index)


def frame_indices(lengths: tf.Tensor, clip_frames: int, sampling: str, sampler=None) -> tf.Tensor:
    """(B, clip_frames) int64 frame indices of videos of `lengths` (B,) frames; random when `sampler`."""
    lengths = tf.cast(lengths, tf.int64)[:, None]
    steps = tf.range(clip_frames, dtype=tf.int64)[None, :]
    if sampling == "consecutive":   # a run from a random (training) or the centred start, looping short videos
        room = tf.maximum(lengths - clip_frames, 0) + 1                            # possible starts
        if sampler is None:
            start = (room - 1) // 2
        else:
            start = tf.minimum(tf.cast(sampler.uniform(tf.shape(room)) * tf.cast(room, tf.float32), tf.int64),
                               room - 1)
        return (start + steps) % lengths
    if sampler is None:   # TSN test indices (mssnet's _get_test_indices): segment centres floor((i + 1/2) L / T)
        return ((2 * steps + 1) * lengths) // (2 * clip_frames)
    # TSN training indices (mssnet's _sample_indices): segments of L // T frames, a uniform frame of each;
    # a video shorter than the clip (where TSN takes frame 0 T times) takes floor((i + u) L / T) instead.
    u = sampler.uniform(tf.shape(steps * lengths))
    segment = lengths // clip_frames
    in_segment = tf.minimum(tf.cast(u * tf.cast(segment, tf.float32), tf.int64), tf.maximum(segment - 1, 0))
    short = tf.cast((tf.cast(steps, tf.float32) + u) * tf.cast(lengths, tf.float32) / clip_frames, tf.int64)
    return tf.where(segment > 0, steps * segment + in_segment, tf.minimum(short, lengths - 1))


def _decode_crop(encoded, offset, flip, resize_to: int, size: int):
    """One JPEG -> uint8 (size, size, 3): shorter side scaled to `resize_to`, crop at `offset` (fractions)."""
    image = tf.io.decode_jpeg(encoded, channels=3)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(resize_to, tf.float32) / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    image = tf.image.resize(image, new_shape, antialias=True)
    top_left = tf.cast(tf.round(offset * tf.cast(new_shape - size, tf.float32)), tf.int32)
    image = tf.slice(image, tf.concat([top_left, [0]], 0), [size, size, 3])
    image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
