"""The table-4 grid of the CMA paper (video part): {cross-modality, self-} attention x {SNet, FC} backbones.

frames -> Dequantize -> backbone (SNet: 4 x Conv1D + pooling squeezing time; FC: a per-frame
FC layer) -> per-class attention head -> per-class classifiers. The CMA models take their
label embeddings (default: ASGE, trained by yt8m.labels.embeddings) as a fixed weight.
The head layer is named "attention" (CmaSNetModel with `scales` > 1: "attention" on SNet's last
block, "attention_block{b}" on block b's, averaged by Eq.11); its second output is the
(B, T', C) attention, which `attention_maps` spreads back over the frames for pictures.

On a short clip SNet's squeeze leaves one step (5-frame segments: ceil(5 / 8) = ceil(5 / 16) = 1),
so the category-wise attention of blocks 3-4 is identically 1 there (block 2's has 2 steps) and
CmaSNetModel(scales=1) is a per-class linear head on one pooled feature; the SNet models need
whole videos to attend over time.
"""
import keras
import numpy as np

from models import registry
from models.layers.cma import CrossModalityAttention, LabelEmbeddings, SelfAttention, PerClassAttentionHead
from models.layers.frame_sampling import frame_stem
from models.layers.snet import BN_MOMENTUM, FC_BN_MOMENTUM, SNet, FrameFC
from models import contract

HEAD_LAYER = "attention"
SNET_LAYER = "snet"


def _snet(frames, num_frames, filters, num_blocks, kernel_size, pool_size, scales=1, bn_momentum=BN_MOMENTUM):
    """SNet's last `scales` blocks' (features, steps), coarsest last."""
    if not 1 <= scales <= num_blocks:
        raise ValueError(f"scales={scales} must be between 1 and num_blocks={num_blocks}")
    features, steps = SNet(filters, num_blocks, kernel_size, pool_size, return_scales=True,
                           bn_momentum=bn_momentum, name=SNET_LAYER)(frames, num_frames)
    return list(zip(features, steps))[num_blocks - scales:]


def _fc(frames, num_frames, hidden_size, bn_momentum=BN_MOMENTUM):
    return [(FrameFC(hidden_size, bn_momentum, name="frame_fc")(frames, num_frames), num_frames)]


def _head_names(count: int, num_blocks: int) -> list[str]:
    """"attention" for the last (coarsest) scale, "attention_block{b}" (b from 1) for the others."""
    return [f"{HEAD_LAYER}_block{num_blocks - count + 1 + i}" for i in range(count - 1)] + [HEAD_LAYER]


def _frames(feature_size, sample_frames):
    """The frame inputs, dequantised; in training `sample_frames` random frames per video (0: all)."""
    return frame_stem(feature_size, sample_frames)


def _cma_model(name, num_classes, backbone, transformer_units, embedding_dim, learn_embeddings,
               label_embeddings, feature_size, sample_frames=0, num_blocks=1, bn_momentum=BN_MOMENTUM):
    inputs, frames, num_frames = _frames(feature_size, sample_frames)
    scales = backbone(frames, num_frames)
    if label_embeddings is not None:
        embedding_dim = int(np.shape(label_embeddings)[1])
    embeddings = LabelEmbeddings(num_classes, embedding_dim, embeddings=label_embeddings,
                                 learn_embeddings=learn_embeddings, seed=0, name="label_embeddings")(scales[-1][0])
    per_scale = [CrossModalityAttention(num_classes, (transformer_units, embedding_dim), bn_momentum, name=head)(
        features, steps, embeddings)[0] for (features, steps), head in zip(scales, _head_names(len(scales), num_blocks))]
    # CMA Eq.11: multi-scale y = mean over the scales s of f_cma(I_s).
    probabilities = per_scale[0] if len(per_scale) == 1 else keras.layers.Average(name="multi_scale")(per_scale)
    return keras.Model(inputs, probabilities, name=name)


def _self_attention_model(name, num_classes, backbone, feature_size, sample_frames=0):
    inputs, frames, num_frames = _frames(feature_size, sample_frames)
    (features, steps), = backbone(frames, num_frames)
    probabilities, _ = SelfAttention(num_classes, name=HEAD_LAYER)(features, steps)
    return keras.Model(inputs, probabilities, name=name)


