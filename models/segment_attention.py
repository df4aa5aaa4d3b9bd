"""Temporal-attention models scoring each 5-frame segment from their attention over the whole video
(issue 16, `--segment_context=attention`).

`segment_attention_model(model)` takes a built (or pretrained) AttentionGRUModel, CMA / self-attention
model (SNet or FC) or SRDLModel and returns a model of `frames` uint8 (B, T, D), `num_frames` (B,) and
`segment_starts` (B, S) int32 (-1: no segment; yt8m/data/video_segments.py) giving (B, S, C), 0 where no
segment is, sharing the model's layers and weights. The model runs over the whole video as it does for
its video-level prediction (no frame sampling); only its attention heads change: each head, wrapped in
`AttentionSegments`, pools over a segment's frames [start, start + 5) (those inside the video) what it
pools over the whole video, with the attention computed over the whole video, renormalised over those
frames, then the model's own layers after the head (BatchNorm, classifier, the multi-scale mean) run
on the segments' rows:
  - AttentionGRU: the GRU states h_t (each carrying the video up to t) weighted by the attention
    a_t = softmax_t(e_t): pooled_s = sum_{t in s} a_t h_t / sum_{t in s} a_t;
  - CMA and self-attention heads (CMA Eq.7-10): the per-class attention a_k^i and the steps' features
    I^i, y_k = sigmoid(w_k . sum_{i in s} a_k^i I^i / sum_{i in s} a_k^i + b_k) (uniform over the
    segment's steps where a class's attention there is 0); an SNet step spans pool_size^b frames and
    counts once per frame of the segment it holds;
  - SRDL (Eq.4-6): the temporal attention SA_c,t of each frame and the channel attention CA_c of the
    whole video's max-pooled features, v_c = max_{t in s} 0.5 F_t (SA_c,t + CA_c), y_c = sigmoid(w_c .
    v_c + b_c). Object erasing (training only) is not part of this path.
Renormalising over the segment cancels a per-video normaliser (the softmax's, Eq.8's), so the video
enters through what is computed over it: the GRU's states, SNet's receptive fields, SRDL's CA.
`video_model(model)` gives back the whole-video predictions (the heads unwrapped), for candidate
gating.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from models import cma
from models.layers.attention_gru import AttentionGRU
from models.layers.cma import PerClassAttentionHead, normalize_attention
from models.layers.frame_sampling import FrameSampler
from models.layers.segments import ScatterSegments, whole_video_inputs
from models.layers.srdl import CategoryAttention
from models import contract

ATTENTION_MODELS = ("AttentionGRUModel", "CmaSNetModel", "CmaFCModel", "SelfAttentionSNetModel",
                    "SelfAttentionFCModel", "SRDLModel")
HEADS = (AttentionGRU, PerClassAttentionHead, CategoryAttention)
PREDICTIONS_LAYER = "attention_segment_predictions"


def is_segment_attention_model(model: keras.Model) -> bool:
    """True for a model of `segment_attention_model`."""
    return any(isinstance(layer, AttentionSegments) for layer in model.layers)


def segment_attention_model(model: keras.Model, name: str | None = None) -> keras.Model:
    """The model of the module doc around `model` (its layers and weights shared)."""
    if model.name not in ATTENTION_MODELS or not any(isinstance(layer, HEADS) for layer in model.layers):
        raise ValueError(f"model {model.name} has no whole-video attention to score segments with; "
                         f"use one of {', '.join(ATTENTION_MODELS)}")
    strides = cma.head_strides(model)
    inputs = whole_video_inputs(model.input[contract.FRAMES_INPUT].shape[-1])
    num_frames = inputs[contract.NUM_FRAMES_INPUT]

    def call(layer, *args, **kwargs):
        if isinstance(layer, FrameSampler):          # every frame, in training too: segments are fixed frames
            return args[0], args[1]
        if isinstance(layer, HEADS):
            stride = strides.get(layer.name, 1)
            frames = SegmentFrames(stride, name=f"{layer.name}_segment_frames")(num_frames)
            return AttentionSegments(layer, stride, name=f"{layer.name}_segments")(list(args), frames, **kwargs)
        return layer(*args, **kwargs)

    rows = keras.models.clone_model(model, input_tensors={k: inputs[k] for k in model.input},
                                    clone_function=lambda layer: layer, call_function=call)
    outputs = ScatterSegments(name=PREDICTIONS_LAYER)(rows.output, inputs[contract.SEGMENT_STARTS_INPUT])
    return keras.Model(inputs, outputs, name=name or f"{model.name}SegmentAttention")


def video_model(model: keras.Model) -> keras.Model:
    """A segment-attention model's whole-video predictions: (frames, num_frames) -> (B, C), its heads
    called as the video-level model calls them."""
    def call(layer, *args, **kwargs):
        if isinstance(layer, AttentionSegments):
            return layer.head(*args[0], **kwargs)
        if isinstance(layer, ScatterSegments):
            return args[0]
        return layer(*args, **kwargs)

    whole = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return keras.Model({k: whole.input[k] for k in (contract.FRAMES_INPUT, contract.NUM_FRAMES_INPUT)}, whole.output,
                       name=f"{model.name}_video")


@keras.saving.register_keras_serializable(package="yt8m")
class SegmentFrames(keras.layers.Layer):
    """num_frames (B,) -> the existing segments' video (N,), their frames [start, start + 5) as steps of a
    time axis of `stride` frames per step (N, 5) int32 (clipped to the video's last frame) and which of
    those frames lie inside the video (N, 5) bool; segments 0, 5, ... below num_frames in row-major
    (video, start) order, the order of ScatterSegments on video_segments.segment_starts."""

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, num_frames):
        num_frames = tf.cast(num_frames, tf.int32)
        count = (tf.reduce_max(tf.concat([num_frames, [0]], 0)) + contract.SEGMENT_FRAMES - 1) // contract.SEGMENT_FRAMES
        starts = tf.range(count)[None, :] * contract.SEGMENT_FRAMES
        where = tf.where(starts < num_frames[:, None])                        # (N, 2) [video, slot]
        owner = tf.cast(where[:, 0], tf.int32)
        frames = tf.cast(where[:, 1:], tf.int32) * contract.SEGMENT_FRAMES + tf.range(contract.SEGMENT_FRAMES)[None, :]
        length = tf.gather(num_frames, owner)[:, None]
        return owner, tf.minimum(frames, length - 1) // self.stride, frames < length

    def compute_output_spec(self, num_frames):
        return (keras.KerasTensor((None,), dtype="int32"),
                keras.KerasTensor((None, contract.SEGMENT_FRAMES), dtype="int32"),
                keras.KerasTensor((None, contract.SEGMENT_FRAMES), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="yt8m")
class AttentionSegments(keras.layers.Layer):
    """An attention head's pooling restricted to each segment's frames (module doc): ([the head's inputs],
    SegmentFrames' (owner, steps, inside)) -> the head's outputs with one row per segment (N, ...) in
    place of one per video. Holds the head (its weights)."""

    def __init__(self, head: keras.layers.Layer, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(head, HEADS):
            raise ValueError(f"{type(head).__name__} is not an attention head ({', '.join(h.__name__ for h in HEADS)})")
        self.head = head
        self.stride = stride

    def build(self, *shapes):
        pass   # the head is built (by its model, or when deserialised)

    def call(self, inputs, segments, training=None):
        owner, steps, inside = segments
        index = tf.stack([tf.broadcast_to(owner[:, None], tf.shape(steps)), steps], axis=-1)   # (N, 5, 2)
        if isinstance(self.head, AttentionGRU):
            states, scores = self.head.frame_attention(*inputs, training=training)
            scores = tf.gather_nd(scores, index)
            scores = tf.where(inside, scores, tf.fill(tf.shape(scores), scores.dtype.min))
            weights = tf.nn.softmax(scores, axis=-1)   # = a_t / sum_{t in s} a_t
            return tf.reduce_sum(tf.gather_nd(states, index) * weights[..., None], axis=1), weights
        if isinstance(self.head, PerClassAttentionHead):
            _, attention = self.head(*inputs, training=training)                  # (B, T', C), over the video
            # CMA Eq.8-10 over the segment's frames: the attention renormalised there, then the classifier.
            attention = normalize_attention(tf.gather_nd(attention, index), inside)
            return self.head.classify(tf.gather_nd(inputs[0], index), attention), attention
        features, num_frames, label_vectors = inputs
        features = features * tf.sequence_mask(num_frames, tf.shape(features)[1], dtype=features.dtype)[..., None]
        channel, spatial = self.head.attention(features, label_vectors)          # CA (B, C, d), SA (B, C, T)
        segment_features = tf.gather_nd(features, index) * tf.cast(inside, features.dtype)[..., None]
        segment_spatial = tf.transpose(tf.gather_nd(tf.transpose(spatial, [0, 2, 1]), index), [0, 2, 1])
        # SRDL Eq.6 over the segment's frames, with the whole video's CA.
        return tf.sigmoid(self.head.logits(segment_features, segment_spatial, tf.gather(channel, owner)))

    def compute_output_spec(self, inputs, segments, training=None):
        if isinstance(self.head, AttentionGRU):
            return (keras.KerasTensor((None, self.head.units)), keras.KerasTensor((None, contract.SEGMENT_FRAMES)))
        classes = keras.KerasTensor((None, self.head.num_classes))
        if isinstance(self.head, PerClassAttentionHead):
            return classes, keras.KerasTensor((None, contract.SEGMENT_FRAMES, self.head.num_classes))
        return classes

    def get_config(self):
        return {**super().get_config(), "head": keras.saving.serialize_keras_object(self.head),
                "stride": self.stride}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(keras.saving.deserialize_keras_object(config.pop("head")), **config)
