"""CMA (Eq.6-11) and the paper's self-attention baseline by hand on tiny inputs, SNet, the attention maps."""
import numpy as np
import pytest
import tensorflow as tf

from models import registry
from models.cma import attention_maps
from models.layers.cma import CrossModalityAttention, SelfAttention, normalize_attention
from models.layers.snet import SNet

BN_SCALE = 1 / np.sqrt(1 + 1e-3)  # a fresh BatchNormalization in inference mode: x / sqrt(1 + eps)


def features_and_lengths(seed=0, lengths=(6, 1, 0, 4), steps=6, width=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(len(lengths), steps, width)).astype("float32"), np.array(lengths, "int32")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_eq8_normalised_attention_sums_to_one_over_valid_steps_with_a_uniform_fallback():
    scores = np.array([[[1.0, 0.0], [3.0, 0.0], [7.0, 5.0]]], "float32")  # step 2 is padding
    a = np.asarray(normalize_attention(scores, tf.sequence_mask([2], 3)))
    np.testing.assert_allclose(a[0, :, 0], [0.25, 0.75, 0.0])
    np.testing.assert_allclose(a[0, :, 1], [0.5, 0.5, 0.0])  # all-zero valid scores: uniform
    empty = np.asarray(normalize_attention(scores, tf.sequence_mask([0], 3)))
    assert np.all(empty == 0)


def _identity_cma():
    """A CMA head with CMT = one identity Dense (+ fresh BN, ReLU) and hand-set classifiers."""
    layer = CrossModalityAttention(3, (2,))
    features = np.array([[[1.0, 0.0], [1.0, 1.0], [5.0, 5.0]]], "float32")   # step 2 is padding
    embeddings = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]], "float32")
    layer(features, np.array([2]), embeddings, training=False)
    layer.transforms[0].kernel.assign(np.eye(2, dtype="float32"))
    layer.class_kernel.assign(np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]], "float32"))
    layer.class_bias.assign(np.array([0.5, 0.0, -1.0], "float32"))
    return layer, features, embeddings


