"""Context-aware segment models (issue 16): any frame-level model scores each 5-frame segment
in its whole video's context, every segment of a video in one forward pass.

`context_model(backbone, ...)` takes a built (or pretrained) frame-level model and returns a
model of `frames` uint8 (B, T, D), `num_frames` (B,) and `segment_starts` (B, S) int32
(-1: no segment; yt8m/data/video_segments.py) giving (B, S, C) probabilities, 0 where no
segment is. Inside, three sub-models reachable by name:
  - "video_encoder": the backbone itself over the whole video -> [embedding (B, Hv), p_v (B, C)];
  - "segment_encoder" over each segment's frames [start, start + 5) (zeros past the video's
    end, as readers.segment_dataset cuts them) -> [embedding (N, Hs), p_s (N, C)]:
    `segment_encoder="backbone"` a copy of the backbone with its own weights (initialised to
    the backbone's, i.e. the segment-only model's start), "pool" the mean of the dequantised
    frames, one ReLU layer as wide as the video embedding and a logistic classifier;
  - "combine" ([segment embedding, p_s, video embedding, p_v] -> p): `combine="concat"`,
    Team Ceshine's (2019, 7th) context-aware classifier on the concatenated embeddings, added
    to the segment's logits through a zero-initialised layer, so training starts at the
    segment-only scores: p = sigmoid(logit p_s + W [e_s, e_v] + b); `combine="gate"`, the
    segment's score gated by the video's (the 2019 teams weighting segment scores by video
    predictions): p = p_s * sigmoid(w * logit p_v + b), w = 1, b = 0 at the start.
An embedding is the input of the backbone's layer "predictions" (its classifier), or, for
models without one (the mixtures), the logits of its output.

Any model of whole-video batches (a context model, models/segment_attention.py's, or a per-segment
model through `one_pass_model`) takes the test-time time shift of `time_shifted_model`.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from models import segment_attention
from models.layers.inputs import Dequantize, FrameMean
from models.layers.mixture import ProbabilityLogits
from models.layers.segments import CutSegments, GatherRows, ScatterSegments, whole_video_inputs
from models import contract

SEGMENT_ENCODERS = ("backbone", "pool")
COMBINES = ("concat", "gate")
VIDEO_ENCODER, SEGMENT_ENCODER, COMBINE = "video_encoder", "segment_encoder", "combine"
CLASSIFIER_LAYER = "predictions"


def is_context_model(model: keras.Model) -> bool:
    """True for a model of whole-video batches (it takes segment_starts): `context_model`'s or
    models/segment_attention.py's."""
    return isinstance(model.input, dict) and contract.SEGMENT_STARTS_INPUT in model.input


def context_kind(model: keras.Model) -> str:
    """The --segment_context a model was finetuned with: "none", "video" (`context_model`) or "attention"
    (models/segment_attention.py)."""
    if not is_context_model(model):
        return "none"
    return "attention" if segment_attention.is_segment_attention_model(model) else "video"


