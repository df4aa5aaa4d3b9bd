"""SRDL on the time axis: category-specific attentional regions (CAR) and object (interval) erasing (OE).

Our temporal reading of SRDL (docs/ARCHITECTURE.md, "SRDL"): the image's spatial
positions are a video's frames. With F (B, T, d) the non-negative frame features
(padding zeroed) and H (C, e) the GCN-contextualised label vectors (Eq.3, computed
outside this layer by the shared GCN over a learned adjacency), and the learnable
branch transforms f_ca, f_sa (d -> e), f_c (e -> d) and f_s (e -> 1), h_c scaled first
(`label_norm`, `scale_label_vectors`; default "none", the paper; "l2" L2-normalises them, an option):

- channel attention (Eq.4): CA[b, c] = sigmoid(f_c(tanh(f_ca(maxpool_t F[b])) * h_c))      (B, C, d)
- temporal attention (Eq.5): SA[b, c, t] = sigmoid(f_s(tanh(f_sa(F[b, t])) * h_c))         (B, C, T)
- fusion (Eq.6): F_c = 0.5 F * SA_c + 0.5 F * CA_c, max-pooled over the valid frames
  to one vector per class, then a per-class linear classifier: y_c = sigmoid(w_c . v_c + b_c).
- erasing (Eq.7-10), training only: for each of the top-K predicted classes, its own
  temporal attention min-max normalised over the valid frames; the run of frames
  >= alpha that holds its global peak (the widest run when several reach the peak)
  is set to 0 in that class's SA, and that class's fused features are pooled and
  classified again: K intervals, one per class, the erased prediction of
  L = L_ori + L_era (Eq.11-13). The other classes' erased prediction is their original.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf


LABEL_NORMS = ("none", "l2")


def scale_label_vectors(label_vectors, label_norm: str):
    """The h_c that Eq.4-5 gate with: as the GCN gives them ("none", the paper) or each L2-normalised
    ("l2"). Unscaled, the class-specific term's size is whatever the GCN's output drifts to (norms 7-12
    saturated the sigmoids in an earlier build; 0.38, with curves nearly flat, in the current one after
    60 steps on the proving ground); at norm 1 it is fixed and bounded by ||f_s|| (docs/results.md)."""
    if label_norm == "l2":
        return tf.math.l2_normalize(label_vectors, axis=-1, epsilon=1e-12)
    return label_vectors


def normalized_attention(attention, num_frames):
    """(B, K, T) temporal attention -> (B, K, T): each class's curve min-max normalised over
    its valid frames, 0 on padding; a flat curve becomes 0 (Eq.7)."""
    valid = tf.sequence_mask(num_frames, tf.shape(attention)[-1])[:, None, :]
    low = tf.reduce_min(tf.where(valid, attention, tf.float32.max), axis=-1, keepdims=True)
    high = tf.reduce_max(tf.where(valid, attention, tf.float32.min), axis=-1, keepdims=True)
    spread = high - low
    normalized = tf.math.divide_no_nan(attention - low, tf.where(spread > 0, spread, tf.zeros_like(spread)))
    return tf.where(valid, normalized, tf.zeros_like(normalized))


def erase_per_class(probabilities, spatial, num_frames, top_k: int, alpha: float):
    """(top (B, K) class ids, erase (B, K, T) bool): each top-K predicted class's own interval (Eq.7-10).

    Class top[b, k]'s curve SA[b, top[b, k]] is normalised alone and `erase_interval`
    picks the run around its own global peak, so the K classes erase K (possibly
    different, possibly overlapping) intervals. No gradient flows through the choice.
    """
    top = tf.math.top_k(tf.stop_gradient(probabilities), k=top_k).indices
    curves = normalized_attention(tf.gather(tf.stop_gradient(spatial), top, batch_dims=1), num_frames)
    steps = tf.shape(curves)[-1]
    erase = erase_interval(tf.reshape(curves, (-1, steps)), tf.repeat(num_frames, top_k), alpha)
    return top, tf.reshape(erase, tf.shape(curves))


def erase_interval(curve, num_frames, alpha: float):
    """Bool (B, T): the frames to erase (Eq.9-10 on time).

    The maximal runs of valid frames with curve >= alpha; of those that reach the
    curve's global peak (over the valid frames), the widest (the earliest among
    equally wide ones). Nothing when every valid frame is below alpha.
    """
    steps = tf.shape(curve)[1]
    valid = tf.sequence_mask(num_frames, steps)
    above = valid & (curve >= alpha)
    previous = tf.pad(above, [[0, 0], [1, 0]])[:, :-1]
    run = tf.cumsum(tf.cast(above & ~previous, tf.int32), axis=1) * tf.cast(above, tf.int32)  # 1.., 0 below
    # Width of every run: counts of (example, run id) pairs.
    batch = tf.shape(curve)[0]
    segment = tf.range(batch)[:, None] * (steps + 1) + run
    counts = tf.math.unsorted_segment_sum(tf.ones_like(run), segment, batch * (steps + 1))
    width = tf.gather(tf.reshape(counts, (batch, steps + 1)), run, batch_dims=1)
    peak_value = tf.reduce_max(tf.where(valid, curve, tf.float32.min), axis=1, keepdims=True)
    peak = above & (curve >= peak_value)
    best_frame = tf.argmax(tf.where(peak, width, -1), axis=1, output_type=tf.int32)  # first on ties
    chosen = tf.gather(run, best_frame, batch_dims=1)
    return above & (run == chosen[:, None])


def class_max_pool(features, spatial, channel, class_block: int):
    """v[b, c] = max_t 0.5 F[b, t] * (SA[b, c, t] + CA[b, c]) (Eq.6), as (B, C, d).

    The argmax over time is found without gradient, a block of classes at a time
    (memory B x class_block x T x d); the values are then gathered, so value and
    gradient equal max pooling's while the (B, C, T, d) product is never kept.
    """
    f, sa, ca = (tf.stop_gradient(x) for x in (features, spatial, channel))
    num_classes = channel.shape[1]

    def argmax(block):
        sa_block, ca_block = block
        fused = f[:, None, :, :] * (sa_block[..., None] + ca_block[:, :, None, :])  # (B, k, T, d)
        return tf.argmax(fused, axis=2, output_type=tf.int32)

    if num_classes <= class_block:
        index = argmax((sa, ca))
    else:
        blocks = -(-num_classes // class_block)
        pad = blocks * class_block - num_classes

        def split(x):  # (B, C, ...) -> (blocks, B, class_block, ...)
            x = tf.pad(x, [[0, 0], [0, pad], [0, 0]])
            x = tf.reshape(x, tf.concat([tf.shape(x)[:1], [blocks, class_block], tf.shape(x)[2:]], 0))
            return tf.transpose(x, [1, 0, 2, 3])

        index = tf.map_fn(argmax, (split(sa), split(ca)), fn_output_signature=tf.int32)
        index = tf.transpose(index, [1, 0, 2, 3])
        index = tf.reshape(index, tf.concat([tf.shape(index)[:1], [blocks * class_block], tf.shape(index)[3:]], 0))
        index = index[:, :num_classes]
    picked_features = tf.transpose(tf.gather(tf.transpose(features, [0, 2, 1]),
                                             tf.transpose(index, [0, 2, 1]), batch_dims=2), [0, 2, 1])
    picked_spatial = tf.gather(spatial, index, batch_dims=2)
    return 0.5 * picked_features * (picked_spatial + channel)


@keras.saving.register_keras_serializable(package="yt8m")
class CategoryAttention(keras.layers.Layer):
    """CAR (Eq.4-6) with a per-class classifier, and OE (Eq.7-10) in training.

    `(features (B, T, d), num_frames (B,), label_vectors (C, e)) -> probabilities (B, C)`.
    Features must be non-negative (e.g. after a ReLU): padding is zeroed, so the
    masked max pools are plain max pools. In training with `erase_top_k > 0`, the
    erased prediction is kept in `erased_probabilities` for the model's loss
    (`take_erased_probabilities`); at inference the erasing is never built.
    """

    def __init__(self, num_classes: int, erase_top_k: int = 3, erase_alpha: float = 0.5,
                 class_block: int = 256, label_norm: str = "none", **kwargs):
        super().__init__(**kwargs)
        if label_norm not in LABEL_NORMS:
            raise ValueError(f"label_norm must be one of {LABEL_NORMS}, got {label_norm!r}")
        if erase_top_k < 0:
            raise ValueError(f"srdl_top_k must be >= 0 (0: no erasing), got {erase_top_k}")
        if not 0.0 < erase_alpha <= 1.0:
            raise ValueError(f"srdl_alpha must be in (0, 1], got {erase_alpha}")
        if class_block < 1:
            raise ValueError(f"class_block must be >= 1, got {class_block}")
        self.num_classes = num_classes
        self.erase_top_k = erase_top_k
        self.erase_alpha = erase_alpha
        self.class_block = class_block
        self.label_norm = label_norm
        self.erased_probabilities = None

    def build(self, features_shape, num_frames_shape=None, label_vectors_shape=None):
        width = features_shape[-1]
        label_width = label_vectors_shape[-1] if label_vectors_shape is not None else width

        def dense(name, shape):
            return (self.add_weight(name=f"{name}_kernel", shape=shape, initializer="glorot_uniform"),
                    self.add_weight(name=f"{name}_bias", shape=shape[-1:], initializer="zeros"))

        # The branch transforms of Eq.4-5: f_ca, f_sa (d -> e) before tanh, f_c (e -> d), f_s (e -> 1).
        self.f_ca_kernel, self.f_ca_bias = dense("f_ca", (width, label_width))
        self.f_c_kernel, self.f_c_bias = dense("f_c", (label_width, width))
        self.f_sa_kernel, self.f_sa_bias = dense("f_sa", (width, label_width))
        self.f_s_kernel, self.f_s_bias = dense("f_s", (label_width, 1))
        self.kernel = self.add_weight(name="kernel", shape=(self.num_classes, width), initializer="glorot_uniform")
        # Biases start at the 1/C prior, so the first steps are not spent pushing C sigmoids down from 0.5.
        prior = -math.log(max(self.num_classes - 1, 1))
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,),
                                    initializer=keras.initializers.Constant(prior))

    def attention(self, features, label_vectors):
        """(CA (B, C, d), SA (B, C, T)) of Eq.4-5, both in [0, 1]; features already masked."""
        label_vectors = scale_label_vectors(label_vectors, self.label_norm)
        pooled = tf.reduce_max(features, axis=1)  # GMP (B, d); >= 0, so padding (zeros) never wins
        context = tf.tanh(pooled @ self.f_ca_kernel + self.f_ca_bias)  # (B, e)
        # Eq.4: CA = sigmoid(f_c(tanh(f_ca(GMP(F))) * h_c)); f_c is linear, so (u * h_c) W_c is one einsum.
        channel = tf.sigmoid(tf.einsum("be,ce,ed->bcd", context, label_vectors, self.f_c_kernel) + self.f_c_bias)
        frames = tf.tanh(tf.einsum("btd,de->bte", features, self.f_sa_kernel) + self.f_sa_bias)  # (B, T, e)
        # Eq.5: SA_t = sigmoid(f_s(tanh(f_sa(F_t)) * h_c)); f_s(x * h_c) = x . (h_c * w_s) + b_s.
        spatial = tf.sigmoid(tf.einsum("bte,ce->bct", frames, label_vectors * self.f_s_kernel[:, 0]) + self.f_s_bias)
        return channel, spatial

    def logits(self, features, spatial, channel, classes=None):
        """Per-class logits (B, K) of the fused, max-pooled features (Eq.6): every class, or
        `classes` (B, K), SA and CA then being those classes' rows."""
        pooled = class_max_pool(features, spatial, channel, self.class_block)
        if classes is None:
            return tf.einsum("bcd,cd->bc", pooled, self.kernel) + self.bias
        return (tf.reduce_sum(pooled * tf.gather(self.kernel, classes), axis=-1)
                + tf.gather(self.bias, classes))

    def erasing(self, probabilities, spatial, num_frames):
        """(top (B, K), erase (B, K, T)): the top-K classes and each one's own erased interval."""
        return erase_per_class(probabilities, spatial, num_frames, min(self.erase_top_k, self.num_classes),
                               self.erase_alpha)

    def erased(self, features, probabilities, spatial, channel, num_frames):
        """The erased prediction (B, C): the top-K classes re-scored with their own interval set
        to 0 in their own SA (Eq.10), every other class as predicted."""
        top, erase = self.erasing(probabilities, spatial, num_frames)
        kept_spatial = tf.gather(spatial, top, batch_dims=1) * (1.0 - tf.cast(erase, spatial.dtype))
        logits = self.logits(features, kept_spatial, tf.gather(channel, top, batch_dims=1), top)
        rows = tf.broadcast_to(tf.range(tf.shape(top)[0])[:, None], tf.shape(top))
        return tf.tensor_scatter_nd_update(probabilities, tf.stack([rows, top], axis=-1), tf.sigmoid(logits))

    def call(self, features, num_frames, label_vectors, training=None):
        mask = tf.sequence_mask(num_frames, tf.shape(features)[1], dtype=features.dtype)
        features = features * mask[..., None]
        channel, spatial = self.attention(features, label_vectors)
        probabilities = tf.sigmoid(self.logits(features, spatial, channel))
        self.erased_probabilities = None
        if training and self.erase_top_k > 0:
            with tf.name_scope("object_erasing"):
                self.erased_probabilities = self.erased(features, probabilities, spatial, channel, num_frames)
        return probabilities

    def take_erased_probabilities(self):
        """The erased prediction of the last training call (then forgotten), or None."""
        erased, self.erased_probabilities = self.erased_probabilities, None
        return erased

    def compute_output_spec(self, features, num_frames, label_vectors, training=None):
        return keras.KerasTensor((features.shape[0], self.num_classes), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "erase_top_k": self.erase_top_k,
                "erase_alpha": self.erase_alpha, "class_block": self.class_block,
                "label_norm": self.label_norm}
