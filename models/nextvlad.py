"""NeXtVLAD models as linrongc/youtube-8m builds them, and the 3rd YouTube-8M challenge's mixture (seed 003).

NeXtVLADModel (linrongc's nextvlad.py, NeXtVLADModel): an rgb NeXtVLAD (K clusters, G
groups) over the first D - `audio_size` dims of the frame and an audio NeXtVLAD (K/2, G/2)
over the last `audio_size`, concatenated, dropout, hidden layer (no bias) + BN, context
gating (no bias), classifier. `two_stream=False` runs one NeXtVLAD over the whole frame.
AttentionGRUModel: a GRU with attention pooling, BN of the pooled state (`pooled_batch_norm`; the
paper does not say, without it the GRU collapses: `attention_gru_branch`) and a classifier. NeXtVLADMixture: up to
three such NeXtVLAD branches of their own sizes (the paper: clusters 112/136/112, hidden
2048, gating reduction 16/16/8) plus the Attention-GRU, each with its own classifier, mixed
by `mixture_gate` "video" (linrongc's MixNeXtVladModel: a per-video softmax(FC(BN(mean
frame))) over the branches' logits) or "global" (one learned softmax over the branches'
probabilities; the default, measured on the proving ground); `branch_loss_weight` adds each branch's own loss, as linrongc trains them;
`distill_weight` adds linrongc's distillation KL between the mixture and each branch.
"""
import keras
import tensorflow as tf

from models import registry
from models.layers.attention_gru import AttentionGRU
from models.layers.frame_sampling import frame_stem
from models.layers.inputs import FrameMean
from models.layers.mixture import ProbabilityLogits, SoftmaxMixture, VideoGateMixture
from models.layers.moe import MixtureOfExperts, slim_l2
from models.layers.nextvlad import ContextGating, NeXtVLAD, StreamSplit

CLASSIFIERS = ("logistic", "moe")
MIXTURE_GATES = ("video", "global")
ATTENTION_GRU_LAYER = "attention_gru"
MIXTURE_LAYER = "mixture"


def frame_features(feature_size: int, sample_frames: int):
    """Model inputs and the float frames after (training-time) sampling and dequantisation.

    Sampling takes a random run of consecutive frames, so recurrent branches see
    frames in order; 0 keeps every frame.
    """
    return frame_stem(feature_size, sample_frames, random_sequence=True)


def classifier(x, kind: str, num_classes: int, num_mixtures: int, l2_penalty: float, name: str,
               logits: bool = False):
    """Class probabilities (B, C) from (B, H), or with `logits` their logits: a MoE head or
    one logistic layer (linrongc's LogisticModel: l2 on weights and biases)."""
    if kind == "moe":
        probabilities = MixtureOfExperts(num_classes, num_mixtures, l2_penalty, name=name)(x)
        return ProbabilityLogits(name=f"{name}_logits")(probabilities) if logits else probabilities
    if kind == "logistic":
        return keras.layers.Dense(num_classes, activation=None if logits else "sigmoid",
                                  kernel_regularizer=slim_l2(l2_penalty), bias_regularizer=slim_l2(l2_penalty),
                                  name=name)(x)
    raise ValueError(f"unknown classifier {kind!r}; use one of {', '.join(CLASSIFIERS)}")


def split_streams(frames, feature_size: int, two_stream: bool, audio_size: int):
    """[rgb, audio] frames for two-stream NeXtVLADs, else None (one NeXtVLAD over the whole frame)."""
    if not two_stream:
        return None
    if feature_size <= audio_size:
        raise ValueError(f"two_stream NeXtVLAD: the frame ({feature_size} dims) must be wider than "
                         f"audio_size ({audio_size}); set audio_size or two_stream=False")
    return StreamSplit(audio_size, name="streams")(frames)


