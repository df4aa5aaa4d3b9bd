"""Feature augmentation: Gaussian noise on a random share of the frame features (seed 003 Fig.5), the layer
`models.layers.noise.MaskedGaussianNoise` put into a built or loaded model.

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

from models.layers.inputs import Dequantize
from models.layers.noise import MaskedGaussianNoise
from yt8m.errors import UserError


def add_input_noise(model: keras.Model, stddev: float, mask_rate: float = 0.5, seed: int | None = None) -> keras.Model:
    """The same model (same layer objects and weights) with MaskedGaussianNoise after its Dequantize layer.

    A model already carrying the noise layer gets its settings replaced. Raises
    UserError for a model without a Dequantize layer (video-level features).
    """
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
