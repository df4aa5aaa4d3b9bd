"""CMA (Eq.6-10), the self-attention baseline and SNet."""
import numpy as np
import pytest
import tensorflow as tf

from models.layers.cma import CrossModalityAttention, SelfAttention, masked_softmax, normalize_attention
from models.layers.snet import SNet


def features_and_lengths(seed=0, lengths=(6, 1, 0, 4), steps=6, width=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(len(lengths), steps, width)).astype("float32"), np.array(lengths, "int32")


def test_normalised_attention_sums_to_one_over_valid_steps_with_a_uniform_fallback():
    scores = np.array([[[1.0, 0.0], [3.0, 0.0], [7.0, 5.0]]], "float32")  # step 2 is padding
    a = np.asarray(normalize_attention(scores, tf.sequence_mask([2], 3)))
    np.testing.assert_allclose(a[0, :, 0], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(a[0, :, 1], [0.5, 0.5, 0.0])  # all-zero valid scores: uniform
    empty = np.asarray(normalize_attention(scores, tf.sequence_mask([0], 3)))
    assert np.all(empty == 0)
    soft = np.asarray(masked_softmax(scores, tf.sequence_mask([2], 3)))
    np.testing.assert_allclose(soft[0, :, 0], [np.exp(1) / (np.exp(1) + np.exp(3)), np.exp(3) / (np.exp(1) + np.exp(3)), 0],
                               rtol=1e-6)


@pytest.mark.parametrize("head", ["cma", "self"])
def test_attention_sums_to_one_over_valid_frames_and_ignores_padding(head):
    x, n = features_and_lengths()
    embeddings = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    layer = (CrossModalityAttention(3, (8, 4)) if head == "cma" else SelfAttention(3, (8, 4)))
    args = (embeddings,) if head == "cma" else ()
    probabilities, attention = (np.asarray(t) for t in layer(x, n, *args, training=False))
    valid = np.arange(6)[None, :] < n[:, None]
    np.testing.assert_allclose(attention.sum(axis=1)[n > 0], 1.0, rtol=1e-5)
    assert np.all(attention[~valid] == 0) and np.all(attention[n == 0] == 0)
    garbage = np.where(valid[..., None], x, 100.0).astype("float32")
    again, attention_again = (np.asarray(t) for t in layer(garbage, n, *args, training=False))
    np.testing.assert_allclose(again, probabilities, rtol=1e-5)
    np.testing.assert_allclose(attention_again, attention, rtol=1e-5, atol=1e-7)


def test_cma_is_relu_cosine_attention_and_per_class_classifiers():
    x, n = features_and_lengths(seed=3, lengths=(6, 3), steps=6)
    e = np.abs(np.random.default_rng(4).normal(size=(3, 4))).astype("float32")  # ASGE embeddings are >= 0
    layer = CrossModalityAttention(3, (8, 4))
    probabilities, attention = (np.asarray(t) for t in layer(x, n, e, training=False))
    projected = np.asarray(layer.transform(x, tf.sequence_mask(n, 6), False))
    unit = projected / np.maximum(np.linalg.norm(projected, axis=-1, keepdims=True), 1e-12)
    z = np.maximum(unit @ (e / np.linalg.norm(e, axis=1, keepdims=True)).T, 0)  # (B, T, C)
    z = z * (np.arange(6)[None, :, None] < n[:, None, None])
    np.testing.assert_allclose(attention, z / z.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    h = np.einsum("btc,btf->bcf", attention, x)  # h_k = sum_i a_k^i I^i (Eq.9)
    w, b = np.asarray(layer.class_kernel), np.asarray(layer.class_bias)
    np.testing.assert_allclose(probabilities, 1 / (1 + np.exp(-(np.einsum("bcf,cf->bc", h, w) + b))), rtol=1e-5)


def test_snet_squeezes_time_and_counts_valid_steps():
    x, n = features_and_lengths(lengths=(40, 17, 1, 0), steps=40)
    out, steps = SNet(filters=6, num_blocks=4)(x, n, training=False)
    assert tuple(out.shape) == (4, 3, 6)  # 40 -> 20 -> 10 -> 5 -> 3
    np.testing.assert_array_equal(steps, [3, 2, 1, 0])  # ceil(n / 16)
    assert np.all(np.asarray(out)[1, 2:] == 0) and np.all(np.asarray(out)[3] == 0)
