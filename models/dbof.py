"""The starter's frame-level Deep Bag of Frames model with a MoE head."""
import keras

from models import registry
from models.layers.dbof import DbofPooling
from models.layers.frame_sampling import FrameSampleCounts
from models.layers.inputs import Dequantize, NormalizeFrames, frame_inputs
from models.layers.moe import MixtureOfExperts
from models import contract

# The moving-average momentum of the hidden layer's BatchNorm. Keras's 0.99 (the starter's slim: 0.999) lags it
# under Adam at lr 0.01: each step moves every hidden weight by ~0.01 (its init scale: 0.015, fan-in 8192 of
# non-negative pooled features), which shifts the batch mean of a unit's pre-activations by several of its stds
# while the moving mean follows by 1% a step; after 60 steps the model infers through hidden units pinned at 0
# or 6, alive in training and dead at inference (docs/results.md, issue 6). 0.9 averages the last ~10 batches.
BN_MOMENTUM = 0.9


@registry.register("DbofModel", frame_level=True)
def dbof_model(*, num_classes: int, feature_size: int, cluster_size: int = 8192,
               hidden_size: int = 1024, sample_frames: int = 30, sample_random_frames: bool = True,
               add_batch_norm: bool = True, activation: str = "relu6", pooling: str = "max",
               num_mixtures: int = 2, l2_penalty: float = 1e-8, normalize_frames: bool = False,
               sample_at_inference: bool = False, bn_momentum: float = BN_MOMENTUM) -> keras.Model:
    """DBoF: in training `sample_frames` frames per video (the starter's `iterations`;
    random frames with replacement, or a random run when `sample_random_frames` is
    False; 0 uses every frame), at inference every valid frame (or, with
    `sample_at_inference`, a draw as in training: the starter's eval/inference);
    [each frame L2-normalised, `normalize_frames`: the starter's train.py]; cluster
    projection, masked pooling, hidden layer, then the MoE head. `bn_momentum`: the hidden BN's,
    BN_MOMENTUM (0.99, Keras's, was the default before issue 14; the starter's slim: 0.999)."""
    inputs = frame_inputs(feature_size)
    x = dbof_features(inputs, cluster_size=cluster_size, hidden_size=hidden_size, sample_frames=sample_frames,
                      sample_random_frames=sample_random_frames, add_batch_norm=add_batch_norm,
                      activation=activation, pooling=pooling, normalize_frames=normalize_frames,
                      sample_at_inference=sample_at_inference, bn_momentum=bn_momentum)
    outputs = MixtureOfExperts(num_classes, num_mixtures, l2_penalty, name="predictions")(x)
    return keras.Model(inputs, outputs, name="DbofModel")


def dbof_features(inputs: dict, *, cluster_size: int, hidden_size: int, sample_frames: int,
                  sample_random_frames: bool = True, add_batch_norm: bool = True, activation: str = "relu6",
                  pooling: str = "max", normalize_frames: bool = False, sample_at_inference: bool = False,
                  bn_momentum: float = BN_MOMENTUM):
    """The DBoF video feature (B, hidden_size) of frame inputs: sampled frames (as draw counts, so
    each distinct drawn frame is computed once), dequantized, [L2-normalised], cluster projection,
    pooling, hidden layer."""
    num_frames = inputs[contract.NUM_FRAMES_INPUT]
    frames, counts = FrameSampleCounts(sample_frames, random_sequence=not sample_random_frames,
                                       at_inference=sample_at_inference, name="frame_sampler")(
        inputs[contract.FRAMES_INPUT], num_frames)
    frames = Dequantize(name="dequantize")(frames)
    if normalize_frames:
        frames = NormalizeFrames(name="normalize_frames")(frames, num_frames)
    x = DbofPooling(cluster_size, add_batch_norm, activation, pooling, name="dbof")(frames, counts)
    x = keras.layers.Dense(hidden_size, use_bias=not add_batch_norm, name="hidden")(x)
    if add_batch_norm:
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name="hidden_bn")(x)
    return keras.layers.Activation(activation, name="hidden_activation")(x)
