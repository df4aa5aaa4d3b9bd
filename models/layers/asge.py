"""Adjacency-based similarity graph embedding (ASGE, CMA paper Eq.2-5): label embeddings whose
cosine similarities fit the symmetrised label graph A'.

The network (Eq.2) is three FC+BN+ReLU layers applied to one-hot label vectors. The
first FC applied to a one-hot vector is a row of its kernel, so it is computed as a
lookup by label index (the same function, no (C, C) one-hot matrix). Training lives
in `yt8m.labels.embeddings.train_asge`; this module holds the network and the loss.
"""
from __future__ import annotations

import keras
from keras import ops


def cosine_matrix(embeddings, epsilon: float = 1e-8):
    """(K, K) cos(e_i, e_j); an all-zero row has cosine 0 with everything."""
    norms = ops.sqrt(ops.sum(ops.square(embeddings), axis=-1, keepdims=True))
    unit = embeddings / ops.maximum(norms, epsilon)
    return ops.matmul(unit, ops.transpose(unit))


def asge_loss(embeddings, graph, symmetric_graph, alpha: float = 0.1):
    """Eq.3-5: sum over pairs i != j of sigma_ij (cos(e_i, e_j) - A'_ij)^2, sigma_ij = 0 where
    A_ij < alpha and cos(e_i, e_j) < alpha (a weak edge need not be matched exactly, only kept weak).

    `graph` is A (A_ij = P(v_i | v_j)), `symmetric_graph` A' = (A + A^T)/2, both (K, K)
    for the K labels of `embeddings` (K, E).
    """
    cosine = cosine_matrix(embeddings)
    graph = ops.cast(graph, cosine.dtype)
    symmetric_graph = ops.cast(symmetric_graph, cosine.dtype)
    relaxed = ops.logical_and(graph < alpha, cosine < alpha)
    off_diagonal = 1.0 - ops.eye(ops.shape(cosine)[0], dtype=cosine.dtype)
    sigma = ops.where(relaxed, ops.zeros_like(cosine), off_diagonal)
    return ops.sum(sigma * ops.square(cosine - symmetric_graph))


@keras.saving.register_keras_serializable(package="yt8m")
class AsgeEncoder(keras.layers.Layer):
    """Label indices (K,) -> embeddings (K, units[-1]): three (or len(units)) FC + BN + ReLU on one-hot labels."""

    def __init__(self, num_labels: int, units=(600, 600, 300), seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.units = [int(u) for u in units]
        self.seed = seed
        self.hidden = [keras.layers.Dense(u, kernel_initializer=keras.initializers.GlorotUniform(seed),
                                          name=f"fc_{i + 1}") for i, u in enumerate(self.units[1:])]
        self.norms = [keras.layers.BatchNormalization(name=f"bn_{i}") for i in range(len(self.units))]

    def build(self, input_shape=None):
        # FC 1 on one-hot inputs: kernel (C, units[0]) read by row, plus its bias.
        self.first_kernel = self.add_weight(name="fc_0_kernel", shape=(self.num_labels, self.units[0]),
                                            initializer=keras.initializers.GlorotUniform(self.seed))
        self.first_bias = self.add_weight(name="fc_0_bias", shape=(self.units[0],), initializer="zeros")
        width = self.units[0]
        for i, dense in enumerate(self.hidden):
            dense.build((None, width))
            width = dense.units
        for norm, u in zip(self.norms, self.units):
            norm.build((None, u))

    def call(self, label_ids, training=None):
        x = ops.take(self.first_kernel, ops.cast(label_ids, "int32"), axis=0) + self.first_bias
        x = ops.relu(self.norms[0](x, training=training))
        for dense, norm in zip(self.hidden, self.norms[1:]):
            x = ops.relu(norm(dense(x), training=training))
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units[-1])

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "units": self.units, "seed": self.seed}
