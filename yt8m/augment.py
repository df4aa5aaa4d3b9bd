"""Feature augmentation: Gaussian noise on a random share of the frame features (seed 003 Fig.5).

Where it applies: inside the model, right after its `Dequantize` layer (frames
stay uint8 in the input pipeline, so noise on floats belongs on the device), as
a layer active only when `training=True`. Because the paper adds it in the
finetune stage, whose model is loaded rather than built, training inserts it
into any loaded or built frame-level model with `add_input_noise` when
`--noise_std > 0`; the layer reuses every other layer (and its weights) of the
model, and does nothing at inference, so the saved model predicts as before.
In DBoF models the noise falls on every frame of the video once, before the
frames the sampler drew are picked (it passes draw counts, models/layers/
frame_sampling.py), so a frame drawn twice carries the same noise twice.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from yt8m.errors import UserError


@keras.saving.register_keras_serializable(package="yt8m")
class MaskedGaussianNoise(keras.layers.Layer):
    """Training only: x + N(0, stddev^2) * mask, mask ~ Bernoulli(mask_rate) per element (seed 003 Fig.5)."""

    def __init__(self, stddev: float, mask_rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0 or not 0.0 <= mask_rate <= 1.0:
            raise ValueError(f"need stddev >= 0 and mask_rate in [0, 1], got {stddev}, {mask_rate}")
        self.stddev = stddev
        self.mask_rate = mask_rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0 or self.mask_rate == 0:
            return inputs
        shape = tf.shape(inputs)
        noise = keras.random.normal(shape, stddev=self.stddev, dtype=inputs.dtype, seed=self.seed_generator)
        keep = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator) < self.mask_rate
        return inputs + tf.where(keep, noise, tf.zeros_like(noise))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "mask_rate": self.mask_rate, "seed": self.seed}


def add_input_noise(model: keras.Model, stddev: float, mask_rate: float = 0.5, seed: int | None = None) -> keras.Model:
    """The same model (same layer objects and weights) with MaskedGaussianNoise after its Dequantize layer.

    A model already carrying the noise layer gets its settings replaced. Raises
    UserError for a model without a Dequantize layer (video-level features).
    """
    from models.layers.inputs import Dequantize

    existing = [layer for layer in model.layers if isinstance(layer, MaskedGaussianNoise)]
    if existing:
        for layer in existing:
            layer.stddev, layer.mask_rate = stddev, mask_rate
        return model
    if not any(isinstance(layer, Dequantize) for layer in model.layers):
        raise UserError(f"--noise_std applies to frame features; model {model.name} has no Dequantize layer "
                        f"to add noise after (use a frame-level model with --frame_features, or --noise_std=0)")

    def clone(layer):
        if isinstance(layer, Dequantize):
            return keras.Sequential([layer, MaskedGaussianNoise(stddev, mask_rate, seed, name="input_noise")],
                                    name=f"{layer.name}_with_noise")
        return layer

    return keras.models.clone_model(model, clone_function=clone)