def context_model(backbone: keras.Model, *, segment_encoder: str = "backbone", combine: str = "concat",
                  name: str | None = None) -> keras.Model:
    """The context-aware model of the module doc around `backbone` (its layers and weights reused as the
    video encoder)."""
    if segment_encoder not in SEGMENT_ENCODERS:
        raise ValueError(f"unknown segment encoder {segment_encoder!r}; use one of {', '.join(SEGMENT_ENCODERS)}")
    if combine not in COMBINES:
        raise ValueError(f"unknown combine {combine!r}; use one of {', '.join(COMBINES)}")
    if not isinstance(backbone.input, dict) or contract.FRAMES_INPUT not in backbone.input:
        raise ValueError(f"model {backbone.name} does not read frames; a context-aware segment model needs a "
                         f"frame-level backbone")
    num_classes = backbone.output.shape[-1]
    feature_size = backbone.input[contract.FRAMES_INPUT].shape[-1]
    video = encoder(backbone, VIDEO_ENCODER)
    if segment_encoder == "backbone":
        copy = keras.models.clone_model(backbone)
        copy.set_weights(backbone.get_weights())
        segment = encoder(copy, SEGMENT_ENCODER)
    else:
        segment = pooled_segment_encoder(feature_size, video.output[0].shape[-1], num_classes)
    head = combination(segment.output[0].shape[-1], video.output[0].shape[-1], num_classes, combine)

    inputs = whole_video_inputs(feature_size)
    frames, num_frames, starts = (inputs[k] for k in (contract.FRAMES_INPUT, contract.NUM_FRAMES_INPUT,
                                                      contract.SEGMENT_STARTS_INPUT))
    video_embedding, video_probabilities = video({contract.FRAMES_INPUT: frames, contract.NUM_FRAMES_INPUT: num_frames})
    segment_frames, segment_num_frames, owner = CutSegments(name="cut_segments")(frames, num_frames, starts)
    segment_embedding, segment_probabilities = segment({contract.FRAMES_INPUT: segment_frames,
                                                        contract.NUM_FRAMES_INPUT: segment_num_frames})
    per_segment = GatherRows(name="video_of_segment")
    probabilities = head([segment_embedding, segment_probabilities, per_segment(video_embedding, owner),
                          per_segment(video_probabilities, owner)])
    outputs = ScatterSegments(name="segment_predictions")(probabilities, starts)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}InContext")


def video_model(model: keras.Model) -> keras.Model:
    """A context model's whole-video predictions: its video encoder's (frames, num_frames) -> p_v (B, C)
    (a segment-attention model's: its heads over the whole video)."""
    if context_kind(model) == "attention":
        return segment_attention.video_model(model)
    video = model.get_layer(VIDEO_ENCODER)
    return keras.Model(video.input, video.output[1], name=f"{model.name}_video")


def one_pass_model(model: keras.Model) -> keras.Model:
    """A per-segment (segment-only) model on whole-video batches: each segment's 5 frames cut (CutSegments,
    as readers.segment_dataset cuts them) and scored alone, (B, S, C); a model of whole-video batches is
    returned as it is."""
    if is_context_model(model):
        return model
    inputs = whole_video_inputs(model.input[contract.FRAMES_INPUT].shape[-1])
    frames, num_frames, _ = CutSegments(name="cut_segments")(*inputs.values())
    scores = model({contract.FRAMES_INPUT: frames, contract.NUM_FRAMES_INPUT: num_frames})
    outputs = ScatterSegments(name="segment_predictions")(scores, inputs[contract.SEGMENT_STARTS_INPUT])
    return keras.Model(inputs, outputs, name=f"{model.name}_one_pass")


TIME_SHIFTS = (-1, 0, 1)


def time_shifted_model(model: keras.Model) -> keras.Model:
    """Test-time augmentation (the 2019 9th place): a model of whole-video batches with its (B, S, C)
    scores averaged over the videos' frames shifted one step each way and not at all (`ShiftFrames`)."""
    inputs = whole_video_inputs(model.input[contract.FRAMES_INPUT].shape[-1])
    frames, num_frames = inputs[contract.FRAMES_INPUT], inputs[contract.NUM_FRAMES_INPUT]
    passes = [model({**inputs, contract.FRAMES_INPUT: ShiftFrames(delta, name=f"shift_{i}")(frames, num_frames)})
              for i, delta in enumerate(TIME_SHIFTS)]
    return keras.Model(inputs, keras.layers.Average(name="time_shift_mean")(passes), name=f"{model.name}_time_shift")


def encoder(model: keras.Model, name: str) -> keras.Model:
    """`model`'s inputs -> [its embedding, its probabilities], sharing its layers."""
    try:
        embedding = model.get_layer(CLASSIFIER_LAYER).input
    except ValueError:
        embedding = ProbabilityLogits(name=f"{name}_logits")(model.output)
    return keras.Model(model.input, [embedding, model.output], name=name)


