"""SRDL on video: interval erasing by hand, CAR attention, the training-only erased branch and its loss."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models import registry
from models.layers.srdl import CategoryAttention, class_max_pool, erase_interval, normalized_attention
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
    # Class 0 over frames 0-2: (x - 0.2) / 0.4 = 0, 0.5, 1; class 1: (x - 0.1) / 0.4 = 1, 0.5, 0.
    np.testing.assert_allclose(out[0, :3], [1.0, 0.5, 1.0], atol=1e-6)
    assert out[0, 3] == 0.0  # padding
    np.testing.assert_array_equal(out[1], np.zeros(4))


def test_channel_and_temporal_attention_are_in_0_1_with_the_right_shapes():
    rng = np.random.default_rng(0)
    layer = CategoryAttention(5)
    features = tf.constant(np.maximum(rng.normal(size=(3, 7, 4)) * 3, 0), tf.float32)
    labels = tf.constant(rng.normal(size=(5, 4)) * 3, tf.float32)
    channel, spatial = (t.numpy() for t in layer.attention(features, labels))
    assert channel.shape == (3, 5, 4) and spatial.shape == (3, 5, 7)
    for values in (channel, spatial):
        assert values.min() >= 0.0 and values.max() <= 1.0 and values.std() > 0.05
    # SA is per frame and class: sigmoid(F_t . h_c / sqrt(d)).
    np.testing.assert_allclose(spatial[1, 2, 3], 1 / (1 + np.exp(-features[1, 3].numpy() @ labels[2].numpy() / 2)),
                               rtol=1e-5)


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


def test_training_loss_is_original_plus_erased_and_the_erased_prediction_drops_the_interval():
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

    # The erased prediction is the model's own prediction on the video without the erased interval.
    features_model = keras.Model(model.inputs, model.get_layer("frame_encoder").output)
    vectors_model = keras.Model(model.inputs, model.get_layer("label_gcn").output[-1])
    num_frames = inputs[schema.NUM_FRAMES_INPUT]
    features = features_model(inputs) * tf.sequence_mask(num_frames, tf.shape(inputs["frames"])[1],
                                                          dtype=tf.float32)[..., None]
    _, spatial = car.attention(features, vectors_model(inputs))
    erase = car.erasing_mask(predictions, spatial, num_frames).numpy()
    assert erase.any(axis=1)[num_frames.numpy() > 0].all()
    frames = inputs[schema.FRAMES_INPUT].numpy()
    for row in range(len(frames)):
        kept = frames[row, :num_frames[row]][~erase[row, :num_frames[row]]]
        if len(kept) == 0:
            continue
        alone = model({schema.FRAMES_INPUT: kept[None], schema.NUM_FRAMES_INPUT: np.array([len(kept)], np.int32)},
                      training=False)
        np.testing.assert_allclose(alone.numpy()[0], erased.numpy()[row], rtol=1e-5, atol=1e-6)


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
