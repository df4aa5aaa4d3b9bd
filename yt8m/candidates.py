"""Segment candidate gating (2019 top teams): a video's segments rank first for a class only if
the class is among the video's top-k video-level predictions (`--candidate_top_k`).

A first pass over the same records with the frame reader runs a video-level model on
each whole video and keeps its top-k classes (and, with `--candidate_threshold`, only
those with probability >= the threshold): a `CandidateTable`, memory O(videos x k).
The video-level model is `--video_model_dir`'s (a frame-level model takes the frames; a
video-level model takes the mean of the dequantised frames, which is how the official
video-level features are made), or else the segment model itself run on whole videos (a
context-aware one, --segment_context=video: its video encoder).

Gating demotes instead of dropping: a non-candidate score p becomes p - 1, below every
candidate (probabilities are in [0, 1]) but still ordered among the non-candidates.
Under the 2019 metric appending entries after a class's candidates can only add
precision terms, so demoting scores at least as well as dropping, and equals it
when the candidates alone fill a class's K slots (the real test set's case).
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from yt8m import rundir
from yt8m.config import Config
from yt8m.data import readers, schema
from yt8m.errors import UserError
from yt8m.progress import keras_verbose

DEMOTION = 1.0


@dataclasses.dataclass(frozen=True)
class CandidateTable:
    """Sorted video ids (N,) bytes and their candidate classes (N, k) int32 (-1: no candidate)."""

    video_ids: np.ndarray
    classes: np.ndarray

    @classmethod
    def from_predictions(cls, video_ids, probabilities, k: int, threshold: float = 0.0) -> "CandidateTable":
        """Candidates of each row of (N, C) probabilities: its top k classes with p >= threshold."""
        probabilities = np.asarray(probabilities)
        k = min(int(k), probabilities.shape[1])
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k].astype(np.int32)
        top[np.take_along_axis(probabilities, top, axis=1) < threshold] = -1
        return cls.from_classes(video_ids, top)

    @classmethod
    def from_classes(cls, video_ids, classes) -> "CandidateTable":
        ids = np.asarray(video_ids).astype(np.bytes_).reshape(-1)
        classes = np.asarray(classes, np.int32)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], classes[order])

    @property
    def k(self) -> int:
        return self.classes.shape[1]

    def lookup(self, segment_or_video_ids) -> np.ndarray:
        """(B,) ids `<video_id>:<start>` (or video ids) -> (B, k) candidate classes."""
        ids = np.asarray(segment_or_video_ids).astype(np.bytes_).reshape(-1)
        videos = np.char.partition(ids, b":")[:, 0]
        rows = np.minimum(np.searchsorted(self.video_ids, videos), max(len(self.video_ids) - 1, 0))
        if len(self.video_ids) == 0 or not np.array_equal(self.video_ids[rows], videos):
            missing = videos[self.video_ids[rows] != videos][:1] if len(self.video_ids) else videos[:1]
            raise UserError(f"video {missing[0].decode()!r} has no candidates: the candidate pass read "
                            f"other records than the segment pass")
        return self.classes[rows]

    def mask(self, segment_ids, num_classes: int) -> np.ndarray:
        """(B, num_classes) bool: True where the class is a candidate of the segment's video."""
        classes = self.lookup(segment_ids)
        mask = np.zeros((classes.shape[0], num_classes + 1), dtype=bool)   # column -1: no candidate
        mask[np.arange(classes.shape[0])[:, None], classes] = True
        return mask[:, :num_classes]

    def gate(self, segment_ids, predictions) -> np.ndarray:
        """Predictions with every non-candidate score lowered by 1 (below all candidates)."""
        predictions = np.asarray(predictions)
        return np.where(self.mask(segment_ids, predictions.shape[1]), predictions, predictions - DEMOTION)

    def contains(self, segment_ids, class_ids) -> np.ndarray:
        """(B,) bool: is class_ids[b] a candidate of segment b's video."""
        classes = self.lookup(segment_ids)
        return (classes == np.asarray(class_ids).reshape(-1, 1)).any(axis=1)


def candidate_recall(table: CandidateTable, segment_ids, class_ids, ratings) -> dict:
    """Share of the positive rated (segment, class) pairs whose class is a candidate of its video."""
    positive = np.asarray(ratings) > 0
    kept = table.contains(np.asarray(segment_ids)[positive], np.asarray(class_ids)[positive])
    return {"candidate_recall": float(kept.mean()) if kept.size else float("nan"),
            "candidate_positive_pairs": int(positive.sum())}


def video_candidates(config: Config, pattern: str, flag: str, segment_model: keras.Model | None = None,
                     progress: bool = True) -> CandidateTable:
    """The first pass: top-k classes of every video of `pattern` by the video-level model."""
    if config.evaluation.video_model_dir:
        model = rundir.load_trained_model(config.evaluation.video_model_dir, flag="video_model_dir")
        video_config = rundir.saved_config(config.evaluation.video_model_dir)
    else:
        model, video_config = segment_model, None
    if model is None:
        raise ValueError("video_candidates needs --video_model_dir or the segment model")
    from models import context

    if context.is_context_model(model):   # --segment_context=video: its video encoder's predictions
        model = context.video_model(model)
    takes_frames = schema.FRAMES_INPUT in model.input
    if not takes_frames:
        sizes = video_config.data.feature_spec.total_size if video_config else model.input[schema.VIDEO_INPUT].shape[-1]
        if sizes != config.data.feature_spec.total_size:
            raise UserError(f"--video_model_dir's model takes {sizes} video-level features; the mean of the "
                            f"frame features {','.join(config.data.feature_names)} has {config.data.feature_spec.total_size}")
    dataset = readers.frame_dataset(pattern, num_classes=config.data.num_classes, feature_spec=config.data.feature_spec,
                                    batch_size=max(8, config.training.batch_size // readers.TEST_SEGMENTS_PER_VIDEO),
                                    max_frames=config.data.max_frames, flag=flag)
    k = min(config.evaluation.candidate_top_k, config.data.num_classes)

    @tf.function(reduce_retracing=True)
    def top_classes(features):
        inputs = readers.model_inputs(features) if takes_frames else {schema.VIDEO_INPUT: _mean_features(features)}
        top = tf.math.top_k(tf.cast(model(inputs, training=False), tf.float32), k=k)
        return tf.where(top.values >= config.evaluation.candidate_threshold, top.indices, -1)

    ids, classes = [], []
    bar = keras.utils.Progbar(None, unit_name="video", verbose=keras_verbose(progress))
    with readers.data_errors(pattern, flag):
        for features, _, _ in dataset:
            classes.append(top_classes(features).numpy())
            ids.append(features[schema.ID_KEY].numpy())
            bar.add(len(ids[-1]))
    if not ids:
        raise UserError(f"--{flag}={pattern!r} has no videos to choose candidates from")
    return CandidateTable.from_classes(np.concatenate(ids), np.concatenate(classes))


def _mean_features(features):
    """Video-level features from frames: the mean of the dequantised valid frames (B, D)."""
    frames = schema.dequantize(tf.cast(features[schema.FRAMES_INPUT], tf.float32))
    num_frames = features[schema.NUM_FRAMES_INPUT]
    mask = tf.sequence_mask(num_frames, tf.shape(frames)[1], dtype=tf.float32)[:, :, None]
    return tf.reduce_sum(frames * mask, axis=1) / tf.maximum(tf.cast(num_frames, tf.float32), 1.0)[:, None]
