"""SRDL on video: CAR (Eq.4-5) and per-class interval erasing (Eq.7-10) by hand, the training-only erased
branch and its loss, the attention maps."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models import registry
from models import srdl
from models.layers.gcn import GCNStack, LabelNodes
from models.layers.srdl import (CategoryAttention, class_max_pool, erase_interval, erase_per_class,
                               normalized_attention)
from yt8m.data import schema
from yt8m.losses import MultiLabelCrossentropy
import model_harness

TINY = {"hidden_size": 8, "gcn_hidden_size": 8, "embedding_dim": 6, "class_block": 7}


def _erased(curves, num_frames, alpha=0.5):
    curves = np.array(curves, np.float32)
    return erase_interval(tf.constant(curves), tf.constant(num_frames, tf.int32), alpha).numpy()


def test_erase_interval_on_hand_made_curves():
    curves = [
        [0.1, 0.4, 0.6, 1.0, 0.7, 0.2, 0.0],   # single peak: its run >= 0.5 is frames 2-4
        [0.9, 0.6, 0.2, 1.0, 0.8, 0.1, 0.0],   # two peaks: only the global one's run (3-4), not 0-1
        [1.0, 0.2, 0.6, 1.0, 0.7, 0.9, 0.1],   # tied peaks: runs {0} and {2..5} both reach 1 -> the widest
        [1.0, 0.6, 0.1, 0.7, 1.0, 0.3, 0.0],   # tied peaks, equally wide runs {0,1} and {3,4} -> the first
        [0.1, 0.3, 0.2, 0.4, 0.45, 0.0, 0.0],  # all below alpha: nothing
        [0.2, 0.6, 0.7, 0.1, 1.0, 1.0, 0.9],   # the peak lies in the padding (3 valid frames): run 1-2
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],   # an empty video: nothing
    ]
    num_frames = [7, 7, 7, 7, 7, 3, 0]
    expected = np.zeros((7, 7), bool)
    expected[0, 2:5] = True
    expected[1, 3:5] = True
    expected[2, 2:6] = True
    expected[3, 0:2] = True
    expected[5, 1:3] = True
    np.testing.assert_array_equal(_erased(curves, num_frames), expected)


def test_erase_interval_alpha_sets_the_interval_width():
    curve = [[0.1, 0.35, 0.6, 1.0, 0.75, 0.4, 0.0]]
    np.testing.assert_array_equal(_erased(curve, [7], alpha=0.3)[0], [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(_erased(curve, [7], alpha=0.7)[0], [0, 0, 0, 1, 1, 0, 0])


def test_normalized_attention_by_hand():
    attention = np.array([[[0.2, 0.4, 0.6, 0.9], [0.5, 0.3, 0.1, 0.8]],   # 3 valid frames
                          [[0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3]]],  # flat curves -> 0
                         np.float32)
    out = normalized_attention(tf.constant(attention), tf.constant([3, 4])).numpy()
    # Each class alone over frames 0-2: class 0 (x - 0.2) / 0.4 = 0, 0.5, 1; class 1 (x - 0.1) / 0.4 = 1, 0.5, 0.
    np.testing.assert_allclose(out[0, :, :3], [[0.0, 0.5, 1.0], [1.0, 0.5, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(out[0, :, 3], [0.0, 0.0])  # padding
    np.testing.assert_array_equal(out[1], np.zeros((2, 4)))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _car(num_classes=3, width=4, label_width=5, seed=0, **kwargs):
    """A built CategoryAttention with random (non-zero) weights everywhere, and its weights by name."""
    layer = CategoryAttention(num_classes, **kwargs)
    layer.build((None, None, width), (None,), (num_classes, label_width))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    return layer, {w.name: w.numpy() for w in layer.weights}


def _numpy_car(w, features, labels):
    """Eq.4-5 in numpy, one example, class and frame at a time, h_c as given (label_norm="none")."""
    batch, steps, _ = features.shape
    channel = np.zeros((batch, len(labels), features.shape[2]))
    spatial = np.zeros((batch, len(labels), steps))
    for b in range(batch):
        u = np.tanh(features[b].max(axis=0) @ w["f_ca_kernel"] + w["f_ca_bias"])
        for c, h in enumerate(labels):
            channel[b, c] = _sigmoid((u * h) @ w["f_c_kernel"] + w["f_c_bias"])
            for t in range(steps):
                s = np.tanh(features[b, t] @ w["f_sa_kernel"] + w["f_sa_bias"])
                spatial[b, c, t] = _sigmoid((s * h) @ w["f_s_kernel"][:, 0] + w["f_s_bias"][0])
    return channel, spatial


def _numpy_logit(w, features, spatial, channel, c):
    """Eq.6 for one class of one example: max_t 0.5 F_t * (SA_t + CA), then w_c . v + b_c."""
    pooled = (0.5 * features * (spatial[:, None] + channel[None, :])).max(axis=0)
    return pooled @ w["kernel"][c] + w["bias"][c]


def _numpy_interval(curve, alpha):
    """The frames of the run >= alpha (normalised) around the curve's global peak, walking out from it."""
    normalized = (curve - curve.min()) / (curve.max() - curve.min())
    first = last = int(np.argmax(normalized))
    while first > 0 and normalized[first - 1] >= alpha:
        first -= 1
    while last < len(curve) - 1 and normalized[last + 1] >= alpha:
        last += 1
    erase = np.zeros(len(curve), bool)
    erase[first:last + 1] = True
    return erase


