"""linrongc/youtube-8m NeXtVLAD variables -> the registry's NeXtVLADModel / NeXtVLADMixture.

`load_linrongc_weights(model, variables)` takes {variable name: array} as linrongc's
checkpoint names them (e.g. from `tf.train.load_checkpoint(path)`; a leading "tower/" is
dropped) and sets every weight of a two-stream model with a logistic classifier (the
mixture: mixture_gate="video", no Attention-GRU, linrongc's branches in order).
linrongc flattens each NeXtVLAD feature-major (f * K + k), we cluster-major (k * F + f):
its vlad_bn and hidden-layer rows are permuted accordingly.
"""
from __future__ import annotations

from typing import Mapping

import keras
import numpy as np

BN_NAMES = ("gamma", "beta", "moving_mean", "moving_variance")  # keras BatchNormalization weight order


def _set_bn(layer: keras.layers.Layer, v: Mapping[str, np.ndarray], scope: str, order=None):
    layer.set_weights([v[f"{scope}/{name}"] if order is None else v[f"{scope}/{name}"][order] for name in BN_NAMES])


def _cluster_major(clusters: int, group_size: int) -> np.ndarray:
    """Index into linrongc's flattened NeXtVLAD (f * K + k) for each of ours (k * F + f)."""
    return (np.arange(group_size)[None, :] * clusters + np.arange(clusters)[:, None]).ravel()


def _set_nextvlad(layer, v: Mapping[str, np.ndarray], scope: str) -> np.ndarray:
    layer.expand.set_weights([v[f"{scope}/fully_connected/weights"], v[f"{scope}/fully_connected/biases"]])
    layer.group_attention.set_weights([v[f"{scope}/fully_connected_1/weights"],
                                       v[f"{scope}/fully_connected_1/biases"]])
    layer.assignment.set_weights([v[f"{scope}/cluster_weights"]])
    _set_bn(layer.assignment_norm, v, f"{scope}/cluster_bn")
    layer.centres.assign(v[f"{scope}/cluster_weights2"][0].T)  # (1, F, K) -> (K, F)
    order = _cluster_major(layer.clusters, layer.group_size)
    _set_bn(layer.output_norm, v, f"{scope}/vlad_bn", order)
    return order


def _set_branch(model: keras.Model, v: Mapping[str, np.ndarray], scope: str, vlad_scopes: tuple[str, str],
                prefix: str, classifier_name: str):
    rgb = _set_nextvlad(model.get_layer(f"{prefix}rgb_nextvlad"), v, f"{scope}{vlad_scopes[0]}")
    audio = _set_nextvlad(model.get_layer(f"{prefix}audio_nextvlad"), v, f"{scope}{vlad_scopes[1]}")
    rows = np.concatenate([rgb, len(rgb) + audio])
    model.get_layer(f"{prefix}hidden").set_weights([v[f"{scope}hidden1_weights"][rows]])
    _set_bn(model.get_layer(f"{prefix}hidden_bn"), v, f"{scope}hidden1_bn")
    gating = model.get_layer(f"{prefix}gating")
    gating.squeeze.set_weights([v[f"{scope}gating_weights_1"]])
    _set_bn(gating.squeeze_norm, v, f"{scope}gating_bn")
    gating.excite.set_weights([v[f"{scope}gating_weights_2"]])
    model.get_layer(classifier_name).set_weights([v[f"{scope}fully_connected/weights"],
                                                  v[f"{scope}fully_connected/biases"]])


def load_linrongc_weights(model: keras.Model, variables: Mapping[str, np.ndarray]) -> None:
    """Set `model`'s weights from linrongc's NeXtVLADModel or MixNeXtVladModel variables."""
    v = {name.removeprefix("tower/"): np.asarray(value) for name, value in variables.items()}
    names = {layer.name for layer in model.layers}
    if "mixture" not in names:
        _set_branch(model, v, "", ("video_VLAD", "audio_VLAD"), "", "predictions")
        return
    if "attention_gru" in names or "mean_frame" not in names:
        raise ValueError("linrongc's MixNeXtVladModel maps onto NeXtVLADMixture with mixture_gate='video' "
                         "and attention_gru=False")
    prefixes = [f"branch{i}_" for i in range(3) if f"branch{i}_rgb_nextvlad" in names]
    for index, prefix in enumerate(prefixes):
        _set_branch(model, v, f"branch_{index}/", ("video_vlad", "audio_vlad"), prefix, f"{prefix}classifier")
    mixture = model.get_layer("mixture")
    _set_bn(mixture.gate_norm, v, "mix_weights_bn")
    mixture.gate.set_weights([v["mix_weights/weights"], v["mix_weights/biases"]])
