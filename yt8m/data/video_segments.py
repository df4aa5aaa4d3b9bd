"""Whole videos with their 5-frame segments: the reader of context-aware segment models.

One example is one video: its frames (B, T, D) uint8 padded to the batch's longest
video, `num_frames`, and every 5-frame segment of it as `segment_starts` (B, S)
int32 = 0, 5, 10, ... (the cut of the official inference.py, a trailing partial
segment included) with -1 where a segment would start past the video's end, so
padded segments never appear; `segment_mask` (B, S) marks the real ones and
`segment_ids` (B, S) names them `<video_id>:<start>`. A model scores every segment of
a video in one forward pass (models/context.py).

Rated (validate) files also carry the ratings as dense per-segment targets and weights,
(B, S, C) each: the targets are the video labels with every rated (segment, class) set
to its 0/1 score, the weights 1 on the rated (segment, class) pairs and 0 elsewhere
(a segment rated for two classes is one row with two marks; unrated and padded segments
have no mark). Row by row these are the labels and weights `readers.segment_dataset`
gives one rated segment, so the losses of yt8m/losses.py read them unchanged
(yt8m/segment_context.py gathers the marked rows). Test files: labels and weights are
empty, (B, S, 0).
"""
from __future__ import annotations

import tensorflow as tf

from yt8m.data import readers, schema

SEGMENT_MASK_KEY = "segment_mask"
SEGMENT_IDS_KEY = "segment_ids"


def video_segment_dataset(pattern: str, *, num_classes: int, feature_spec: schema.FeatureSpec,
                          batch_size: int, shuffle: bool = False, seed: int = 0,
                          num_epochs: int | None = 1, rated: bool = True, max_frames: int = schema.MAX_FRAMES,
                          drop_remainder: bool = False, flag: str = "train_data_pattern",
                          corrupt_records: "readers.CorruptRecords | None" = None) -> tf.data.Dataset:
    """Frame-level SequenceExamples -> ({id, frames, num_frames, segment_starts, segment_mask,
    segment_ids}, targets (B, S, C), weights (B, S, C)), B videos per batch.

    `batch_size` counts segments as `readers.segment_dataset` does: a batch holds
    batch_size // 5 rated videos (about batch_size rated segments) or batch_size // 60
    test videos, at least one. Videos are truncated to `max_frames`; rated segments
    starting past that are dropped with the frames.
    """
    per_video = readers.RATED_SEGMENTS_PER_VIDEO if rated else readers.TEST_SEGMENTS_PER_VIDEO
    batches = readers.frame_record_batches(pattern, feature_spec=feature_spec, rated=rated, flag=flag,
                                           batch_size=max(1, batch_size // per_video), shuffle=shuffle, seed=seed,
                                           num_epochs=num_epochs, drop_remainder=drop_remainder,
                                           corrupt_records=corrupt_records)

    def parse(serialized, files):
        features, labels = readers.parse_frame_batch(serialized, feature_spec, num_classes, max_frames,
                                                     files=files, corrupt_records=corrupt_records, rated=rated)
        return with_segments(features, labels, rated=rated)

    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def segment_starts(num_frames, num_segments=None):
    """(B, S) int32 starts 0, 5, ... of every segment that begins inside its video, -1 after;
    S = the most segments of a video in the batch unless `num_segments` is given."""
    num_frames = tf.cast(num_frames, tf.int32)
    if num_segments is None:
        num_segments = (tf.reduce_max(tf.concat([num_frames, [0]], 0)) + schema.SEGMENT_FRAMES - 1) \
            // schema.SEGMENT_FRAMES
    starts = tf.range(num_segments, dtype=tf.int32)[None, :] * schema.SEGMENT_FRAMES
    return tf.where(starts < num_frames[:, None], starts, -1)


def with_segments(features: dict, labels, rated: bool):
    """A parsed frame batch (readers.parse_frame_batch) -> the video-segment batch of the module doc."""
    num_frames = features[schema.NUM_FRAMES_INPUT]
    starts = segment_starts(num_frames)
    mask = starts >= 0
    ids = tf.strings.join([tf.broadcast_to(features[schema.ID_KEY][:, None], tf.shape(starts)),
                           tf.strings.as_string(starts)], separator=":")
    out = {schema.ID_KEY: features[schema.ID_KEY], schema.FRAMES_INPUT: features[schema.FRAMES_INPUT],
           schema.NUM_FRAMES_INPUT: num_frames, schema.SEGMENT_STARTS_INPUT: starts,
           SEGMENT_MASK_KEY: mask, SEGMENT_IDS_KEY: tf.where(mask, ids, "")}
    if not rated:
        empty = tf.zeros(tf.concat([tf.shape(starts), [0]], 0), tf.float32)
        return out, empty, empty
    targets, weights = rating_targets(features, labels, num_frames, tf.shape(starts)[1])
    return out, targets, weights


def rating_targets(features: dict, video_labels, num_frames, num_segments):
    """Dense (B, S, C) targets and weights from the ragged ratings of a parsed batch.

    A rating whose start is not a multiple of 5, or lies outside the video, stops the reader
    (the record is malformed); one past `max_frames` is dropped (its frames were cut).
    """
    starts = features[schema.SEGMENT_START_KEY]
    classes = features[schema.SEGMENT_LABELS_KEY].flat_values
    scores = features[schema.SEGMENT_SCORES_KEY].flat_values
    video = starts.value_rowids()
    start = starts.flat_values
    check = tf.debugging.Assert(
        tf.reduce_all((start >= 0) & (start % schema.SEGMENT_FRAMES == 0)),
        ["a segment_start_times entry is negative or not a multiple of 5; the record is malformed"])
    with tf.control_dependencies([check]):
        kept = start < tf.cast(tf.gather(num_frames, video), start.dtype)
    index = tf.stack([video, start // schema.SEGMENT_FRAMES, classes], axis=1)
    index, scores = tf.boolean_mask(index, kept), tf.boolean_mask(scores, kept)
    shape = tf.shape(video_labels, out_type=tf.int64)
    targets = tf.tile(video_labels[:, None, :], tf.stack([1, num_segments, 1]))
    targets = tf.tensor_scatter_nd_update(targets, index, scores)
    dense_shape = tf.stack([shape[0], tf.cast(num_segments, tf.int64), shape[1]])
    weights = tf.scatter_nd(index, tf.ones_like(scores), dense_shape)
    return targets, tf.minimum(weights, 1.0)   # a repeated rating marks its pair once
