"""DBoF + GCN (seed 003 Fig.4): per-class classifiers from two graph convolutions over label nodes."""
import keras
import numpy as np

from models import registry
from models.dbof import dbof_features
from models.layers.gcn import FAN_OUT_UNIFORM, GCNStack, LabelNodes
from models.layers.inputs import frame_inputs
from models.layers.label_classifier import LabelDotProduct


@registry.register("DbofGCNModel", frame_level=True)
def dbof_gcn_model(*, num_classes: int, feature_size: int, cluster_size: int = 8192, hidden_size: int = 1024,
                   sample_frames: int = 30, add_batch_norm: bool = True, activation: str = "relu6",
                   pooling: str = "max", gcn_hidden_size: int = 1024, embedding_dim: int = 300,
                   cosine: bool = True, prior: float = 0.01, label_statistics=None, label_embeddings=None,
                   seed: int = 0) -> keras.Model:
    """The DBoF video feature x (B, hidden_size); two GCN layers over the label embeddings with a
    learnable adjacency, initialised from P + I (P = P(j|i) of `label_statistics`), give the
    per-class classifiers W (C, hidden_size); p = sigmoid(s cos(x, W) + b) with `cosine` (a learned
    scale s), else the plain sigmoid(x W^T + b); b starts at the logit of `prior`.

    The GCN starts in ML-GCN's U(+-1/sqrt(units)) init. The cosine and the prior are this
    project's: with the plain x W^T the CLI's Adam at lr 0.01 moves every logit by hundreds per
    step (W is two 1024-wide products away from the weights it steps), which drove every output
    to exactly 0 (a dead ReLU6 feature, then zero gradients through the clipped BCE).
    Without `label_statistics` the adjacency starts as I, without `label_embeddings` the
    embeddings (width `embedding_dim`) do; both are weights of the model once built.
    """
    inputs = frame_inputs(feature_size)
    x = dbof_features(inputs, cluster_size=cluster_size, hidden_size=hidden_size, sample_frames=sample_frames,
                      add_batch_norm=add_batch_norm, activation=activation, pooling=pooling)

    adjacency = np.eye(num_classes)  # self-loops; P(j|i) of the statistics added when given
    if label_statistics is not None:
        adjacency = adjacency + label_statistics.conditional_probability()
    if label_embeddings is not None:
        embedding_dim = np.shape(label_embeddings)[1]
    nodes, graph = LabelNodes(num_classes, embedding_dim, embeddings=label_embeddings, adjacency=adjacency,
                              learn_adjacency=True, seed=seed, name="label_nodes")(x)
    classifiers = GCNStack([gcn_hidden_size, hidden_size], kernel_initializer=FAN_OUT_UNIFORM,
                           name="gcn")(nodes, graph)[-1]
    outputs = LabelDotProduct(prior=prior, cosine=cosine, name="predictions")(x, classifiers)
    return keras.Model(inputs, outputs, name="DbofGCNModel")
