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
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from yt8m import rundir
from yt8m.config import Config
from yt8m.data import readers, schema
from yt8m.errors import UserError

SIGNATURE = "serving_default"
TOP_K = 20


def export(model: keras.Model, config: Config, export_dir: str) -> str:
    """Writes the SavedModel to `export_dir` (through a temporary directory, then renamed)."""
    if not export_dir:
        raise UserError("--export_dir is empty; give the directory to write the SavedModel to")
    if export_dir.rstrip("/") in ("", ".") or os.path.isfile(export_dir):
        raise UserError(f"--export_dir={export_dir!r} must name a new or existing directory")
    spec, num_classes = config.feature_spec, config.num_classes
    top_k = min(TOP_K, num_classes)
    frame_level = config.frame_features

    def serve(serialized):
        if frame_level:
            features, _ = readers.parse_frame_batch(serialized, spec, num_classes, config.max_frames,
                                                    config.pad_to_max_frames)
        else:
            features, _ = readers.parse_video_batch(serialized, spec, num_classes)
        probabilities = tf.cast(model(readers.model_inputs(features), training=False), tf.float32)
        top = tf.math.top_k(probabilities, k=top_k)
        return {"video_id": features[schema.ID_KEY], "probabilities": probabilities,
                "top_classes": top.indices, "top_scores": top.values}

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
    """Exports config.train_dir's model.keras to config.export_dir."""
    # A segment model is a frame-level model: it serves the frames of each record the same way.
    return export(rundir.load_trained_model(config.train_dir), config, config.export_dir)
