"""Video-level classifiers of the starter: LogisticModel and MoeModel."""
import keras

from models import registry
from models.layers.inputs import video_inputs
from models.layers.moe import MixtureOfExperts, slim_l2
from yt8m.data import schema


@registry.register("LogisticModel", frame_level=False)
def logistic_model(*, num_classes: int, feature_size: int, l2_penalty: float = 1e-8) -> keras.Model:
    """One sigmoid Dense layer over the video-level features."""
    inputs = video_inputs(feature_size)
    outputs = keras.layers.Dense(num_classes, activation="sigmoid", kernel_regularizer=slim_l2(l2_penalty),
                                 name="predictions")(inputs[schema.VIDEO_INPUT])
    return keras.Model(inputs, outputs, name="LogisticModel")


@registry.register("MoeModel", frame_level=False)
def moe_model(*, num_classes: int, feature_size: int, num_mixtures: int = 2,
              l2_penalty: float = 1e-8) -> keras.Model:
    """A mixture of logistic experts over the video-level features."""
    inputs = video_inputs(feature_size)
    outputs = MixtureOfExperts(num_classes, num_mixtures, l2_penalty,
                               name="predictions")(inputs[schema.VIDEO_INPUT])
    return keras.Model(inputs, outputs, name="MoeModel")