def test_channel_and_temporal_attention_with_their_branch_transforms_against_numpy():
    layer, w = _car(label_norm="none")
    rng = np.random.default_rng(1)
    features = np.maximum(rng.normal(size=(2, 10, 4)), 0).astype(np.float32)
    labels = rng.normal(size=(3, 5)).astype(np.float32)
    channel, spatial = (t.numpy() for t in layer.attention(tf.constant(features), tf.constant(labels)))
    assert channel.shape == (2, 3, 4) and spatial.shape == (2, 3, 10)
    expected_channel, expected_spatial = _numpy_car(w, features, labels)
    np.testing.assert_allclose(channel, expected_channel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spatial, expected_spatial, rtol=1e-5, atol=1e-6)
    assert spatial.std() > 0.05 and channel.std() > 0.05
    # f_s is a weight that reaches SA: with its kernel at 0, SA is sigmoid(b_s) everywhere.
    layer.f_s_kernel.assign(np.zeros((5, 1), np.float32))
    flat = layer.attention(tf.constant(features), tf.constant(labels))[1].numpy()
    np.testing.assert_allclose(flat, np.full(flat.shape, _sigmoid(w["f_s_bias"][0])), rtol=1e-6)


def test_l2_label_norm_normalises_h_c_before_eq4_and_eq5():
    layer, w = _car(label_norm="l2")
    rng = np.random.default_rng(1)
    features = np.maximum(rng.normal(size=(2, 10, 4)), 0).astype(np.float32)
    labels = rng.normal(size=(3, 5)).astype(np.float32)
    expected = _numpy_car(w, features, labels / np.linalg.norm(labels, axis=1, keepdims=True))
    for ours, theirs in zip(layer.attention(tf.constant(features), tf.constant(labels)), expected):
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-5, atol=1e-6)


def test_l2_label_vectors_keep_the_temporal_attention_off_its_rails():
    # GCN label vectors of norm 10 (what an earlier build's 60 training steps grew) and f_s = 1 on
    # each of 16 channels: unscaled, Eq.5's logit tanh(f_sa(F_t)) . h_c reaches tens and the sigmoid
    # sits at its rails; L2-normalised, Cauchy-Schwarz bounds it by ||f_s|| = sqrt(16) = 4, so SA stays
    # inside sigmoid(+-4) = (0.018, 0.982) and every curve still varies over the frames.
    rng = np.random.default_rng(0)
    features = tf.constant(np.maximum(rng.normal(size=(4, 30, 16)), 0).astype(np.float32))
    labels = rng.normal(size=(20, 16)).astype(np.float32)
    labels = tf.constant(10 * labels / np.linalg.norm(labels, axis=1, keepdims=True))
    spatial = {}
    for label_norm in ("none", "l2"):
        layer = CategoryAttention(20, label_norm=label_norm)
        layer.build((None, None, 16), (None,), (20, 16))
        layer.f_sa_kernel.assign(3 * rng.normal(size=(16, 16)).astype(np.float32))  # tanh near +-1
        layer.f_s_kernel.assign(np.ones((16, 1), np.float32))
        spatial[label_norm] = layer.attention(features, labels)[1].numpy()
    assert np.mean((spatial["none"] > 0.999) | (spatial["none"] < 0.001)) > 0.3
    assert spatial["l2"].min() > _sigmoid(-4.0) - 1e-6 and spatial["l2"].max() < _sigmoid(4.0) + 1e-6
    assert (spatial["l2"].max(axis=-1) - spatial["l2"].min(axis=-1)).min() > 0.05  # no flat curve


