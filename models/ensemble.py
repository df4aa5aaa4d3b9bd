"""Ensembles as a model: trained member models combined by one layer.

`build_ensemble(members, ...)` takes BUILT (usually loaded) Keras models, never
file names: the loading of trained runs lives in `yt8m/ensemble.py`. It is not in
the registry because its members are trained runs, not hyper-parameters; the
result is an ordinary Keras model (same inputs as the members, (B, C)
probabilities out) that saves, reloads and predicts like any other.

Combination (`MemberCombination`):
  * mean: sum_m w_m p_m with w normalised to sum 1;
  * rank: sum_m w_m r_m(p_m), r_m the member's per-class rank, i.e. where p lies in
    the member's score distribution for that class on a reference split (Q sorted
    quantiles per class, linear interpolation, in [0, 1]). Ranks computed this way
    do not depend on the batch, so eval, inference and a SavedModel agree; the
    quantiles are arrays computed offline and travel as weights. A hair of the mean
    probability (1e-4) is added so that scores beyond the reference range keep
    their order instead of tying.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models.layers.initial_arrays import check_initial_arrays, constant_or

METHODS = ("mean", "rank")
RANK_TIE_BREAK = 1e-4


@keras.saving.register_keras_serializable(package="yt8m")
class MemberCombination(keras.layers.Layer):
    """List of M (B, C) probabilities -> (B, C): weighted mean of probabilities or of per-class ranks.

    `member_weights` (M,) and `quantiles` (M, C, Q) initialise non-trainable weights
    (never the config); the weights are normalised to sum 1 on every call.
    """

    def __init__(self, num_members: int, num_classes: int, method: str = "mean", num_quantiles: int = 0, *,
                 member_weights=None, quantiles=None, **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"ensemble method {method!r} is not one of {', '.join(METHODS)}")
        if method == "rank" and num_quantiles < 2:
            raise ValueError("the rank method needs reference quantiles (at least 2 per class)")
        self.num_members, self.num_classes = int(num_members), int(num_classes)
        self.method, self.num_quantiles = method, int(num_quantiles) if method == "rank" else 0
        check_initial_arrays(("member_weights", member_weights, (self.num_members,)),
                             ("quantiles", quantiles, (self.num_members, self.num_classes, self.num_quantiles)))
        if member_weights is not None and (np.min(member_weights) < 0 or np.sum(member_weights) <= 0):
            raise ValueError(f"member weights must be non-negative and not all zero, got {member_weights}")
        self._initial = {"member_weights": member_weights, "quantiles": quantiles}

    def build(self, input_shape=None):
        self.member_weights = self.add_weight(name="member_weights", shape=(self.num_members,), trainable=False,
                                              initializer=constant_or(self._initial["member_weights"], "ones"))
        if self.method == "rank":
            self.quantiles = self.add_weight(
                name="quantiles", shape=(self.num_members, self.num_classes, self.num_quantiles),
                trainable=False, initializer=constant_or(self._initial["quantiles"], "zeros"))
        self._initial = {"member_weights": None, "quantiles": None}

    def call(self, probabilities):
        stacked = tf.stack([tf.cast(p, tf.float32) for p in probabilities])        # (M, B, C)
        weights = self.member_weights / tf.reduce_sum(self.member_weights)
        if self.method == "rank":
            scores = per_class_ranks(stacked, self.quantiles)
            tie_break = RANK_TIE_BREAK * tf.reduce_mean(stacked, axis=0)
        else:
            scores, tie_break = stacked, 0.0
        return tf.einsum("m,mbc->bc", weights, scores) + tie_break

    def compute_output_spec(self, probabilities):
        return keras.KerasTensor(probabilities[0].shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "num_members": self.num_members, "num_classes": self.num_classes,
                "method": self.method, "num_quantiles": self.num_quantiles}


def per_class_ranks(probabilities, quantiles):
    """(M, B, C) probabilities, (M, C, Q) sorted reference quantiles -> (M, B, C) ranks in [0, 1].

    A score's rank is its position among the class's quantiles, linearly
    interpolated between neighbours: q_0 -> 0, q_{Q-1} -> 1, clipped outside.
    """
    num_quantiles = tf.shape(quantiles)[-1]
    values = tf.transpose(probabilities, [0, 2, 1])                                # (M, C, B)
    above = tf.searchsorted(quantiles, values, side="right")                      # quantiles <= value
    low = tf.clip_by_value(above - 1, 0, num_quantiles - 1)
    high = tf.clip_by_value(above, 0, num_quantiles - 1)
    q_low = tf.gather(quantiles, low, batch_dims=2)
    q_high = tf.gather(quantiles, high, batch_dims=2)
    gap = q_high - q_low
    fraction = tf.where(gap > 0, (values - q_low) / tf.where(gap > 0, gap, 1.0), 0.0)
    position = tf.cast(low, tf.float32) + tf.clip_by_value(fraction, 0.0, 1.0)
    ranks = position / tf.cast(tf.maximum(num_quantiles - 1, 1), tf.float32)
    return tf.transpose(ranks, [0, 2, 1])


def reference_quantiles(probabilities: np.ndarray, num_quantiles: int = 101) -> np.ndarray:
    """(N, C) reference probabilities of one member -> (C, Q) per-class quantiles (numpy, offline)."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError(f"need (examples, classes) reference probabilities, got {probabilities.shape}")
    levels = np.linspace(0.0, 1.0, num_quantiles)
    return np.quantile(probabilities, levels, axis=0).T.astype(np.float32)


def build_ensemble(members, *, member_weights=None, method: str = "mean", quantiles=None,
                   name: str = "Ensemble") -> keras.Model:
    """One Keras model over built `members` that take the same inputs and give (B, C) probabilities.

    Each member becomes a sub-model named member_<i>; `member_weights` (M,) default
    equal; `quantiles` (M, C, Q) from `reference_quantiles` for method "rank".
    """
    members = list(members)
    if not members:
        raise ValueError("an ensemble needs at least one member model")
    signatures = [{key: (tuple(t.shape[1:]), t.dtype) for key, t in _input_dict(m).items()} for m in members]
    if any(s != signatures[0] for s in signatures[1:]):
        raise ValueError(f"ensemble members must take the same inputs; got {signatures}")
    classes = {int(m.output.shape[-1]) for m in members}
    if len(classes) != 1:
        raise ValueError(f"ensemble members must predict the same classes; got sizes {sorted(classes)}")
    inputs = {key: keras.Input(shape, dtype=dtype, name=key) for key, (shape, dtype) in signatures[0].items()}
    outputs = []
    for index, member in enumerate(members):
        wrapped = keras.Model(_input_dict(member), member.output, name=f"member_{index}")
        outputs.append(wrapped(inputs))
    num_quantiles = int(np.shape(quantiles)[-1]) if quantiles is not None else 0
    combined = MemberCombination(len(members), classes.pop(), method, num_quantiles, member_weights=member_weights,
                                 quantiles=quantiles, name="combination")(outputs)
    return keras.Model(inputs, combined, name=name)


def _input_dict(model: keras.Model) -> dict:
    if not isinstance(model.input, dict):
        raise ValueError(f"member {model.name} must take a dict of inputs (the models/ contract)")
    return model.input
