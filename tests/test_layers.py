"""The shared layers: dequantisation, frame sampling, masked DBoF pooling, the MoE head."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.layers.dbof import DbofPooling, pool_rows
from models.layers.frame_sampling import FrameSampleCounts, FrameSampler
from models.layers.inputs import Dequantize, frame_mask
from models.layers.moe import MixtureOfExperts, SlimL2, wide_matmul
from yt8m.data import schema


def test_dequantize_matches_the_official_formula():
    # x = q * 4/255 + 4/512 - 2, by hand at both ends of the range.
    out = keras.ops.convert_to_numpy(Dequantize()(np.array([[0, 255]], np.uint8)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[-2 + 4 / 512, 2 + 4 / 512]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out, [[-1.9921875, 2.0078125]], rtol=0, atol=1e-6)


def test_dequantize_matches_schema_on_frames():
    q = np.random.default_rng(0).integers(0, 256, (2, 7, 12), dtype=np.uint8)
    out = keras.ops.convert_to_numpy(Dequantize()(q))
    np.testing.assert_allclose(out, schema.dequantize(q.astype(np.float64)), rtol=0, atol=1e-6)


def test_dequantize_config_round_trip():
    layer = Dequantize(max_quantized_value=1.0, min_quantized_value=-1.0)
    clone = Dequantize.from_config(layer.get_config())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(np.array([0], np.uint8))),
                               [-1 + 2 / 512], atol=1e-6)


def test_frame_mask():
    mask = keras.ops.convert_to_numpy(frame_mask(np.array([0, 2, 4], np.int32), 4))
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def frames_numbered_by_index(num_frames, max_frames):
    """uint8 (B, T, 3) whose frame t holds (valid, t % 256, t // 256); padding holds zeros."""
    t = np.arange(max_frames)
    code = np.stack([np.ones_like(t), t % 256, t // 256], axis=-1)[None]
    valid = t[None, :, None] < np.asarray(num_frames)[:, None, None]
    return np.where(valid, code, 0).astype(np.uint8)


def frame_index(frames):
    """The index encoded by `frames_numbered_by_index`, -1 for padding."""
    frames = frames.astype(int)
    return np.where(frames[..., 0] == 1, frames[..., 1] + 256 * frames[..., 2], -1)


@pytest.mark.parametrize("random_sequence", [False, True])
def test_sampler_picks_only_valid_frames(random_sequence):
    num_frames = np.array([5, 1, 0, 40, 300], np.int32)
    frames = frames_numbered_by_index(num_frames, 300)
    sampler = FrameSampler(200, random_sequence=random_sequence, seed=3)
    sampled, sampled_count = (keras.ops.convert_to_numpy(t)
                              for t in sampler(frames, num_frames, training=True))
    assert sampled.shape == (5, 200, 3)
    np.testing.assert_array_equal(sampled_count, [200, 200, 0, 200, 200])
    picked = frame_index(sampled)
    assert np.all(picked[2] == -1), "an empty video has only padding to give"
    for row in (0, 1, 3, 4):
        assert picked[row].min() >= 0 and picked[row].max() < num_frames[row]
    if random_sequence:
        steps = np.diff(picked[4])
        assert np.all(steps == 1), "a random sequence is consecutive frames"
        assert set(picked[0]) == {0, 1, 2, 3, 4}, "a short video is clipped at its last frame"
    else:
        assert set(picked[0]) == {0, 1, 2, 3, 4}, "200 draws from 5 frames reach every frame"
        assert len(set(picked[4])) > 100, "draws spread over the whole video"


def test_sampler_is_random_across_calls_and_off_at_inference():
    num_frames = np.array([300], np.int32)
    frames = frames_numbered_by_index(num_frames, 300)
    sampler = FrameSampler(30)
    first = keras.ops.convert_to_numpy(sampler(frames, num_frames, training=True)[0])
    second = keras.ops.convert_to_numpy(sampler(frames, num_frames, training=True)[0])
    assert not np.array_equal(first, second)
    out, count = sampler(frames, num_frames, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), frames)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(count), num_frames)


def test_pool_rows_weighs_by_counts_and_empty_videos_give_zeros():
    values = np.array([[1.0, -5.0], [3.0, -7.0], [9.0, 9.0]], np.float32)
    weights = np.array([1.0, 3.0, 2.0], np.float32)
    video = np.array([0, 0, 2], np.int64)
    np.testing.assert_allclose(pool_rows(values, weights, video, 3, "max").numpy(),
                               [[3.0, -5.0], [0.0, 0.0], [9.0, 9.0]])
    # (1 * 1 + 3 * 3) / 4 = 2.5, (-5 - 21) / 4 = -6.5
    np.testing.assert_allclose(pool_rows(values, weights, video, 3, "average").numpy(),
                               [[2.5, -6.5], [0.0, 0.0], [9.0, 9.0]])
    with pytest.raises(ValueError, match="unknown pooling method"):
        pool_rows(values, weights, video, 3, "median")


def test_frame_sample_counts_count_the_samplers_draws():
    num_frames = np.array([5, 0, 300], np.int32)
    frames = frames_numbered_by_index(num_frames, 300)
    sampled, _ = FrameSampler(200, seed=3)(frames, num_frames, training=True)
    same, counts = FrameSampleCounts(200, seed=3)(frames, num_frames, training=True)
    assert same is frames or np.array_equal(keras.ops.convert_to_numpy(same), frames)
    picked = frame_index(keras.ops.convert_to_numpy(sampled))
    for row in (0, 2):
        np.testing.assert_array_equal(counts[row], np.bincount(picked[row], minlength=300))
    np.testing.assert_array_equal(counts[1], 0)
    _, at_inference = FrameSampleCounts(200)(frames, num_frames, training=False)
    np.testing.assert_array_equal(at_inference.numpy().sum(axis=1), num_frames)


def test_dbof_pooling_on_draw_counts_equals_it_on_the_drawn_frames():
    rng = np.random.default_rng(2)
    num_frames = np.array([9, 40, 0], np.int32)
    frames = rng.normal(size=(3, 40, 5)).astype(np.float32)
    sampled, sampled_count = FrameSampler(60, seed=7)(frames, num_frames, training=True)
    _, counts = FrameSampleCounts(60, seed=7)(frames, num_frames, training=True)
    drawn = DbofPooling(6, pooling="average")
    drawn(sampled, sampled_count)
    counted = DbofPooling.from_config(drawn.get_config())
    counted(frames, counts)
    counted.set_weights(drawn.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        expected = drawn(sampled, sampled_count, training=True)
        got = counted(frames, counts, training=True)
        expected_sum, got_sum = tf.reduce_sum(expected * np.arange(6)), tf.reduce_sum(got * np.arange(6))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(counted.non_trainable_weights, drawn.non_trainable_weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)
    for mine, theirs in zip(tape.gradient(got_sum, counted.trainable_weights),
                            tape.gradient(expected_sum, drawn.trainable_weights)):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("training", [False, True])
def test_dbof_pooling_padding_changes_nothing(training):
    rng = np.random.default_rng(0)
    num_frames = np.array([3, 6], np.int32)
    frames = rng.normal(size=(2, 6, 4)).astype(np.float32)
    padded = np.concatenate([frames, rng.normal(size=(2, 5, 4)).astype(np.float32)], axis=1)
    padded[0, 3:6] = 50.0
    layer = DbofPooling(8)
    out = keras.ops.convert_to_numpy(layer(frames, num_frames, training=training))
    again = keras.ops.convert_to_numpy(layer(padded, num_frames, training=training))
    assert out.shape == (2, 8)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-5)


def _unfolded_dbof_pooling(layer, frames, num_frames, training):
    """keras's own BatchNormalization -> Dense -> BatchNormalization on the layer's weights, then
    the average over each video's valid frames (zeros for an empty video)."""
    batch, steps, size = frames.shape
    mask = tf.reshape(frame_mask(num_frames, steps), (-1,))
    x = layer.input_norm(tf.reshape(frames, (-1, size)), training=training, mask=mask)
    x = layer.activation_fn(layer.cluster_norm(layer.cluster(x), training=training, mask=mask))
    x, weights = tf.reshape(x, (batch, steps, -1)), tf.reshape(tf.cast(mask, x.dtype), (batch, steps, 1))
    return tf.math.divide_no_nan(tf.reduce_sum(x * weights, axis=1), tf.reduce_sum(weights, axis=1))


@pytest.mark.parametrize("training", [False, True])
def test_dbof_pooling_folded_input_norm_is_keras_batch_norm_then_dense(training):
    rng = np.random.default_rng(1)
    frames = rng.normal(1.0, 2.0, size=(3, 7, 5)).astype(np.float32)
    num_frames = np.array([7, 2, 0], np.int32)
    folded = DbofPooling(6, pooling="average")
    folded(frames, num_frames)
    weights = [rng.normal(size=w.shape).astype(np.float32) if "variance" not in w.path
               else rng.uniform(0.5, 2.0, size=w.shape).astype(np.float32) for w in folded.weights]
    folded.set_weights(weights)
    reference = DbofPooling.from_config(folded.get_config())
    reference(frames, num_frames)
    reference.set_weights(weights)
    frames = tf.constant(frames)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(frames)
        ours = folded(frames, num_frames, training=training)
        theirs = _unfolded_dbof_pooling(reference, frames, num_frames, training)
        ours_sum, theirs_sum = tf.reduce_sum(ours * np.arange(6)), tf.reduce_sum(theirs * np.arange(6))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)
    for mine, keras_bn in zip(folded.non_trainable_weights, reference.non_trainable_weights):
        np.testing.assert_allclose(mine.numpy(), keras_bn.numpy(), rtol=1e-4, atol=1e-6, err_msg=mine.path)
    for variables in ([frames], folded.trainable_weights):
        references = [frames] if variables[0] is frames else reference.trainable_weights
        for mine, expected in zip(tape.gradient(ours_sum, variables), tape.gradient(theirs_sum, references)):
            np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-3, atol=1e-4)


