"""The starter's logistic classifiers: LogisticModel and MoeModel (video level), and
FrameLevelLogisticModel (the mean of the frames, the baseline of the frame models)."""
import keras

from models import registry
from models.layers.frame_sampling import frame_stem
from models.layers.inputs import FrameMean, video_inputs
from models.layers.moe import MixtureOfExperts, slim_l2
from models import contract


@registry.register("LogisticModel", frame_level=False)
def logistic_model(*, num_classes: int, feature_size: int, l2_penalty: float = 1e-8) -> keras.Model:
    """One sigmoid Dense layer over the video-level features."""
    inputs = video_inputs(feature_size)
    outputs = keras.layers.Dense(num_classes, activation="sigmoid", kernel_regularizer=slim_l2(l2_penalty),
                                 name="predictions")(inputs[contract.VIDEO_INPUT])
    return keras.Model(inputs, outputs, name="LogisticModel")


@registry.register("MoeModel", frame_level=False)
def moe_model(*, num_classes: int, feature_size: int, num_mixtures: int = 2,
              l2_penalty: float = 1e-8) -> keras.Model:
    """A mixture of logistic experts over the video-level features."""
    inputs = video_inputs(feature_size)
    outputs = MixtureOfExperts(num_classes, num_mixtures, l2_penalty,
                               name="predictions")(inputs[contract.VIDEO_INPUT])
    return keras.Model(inputs, outputs, name="MoeModel")


@registry.register("FrameLevelLogisticModel", frame_level=True)
def frame_level_logistic_model(*, num_classes: int, feature_size: int, l2_penalty: float = 1e-8,
                               normalize_frames: bool = False) -> keras.Model:
    """The starter's FrameLevelLogisticModel: the mean of the valid frames (dequantized,
    [each L2-normalised, `normalize_frames`: the starter's train.py]), one sigmoid Dense layer."""
    inputs, frames, num_frames = frame_stem(feature_size, normalize_frames=normalize_frames)
    mean = FrameMean(name="frame_mean")(frames, num_frames)
    outputs = keras.layers.Dense(num_classes, activation="sigmoid", kernel_regularizer=slim_l2(l2_penalty),
                                 name="predictions")(mean)
    return keras.Model(inputs, outputs, name="FrameLevelLogisticModel")