# 3 classes, 10 frames: each curve has its own peak and its own run >= 0.5 (min 0 and max 1 already).
CURVES = np.array([[0.0, 0.1, 0.6, 1.0, 0.7, 0.2, 0.0, 0.0, 0.3, 0.1],   # class 0: frames 2-4
                   [0.9, 1.0, 0.2, 0.0, 0.1, 0.0, 0.6, 0.8, 0.1, 0.0],   # class 1: frames 0-1 (not 6-7)
                   [0.0, 0.0, 0.1, 0.2, 0.0, 0.4, 0.9, 1.0, 0.5, 0.0]],  # class 2: frames 6-8
                  np.float32)
PROBABILITIES = np.array([[0.9, 0.2, 0.6]], np.float32)  # ranking: class 0, class 2, class 1


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_the_top_k_classes_each_erase_their_own_interval(top_k):
    top, erase = erase_per_class(tf.constant(PROBABILITIES), tf.constant(CURVES[None]), tf.constant([10]),
                                 top_k, 0.5)
    expected = np.zeros((3, 10), bool)
    expected[0, 2:5] = expected[1, 0:2] = expected[2, 6:9] = True
    np.testing.assert_array_equal(top.numpy()[0], [0, 2, 1][:top_k])
    np.testing.assert_array_equal(erase.numpy()[0], expected[[0, 2, 1][:top_k]])
    assert len({tuple(row) for row in erase.numpy()[0]}) == top_k  # K different intervals, one per class


def test_each_class_is_normalised_over_the_valid_frames_alone():
    # 6 valid frames: class 2's peak (frame 7) lies in the padding; alpha 0.7.
    _, erase = erase_per_class(tf.constant(PROBABILITIES), tf.constant(CURVES[None]), tf.constant([6]), 3, 0.7)
    expected = np.zeros((3, 10), bool)
    expected[0, 3:5] = True  # class 0 over frames 0-5 (min 0, max 1): 1.0, 0.7 >= 0.7 -> frames 3, 4
    expected[1, 0:2] = True  # class 1: (0.9 - 0) / 1.0 = 0.9, 1.0 -> frames 0, 1
    expected[2, 5] = True    # class 2 over frames 0-5: max 0.4 at frame 5, (0.2 - 0) / 0.4 = 0.5 < 0.7 -> frame 5
    np.testing.assert_array_equal(erase.numpy()[0], expected[[0, 2, 1]])


def test_erased_prediction_rescores_each_top_k_class_without_its_own_interval_by_hand():
    layer, w = _car(erase_top_k=2, erase_alpha=0.5, seed=2, label_norm="none")
    rng = np.random.default_rng(3)
    features = np.maximum(rng.normal(size=(2, 10, 4)), 0).astype(np.float32)
    labels = rng.normal(size=(3, 5)).astype(np.float32)
    num_frames = np.array([10, 7], np.int32)
    features[1, 7:] = 5.0  # padding: zeroed by the layer, never pooled nor erased
    probabilities = layer(tf.constant(features), tf.constant(num_frames), tf.constant(labels), training=True).numpy()
    erased = layer.take_erased_probabilities().numpy()
    intervals = set()
    for b, frames in enumerate(num_frames):
        f = features[b, :frames]
        channel, spatial = _numpy_car(w, f[None], labels)
        original = np.array([_sigmoid(_numpy_logit(w, f, spatial[0, c], channel[0, c], c)) for c in range(3)])
        np.testing.assert_allclose(probabilities[b], original, rtol=1e-5)
        expected = original.copy()
        for c in np.argsort(-original)[:2]:
            erase = _numpy_interval(spatial[0, c], 0.5)
            intervals.add((b, tuple(np.flatnonzero(erase))))
            kept = np.where(erase, 0.0, spatial[0, c])  # the class's own SA at 0 on its own interval (Eq.10)
            expected[c] = _sigmoid(_numpy_logit(w, f, kept, channel[0, c], c))
        np.testing.assert_allclose(erased[b], expected, rtol=1e-5, atol=1e-6)
        assert (np.abs(erased[b] - probabilities[b]) > 1e-4).sum() >= 1  # some class lost evidence
    assert len(intervals) == 4  # two examples x two classes: four intervals
    assert layer.take_erased_probabilities() is None