def test_moe_gates_sum_to_one_with_the_dummy_expert():
    moe = MixtureOfExperts(num_classes=6, num_mixtures=3)
    inputs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    probabilities = keras.ops.convert_to_numpy(moe(inputs))
    gates = keras.ops.convert_to_numpy(moe.gate_probabilities(inputs))
    experts = keras.ops.convert_to_numpy(moe.expert_probabilities(inputs))
    assert gates.shape == (4, 6, 4) and experts.shape == (4, 6, 3)
    np.testing.assert_allclose(gates.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(gates[..., -1] > 0), "the dummy expert takes part in the softmax"
    np.testing.assert_allclose(probabilities, (gates[..., :3] * experts).sum(axis=-1), rtol=1e-6)
    assert np.all(probabilities < 1.0 - gates[..., -1] + 1e-6), "the dummy expert predicts 0"


def test_moe_l2_is_the_starters_slim_penalty():
    moe = MixtureOfExperts(num_classes=2, num_mixtures=1, l2_penalty=0.1)
    moe.build((None, 3))
    kernels = [moe.gates.kernel, moe.experts.kernel]
    expected = sum(0.1 * np.sum(keras.ops.convert_to_numpy(k) ** 2) / 2 for k in kernels)
    np.testing.assert_allclose(sum(float(loss) for loss in moe.losses), expected, rtol=1e-5)


def test_slim_l2_is_keras_l2_of_half_the_penalty_with_its_gradient():
    weights = tf.Variable(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    values, gradients = [], []
    for regularizer in (SlimL2(0.1), keras.regularizers.L2(0.05)):
        with tf.GradientTape() as tape:
            values.append(regularizer(weights))
        gradients.append(tape.gradient(values[-1], weights).numpy())
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    np.testing.assert_allclose(gradients[0], 0.1 * weights.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-6)
    assert SlimL2.from_config(SlimL2(0.1).get_config()).penalty == 0.1


def test_wide_matmul_has_matmuls_gradients():
    rng = np.random.default_rng(0)
    inputs, kernel = (tf.constant(rng.normal(size=shape).astype(np.float32)) for shape in ((4, 3), (3, 50)))
    weights = rng.normal(size=(4, 50)).astype(np.float32)
    results = []
    for matmul in (wide_matmul, tf.matmul):
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            product = matmul(inputs, kernel)
            loss = tf.reduce_sum(product * weights)
        results.append([product.numpy(), *(g.numpy() for g in tape.gradient(loss, [inputs, kernel]))])
    for ours, reference in zip(*results):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
