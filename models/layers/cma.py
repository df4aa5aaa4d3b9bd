"""Per-class attention heads over a (B, T, F) feature map: cross-modality attention guided by label
embeddings (CMA paper Eq.6-10) and the self-attention baseline of its table 4. The multi-scale
mean of Eq.11 is in models/cma.py (one head per SNet scale).

Both heads end in per-class classifiers on per-class features, y_k = sigmoid(w_k . h_k + b_k)
with h_k = sum_i a_k^i I^i (Eq.9-10). The logit is computed as sum_i a_k^i (w_k . I^i) + b_k,
the same number without a (B, C, F) tensor (memory O(B T C) instead of O(B C F)).
Each head returns `(probabilities (B, C), attention (B, T, C))`; the attention output
is there for pictures (`python -m yt8m.plots attention`).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models.layers.inputs import frame_mask
from models.layers.snet import BN_MOMENTUM


@keras.saving.register_keras_serializable(package="yt8m")
class LabelEmbeddings(keras.layers.Layer):
    """The label embeddings (C, E) as one weight (fixed by default), initialised from an offline array.

    LabelNodes (models/layers/gcn.py) also allocates a (C, C) adjacency, 60 MB for the
    3862 YouTube-8M classes, which CMA never reads; this layer holds the embeddings only.
    Called on any model tensor (to place it in the graph), it returns the (C, E) embeddings.
    """

    def __init__(self, num_labels: int, embedding_dim: int, *, embeddings: np.ndarray | None = None,
                 learn_embeddings: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.embedding_dim = embedding_dim
        self.learn_embeddings = learn_embeddings
        self.seed = seed
        if embeddings is not None and tuple(np.shape(embeddings)) != (num_labels, embedding_dim):
            raise ValueError(f"label_embeddings has shape {np.shape(embeddings)}, expected "
                             f"({num_labels}, {embedding_dim})")
        self._initial = embeddings

    def build(self, input_shape=None):
        initializer = (keras.initializers.Constant(np.asarray(self._initial, "float32"))
                       if self._initial is not None else keras.initializers.RandomNormal(stddev=1.0, seed=self.seed))
        self.embeddings = self.add_weight(name="embeddings", shape=(self.num_labels, self.embedding_dim),
                                          initializer=initializer, trainable=self.learn_embeddings)
        self._initial = None  # the weight holds it now

    def call(self, inputs=None):
        return tf.convert_to_tensor(self.embeddings)

    def compute_output_spec(self, inputs=None):
        return keras.KerasTensor((self.num_labels, self.embedding_dim), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "embedding_dim": self.embedding_dim,
                "learn_embeddings": self.learn_embeddings, "seed": self.seed}


def normalize_attention(scores, mask):
    """CMA Eq.8: a^i = z^i / sum_i z^i over the valid steps of (B, T, C) non-negative scores.

    Where a class's scores sum to zero over a video's valid steps (no step has positive
    cosine with its embedding), the attention falls back to uniform over the valid steps
    (plain average pooling), so it still sums to 1 and gradients still reach the classifier.
    A video with no valid step gets zero attention.
    """
    valid = tf.cast(mask, scores.dtype)[..., None]                     # (B, T, 1)
    scores = scores * valid
    total = tf.reduce_sum(scores, axis=1, keepdims=True)               # (B, 1, C)
    uniform = tf.math.divide_no_nan(valid, tf.reduce_sum(valid, axis=1, keepdims=True))
    return tf.where(total > 0, scores / tf.where(total > 0, total, tf.ones_like(total)), uniform)


class PerClassAttentionHead(keras.layers.Layer):
    """The shared part: the feature transformer (1x1 convs + BN + ReLU, none when `transformer_units`
    is empty) and the per-class classifiers."""

    def __init__(self, num_classes: int, transformer_units=(512, 300), bn_momentum: float = BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.transformer_units = [int(u) for u in transformer_units]
        self.bn_momentum = bn_momentum
        self.transforms = [keras.layers.Dense(u, use_bias=False, name=f"cmt_{i}")
                           for i, u in enumerate(self.transformer_units)]
        self.transform_norms = [keras.layers.BatchNormalization(momentum=bn_momentum, name=f"cmt_bn_{i}")
                                for i in range(len(self.transformer_units))]

    def build_head(self, features_shape):
        width = features_shape[-1]
        for dense, norm in zip(self.transforms, self.transform_norms):
            dense.build((None, None, width))
            norm.build((None, None, dense.units))
            width = dense.units
        self.class_kernel = self.add_weight(name="class_kernel", shape=(self.num_classes, features_shape[-1]),
                                            initializer="glorot_uniform")
        # Prior-probability start (1 / C): with thousands of classes a zero bias begins at p = 0.5
        # everywhere and spends its first hundreds of steps pushing absent classes down.
        self.class_bias = self.add_weight(name="class_bias", shape=(self.num_classes,),
                                          initializer=keras.initializers.Constant(-np.log(max(self.num_classes - 1, 1))))

    def transform(self, features, mask, training):
        """I_s = CMT(I) (Eq.6): per step Dense -> BN (valid steps' statistics) -> ReLU."""
        x = features
        for dense, norm in zip(self.transforms, self.transform_norms):
            x = tf.nn.relu(norm(dense(x), training=training, mask=mask))
        return x

    def classify(self, features, attention):
        """Eq.9-10 as sum_i a_k^i (w_k . I^i) + b_k -> sigmoid, (B, C)."""
        per_step = tf.einsum("btf,cf->btc", features, self.class_kernel)
        return tf.sigmoid(tf.reduce_sum(attention * per_step, axis=1) + self.class_bias)

    def compute_output_spec(self, features, num_frames, *args, **kwargs):
        return (keras.KerasTensor((features.shape[0], self.num_classes), dtype=self.compute_dtype),
                keras.KerasTensor((features.shape[0], features.shape[1], self.num_classes), dtype=self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "transformer_units": self.transformer_units, "bn_momentum": self.bn_momentum}


@keras.saving.register_keras_serializable(package="yt8m")
class CrossModalityAttention(PerClassAttentionHead):
    """`(features (B, T, F), num_frames (B,), label_embeddings (C, E)) -> (probabilities, attention)`.

    Eq.6-10: I_s = CMT(I) maps each step into the label-embedding space (the last
    transformer width must be E), z_k^i = ReLU(cos(I_s^i, e_k)), a_k^i = z_k^i / sum_i z_k^i
    over the valid steps (`normalize_attention`), y_k = sigmoid(w_k . sum_i a_k^i I^i + b_k).
    """

    def build(self, features_shape, num_frames_shape=None, label_embeddings_shape=None):
        self.build_head(features_shape)

    def call(self, features, num_frames, label_embeddings, training=None):
        mask = frame_mask(num_frames, tf.shape(features)[1])
        projected = tf.math.l2_normalize(self.transform(features, mask, training), axis=-1, epsilon=1e-12)
        labels = tf.math.l2_normalize(tf.cast(label_embeddings, projected.dtype), axis=-1, epsilon=1e-12)
        scores = tf.nn.relu(tf.einsum("bte,ce->btc", projected, labels))  # Eq.7: z = ReLU(cos(I_s^i, e_k))
        attention = normalize_attention(scores, mask)
        return self.classify(features, attention), attention


@keras.saving.register_keras_serializable(package="yt8m")
class SelfAttention(PerClassAttentionHead):
    """`(features (B, T, F), num_frames (B,)) -> (probabilities, attention)`: the table-4 baseline.

    The paper's baseline: Eq.7 replaced by z_k^i = sigmoid(f_conv(I^i)), a 1x1 convolution on
    the visual features with one output per class, then Eq.8-10 as in CrossModalityAttention
    (no transformer, no label embeddings). A softmax over learned queries on CMT(I), an
    earlier reading, lost to it in 3/3 seeds on PERR, MAP and GAP (docs/results.md) and is gone.
    """

    def __init__(self, num_classes: int, **kwargs):
        kwargs.pop("transformer_units", None)  # the shared head's config fields: no transformer here
        kwargs.pop("bn_momentum", None)
        super().__init__(num_classes, (), **kwargs)

    def build(self, features_shape, num_frames_shape=None):
        self.build_head(features_shape)
        self.query_kernel = self.add_weight(name="query_kernel", shape=(features_shape[-1], self.num_classes),
                                            initializer="glorot_uniform")
        self.query_bias = self.add_weight(name="query_bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, features, num_frames, training=None):
        mask = frame_mask(num_frames, tf.shape(features)[1])
        # The paper's self-attention: Eq.7 replaced by z^i = sigmoid(f_conv(I^i)), then Eq.8.
        scores = tf.sigmoid(tf.einsum("btf,fc->btc", features, self.query_kernel) + self.query_bias)
        attention = normalize_attention(scores, mask)
        return self.classify(features, attention), attention