@pytest.mark.parametrize("class_block", [2, 64])
def test_class_max_pool_equals_max_pooling_in_value_and_gradient(class_block):
    rng = np.random.default_rng(1)
    features = tf.constant(np.maximum(rng.normal(size=(2, 6, 3)), 0), tf.float32)
    spatial = tf.constant(rng.random((2, 5, 6)), tf.float32)
    channel = tf.constant(rng.random((2, 5, 3)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([features, spatial, channel])
        pooled = class_max_pool(features, spatial, channel, class_block)
        brute = tf.reduce_max(0.5 * features[:, None] * spatial[..., None] + 0.5 * features[:, None]
                              * channel[:, :, None, :], axis=2)
        ours, reference = tf.reduce_sum(pooled * pooled), tf.reduce_sum(brute * brute)
    np.testing.assert_allclose(pooled.numpy(), brute.numpy(), rtol=1e-6)
    for a, b in zip(tape.gradient(ours, [features, spatial, channel]),
                    tape.gradient(reference, [features, spatial, channel])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def _model(**params):
    keras.utils.set_random_seed(0)
    return registry.build("SRDLModel", num_classes=model_harness.NUM_CLASSES,
                          feature_size=model_harness.FEATURE_SIZE, **{**TINY, **params})


def _batch_and_labels():
    dataset = model_harness.reader_like_dataset(*model_harness.learnable_examples(True))
    inputs, labels, weights = next(iter(dataset.skip(1)))  # T=300 with a full-length video
    return dataset, inputs, labels, weights


def test_the_erased_branch_is_not_built_at_inference():
    model = _model()
    assert len(model.outputs) == 1
    _, inputs, _, _ = _batch_and_labels()
    car = model.get_layer("car")

    def op_names(training):
        graph = tf.function(lambda x: model(x, training=training)).get_concrete_function(inputs).graph
        return [op.name for op in graph.get_operations()]

    assert not any("object_erasing" in name for name in op_names(False))
    assert car.erased_probabilities is None
    assert any("object_erasing" in name for name in op_names(True))
    model(inputs, training=False)
    assert car.erased_probabilities is None



def test_training_loss_is_original_plus_erased_and_only_the_top_k_classes_change():
    model = _model(srdl_top_k=2)
    model.compile(optimizer="adam", loss=MultiLabelCrossentropy())
    _, inputs, labels, weights = _batch_and_labels()
    predictions = model(inputs, training=True)
    car = model.get_layer("car")
    erased = car.erased_probabilities
    total = float(model.compute_loss(inputs, labels, predictions, weights, training=True))
    assert car.erased_probabilities is None  # taken by the loss
    loss = MultiLabelCrossentropy()
    original = float(loss(labels, predictions, weights))
    np.testing.assert_allclose(total, original + float(loss(labels, erased, weights)), rtol=1e-5)
    np.testing.assert_allclose(predictions.numpy(), model(inputs, training=False).numpy(), rtol=1e-5)
    changed = np.abs(erased.numpy() - predictions.numpy()) > 1e-6
    top = np.argsort(-predictions.numpy(), axis=1)[:, :2]
    outside = np.ones_like(changed)
    outside[np.arange(len(top))[:, None], top] = False
    assert not changed[outside].any() and changed.any()


def test_attention_maps_give_each_top_k_class_one_interval_on_whole_videos():
    model = _model(srdl_top_k=3)
    _, inputs, _, _ = _batch_and_labels()
    maps = srdl.attention_maps(model, inputs)
    steps = inputs[schema.FRAMES_INPUT].shape[1]
    attention, erased = maps["temporal attention"], maps["erased in training"]
    assert attention.shape == erased.shape == (len(inputs[schema.NUM_FRAMES_INPUT]), steps,
                                               model_harness.NUM_CLASSES)
    assert attention.min() >= 0 and attention.max() <= 1 and attention.std() > 0
    predictions = model(inputs, training=False).numpy()
    for row, frames in enumerate(inputs[schema.NUM_FRAMES_INPUT].numpy()):
        classes = np.flatnonzero(erased[row].any(axis=0))
        if frames > 1:
            assert set(classes) <= set(np.argsort(-predictions[row])[:3]) and len(classes) >= 1
        for c in classes:
            run = np.flatnonzero(erased[row, :, c])
            assert run.max() < frames and np.array_equal(run, np.arange(run[0], run[-1] + 1))  # one interval
def test_car_alone_has_no_erased_loss():
    model = _model(srdl_top_k=0)
    model.compile(optimizer="adam", loss=MultiLabelCrossentropy())
    _, inputs, labels, weights = _batch_and_labels()
    predictions = model(inputs, training=True)
    total = float(model.compute_loss(inputs, labels, predictions, weights, training=True))
    np.testing.assert_allclose(total, float(MultiLabelCrossentropy()(labels, predictions, weights)), rtol=1e-6)


def test_trained_model_reloads_with_its_predictions_and_erasing_settings(tmp_path):
    model = _model(srdl_top_k=1, srdl_alpha=0.7)
    dataset, _, _, _ = _batch_and_labels()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=MultiLabelCrossentropy())
    model.fit(dataset, epochs=1, verbose=0)
    model.save(tmp_path / "srdl.keras")
    again = keras.models.load_model(tmp_path / "srdl.keras")
    batches = model_harness.batch_inputs(dataset)
    np.testing.assert_allclose(model_harness.predict_batches(again, batches),
                               model_harness.predict_batches(model, batches), rtol=1e-5, atol=1e-6)
    assert type(again) is type(model)
    car = again.get_layer("car")
    assert (car.erase_top_k, car.erase_alpha) == (1, 0.7)
    history = again.fit(dataset, epochs=1, verbose=0)  # the reloaded model still trains both branches
    assert np.isfinite(history.history["loss"][0])


def test_bad_erasing_settings_are_rejected():
    with pytest.raises(ValueError, match="label_norm"):
        _model(label_norm="layer")
    with pytest.raises(ValueError, match="srdl_alpha"):
        _model(srdl_alpha=0.0)
    with pytest.raises(ValueError, match="srdl_top_k"):
        _model(srdl_top_k=-1)


def test_label_embeddings_initialise_the_label_nodes():
    embeddings = np.random.default_rng(3).normal(size=(model_harness.NUM_CLASSES, 5)).astype(np.float32)
    model = _model(label_embeddings=embeddings)
    nodes = model.get_layer("label_nodes")
    np.testing.assert_array_equal(nodes.embeddings.numpy(), embeddings)
    assert nodes.adjacency.trainable and not nodes.embeddings.trainable
    assert nodes.adjacency_form == "row_softmax"


def _graph_after_adam(num_classes, adjacency_form, seen=3, steps=60, rate=0.01):
    """A GCN over `num_classes` fixed random label embeddings with a learned adjacency, trained 60 Adam
    steps where only the first `seen` classes are ever positive (as the proving ground's 100 of 3862):
    (each node's own share of its row of Â, Â E)."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(num_classes, 8)).astype(np.float32)
    features = keras.Input((8,))
    nodes = LabelNodes(num_classes, 8, embeddings=embeddings, learn_adjacency=True, adjacency_form=adjacency_form,
                       seed=0)
    label_vectors = GCNStack([8, 8])(*nodes(features))[-1]
    model = keras.Model(features, keras.ops.sigmoid(keras.ops.matmul(features, keras.ops.transpose(label_vectors))))
    model.compile(keras.optimizers.Adam(rate), "binary_crossentropy")
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = np.zeros((64, num_classes), np.float32)
    y[:, :seen] = x[:, :seen] > 0
    model.fit(np.tile(x, (steps, 1)), np.tile(y, (steps, 1)), batch_size=64, epochs=1, verbose=0, shuffle=False)
    graph = keras.ops.convert_to_numpy(nodes.graph())
    return np.diag(graph) / graph.sum(axis=1), graph @ embeddings


def _mean_cosine(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return (unit @ unit.T)[~np.eye(len(vectors), dtype=bool)].mean()


def test_the_row_softmax_adjacency_keeps_each_class_itself_whatever_the_number_of_classes():
    """Adam moves each logit by ~lr a step, so after 60 steps at 0.01 a node's own share of its row can have
    moved from its start (2/3 + noise) by a factor of about e^(2 * 0.6) at most, for 5 classes as for 400; the
    direct entries (the old form) start off the diagonal at ~1/(2C) and move by ~lr too: at C = 400 the 399
    others outgrow the diagonal and Â E tends to one vector for every class."""
    for num_classes in (5, 400):
        share, mixed = _graph_after_adam(num_classes, "row_softmax")
        assert share.min() > 0.3, (num_classes, share.min())
        assert abs(_mean_cosine(mixed)) < 0.3, num_classes   # the label vectors the GCN sees stay apart
    share, mixed = _graph_after_adam(400, "direct")
    assert np.median(share) < 0.1 and _mean_cosine(mixed) > 0.4


def test_the_row_softmax_adjacency_starts_at_its_graph_and_needs_positive_learned_entries():
    start = np.array([[1.0, 0.5, 0.5], [0.2, 1.0, 0.3], [0.1, 0.1, 2.0]], np.float32)
    nodes = LabelNodes(3, 2, adjacency=start, learn_adjacency=True, adjacency_form="row_softmax")
    _, graph = nodes(np.zeros((1, 1), np.float32))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(graph), start / start.sum(1, keepdims=True), rtol=1e-6)
    random = LabelNodes(300, 2, learn_adjacency=True, adjacency_form="row_softmax", seed=0)
    share = np.diag(keras.ops.convert_to_numpy(random(np.zeros((1, 1), np.float32))[1]))
    assert 0.6 < share.mean() < 0.72   # I + U(0, 1/C): 1 / (1 + (C - 1) / 2C)
    assert LabelNodes.from_config(random.get_config()).adjacency_form == "row_softmax"
    with pytest.raises(ValueError, match="> 0"):
        LabelNodes(3, 2, adjacency=start - 1.0, learn_adjacency=True, adjacency_form="row_softmax")
    with pytest.raises(ValueError, match="learned"):
        LabelNodes(3, 2, adjacency_form="row_softmax")
    with pytest.raises(ValueError, match="adjacency_form"):
        LabelNodes(3, 2, learn_adjacency=True, adjacency_form="softmax")


def test_the_direct_adjacency_keeps_the_zeros_of_its_start():
    """Why DbofGCN keeps the direct form: the gradient of |A| at an exact 0 is 0, so its I + P start stays sparse."""
    start = np.eye(4, dtype=np.float32)
    start[0, 1] = start[1, 0] = 0.5
    features = keras.Input((5,))
    nodes = LabelNodes(4, 3, adjacency=start, learn_adjacency=True, seed=0)
    label_vectors = GCNStack([6, 5])(*nodes(features))[-1]
    model = keras.Model(features, keras.ops.sigmoid(keras.ops.matmul(features, keras.ops.transpose(label_vectors))))
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    x = np.random.default_rng(1).random((64, 5)).astype(np.float32)
    model.fit(x, (x[:, :4] > 0.5).astype(np.float32), epochs=5, verbose=0)
    learned = nodes.adjacency.numpy()
    np.testing.assert_array_equal(learned[start == 0], 0.0)
    assert not np.allclose(learned[start != 0], start[start != 0])
