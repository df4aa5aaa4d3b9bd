"""Inception-I3D (Carreira & Zisserman 2017): Inception-v1 inflated to 3-D, channels last, Keras 3.

`inception_i3d_features(x, ...)` applies Conv3d_1a_7x7 ... Mixed_5c to a float clip
(B, T, H, W, 3) in [-1, 1] and returns the Mixed_5c features; `after` lets a caller
transform the features after any endpoint (KSSNet's lateral connections). Every
layer is a stock Keras layer named after the endpoint (`Mixed_4f_Branch_1_Conv3d_0b_3x3_conv`),
so `load_inflated_weights` can fill them from arrays: 2-D Inception-v1 kernels are
inflated (repeated over time, divided by its length), 3-D ones copied. The arrays
come from a file the user supplies (yt8m reads it); nothing is downloaded.
"""
from __future__ import annotations

from typing import Callable, Mapping

import keras
import numpy as np

# (Branch_0 1x1, Branch_1 1x1 -> 3x3, Branch_2 1x1 -> 3x3, Branch_3 pool -> 1x1) output channels.
MIXED_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
ENDPOINTS = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
             "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
             "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")
BN_EPSILON = 1e-3


def check_endpoints(endpoints) -> None:
    """ValueError naming the valid endpoints when one is unknown."""
    unknown = [e for e in endpoints if e not in ENDPOINTS]
    if unknown:
        raise ValueError(f"unknown I3D endpoint(s) {unknown}; valid: {', '.join(ENDPOINTS)}")


def scaled(channels: int, width_multiplier: float) -> int:
    """Channels of a layer under the width multiplier (at least 1)."""
    return max(1, int(round(channels * width_multiplier)))


def endpoint_channels(endpoint: str, width_multiplier: float = 1.0) -> int:
    """Output channels of an endpoint: 64, 192, 480 (Mixed_3c), 832 (Mixed_4f), 1024 (Mixed_5c) at width 1."""
    if endpoint in MIXED_CHANNELS:
        c = [scaled(v, width_multiplier) for v in MIXED_CHANNELS[endpoint]]
        return c[0] + c[2] + c[4] + c[5]
    order = ENDPOINTS[: ENDPOINTS.index(endpoint) + 1]
    convs = [e for e in order if e.startswith("Conv3d") or e.startswith("Mixed")]
    last = convs[-1]
    if last in MIXED_CHANNELS:
        return endpoint_channels(last, width_multiplier)
    return scaled({"Conv3d_1a_7x7": 64, "Conv3d_2b_1x1": 64, "Conv3d_2c_3x3": 192}[last], width_multiplier)


