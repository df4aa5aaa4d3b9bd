"""KSSNet (Wang et al., AAAI 2020, "Multi-Label Classification with Label Graph Superimposing").

A GCN over the knowledge + statistics (KS) label graph whose hidden layers enter
the backbone through lateral connections (Eq.7), and whose last layer gives the
per-class classifiers (ML-GCN style). Three models:
- `KSSNetI3D`: Inception-I3D on raw clips, LCs after Conv3d_2c_3x3 (192 ch),
  Mixed_3c (480) and Mixed_4f (832), a 4-layer GCN 192-480-832-1024 (the
  official mathkey/mssnet widths).
- `I3DModel`: the same I3D alone (the baseline).
- `KSSNetTemporal`: the same idea on YouTube-8M frame features: a 1-D conv
  backbone over frames with LCs, for the segment task.

The graph arrives as `label_graph` (the unnormalised A_KS of yt8m/labels/graphs.py,
normalised D^-1/2 A D^-1/2 on the fly) and the initial node features as
`label_embeddings`; without them (tests) the graph is the identity and the
embeddings seeded random. Following the official code, the GCN layers are biased,
factored W = W1 W2 through max(32, (in + out) / 8) units (`low_rank`, KSSNetI3D's default;
False: one full W, as ML-GCN, KSSNetTemporal's default, the reading its results were measured
with) and start in its U(+-1/sqrt(units)) init, the lateral connections take tanh of each
layer's pre-activation (`lateral_input="activation"`: of its LeakyReLU output) and sum the
label scores through a randomly initialised merge conv (`lateral_merge="sum"`; the default
"mean" averages them through a zero-initialised g: summed over 3862 labels, Adam's steps on
g moved the features by hundreds in a few steps), the classifier is tanh(E_last) and a
linear head is added to the graph classifier's logits (`linear_head`). Two additions keep the CLI's Adam at lr 0.01 from killing the
model (every output 1.0 in 17 steps before): the graph logits are a cosine between
the pooled feature and tanh(E_last) times a learned scale (`cosine`; False is the
plain dot product, bounded only by the width), and the class bias starts at the
logit of `prior` (0.01).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models import registry
from models.layers.gcn import FAN_OUT_UNIFORM, GCNStack, LabelNodes
from models.layers.inception_i3d import (ClipPreprocess, check_endpoints, endpoint_channels,
                                         inception_i3d_features, load_inflated_weights)
from models.layers.frame_sampling import frame_stem
from models.layers.label_classifier import ClassBias, LabelLogits, prior_logit
from models.layers.lateral_connection import LateralConnection
from models import contract

# Where the I3D's lateral connections go (the official code's merge points).
I3D_LATERAL_ENDPOINTS = "Conv3d_2c_3x3,Mixed_3c,Mixed_4f"


def clip_inputs() -> dict:
    """`{"clip": uint8 (B, T, H, W, 3)}` with T, H, W dynamic."""
    return {contract.CLIP_INPUT: keras.Input((None, None, None, 3), dtype="uint8", name=contract.CLIP_INPUT)}


def _label_graph(num_classes: int, embedding_dim: int, label_graph, label_embeddings, anchor):
    """(E0 (C, E), Â (C, C)) from LabelNodes: the given arrays, else identity graph and seeded embeddings."""
    adjacency = np.eye(num_classes, dtype="float32") if label_graph is None else np.asarray(label_graph, "float32")
    if label_embeddings is not None:
        embedding_dim = int(np.shape(label_embeddings)[1])
    return LabelNodes(num_classes, embedding_dim, embeddings=label_embeddings, adjacency=adjacency,
                      normalize=True, seed=0, name="label_nodes")(anchor)


LATERAL_INPUTS = ("pre_activation", "activation")
LATERAL_MERGES = ("mean", "sum")


def _lateral(merge: str, name: str) -> LateralConnection:
    """Eq.7's lateral connection: g averages the N label scores, zero-initialised ("mean"), or sums them from
    torch's U(+-1/sqrt(N)) init ("sum", mssnet's merge_conv)."""
    if merge not in LATERAL_MERGES:
        raise ValueError(f"lateral_merge={merge!r} is not one of {', '.join(LATERAL_MERGES)}")
    if merge == "sum":
        return LateralConnection(average_labels=False, merge_initializer="fan_in_uniform", name=name)
    return LateralConnection(average_labels=True, name=name)


def _gcn(widths, lateral_input: str, low_rank: bool) -> GCNStack:
    """mssnet's GCN: biased layers in its U(+-1/sqrt(units)) init, each W the product of two factors
    (`low_rank`; False: one full (in, out) W, ML-GCN's); each layer's output for the lateral
    connections is its pre-activation (mssnet's tanh(x_raw)) or, with "activation", its LeakyReLU."""
    if lateral_input not in LATERAL_INPUTS:
        raise ValueError(f"lateral_input={lateral_input!r} is not one of {', '.join(LATERAL_INPUTS)}")
    return GCNStack(widths, use_bias=True, kernel_initializer=FAN_OUT_UNIFORM, low_rank=low_rank,
                    return_pre_activations=lateral_input == "pre_activation", name="gcn")


def _graph_logits(pooled, classifiers, num_classes: int, linear_head: bool, prior: float, cosine: bool):
    """Probabilities from pooled features (B, F): pooled . tanh(W_gcn)^T (LabelLogits, `cosine` or plain)
    (+ a linear head) + b, sigmoid; b starts at prior_logit(prior), in the linear head's bias when there is one."""
    logits = LabelLogits(cosine, name="graph_logits")(pooled, ops.tanh(classifiers))
    if linear_head:   # mssnet's `logits` unit, its bias the class bias
        logits = logits + keras.layers.Dense(num_classes, bias_initializer=keras.initializers.Constant(
            prior_logit(prior)), name="linear_head")(pooled)
    else:
        logits = ClassBias(prior, name="class_bias")(logits)
    return keras.layers.Activation("sigmoid", dtype="float32", name="predictions")(logits)


def _load(model: keras.Model, inflated_weights) -> keras.Model:
    if inflated_weights is not None:
        load_inflated_weights(model, inflated_weights)
    return model


@registry.register("KSSNetI3D", frame_level=True, input_kind="clip")
def kssnet_i3d(*, num_classes: int, feature_size: int, width_multiplier: float = 1.0,
               embedding_dim: int = 300, dropout: float = 0.5, linear_head: bool = True,
               lateral_endpoints: str = I3D_LATERAL_ENDPOINTS, final_endpoint: str = "Mixed_5c",
               lateral_input: str = "pre_activation", prior: float = 0.01, cosine: bool = True,
               low_rank: bool = True, lateral_merge: str = "mean", label_graph=None, label_embeddings=None,
               inflated_weights=None) -> keras.Model:
    """KSSNet on Inception-I3D: clips {"clip": uint8 (B, T, H, W, 3)} -> (B, C).

    `feature_size` is unused (clips are RGB). A GCN with one layer per lateral
    endpoint (comma-separated, in network order) plus the classifier layer, each as
    wide as the backbone there (192-480-832-1024 by default); dropout after the
    global average pool. `final_endpoint` truncates the backbone (small tests).
    `lateral_input`, `prior`, `cosine`, `low_rank`, `lateral_merge`: see the module docstring. `inflated_weights`: arrays for the backbone (`load_inflated_weights`), handed
    over by training from --i3d_weights.
    """
    del feature_size
    laterals = [e.strip() for e in lateral_endpoints.split(",") if e.strip()]
    inputs = clip_inputs()
    clip = ClipPreprocess(name="preprocess")(inputs[contract.CLIP_INPUT])
    nodes, adjacency = _label_graph(num_classes, embedding_dim, label_graph, label_embeddings, clip)
    check_endpoints([*laterals, final_endpoint])
    widths = [endpoint_channels(e, width_multiplier) for e in (*laterals, final_endpoint)]
    layers = _gcn(widths, lateral_input, low_rank)(nodes, adjacency)
    after = {endpoint: (lambda x, e=endpoint, i=i: _lateral(lateral_merge, f"lateral_{e}")(x, layers[i]))
             for i, endpoint in enumerate(laterals)}
    features = inception_i3d_features(clip, width_multiplier, after=after, final_endpoint=final_endpoint)
    pooled = keras.layers.GlobalAveragePooling3D(name="pool")(features)
    pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    outputs = _graph_logits(pooled, layers[-1], num_classes, linear_head, prior, cosine)
    return _load(keras.Model(inputs, outputs, name="KSSNetI3D"), inflated_weights)


@registry.register("I3DModel", frame_level=True, input_kind="clip")
def i3d_model(*, num_classes: int, feature_size: int, width_multiplier: float = 1.0, dropout: float = 0.5,
              final_endpoint: str = "Mixed_5c", inflated_weights=None) -> keras.Model:
    """Inception-I3D baseline: global average pool, dropout, a sigmoid 1x1x1 logits layer."""
    del feature_size
    inputs = clip_inputs()
    clip = ClipPreprocess(name="preprocess")(inputs[contract.CLIP_INPUT])
    features = inception_i3d_features(clip, width_multiplier, final_endpoint=final_endpoint)
    pooled = keras.layers.GlobalAveragePooling3D(name="pool")(features)
    pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    outputs = keras.layers.Dense(num_classes, activation="sigmoid", dtype="float32", name="predictions")(pooled)
    return _load(keras.Model(inputs, outputs, name="I3DModel"), inflated_weights)


@keras.saving.register_keras_serializable(package="yt8m")
class MaskFrames(keras.layers.Layer):
    """(x (B, T, F), num_frames (B,)) -> x with the frames past num_frames set to zero."""

    def call(self, x, num_frames):
        mask = ops.arange(ops.shape(x)[1])[None, :] < ops.cast(num_frames, "int32")[:, None]
        return x * ops.cast(mask, x.dtype)[:, :, None]

    def compute_output_shape(self, x_shape, num_frames_shape=None):
        return x_shape


@keras.saving.register_keras_serializable(package="yt8m")
class ValidFrames(keras.layers.Layer):
    """(x (B, T, F), num_frames (B,)) -> bool (B, T), True on the frames before num_frames (BatchNorm's mask)."""

    def call(self, x, num_frames):
        return ops.arange(ops.shape(x)[1])[None, :] < ops.cast(num_frames, "int32")[:, None]

    def compute_output_spec(self, x, num_frames):
        return keras.KerasTensor(x.shape[:2], dtype="bool")


@keras.saving.register_keras_serializable(package="yt8m")
class FrameBatchNorm(keras.layers.BatchNormalization):
    """BatchNorm over the valid frames: `layer(x (B, T, C), valid (B, T) bool)`; padded frames take no
    part in the batch statistics (the mask is not passed on to later layers)."""

    def call(self, inputs, valid, training=None):
        return super().call(inputs, training=training, mask=valid)

    def compute_mask(self, inputs, valid=None):
        return None

    def compute_output_shape(self, inputs_shape, valid_shape=None):
        return inputs_shape


NORMS = ("batch", "layer")


def _normalize(x, valid, norm: str, name: str):
    """mssnet's I3D units normalise by BatchNorm ("batch", over the batch's valid frames); "layer" is a
    LayerNorm per frame."""
    if norm == "batch":
        return FrameBatchNorm(name=name)(x, valid)
    return keras.layers.LayerNormalization(name=name)(x)


@keras.saving.register_keras_serializable(package="yt8m")
class MaskedMeanPool(keras.layers.Layer):
    """Mean over the valid frames (zero for an empty video) of frames already zeroed past num_frames."""

    def call(self, x, num_frames):
        count = ops.maximum(ops.cast(num_frames, x.dtype), 1.0)
        return ops.sum(x, axis=1) / count[:, None]

    def compute_output_shape(self, x_shape, num_frames_shape=None):
        return (x_shape[0], x_shape[-1])


@registry.register("KSSNetTemporal", frame_level=True)
def kssnet_temporal(*, num_classes: int, feature_size: int, width: int = 256, num_stages: int = 3,
                    kernel_size: int = 3, gcn_layers: int = 4, embedding_dim: int = 300, dropout: float = 0.5,
                    linear_head: bool = True, lateral_input: str = "pre_activation", prior: float = 0.01,
                    cosine: bool = True, norm: str = "batch", low_rank: bool = False, lateral_merge: str = "mean",
                    label_graph=None, label_embeddings=None) -> keras.Model:
    """KSSNet on frame features: `num_stages` x (Conv1D `width`, norm, ReLU) over the valid
    frames, a `gcn_layers`-deep GCN (all layers `width` wide) whose hidden layers enter the deepest
    stages through lateral connections, norm, masked mean pool, dropout, the GCN classifier.

    `norm`: "batch" (mssnet's I3D units: conv, BatchNorm, ReLU), its statistics over the valid frames
    only; "layer", a LayerNorm per frame. A lateral connection adds g(x tanh(E)^T), largely one
    direction for every frame (tanh(E)'s rows share the GCN's biases); the next BatchNorm takes the
    batch's mean out of each channel, a LayerNorm does not, and under the CLI's Adam at lr 0.01 that
    shared direction swamped the frames (every segment the same output: std 0.002 across test segments).
    Frames past `num_frames` are zeroed before every convolution, so padding changes nothing.
    `lateral_input`, `prior`, `cosine`, `low_rank`, `lateral_merge`: see the module docstring.
    """
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is not one of {', '.join(NORMS)}")
    if not 1 <= gcn_layers <= num_stages + 1:
        raise ValueError(f"gcn_layers={gcn_layers} needs 1 <= gcn_layers <= num_stages + 1 ({num_stages + 1}): "
                         f"each hidden GCN layer feeds one backbone stage")
    inputs, x, num_frames = frame_stem(feature_size)
    valid = ValidFrames(name="valid_frames")(x, num_frames)
    nodes, adjacency = _label_graph(num_classes, embedding_dim, label_graph, label_embeddings, x)
    layers = _gcn([width] * gcn_layers, lateral_input, low_rank)(nodes, adjacency)
    first_lateral = num_stages - (gcn_layers - 1)
    for stage in range(num_stages):
        x = MaskFrames(name=f"mask_{stage}")(x, num_frames)
        x = keras.layers.Conv1D(width, kernel_size, padding="same", name=f"conv_{stage}")(x)
        x = _normalize(x, valid, norm, f"norm_{stage}")
        x = keras.layers.ReLU(name=f"relu_{stage}")(x)
        if stage >= first_lateral:
            x = _lateral(lateral_merge, f"lateral_{stage}")(x, layers[stage - first_lateral])
    # The last LC has no normalisation after it: without this one its residual grew unboundedly in
    # training (the ablation's depth-2 run drove every logit below -88, all probabilities 0).
    x = _normalize(x, valid, norm, "norm_out")
    x = MaskFrames(name="mask_out")(x, num_frames)
    pooled = MaskedMeanPool(name="pool")(x, num_frames)
    pooled = keras.layers.Dropout(dropout, name="dropout")(pooled)
    outputs = _graph_logits(pooled, layers[-1], num_classes, linear_head, prior, cosine)
    return keras.Model(inputs, outputs, name="KSSNetTemporal")