def nextvlad_branch(frames, streams, num_frames, *, clusters: int, groups: int, expansion: int, hidden_size: int,
                    gating_reduction: int, dropout: float, prefix: str = ""):
    """(rgb, audio) NeXtVLADs (or one over `frames` when `streams` is None) -> dropout ->
    hidden layer + BN -> context gating: (B, hidden_size), linrongc's order."""
    if streams is None:
        x = NeXtVLAD(clusters, groups, expansion, name=f"{prefix}nextvlad")(frames, num_frames)
    else:
        if clusters < 2 or groups < 2:
            raise ValueError(f"two_stream NeXtVLAD: the audio NeXtVLAD gets clusters // 2 and groups // 2, "
                             f"so both must be >= 2 (got {clusters}, {groups})")
        rgb = NeXtVLAD(clusters, groups, expansion, name=f"{prefix}rgb_nextvlad")(streams[0], num_frames)
        audio = NeXtVLAD(clusters // 2, groups // 2, expansion, name=f"{prefix}audio_nextvlad")(streams[1], num_frames)
        x = keras.layers.Concatenate(name=f"{prefix}nextvlad")([rgb, audio])
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    x = keras.layers.Dense(hidden_size, use_bias=False, name=f"{prefix}hidden")(x)
    x = keras.layers.BatchNormalization(name=f"{prefix}hidden_bn")(x)
    return ContextGating(gating_reduction, excite_bias=False, name=f"{prefix}gating")(x)


def attention_weights_model(model: keras.Model) -> keras.Model:
    """The model's inputs -> the Attention-GRU's per-frame weights (B, T), for pictures."""
    return keras.Model(model.input, model.get_layer(ATTENTION_GRU_LAYER).output[1],
                       name=f"{model.name}_attention")


@registry.register("NeXtVLADModel", frame_level=True)
def nextvlad_model(*, num_classes: int, feature_size: int, cluster_size: int = 112, hidden_size: int = 2048,
                   groups: int = 8, expansion: int = 2, gating_reduction: int = 16, dropout: float = 0.5,
                   classifier_kind: str = "logistic", num_mixtures: int = 2, l2_penalty: float = 1e-5,
                   sample_frames: int = 0, two_stream: bool = True, audio_size: int = 128) -> keras.Model:
    """linrongc's NeXtVLADModel: rgb (cluster_size, groups) and audio (cluster_size // 2,
    groups // 2) NeXtVLADs (`two_stream=False`: one over the whole frame), the hidden layer,
    gating and a classifier (`classifier_kind` logistic or moe)."""
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    streams = split_streams(frames, feature_size, two_stream, audio_size)
    x = nextvlad_branch(frames, streams, num_frames, clusters=cluster_size, groups=groups, expansion=expansion,
                        hidden_size=hidden_size, gating_reduction=gating_reduction, dropout=dropout)
    outputs = classifier(x, classifier_kind, num_classes, num_mixtures, l2_penalty, "predictions")
    return keras.Model(inputs, outputs, name="NeXtVLADModel")


def attention_gru_branch(frames, num_frames, *, units: int, attention_units: int, dropout: float,
                         pooled_batch_norm: bool):
    """The Attention-GRU's pooled state (B, units), batch-normalised with `pooled_batch_norm`.

    Without the BN the classifier uses the GRU as a bias: every step pushes the thousands of absent
    classes' logits down through W h, the states saturate at one +-1 vector for every video and
    tanh' = 0 keeps them there (docs/results.md, issue-4 section). The BN takes the batch mean out
    of h, as the hidden-layer BN of every NeXtVLAD branch does, so only what differs between videos
    reaches the classifier."""
    pooled, _ = AttentionGRU(units, attention_units, dropout, name=ATTENTION_GRU_LAYER)(frames, num_frames)
    return keras.layers.BatchNormalization(name=f"{ATTENTION_GRU_LAYER}_bn")(pooled) if pooled_batch_norm else pooled


@registry.register("AttentionGRUModel", frame_level=True)
def attention_gru_model(*, num_classes: int, feature_size: int, gru_units: int = 512, attention_units: int = 256,
                        gru_dropout: float = 0.0, pooled_batch_norm: bool = True, classifier_kind: str = "logistic",
                        num_mixtures: int = 2, l2_penalty: float = 1e-5, sample_frames: int = 0) -> keras.Model:
    """GRU over the valid frames, additive attention pooling, [BN of the pooled state,
    `pooled_batch_norm`], a classifier.

    `attention_weights_model(model)` gives the per-frame attention weights.
    """
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    pooled = attention_gru_branch(frames, num_frames, units=gru_units, attention_units=attention_units,
                                  dropout=gru_dropout, pooled_batch_norm=pooled_batch_norm)
    outputs = classifier(pooled, classifier_kind, num_classes, num_mixtures, l2_penalty, "predictions")
    return keras.Model(inputs, outputs, name="AttentionGRUModel")


@keras.saving.register_keras_serializable(package="yt8m")
class NeXtVLADMixtureModel(keras.Model):
    """A functional model whose training loss adds each branch's own loss (linrongc's train.py
    adds the label loss of every `aux_predictions`) and linrongc's distillation term:
    L = L_mix + w * sum_m L(p_m) + lambda * KL.

    Its one output is the mixture, at training and at inference. In a training step the
    mixture layer keeps the branch probabilities (and the weighted KL); `compute_loss`
    scores each branch with the compiled loss (same targets, per-element loss and reader
    weights, so any `--loss` composes), adds them times the layer's `branch_loss_weight`,
    and adds the KL divided by the replicas in sync (as Keras scales its own losses).
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        mixture = self.get_layer(MIXTURE_LAYER)
        branches, distillation = mixture.take_training_terms()
        if not training or y is None or self._compile_loss is None:
            return total
        if branches:
            branch_losses = [self._compile_loss(y, branch, sample_weight) for branch in branches]
            total = total + mixture.branch_loss_weight * sum(branch_losses)
        if distillation is not None:
            total = total + distillation / tf.distribute.get_strategy().num_replicas_in_sync
        return total


@registry.register("NeXtVLADMixture", frame_level=True)
def nextvlad_mixture(*, num_classes: int, feature_size: int, cluster_size_0: int = 112, cluster_size_1: int = 136,
                     cluster_size_2: int = 112, gating_reduction_0: int = 16, gating_reduction_1: int = 16,
                     gating_reduction_2: int = 8, hidden_size: int = 2048, groups: int = 8, expansion: int = 2,
                     dropout: float = 0.5, attention_gru: bool = True, gru_units: int = 512,
                     attention_units: int = 256, gru_dropout: float = 0.0, pooled_batch_norm: bool = True,
                     classifier_kind: str = "logistic",
                     num_mixtures: int = 2, l2_penalty: float = 1e-5, sample_frames: int = 0,
                     two_stream: bool = True, audio_size: int = 128, mixture_gate: str = "global",
                     branch_loss_weight: float = 1.0, distill_weight: float = 0.0,
                     distill_temperature: float = 3.0) -> keras.Model:
    """Seed 003's mixture: three NeXtVLAD branches, each linrongc's two-stream NeXtVLADModel (a
    `cluster_size_i` of 0 drops branch i), and with `attention_gru` the Attention-GRU (its pooled
    state batch-normalised with `pooled_batch_norm`, see `attention_gru_branch`), each with its own
    classifier, mixed by `mixture_gate` (layer "mixture"): "video", linrongc's
    per-video softmax(FC(BN(mean frame))) over the branch logits; "global", one learned
    softmax over the branch probabilities (the default: it beat the per-video gate in 3 of 3
    seeds on the proving ground, docs/results.md). `branch_loss_weight` > 0 adds every branch's
    own loss times it (linrongc: 1). `distill_weight` > 0 (video gate only) adds linrongc's
    distillation KL at `distill_temperature` (its final run: cl_lambda 9, cl_temperature 3)."""
    if mixture_gate not in MIXTURE_GATES:
        raise ValueError(f"unknown mixture_gate {mixture_gate!r}; use one of {', '.join(MIXTURE_GATES)}")
    if distill_weight and mixture_gate != "video":
        raise ValueError("distill_weight needs mixture_gate='video' (the KL is taken between logits)")
    logits = mixture_gate == "video"
    inputs, frames, num_frames = frame_features(feature_size, sample_frames)
    streams = split_streams(frames, feature_size, two_stream, audio_size)
    branches = []
    sizes = ((cluster_size_0, gating_reduction_0), (cluster_size_1, gating_reduction_1),
             (cluster_size_2, gating_reduction_2))
    for index, (clusters, reduction) in enumerate(sizes):
        if clusters <= 0:
            continue
        x = nextvlad_branch(frames, streams, num_frames, clusters=clusters, groups=groups, expansion=expansion,
                            hidden_size=hidden_size, gating_reduction=reduction, dropout=dropout,
                            prefix=f"branch{index}_")
        branches.append(classifier(x, classifier_kind, num_classes, num_mixtures, l2_penalty,
                                   f"branch{index}_classifier", logits))
    if attention_gru:
        pooled = attention_gru_branch(frames, num_frames, units=gru_units, attention_units=attention_units,
                                      dropout=gru_dropout, pooled_batch_norm=pooled_batch_norm)
        branches.append(classifier(pooled, classifier_kind, num_classes, num_mixtures, l2_penalty,
                                   "gru_classifier", logits))
    if not branches:
        raise ValueError("NeXtVLADMixture needs at least one branch: a positive cluster_size_i or attention_gru")
    if logits:
        mean_frame = FrameMean(name="mean_frame")(frames, num_frames)
        outputs = VideoGateMixture(branch_loss_weight, distill_weight, distill_temperature, name=MIXTURE_LAYER)(
            mean_frame, branches)
    else:
        outputs = SoftmaxMixture(branch_loss_weight, name=MIXTURE_LAYER)(branches)
    return NeXtVLADMixtureModel(inputs, outputs, name="NeXtVLADMixture")