def unit3d(x, channels: int, kernel, name: str, strides=(1, 1, 1)):
    """Conv3D (same padding, no bias) + BatchNorm + ReLU, the I3D unit."""
    x = keras.layers.Conv3D(channels, kernel, strides=strides, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def mixed(x, name: str, width_multiplier: float):
    """An inflated Inception module: four branches concatenated on the channel axis."""
    c = [scaled(v, width_multiplier) for v in MIXED_CHANNELS[name]]
    b0 = unit3d(x, c[0], 1, f"{name}_Branch_0_Conv3d_0a_1x1")
    b1 = unit3d(unit3d(x, c[1], 1, f"{name}_Branch_1_Conv3d_0a_1x1"), c[2], 3, f"{name}_Branch_1_Conv3d_0b_3x3")
    b2 = unit3d(unit3d(x, c[3], 1, f"{name}_Branch_2_Conv3d_0a_1x1"), c[4], 3, f"{name}_Branch_2_Conv3d_0b_3x3")
    b3 = keras.layers.MaxPooling3D(3, strides=1, padding="same", name=f"{name}_Branch_3_MaxPool3d_0a_3x3")(x)
    b3 = unit3d(b3, c[5], 1, f"{name}_Branch_3_Conv3d_0b_1x1")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([b0, b1, b2, b3])


def inception_i3d_features(x, width_multiplier: float = 1.0,
                           after: Mapping[str, Callable] | None = None, final_endpoint: str = "Mixed_5c"):
    """Conv3d_1a_7x7 ... `final_endpoint` on a float clip (B, T, H, W, 3); `after[endpoint](x)` runs after
    that endpoint.

    Strides as the original: /2 in space and time at Conv3d_1a, /2 in space at
    MaxPool3d_2a and 3a, /2 in all three at MaxPool3d_4a and 5a (T/8, H/32, W/32
    at Mixed_5c). A `final_endpoint` before Mixed_5c truncates the network.
    """
    after = after or {}
    check_endpoints([final_endpoint, *after])
    unused = [e for e in after if ENDPOINTS.index(e) > ENDPOINTS.index(final_endpoint)]
    if unused:
        raise ValueError(f"endpoints {unused} come after final_endpoint={final_endpoint!r}")
    w = width_multiplier
    for endpoint in ENDPOINTS[: ENDPOINTS.index(final_endpoint) + 1]:
        if endpoint == "Conv3d_1a_7x7":
            x = unit3d(x, scaled(64, w), 7, endpoint, strides=(2, 2, 2))
        elif endpoint == "Conv3d_2b_1x1":
            x = unit3d(x, scaled(64, w), 1, endpoint)
        elif endpoint == "Conv3d_2c_3x3":
            x = unit3d(x, scaled(192, w), 3, endpoint)
        elif endpoint in ("MaxPool3d_2a_3x3", "MaxPool3d_3a_3x3"):
            x = keras.layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), padding="same", name=endpoint)(x)
        elif endpoint == "MaxPool3d_4a_3x3":
            x = keras.layers.MaxPooling3D(3, strides=2, padding="same", name=endpoint)(x)
        elif endpoint == "MaxPool3d_5a_2x2":
            x = keras.layers.MaxPooling3D(2, strides=2, padding="same", name=endpoint)(x)
        else:
            x = mixed(x, endpoint, w)
        if endpoint in after:
            x = after[endpoint](x)
    return x


@keras.saving.register_keras_serializable(package="yt8m")
class ClipPreprocess(keras.layers.Layer):
    """uint8 RGB clip -> float32 in [-1, 1] (I3D's input range), on the device."""

    def call(self, clip):
        return keras.ops.cast(clip, "float32") / 127.5 - 1.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, clip):
        return keras.KerasTensor(clip.shape, dtype="float32")


def load_inflated_weights(model: keras.Model, arrays: Mapping[str, np.ndarray]) -> int:
    """Fills I3D layers from `arrays` keyed `<layer name>/<weight>` and returns how many weights it set.

    Weights: `kernel` of a `..._conv` layer (2-D (kh, kw, cin, cout) Inception-v1
    kernels are inflated to (kt, kh, kw, cin, cout) / kt; 3-D ones are copied),
    `gamma`, `beta`, `moving_mean`, `moving_variance` of a `..._bn` layer. A key
    naming no layer of the model, or a shape that cannot fit, raises ValueError.
    """
    layers = {layer.name: layer for layer in model._flatten_layers(include_self=False)}
    loaded = 0
    for key, value in arrays.items():
        layer_name, _, weight_name = key.rpartition("/")
        layer = layers.get(layer_name)
        variable = next((v for v in (layer.weights if layer else []) if v.name == weight_name), None)
        if variable is None:
            raise ValueError(f"inflated weights: {key!r} names no weight of the model (keys are "
                             f"'<layer>/<weight>', e.g. 'Conv3d_1a_7x7_conv/kernel')")
        value = np.asarray(value, np.float32)
        shape = tuple(variable.shape)
        if value.ndim == 4 and len(shape) == 5 and value.shape == shape[1:]:
            value = np.repeat(value[None], shape[0], axis=0) / shape[0]   # inflation (I3D Sec. 2.4)
        if value.shape != shape:
            raise ValueError(f"inflated weights: {key!r} has shape {value.shape}, the model's is {shape} "
                             f"(check the width multiplier)")
        variable.assign(value)
        loaded += 1
    return loaded