def attention_maps(model: keras.Model, inputs: dict) -> dict[str, np.ndarray]:
    """Per-frame per-class attention of a CMA or self-attention model: head layer name -> (B, T, C)
    float32, T the frames of `inputs`. Frame t gets the attention of the backbone step holding it
    (an SNet block-b step spans pool_size^b frames), so each step's a_k repeats over its frames;
    zero past a video's num_frames. Inference mode (every frame, no sampling)."""
    heads = [layer for layer in model.layers if isinstance(layer, PerClassAttentionHead)]
    if not heads:
        raise ValueError(f"model {model.name} has no per-class attention head")
    probe = keras.Model(model.input, [head.output[1] for head in heads])
    outputs = probe(inputs, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    frames = np.asarray(inputs[contract.FRAMES_INPUT]).shape[1]
    valid = np.arange(frames)[None, :] < np.asarray(inputs[contract.NUM_FRAMES_INPUT])[:, None]
    strides = head_strides(model)
    maps = {}
    for head, attention in zip(heads, outputs):
        attention = keras.ops.convert_to_numpy(attention)
        per_frame = np.repeat(attention, strides[head.name], axis=1)[:, :frames]
        per_frame = np.pad(per_frame, ((0, 0), (0, frames - per_frame.shape[1]), (0, 0)))
        maps[head.name] = (per_frame * valid[..., None]).astype(np.float32)
    return maps


def head_strides(model: keras.Model) -> dict[str, int]:
    """Frames per attention step of each head name (1 without SNet)."""
    try:
        snet = model.get_layer(SNET_LAYER)
    except ValueError:
        return {layer.name: 1 for layer in model.layers}
    names = _head_names(snet.num_blocks, snet.num_blocks)
    return {name: snet.pool_size ** (b + 1) for b, name in enumerate(names)}


@registry.register("CmaSNetModel", frame_level=True)
def cma_snet_model(*, num_classes: int, feature_size: int, filters: int = 256, num_blocks: int = 4,
                   kernel_size: int = 3, pool_size: int = 2, transformer_units: int = 512,
                   embedding_dim: int = 300, learn_embeddings: bool = False, scales: int = 3,
                   bn_momentum: float = BN_MOMENTUM, label_embeddings=None) -> keras.Model:
    """CMA-SNet: SNet features, attention from cos(CMT(I), e_k) with the (C, E) label embeddings
    (given by training: ASGE by default; random when built bare), per-class classifiers.
    Multi-scale CMA (Eq.11): one CMA head on each of SNet's last `scales` blocks (time strides
    pool_size^b), their probabilities averaged; default 3 (strides 4, 8, 16: 3/3 seeds over the
    last block alone on Hit@1, PERR, MAP and GAP, docs/results.md); 1: the last block only.
    `bn_momentum`: of every BatchNorm (SNet's, CMT's; models/layers/snet.py's BN_MOMENTUM)."""
    return _cma_model("CmaSNetModel", num_classes,
                      lambda f, n: _snet(f, n, filters, num_blocks, kernel_size, pool_size, scales, bn_momentum),
                      transformer_units, embedding_dim, learn_embeddings, label_embeddings, feature_size,
                      num_blocks=num_blocks, bn_momentum=bn_momentum)


@registry.register("CmaFCModel", frame_level=True)
def cma_fc_model(*, num_classes: int, feature_size: int, hidden_size: int = 512, transformer_units: int = 512,
                 embedding_dim: int = 300, learn_embeddings: bool = False, sample_frames: int = 30,
                 bn_momentum: float = FC_BN_MOMENTUM, label_embeddings=None) -> keras.Model:
    """CMA-FC: a per-frame FC backbone (time kept), then the CMA head of CmaSNetModel. The FC backbone
    has no temporal order, so training sees `sample_frames` random frames per video (DBoF's
    `iterations`; 0: all), inference every frame. `bn_momentum` (FrameFC's and CMT's BatchNorms):
    Keras's 0.99 (0.9, SNet's, lost 1.5 Hit@1 here in 3/3 seeds, docs/results.md)."""
    return _cma_model("CmaFCModel", num_classes, lambda f, n: _fc(f, n, hidden_size, bn_momentum),
                      transformer_units, embedding_dim, learn_embeddings, label_embeddings, feature_size,
                      sample_frames, bn_momentum=bn_momentum)


@registry.register("SelfAttentionSNetModel", frame_level=True)
def self_attention_snet_model(*, num_classes: int, feature_size: int, filters: int = 256, num_blocks: int = 4,
                              kernel_size: int = 3, pool_size: int = 2, bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """Self-attention-SNet (the paper's baseline): SNet features, z = sigmoid(1x1 conv(I)) per class
    in place of Eq.7, Eq.8-10 kept; no label embeddings."""
    return _self_attention_model("SelfAttentionSNetModel", num_classes,
                                 lambda f, n: _snet(f, n, filters, num_blocks, kernel_size, pool_size,
                                                    bn_momentum=bn_momentum),
                                 feature_size)


@registry.register("SelfAttentionFCModel", frame_level=True)
def self_attention_fc_model(*, num_classes: int, feature_size: int, hidden_size: int = 512,
                            sample_frames: int = 30, bn_momentum: float = FC_BN_MOMENTUM) -> keras.Model:
    """Self-attention-FC: the per-frame FC backbone with the self-attention head (frames sampled
    in training as in CmaFCModel)."""
    return _self_attention_model("SelfAttentionFCModel", num_classes,
                                 lambda f, n: _fc(f, n, hidden_size, bn_momentum),
                                 feature_size, sample_frames)
