"""A trained model as a TF SavedModel that serves without this code (TF Serving, tf.saved_model.load).

The `serving_default` signature takes `serialized`: a 1-D string tensor of
serialized records, SequenceExamples for frame-level models (Examples for
video-level ones), parses them with the readers' own parse (yt8m.data.readers),
keeps frames uint8 until the model's Dequantize layer, and returns
  video_id       string (B,)
  probabilities  float32 (B, C)
  top_classes    int32 (B, K), K = min(20, C), best first
  top_scores     float32 (B, K)
Labels in the records are ignored (they may be absent).

A model of whole-video batches (--segment_context=video or attention, or any segment model with
--time_shift) scores every 5-frame segment of each record (yt8m/data/video_segments.py's cut):
`segment_starts` int32 (B, S) (-1 past the video's end), `segment_ids` string (B, S)
(`<video_id>:<start>`, empty past the end), and `probabilities` (B, S, C), `top_classes`,
`top_scores` (B, S, K) per segment (0 past the end).
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from models import context
from yt8m import rundir, segment_context
from yt8m.config import Config
from yt8m.data import readers, schema, video_segments
from yt8m.errors import UserError

SIGNATURE = "serving_default"
TOP_K = 20


def export(model: keras.Model, config: Config, export_dir: str) -> str:
    """Writes the SavedModel to `export_dir` (through a temporary directory, then renamed)."""
    if not export_dir:
        raise UserError("--export_dir is empty; give the directory to write the SavedModel to")
    if export_dir.rstrip("/") in ("", ".") or os.path.isfile(export_dir):
        raise UserError(f"--export_dir={export_dir!r} must name a new or existing directory")
    spec, num_classes = config.data.feature_spec, config.data.num_classes
    top_k = min(TOP_K, num_classes)
    frame_level = config.data.frame_features
    per_segment = context.is_context_model(model)
    if per_segment and not frame_level:
        raise UserError(f"model {model.name} scores the segments of whole videos; export it with --frame_features")

    def serve(serialized):
        if frame_level:
            features, _ = readers.parse_frame_batch(serialized, spec, num_classes, config.data.max_frames,
                                                    config.data.pad_to_max_frames)
        else:
            features, _ = readers.parse_video_batch(serialized, spec, num_classes)
        if per_segment:
            features = video_segments.with_segments(features, None, rated=False)[0]
        probabilities = tf.cast(model(readers.model_inputs(features), training=False), tf.float32)
        top = tf.math.top_k(probabilities, k=top_k)
        served = {"video_id": features[schema.ID_KEY], "probabilities": probabilities,
                  "top_classes": top.indices, "top_scores": top.values}
        if per_segment:
            served.update(segment_starts=features[schema.SEGMENT_STARTS_INPUT],
                          segment_ids=features[video_segments.SEGMENT_IDS_KEY])
        return served

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[tf.TensorSpec([None], tf.string, name="serialized")])
    target = export_dir.rstrip("/")
    tmp = f"{target}.tmp-{os.getpid()}"
    try:
        archive.write_out(tmp, verbose=False)
        if tf.io.gfile.exists(target):
            tf.io.gfile.rmtree(target)
        tf.io.gfile.rename(tmp, target)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
    return target


def export_run(config: Config) -> str:
    """Exports config.training.train_dir's model.keras (best_model.keras with --best_checkpoint) to
    config.evaluation.export_dir."""
    # A per-segment model is a frame-level model: it serves the frames of each record the same way; a model of
    # whole-video batches (or --time_shift) scores each record's segments.
    model = rundir.load_evaluated_model(config)
    if context.is_context_model(model) or config.evaluation.time_shift:
        model = segment_context.whole_video_model(model, config)
    return export(model, config, config.evaluation.export_dir)
