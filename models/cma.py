"""The table-4 grid of the CMA paper (video part): {cross-modality, self-} attention x {SNet, FC} backbones.

frames -> Dequantize -> backbone (SNet: 4 x Conv1D + pooling squeezing time; FC: a per-frame
FC layer) -> per-class attention head -> per-class classifiers. The CMA models take their
label embeddings (default: ASGE, trained by yt8m.labels.embeddings) as a fixed weight.
The head layer is named "attention"; its second output is the (B, T', C) attention.
"""
import keras
import numpy as np

from models import registry
from models.layers.cma import CrossModalityAttention, LabelEmbeddings, SelfAttention
from models.layers.frame_sampling import FrameSampler
from models.layers.inputs import Dequantize, frame_inputs
from models.layers.snet import SNet, FrameFC
from yt8m.data import schema

HEAD_LAYER = "attention"


def _snet(frames, num_frames, filters, num_blocks, kernel_size, pool_size):
    return SNet(filters, num_blocks, kernel_size, pool_size, name="snet")(frames, num_frames)


def _fc(frames, num_frames, hidden_size):
    return FrameFC(hidden_size, name="frame_fc")(frames, num_frames), num_frames


def _frames(feature_size, sample_frames):
    """The frame inputs, dequantised; in training `sample_frames` random frames per video (0: all)."""
    inputs = frame_inputs(feature_size)
    frames, num_frames = inputs[schema.FRAMES_INPUT], inputs[schema.NUM_FRAMES_INPUT]
    if sample_frames:
        frames, num_frames = FrameSampler(sample_frames, name="frame_sampler")(frames, num_frames)
    return inputs, Dequantize(name="dequantize")(frames), num_frames


def _cma_model(name, num_classes, backbone, transformer_units, embedding_dim, learn_embeddings,
               label_embeddings, feature_size, sample_frames=0):
    inputs, frames, num_frames = _frames(feature_size, sample_frames)
    features, steps = backbone(frames, num_frames)
    if label_embeddings is not None:
        embedding_dim = int(np.shape(label_embeddings)[1])
    embeddings = LabelEmbeddings(num_classes, embedding_dim, embeddings=label_embeddings,
                                 learn_embeddings=learn_embeddings, seed=0, name="label_embeddings")(features)
    probabilities, _ = CrossModalityAttention(num_classes, (transformer_units, embedding_dim),
                                              name=HEAD_LAYER)(features, steps, embeddings)
    return keras.Model(inputs, probabilities, name=name)


def _self_attention_model(name, num_classes, backbone, transformer_units, attention_dim, feature_size,
                          sample_frames=0):
    inputs, frames, num_frames = _frames(feature_size, sample_frames)
    features, steps = backbone(frames, num_frames)
    probabilities, _ = SelfAttention(num_classes, (transformer_units, attention_dim), name=HEAD_LAYER)(
        features, steps)
    return keras.Model(inputs, probabilities, name=name)


@registry.register("CmaSNetModel", frame_level=True)
def cma_snet_model(*, num_classes: int, feature_size: int, filters: int = 256, num_blocks: int = 4,
                   kernel_size: int = 3, pool_size: int = 2, transformer_units: int = 512,
                   embedding_dim: int = 300, learn_embeddings: bool = False,
                   label_embeddings=None) -> keras.Model:
    """CMA-SNet: SNet features, attention from cos(CMT(I), e_k) with the (C, E) label embeddings
    (given by training: ASGE by default; random when built bare), per-class classifiers."""
    return _cma_model("CmaSNetModel", num_classes,
                      lambda f, n: _snet(f, n, filters, num_blocks, kernel_size, pool_size),
                      transformer_units, embedding_dim, learn_embeddings, label_embeddings, feature_size)


@registry.register("CmaFCModel", frame_level=True)
def cma_fc_model(*, num_classes: int, feature_size: int, hidden_size: int = 512, transformer_units: int = 512,
                 embedding_dim: int = 300, learn_embeddings: bool = False, sample_frames: int = 30,
                 label_embeddings=None) -> keras.Model:
    """CMA-FC: a per-frame FC backbone (time kept), then the CMA head of CmaSNetModel. The FC backbone
    has no temporal order, so training sees `sample_frames` random frames per video (DBoF's
    `iterations`; 0: all), inference every frame."""
    return _cma_model("CmaFCModel", num_classes, lambda f, n: _fc(f, n, hidden_size),
                      transformer_units, embedding_dim, learn_embeddings, label_embeddings, feature_size,
                      sample_frames)


@registry.register("SelfAttentionSNetModel", frame_level=True)
def self_attention_snet_model(*, num_classes: int, feature_size: int, filters: int = 256, num_blocks: int = 4,
                              kernel_size: int = 3, pool_size: int = 2, transformer_units: int = 512,
                              attention_dim: int = 300) -> keras.Model:
    """Self-attention-SNet: SNet features, per-class attention from learned queries on the
    transformed features (no label embeddings), per-class classifiers."""
    return _self_attention_model("SelfAttentionSNetModel", num_classes,
                                 lambda f, n: _snet(f, n, filters, num_blocks, kernel_size, pool_size),
                                 transformer_units, attention_dim, feature_size)


@registry.register("SelfAttentionFCModel", frame_level=True)
def self_attention_fc_model(*, num_classes: int, feature_size: int, hidden_size: int = 512,
                            transformer_units: int = 512, attention_dim: int = 300,
                            sample_frames: int = 30) -> keras.Model:
    """Self-attention-FC: the per-frame FC backbone with the self-attention head (frames sampled
    in training as in CmaFCModel)."""
    return _self_attention_model("SelfAttentionFCModel", num_classes, lambda f, n: _fc(f, n, hidden_size),
                                 transformer_units, attention_dim, feature_size, sample_frames)
