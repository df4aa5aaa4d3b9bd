"""`--segment_context=video|attention` in the pipeline (its whole-video reader: yt8m/datasets.py), the context-aware model
(models/context.py) or the model's whole-video attention (models/segment_attention.py), the per-segment
loss adapter and one-pass eval/inference (with `--time_shift`, its test-time augmentation).

Finetune: the pretrained frame-level model becomes the video encoder of a context model and
trains on whole rated videos; the (B, S, C) targets/weights of yt8m/data/video_segments.py go
through the run's loss (yt8m/losses.py) unchanged, restricted to the rated segments by
`PerSegmentLoss`. Eval/inference: every test video is read and encoded once and all its
segments scored in the same forward pass; `predict_batches` yields the rows
yt8m/evaluation.py consumes from the per-segment path (one per rated (segment, class) with
`segment_class`, or one per segment), so the metrics, candidate gating and the top-K writer
are shared.
"""
from __future__ import annotations

from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from models import context, segment_attention
from yt8m.config import Config
from yt8m.data import readers, schema, video_segments
from yt8m.errors import UserError
from yt8m.forward import forward_function
from yt8m.progress import keras_verbose


class PerSegmentLoss(keras.losses.Loss):
    """The run's loss on the rated segments of whole-video batches: (B, S, C) targets, predictions and
    weights -> the rows of the segments with a rated class (a weight > 0), (N, C), handed to `loss` as
    readers.segment_dataset's batches are. Not serialisable (losses are rebuilt from the config)."""

    def __init__(self, loss: keras.losses.Loss, name: str = "per_segment_loss"):
        super().__init__(name=name)
        self.loss = loss

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            raise ValueError("PerSegmentLoss needs the reader's per-segment weights (the rated pairs)")
        rated = tf.where(tf.reduce_any(sample_weight > 0, axis=-1))   # (N, 2) [video, segment]
        return self.loss(tf.gather_nd(y_true, rated), tf.gather_nd(y_pred, rated),
                         sample_weight=tf.gather_nd(sample_weight, rated))


def rated_rows(model: keras.Model, batch):
    """(model, whole-video batch) -> (a callable giving the model's rows of the rated segments, (N, C), and
    the batch's (features, targets, weights) rows of them): what yt8m/health.py judges per segment."""
    features, targets, weights = batch
    rated = tf.where(tf.reduce_any(weights > 0, axis=-1))

    def rows(inputs, training=False):
        return tf.gather_nd(model(inputs, training=training), rated)

    return rows, (features, tf.gather_nd(targets, rated), tf.gather_nd(weights, rated))


def wrap(model: keras.Model, config: Config) -> keras.Model:
    """The finetune's model: video, `model` as the video encoder of a context model; attention, `model`
    scoring segments from its whole-video attention (one of either already is: kept)."""
    if context.is_context_model(model):
        return model
    try:
        if config.model_.segment_context == "attention":
            return segment_attention.segment_attention_model(model)
        return context.context_model(model, segment_encoder=config.model_.context_segment_encoder,
                                     combine=config.model_.context_combine)
    except ValueError as exc:
        raise UserError(f"--segment_context={config.model_.segment_context}: {exc}") from None


KIND_NAMES = {"none": "a per-segment", "video": "a context-aware", "attention": "a segment-attention"}


def check_model(model: keras.Model, config: Config) -> None:
    """eval/inference: the run's model and --segment_context agree."""
    kind = context.context_kind(model)
    if kind != config.model_.segment_context:
        raise UserError(f"--train_dir={config.training.train_dir} holds {KIND_NAMES[kind]} segment model; give "
                        f"--segment_context={kind}")


def whole_video_model(model: keras.Model, config: Config) -> keras.Model:
    """The run's segment model on whole-video batches (a per-segment one: each segment cut and scored
    alone), with --time_shift its scores averaged over the frames shifted -1, 0, +1."""
    model = context.one_pass_model(model)
    return context.time_shifted_model(model) if config.evaluation.time_shift else model


def predict_batches(model: keras.Model, dataset: tf.data.Dataset, pattern: str, flag: str,
                    progress: bool = True) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """One forward pass per batch of whole videos; yields per-segment (features, labels, probabilities)
    rows as evaluation.predict_batches does on the per-segment reader: rated batches one row per rated
    (segment, class) (`id`, `segment_class`; the segment's target row), test batches one per segment."""
    forward = forward_function(model, dataset)   # one trace per pass (padded lengths, last batch)
    bar = keras.utils.Progbar(None, unit_name="video", verbose=keras_verbose(progress))
    seen = 0
    with readers.data_errors(pattern, flag):
        for features, targets, weights in dataset:
            probabilities = forward(readers.model_inputs(features)).numpy()
            ids = features[video_segments.SEGMENT_IDS_KEY].numpy()
            if weights.shape[-1]:                               # rated: one row per rated (segment, class)
                video, segment, rated = np.nonzero(weights.numpy())
                rows = {schema.ID_KEY: ids[video, segment], "segment_class": rated.astype(np.int32)}
                yield rows, targets.numpy()[video, segment], probabilities[video, segment]
            else:
                mask = features[video_segments.SEGMENT_MASK_KEY].numpy()
                yield {schema.ID_KEY: ids[mask]}, np.zeros((int(mask.sum()), 0), np.float32), probabilities[mask]
            seen += len(ids)
            bar.update(seen)
    bar.update(seen, finalize=True)
