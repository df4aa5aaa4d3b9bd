"""NeXtVLAD models and the 3rd YouTube-8M challenge's mixture (seed 003).

NeXtVLADModel: one NeXtVLAD branch (aggregation, dropout, hidden layer, context
gating) and a classifier. AttentionGRUModel: a GRU with attention pooling and a
classifier. NeXtVLADMixture: up to three NeXtVLAD branches of their own sizes
(the paper: clusters 112/136/112, hidden 2048, gating reduction 16/16/8) plus the
Attention-GRU, each with its own classifier, their probabilities mixed by learned
softmax-normalised weights (`SoftmaxMixture`, layer name "mixture").
"""
import keras

from models import registry
from models.layers.attention_gru import AttentionGRU
from models.layers.frame_sampling import FrameSampler
from models.layers.inputs import Dequantize, frame_inputs
from models.layers.mixture import SoftmaxMixture
from models.layers.moe import MixtureOfExperts, slim_l2
from models.layers.nextvlad import ContextGating, NeXtVLAD
from yt8m.data import schema

CLASSIFIERS = ("logistic", "moe")
ATTENTION_GRU_LAYER = "attention_gru"


def frame_features(feature_size: int, sample_frames: int):
    """Model inputs and the float frames after (training-time) sampling and dequantisation.

    Sampling takes a random run of consecutive frames, so recurrent branches see
    frames in order; 0 keeps every frame.
    """
    inputs = frame_inputs(feature_size)
    frames, num_frames = inputs[schema.FRAMES_INPUT], inputs[schema.NUM_FRAMES_INPUT]
    if sample_frames:
        frames, num_frames = FrameSampler(sample_frames, random_sequence=True, name="frame_sampler")(
            frames, num_frames)
    return inputs, Dequantize(name="dequantize")(frames), num_frames


def classifier(x, kind: str, num_classes: int, num_mixtures: int, l2_penalty: float, name: str):
    """Class probabilities (B, C) from (B, H): a MoE head or one sigmoid layer."""
    if kind == "moe":
        return MixtureOfExperts(num_classes, num_mixtures, l2_penalty, name=name)(x)
    if kind == "logistic":
        return keras.layers.Dense(num_classes, activation="sigmoid", kernel_regularizer=slim_l2(l2_penalty),
                                  name=name)(x)
    raise ValueError(f"unknown classifier {kind!r}; use one of {', '.join(CLASSIFIERS)}")


def nextvlad_branch(frames, num_frames, *, clusters: int, groups: int, expansion: int, hidden_size: int,
                    gating_reduction: int, dropout: float, prefix: str = ""):
    """NeXtVLAD -> dropout -> hidden layer + BN -> context gating: (B, hidden_size)."""
    x = NeXtVLAD(clusters, groups, expansion, name=f"{prefix}nextvlad")(frames, num_frames)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    x = keras.layers.Dense(hidden_size, use_bias=False, name=f"{prefix}hidden")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}hidden_bn")(x)
    return ContextGating(gating_reduction, name=f"{prefix}gating")(x)


def attention_weights_model(model: keras.Model) -> keras.Model:
    """The model's inputs -> the Attention-GRU's per-frame weights (B, T), for pictures."""
    return keras.Model(model.input, model.get_layer(ATTENTION_GRU_LAYER).output[1],
                       name=f"{model.name}_attention")


@registry.register("NeXtVLADModel", frame_level=True)
def nextvlad_model(*, num_classes: int, feature_size: int, cluster_size: int = 112, hidden_size: int = 2048,
                   groups: int = 8, expansion: int = 2, gating_reduction: int = 16, dropout: float = 0.5,
                   classifier_kind: str = "logistic", num_mixtures: int = 2, l2_penalty: float = 1e-5,
                   sample_frames: int = 0) -> keras.Model:
    """One NeXtVLAD branch and its classifier (`classifier_kind` logistic or moe)."""
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    x = nextvlad_branch(frames, num_frames, clusters=cluster_size, groups=groups, expansion=expansion,
                        hidden_size=hidden_size, gating_reduction=gating_reduction, dropout=dropout)
    outputs = classifier(x, classifier_kind, num_classes, num_mixtures, l2_penalty, "predictions")
    return keras.Model(inputs, outputs, name="NeXtVLADModel")


@registry.register("AttentionGRUModel", frame_level=True)
def attention_gru_model(*, num_classes: int, feature_size: int, gru_units: int = 512, attention_units: int = 256,
                        gru_dropout: float = 0.0, classifier_kind: str = "logistic", num_mixtures: int = 2,
                        l2_penalty: float = 1e-5, sample_frames: int = 0) -> keras.Model:
    """GRU over the valid frames, additive attention pooling, a classifier.

    `attention_weights_model(model)` gives the per-frame attention weights.
    """
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    pooled, _ = AttentionGRU(gru_units, attention_units, gru_dropout, name=ATTENTION_GRU_LAYER)(frames, num_frames)
    outputs = classifier(pooled, classifier_kind, num_classes, num_mixtures, l2_penalty, "predictions")
    return keras.Model(inputs, outputs, name="AttentionGRUModel")


@registry.register("NeXtVLADMixture", frame_level=True)
def nextvlad_mixture(*, num_classes: int, feature_size: int, cluster_size_0: int = 112, cluster_size_1: int = 136,
                     cluster_size_2: int = 112, gating_reduction_0: int = 16, gating_reduction_1: int = 16,
                     gating_reduction_2: int = 8, hidden_size: int = 2048, groups: int = 8, expansion: int = 2,
                     dropout: float = 0.5, attention_gru: bool = True, gru_units: int = 512,
                     attention_units: int = 256, gru_dropout: float = 0.0, classifier_kind: str = "logistic",
                     num_mixtures: int = 2, l2_penalty: float = 1e-5, sample_frames: int = 0) -> keras.Model:
    """Seed 003's mixture: three NeXtVLADs (a `cluster_size_i` of 0 drops branch i) and, with
    `attention_gru`, the Attention-GRU; each branch has its own classifier and the branch
    probabilities are mixed by softmax-normalised learned weights (layer "mixture")."""
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    branches = []
    sizes = ((cluster_size_0, gating_reduction_0), (cluster_size_1, gating_reduction_1),
             (cluster_size_2, gating_reduction_2))
    for index, (clusters, reduction) in enumerate(sizes):
        if clusters <= 0:
            continue
        x = nextvlad_branch(frames, num_frames, clusters=clusters, groups=groups, expansion=expansion,
                            hidden_size=hidden_size, gating_reduction=reduction, dropout=dropout,
                            prefix=f"branch{index}_")
        branches.append(classifier(x, classifier_kind, num_classes, num_mixtures, l2_penalty,
                                   f"branch{index}_predictions"))
    if attention_gru:
        pooled, _ = AttentionGRU(gru_units, attention_units, gru_dropout, name=ATTENTION_GRU_LAYER)(
            frames, num_frames)
        branches.append(classifier(pooled, classifier_kind, num_classes, num_mixtures, l2_penalty,
                                   "gru_predictions"))
    if not branches:
        raise ValueError("NeXtVLADMixture needs at least one branch: a positive cluster_size_i or attention_gru")
    outputs = SoftmaxMixture(name="mixture")(branches)
    return keras.Model(inputs, outputs, name="NeXtVLADMixture")