def pooled_segment_encoder(feature_size: int, hidden_size: int, num_classes: int) -> keras.Model:
    """A light segment encoder: mean of the dequantised frames -> ReLU layer -> [embedding, logistic p]."""
    inputs = {contract.FRAMES_INPUT: keras.Input((None, feature_size), dtype="uint8", name=contract.FRAMES_INPUT),
              contract.NUM_FRAMES_INPUT: keras.Input((), dtype="int32", name=contract.NUM_FRAMES_INPUT)}
    frames = Dequantize(name="segment_dequantize")(inputs[contract.FRAMES_INPUT])
    mean = FrameMean(name="segment_mean")(frames, inputs[contract.NUM_FRAMES_INPUT])
    embedding = keras.layers.Dense(hidden_size, activation="relu", name="segment_hidden")(mean)
    probabilities = keras.layers.Dense(num_classes, activation="sigmoid", name="segment_classifier")(embedding)
    return keras.Model(inputs, [embedding, probabilities], name=SEGMENT_ENCODER)


def combination(segment_size: int, video_size: int, num_classes: int, combine: str) -> keras.Model:
    """[segment embedding, p_s, video embedding, p_v] -> p (N, C), as `combine` says (module doc)."""
    inputs = [keras.Input((segment_size,), name="segment_embedding"),
              keras.Input((num_classes,), name="segment_probabilities"),
              keras.Input((video_size,), name="video_embedding"),
              keras.Input((num_classes,), name="video_probabilities")]
    segment_embedding, segment_probabilities, video_embedding, video_probabilities = inputs
    segment_logits = ProbabilityLogits(name="segment_logits")(segment_probabilities)
    if combine == "concat":
        joint = keras.layers.Concatenate(name="segment_and_video")([segment_embedding, video_embedding])
        context = keras.layers.Dense(num_classes, kernel_initializer="zeros", name="context_classifier")(joint)
        logits = keras.layers.Add(name="context_logits")([segment_logits, context])  # logit p_s + W [e_s, e_v] + b
        outputs = keras.layers.Activation("sigmoid", name="context_probabilities")(logits)
    else:
        video_logits = ProbabilityLogits(name="video_logits")(video_probabilities)
        outputs = VideoGate(name="video_gate")(segment_probabilities, video_logits)
    return keras.Model(inputs, outputs, name=COMBINE)


@keras.saving.register_keras_serializable(package="yt8m")
class VideoGate(keras.layers.Layer):
    """p = p_s * sigmoid(w * logit p_v + b), per class w (init 1) and b (init 0): the segment's score gated
    by its video's."""

    def build(self, segment_probabilities_shape, video_logits_shape):
        self.w = self.add_weight(shape=(segment_probabilities_shape[-1],), initializer="ones", name="w")
        self.b = self.add_weight(shape=(segment_probabilities_shape[-1],), initializer="zeros", name="b")

    def call(self, segment_probabilities, video_logits):
        return segment_probabilities * tf.sigmoid(self.w * video_logits + self.b)  # p_s * sigmoid(w logit p_v + b)

    def compute_output_shape(self, segment_probabilities_shape, video_logits_shape):
        return segment_probabilities_shape


@keras.saving.register_keras_serializable(package="yt8m")
class ShiftFrames(keras.layers.Layer):
    """(frames (B, T, D), num_frames (B,)) -> frames[t + delta] within each video, the first or last
    valid frame repeated at the edge (padding stays past num_frames)."""

    def __init__(self, delta: int, **kwargs):
        super().__init__(**kwargs)
        self.delta = delta

    def call(self, frames, num_frames):
        steps = tf.range(tf.shape(frames)[1])[None, :] + self.delta
        last = tf.maximum(tf.cast(num_frames, steps.dtype)[:, None] - 1, 0)
        shifted = tf.gather(frames, tf.minimum(tf.maximum(steps, 0), last), batch_dims=1)
        inside = tf.range(tf.shape(frames)[1])[None, :] < tf.cast(num_frames, steps.dtype)[:, None]
        return tf.where(inside[..., None], shifted, frames)

    def compute_output_shape(self, frames_shape, num_frames_shape):
        return frames_shape

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}