def test_eq6_to_eq10_by_hand():
    layer, features, embeddings = _identity_cma()
    # Eq.6: I_s = ReLU(BN(I W)) = I / sqrt(1 + eps) with W = identity and a fresh BN.
    projected = np.asarray(layer.transform(features, tf.sequence_mask([2], 3), False))
    np.testing.assert_allclose(projected[0, :2], features[0, :2] * BN_SCALE, rtol=1e-6)
    probabilities, attention = (np.asarray(t) for t in layer(features, np.array([2]), embeddings, training=False))
    # Eq.7: z = ReLU(cos(I_s^i, e_k)): step 0 (1, 0): cos (1, 0, -1); step 1 (1, 1): (c, c, -c), c = 1/sqrt(2).
    c = 1 / np.sqrt(2)
    # Eq.8: class 0: (1, c) / (1 + c); class 1: (0, c) / c; class 2: both 0 -> uniform fallback.
    expected = np.array([[1 / (1 + c), 0.0, 0.5], [c / (1 + c), 1.0, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(attention[0], expected, rtol=1e-5, atol=1e-7)
    # Eq.9: h_k = sum_i a_k^i I^i on the backbone features (not I_s).
    h = np.array([[1.0, c / (1 + c)], [1.0, 1.0], [1.0, 0.5]])
    # Eq.10: y_k = sigmoid(w_k . h_k + b_k) with w = [[1, 2], [0, -1], [3, 1]], b = (0.5, 0, -1).
    logits = np.array([1 + 2 * h[0, 1] + 0.5, -1.0, 3 + 0.5 - 1])
    np.testing.assert_allclose(probabilities[0], sigmoid(logits), rtol=1e-5)
    np.testing.assert_allclose(attention[0].T @ features[0], h, rtol=1e-5)


def test_papers_self_attention_is_sigmoid_of_a_1x1_conv_then_eq8_to_eq10():
    layer = SelfAttention(2)
    features = np.array([[[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]]], "float32")   # step 2 is padding
    layer(features, np.array([2]), training=False)
    assert not layer.transforms  # no CMT: the conv reads the visual features I
    layer.query_kernel.assign(np.array([[1.0, 0.0], [0.5, -1.0]], "float32"))  # (F, C)
    layer.query_bias.assign(np.array([0.0, 1.0], "float32"))
    layer.class_kernel.assign(np.array([[1.0, 1.0], [2.0, 0.0]], "float32"))
    layer.class_bias.assign(np.array([0.0, -1.0], "float32"))
    probabilities, attention = (np.asarray(t) for t in layer(features, np.array([2]), training=False))
    # z_k^i = sigmoid(I^i . q_k + c_k): step 0: (sigmoid(1), sigmoid(1)); step 1: (sigmoid(1), sigmoid(-1)).
    z = sigmoid(np.array([[1.0, 1.0], [1.0, -1.0]]))
    a = z / z.sum(axis=0)                                         # Eq.8
    np.testing.assert_allclose(attention[0, :2], a, rtol=1e-5)
    assert np.all(attention[0, 2] == 0)
    np.testing.assert_allclose(a[:, 0], [0.5, 0.5])
    h = a.T @ features[0, :2]                                     # Eq.9, (C, F)
    np.testing.assert_allclose(probabilities[0], sigmoid((h * [[1, 1], [2, 0]]).sum(1) + [0, -1]), rtol=1e-5)


@pytest.mark.parametrize("head", ["cma", "self"])
def test_attention_sums_to_one_over_valid_frames_and_ignores_padding(head):
    x, n = features_and_lengths()
    embeddings = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    layer = CrossModalityAttention(3, (8, 4)) if head == "cma" else SelfAttention(3)
    args = (embeddings,) if head == "cma" else ()
    probabilities, attention = (np.asarray(t) for t in layer(x, n, *args, training=False))
    valid = np.arange(6)[None, :] < n[:, None]
    np.testing.assert_allclose(attention.sum(axis=1)[n > 0], 1.0, rtol=1e-5)
    assert np.all(attention[~valid] == 0) and np.all(attention[n == 0] == 0)
    garbage = np.where(valid[..., None], x, 100.0).astype("float32")
    again, attention_again = (np.asarray(t) for t in layer(garbage, n, *args, training=False))
    np.testing.assert_allclose(again, probabilities, rtol=1e-5)
    np.testing.assert_allclose(attention_again, attention, rtol=1e-5, atol=1e-7)


def _frames(lengths, steps, width=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"frames": rng.integers(0, 256, (len(lengths), steps, width)).astype("uint8"),
            "num_frames": np.array(lengths, "int32")}


def test_eq11_multi_scale_is_the_mean_of_the_scales_cma_probabilities():
    model = registry.build("CmaSNetModel", num_classes=5, feature_size=12, filters=8, transformer_units=8,
                           embedding_dim=4, scales=3)
    heads = [layer.name for layer in model.layers if layer.name.startswith("attention")]
    assert heads == ["attention_block2", "attention_block3", "attention"]
    import keras
    probe = keras.Model(model.input, [model.get_layer(h).output[0] for h in heads])
    inputs = _frames([40, 9], 40)
    per_scale = np.stack([np.asarray(p) for p in probe(inputs, training=False)])
    assert np.abs(per_scale[0] - per_scale[2]).max() > 1e-4  # the scales differ ...
    np.testing.assert_allclose(np.asarray(model(inputs, training=False)), per_scale.mean(axis=0), rtol=1e-5)
    with pytest.raises(ValueError, match="scales"):
        registry.build("CmaSNetModel", num_classes=5, feature_size=12, filters=8, transformer_units=8,
                       embedding_dim=4, scales=5)


def test_attention_maps_spread_each_step_over_its_frames():
    model = registry.build("CmaSNetModel", num_classes=5, feature_size=12, filters=8, transformer_units=8,
                           embedding_dim=4, scales=2)
    inputs = _frames([40, 17, 5], 40)
    maps = attention_maps(model, inputs)
    assert set(maps) == {"attention_block3", "attention"}
    assert all(m.shape == (3, 40, 5) and m.dtype == np.float32 for m in maps.values())
    coarse = maps["attention"]  # stride 16: video 1 (17 frames) has steps [0, 16) and [16, 17)
    np.testing.assert_allclose(coarse[1, :16], np.repeat(coarse[1, :1], 16, axis=0))
    np.testing.assert_allclose(coarse[1, 0] + coarse[1, 16], 1.0, rtol=1e-5)
    assert np.all(coarse[1, 17:] == 0) and np.all(maps["attention_block3"][2, 5:] == 0)
    np.testing.assert_allclose(maps["attention_block3"][0].reshape(5, 8, 5).sum(axis=0), 1.0, rtol=1e-5)
    fc = attention_maps(registry.build("SelfAttentionFCModel", num_classes=5, feature_size=12, hidden_size=8),
                        inputs)
    assert list(fc) == ["attention"] and fc["attention"].shape == (3, 40, 5)
    np.testing.assert_allclose(fc["attention"][1].sum(axis=0), 1.0, rtol=1e-5)


def test_five_frame_segment_leaves_one_snet_step_and_attention_identically_one():
    model = registry.build("CmaSNetModel", num_classes=5, feature_size=12, filters=8, transformer_units=8,
                           embedding_dim=4, scales=1)
    maps = attention_maps(model, _frames([5, 5], 5))
    np.testing.assert_array_equal(maps["attention"], np.ones((2, 5, 5), "float32"))


def test_snet_squeezes_time_and_counts_valid_steps():
    x, n = features_and_lengths(lengths=(40, 17, 1, 0), steps=40)
    out, steps = SNet(filters=6, num_blocks=4)(x, n, training=False)
    assert tuple(out.shape) == (4, 3, 6)  # 40 -> 20 -> 10 -> 5 -> 3
    np.testing.assert_array_equal(steps, [3, 2, 1, 0])  # ceil(n / 16)
    assert np.all(np.asarray(out)[1, 2:] == 0) and np.all(np.asarray(out)[3] == 0)
    layer = SNet(filters=6, num_blocks=4, return_scales=True)
    scales, lengths = layer(x, n, training=False)
    assert [tuple(s.shape) for s in scales] == [(4, 20, 6), (4, 10, 6), (4, 5, 6), (4, 3, 6)]
    np.testing.assert_array_equal(np.stack(lengths), [[20, 9, 1, 0], [10, 5, 1, 0], [5, 3, 1, 0], [3, 2, 1, 0]])
    assert np.all(np.asarray(scales[0])[1, 9:] == 0)


def _batch_norms(layer):
    import keras
    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for sub in getattr(layer, "_layers", []):
        found += _batch_norms(sub)
    return found


@pytest.mark.parametrize("name, params, default_momentum", [
    ("CmaSNetModel", {"filters": 8, "scales": 2}, 0.9), ("SelfAttentionSNetModel", {"filters": 8}, 0.9),
    ("CmaFCModel", {"hidden_size": 8}, 0.99), ("SelfAttentionFCModel", {"hidden_size": 8}, 0.99)])
def test_bn_momentum_reaches_every_batch_norm(name, params, default_momentum):
    if name.startswith("Cma"):
        params = {**params, "transformer_units": 8, "embedding_dim": 4}
    norms = lambda model: [n for layer in model.layers for n in _batch_norms(layer)]  # noqa: E731
    default = norms(registry.build(name, num_classes=5, feature_size=12, **params))
    assert default and all(n.momentum == default_momentum for n in default)
    chosen = norms(registry.build(name, num_classes=5, feature_size=12, bn_momentum=0.5, **params))
    assert len(chosen) == len(default) and all(n.momentum == 0.5 for n in chosen)


def test_snet_moving_statistics_catch_up_within_tens_of_steps():
    # 20 training calls on one batch: the moving mean keeps 0.9^20 = 12% of its start (0) at the default
    # momentum, 0.99^20 = 82% at Keras's, which is what made short runs infer with stale statistics.
    x, n = features_and_lengths(lengths=(40, 40), steps=40, width=6)
    x = x + 3.0
    for momentum, kept in ((0.9, 0.9 ** 20), (0.99, 0.99 ** 20)):
        layer = SNet(filters=4, num_blocks=1, bn_momentum=momentum)
        for _ in range(20):
            layer(x, n, training=True)
        batch_mean = np.asarray(layer.convolutions[0](x)).reshape(-1, 4).mean(axis=0)
        np.testing.assert_allclose(layer.norms[0].moving_mean.numpy(), (1 - kept) * batch_mean, rtol=1e-3, atol=1e-5)
    assert SNet.from_config(layer.get_config()).bn_momentum == 0.99
