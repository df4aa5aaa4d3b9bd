"""Per-class classifiers given as a tensor (e.g. by a GCN over label nodes)."""
import keras
import numpy as np
import tensorflow as tf


def prior_logit(prior: float) -> float:
    """log(pi / (1 - pi)): the bias under which every class starts at probability pi (0 < pi < 1)."""
    if not 0.0 < prior < 1.0:
        raise ValueError(f"a class prior must be in (0, 1), got {prior}")
    return float(np.log(prior / (1.0 - prior)))


@keras.saving.register_keras_serializable(package="yt8m")
class LabelLogits(keras.layers.Layer):
    """`(features x (B, H), classifiers W (C, H)) -> s x W^T` (B, C) logits, no bias.

    With `cosine`, x and the rows of W are L2-normalised and s is a learned scale starting at `scale`
    (|logit| <= s: a GCN that makes W large or aligned cannot saturate every output); without, s = 1
    (the plain x W^T of seed 003 Fig.4 / ML-GCN / mssnet).
    """

    def __init__(self, cosine: bool = False, scale: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.cosine = cosine
        self.scale = scale

    def build(self, features_shape, classifiers_shape):
        self.logit_scale = (self.add_weight(name="logit_scale", shape=(),
                                            initializer=keras.initializers.Constant(self.scale))
                            if self.cosine else None)

    def call(self, features, classifiers):
        if self.cosine:
            features = tf.math.l2_normalize(features, axis=-1, epsilon=1e-12)
            classifiers = tf.math.l2_normalize(classifiers, axis=-1, epsilon=1e-12) * self.logit_scale
        return tf.matmul(features, classifiers, transpose_b=True)

    def compute_output_shape(self, features_shape, classifiers_shape):
        return (features_shape[0], classifiers_shape[0])

    def get_config(self):
        return {**super().get_config(), "cosine": self.cosine, "scale": self.scale}


@keras.saving.register_keras_serializable(package="yt8m")
class LabelDotProduct(keras.layers.Layer):
    """`(features x (B, H), classifiers W (C, H)) -> sigmoid(LabelLogits(x, W) + b)` (B, C), b a learned
    per-class bias starting at `prior_logit(prior)` (every class at probability `prior` at step 0)."""

    def __init__(self, prior: float = 0.5, cosine: bool = False, scale: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        self.prior = prior
        self.cosine = cosine
        self.scale = scale
        self.logits = LabelLogits(cosine, scale, name="logits")

    def build(self, features_shape, classifiers_shape):
        self.logits.build(features_shape, classifiers_shape)
        self.bias = self.add_weight(name="bias", shape=(classifiers_shape[0],),
                                    initializer=keras.initializers.Constant(prior_logit(self.prior)))

    def call(self, features, classifiers):
        return tf.sigmoid(self.logits(features, classifiers) + self.bias)

    def compute_output_shape(self, features_shape, classifiers_shape):
        return (features_shape[0], classifiers_shape[0])

    def get_config(self):
        return {**super().get_config(), "prior": self.prior, "cosine": self.cosine, "scale": self.scale}


@keras.saving.register_keras_serializable(package="yt8m")
class ClassBias(keras.layers.Layer):
    """logits (B, C) -> logits + b, b a learned per-class bias starting at `prior_logit(prior)`."""

    def __init__(self, prior: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.prior = prior

    def build(self, logits_shape):
        self.bias = self.add_weight(name="bias", shape=(logits_shape[-1],),
                                    initializer=keras.initializers.Constant(prior_logit(self.prior)))

    def call(self, logits):
        return logits + self.bias

    def get_config(self):
        return {**super().get_config(), "prior": self.prior}
