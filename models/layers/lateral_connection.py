"""KSSNet's lateral connection: label-graph embeddings injected into a backbone's features."""
from __future__ import annotations

import keras
from keras import ops


MERGE_INITIALIZERS = ("zeros", "fan_in_uniform")


@keras.saving.register_keras_serializable(package="yt8m")
class LateralConnection(keras.layers.Layer):
    """KSSNet Eq.7: y = g(reshape(x) @ tanh(E)^T) + x, g(s) = s G / N with `average_labels` (else s G).

    Called as `layer(x, embeddings)` with x (B, ..., C) channels-last features of any
    rank — (B, T, C) frames or (B, T, H, W, C) clips — and embeddings E (N, C), one
    row per label: a hidden GCN layer's pre-activation Â E W + b, as mathkey/mssnet
    (tanh(x_raw)), or its LeakyReLU output (the models' `lateral_input`). Every position's C-vector is scored
    against the N labels; g, a 1x1(x1) convolution without bias (a Dense on the
    channel axis, the official code's `merge_conv`, here averaging over the N labels),
    maps the N scores back to C channels, added to x. Output shape = x's shape; position-wise, so padded
    frames stay the caller's business. `merge_initializer`: "zeros" (the branch starts as the identity) or
    "fan_in_uniform", U(+-1/sqrt(N)), torch's default for mssnet's merge_conv (a Conv3d without bias).
    """

    def __init__(self, average_labels: bool = False, merge_initializer: str = "zeros", **kwargs):
        super().__init__(**kwargs)
        if merge_initializer not in MERGE_INITIALIZERS:
            raise ValueError(f"merge_initializer={merge_initializer!r} is not one of {', '.join(MERGE_INITIALIZERS)}")
        self.average_labels = average_labels   # False: the sum of models saved before (the models pass True)
        self.merge_initializer = merge_initializer

    def build(self, features_shape, embeddings_shape=None):
        channels, num_labels = features_shape[-1], embeddings_shape[0]
        if embeddings_shape[-1] != channels:
            raise ValueError(f"LateralConnection: the label embeddings have width {embeddings_shape[-1]} but "
                             f"the features have {channels} channels; make the GCN layer as wide")
        # Zero-initialised by default, so the branch starts as the identity: N label scores of size ~sqrt(C)
        # summed through a random g would swamp x (and pretrained backbone weights) at step 0; g learns from step 1.
        initializer = ("zeros" if self.merge_initializer == "zeros" else
                       keras.initializers.RandomUniform(-1.0 / num_labels ** 0.5, 1.0 / num_labels ** 0.5))
        self.merge = self.add_weight(name="merge", shape=(num_labels, channels), initializer=initializer)

    def call(self, features, embeddings):
        scores = ops.matmul(features, ops.transpose(ops.tanh(embeddings)))   # (B, ..., N)
        # g's sum over the N labels is a mean: Adam steps every weight of g by ~lr, and summed over
        # N = 3862 YouTube-8M labels those steps moved the features by hundreds in a few steps (one
        # direction for every frame, so the model's output stopped depending on its input).
        merged = ops.matmul(scores, self.merge)
        if self.average_labels:
            merged = merged / ops.cast(ops.shape(self.merge)[0], features.dtype)
        return features + merged

    def compute_output_shape(self, features_shape, embeddings_shape=None):
        return features_shape

    def get_config(self):
        return {**super().get_config(), "average_labels": self.average_labels,
                "merge_initializer": self.merge_initializer}
