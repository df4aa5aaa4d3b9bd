"""KSSNet: label graphs by hand, the lateral connection, I3D shapes, clip data, runs end to end."""
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models import registry
from models.layers.inception_i3d import endpoint_channels, inception_i3d_features, load_inflated_weights
from models.layers.lateral_connection import LateralConnection
from yt8m import evaluation, training
from yt8m.config import Config
from yt8m.data import clips, synthetic_clips, vocabulary
from yt8m.labels import graphs
from yt8m.labels.statistics import LabelStatistics


@pytest.fixture(scope="module")
def clip_data(tmp_path_factory):
    config = synthetic_clips.SyntheticClipConfig(num_train_videos=24, num_validate_videos=8)
    return synthetic_clips.generate(str(tmp_path_factory.mktemp("clips")), config)


# ---------------------------------------------------------------- graphs


def test_mlgcn_adjacency_of_coco_sums_to_the_reference(reference_dir):
    stats = LabelStatistics.load(str(reference_dir / "coco_label_graph.npz"))
    adjacency = graphs.mlgcn_adjacency(stats.conditional_probability(), t=0.4, p=0.25)
    assert adjacency.sum() == pytest.approx(85.75, abs=1e-3)
    normalized = graphs.mlgcn_normalize(adjacency)
    degree = adjacency.sum(axis=1)
    i, j = 3, 7
    assert normalized[i, j] == pytest.approx(adjacency[j, i] / np.sqrt(degree[i] * degree[j]))  # the transpose


def test_ks_graph_by_hand_on_four_labels():
    conditional = np.zeros((4, 4))
    conditional[0, 1], conditional[1, 0], conditional[2, 3] = 1.0, 0.5, 0.3   # P(1|0), P(0|1); 0.3 < t
    # A_S (ML-GCN, t=0.4, p=0.25): I + 0.25 at (0,1) and (1,0); degrees 1.25, 1.25, 1, 1, so A'_S has
    # 0.8 on the diagonal of 0 and 1, 0.25 / 1.25 = 0.2 at (0,1), 1 at (2,2) and (3,3).
    knowledge = np.zeros((4, 4))
    knowledge[0, 2] = knowledge[2, 0] = knowledge[2, 3] = knowledge[3, 2] = 1.0   # degrees 1, 0, 2, 1
    # A'_K: 1/sqrt(2) at (0,2) and (2,3). Mix at lambda 0.5, rows: [0.4, 0.1, 0.3536, 0] (sum 0.8536),
    # [0.1, 0.4, 0, 0] (0.5), [0.3536, 0, 0.5, 0.3536] (1.2071), [0, 0, 0.3536, 0.5] (0.8536).
    # Normalised again: (0,1) = 0.1 / sqrt(0.8536 * 0.5) = 0.15307, (0,2) = (2,3) = 0.3536 / sqrt(0.8536 *
    # 1.2071) = 0.34831, (0,0) = 0.4 / 0.8536 = 0.46863, (1,1) = 0.8, (2,2) = 0.41421, (3,3) = 0.58579.
    superimposed = graphs.superimpose(graphs.mlgcn_adjacency(conditional), knowledge, lam=0.5)
    np.testing.assert_allclose(superimposed[[0, 0, 2, 0, 1, 2, 3], [1, 2, 3, 0, 1, 2, 3]],
                               [0.15307, 0.34831, 0.34831, 0.46863, 0.8, 0.41421, 0.58579], atol=1e-5)
    # tau = 0.3 drops (0,1); eta = 0.4: A_KS = 0.4 A_tau + 0.6 I.
    graph = graphs.ks_adjacency(conditional, knowledge, lam=0.5, tau=0.3, eta=0.4)
    expected = 0.4 * np.where(superimposed >= 0.3, superimposed, 0.0) + 0.6 * np.eye(4)
    np.testing.assert_allclose(graph, expected, rtol=1e-6)
    assert graph[0, 1] == 0 and graph[0, 2] == pytest.approx(0.4 * 0.34831, abs=1e-5)
    assert graph[0, 0] == pytest.approx(0.4 * 0.46863 + 0.6, abs=1e-5)
    kept = graphs.ks_adjacency(conditional, knowledge, lam=0.5, tau=0.1, eta=0.4)
    assert kept[0, 1] == pytest.approx(0.4 * 0.15307, abs=1e-5) and kept[1, 0] == kept[0, 1]   # symmetric here
    np.testing.assert_allclose(graphs.ks_adjacency(conditional, knowledge, eta=0.0), np.eye(4))   # no graph


def test_ks_graph_on_coco_follows_mlgcn_and_is_normalised_again(reference_dir):
    stats = LabelStatistics.load(str(reference_dir / "coco_label_graph.npz"))
    conditional = stats.conditional_probability()
    knowledge = np.zeros((80, 80))
    knowledge[1, 46] = knowledge[46, 1] = 1.0
    knowledge[46, 49] = knowledge[49, 46] = 0.5
    a_s = graphs.mlgcn_adjacency(conditional, t=0.4, p=0.25)
    assert a_s[1, 46] > 0 and a_s.sum() == pytest.approx(85.75, abs=1e-3)
    for lam in (0.0, 0.3, 0.6, 1.0):   # whatever the mix, the combination is normalised to top eigenvalue 1
        superimposed = graphs.superimpose(a_s, knowledge, lam)
        assert np.linalg.eigvals(superimposed).real.max() == pytest.approx(1.0, abs=1e-9)
    # Entry (46, 1) by hand: ML-GCN's direction (46 gathers from 1 by A_S[1, 46]), degrees of each part,
    # the mixed row sums, then D^-1/2 A D^-1/2 of the mix.
    d_s, d_k = a_s.sum(axis=1), knowledge.sum(axis=1)
    s_part = a_s.T / np.sqrt(np.outer(d_s, d_s))
    k_part = np.divide(knowledge, np.sqrt(np.outer(d_k, d_k)), out=np.zeros_like(knowledge),
                       where=knowledge > 0)
    mixed = 0.6 * s_part + 0.4 * k_part
    rows = mixed.sum(axis=1)
    by_hand = (0.6 * a_s[1, 46] / np.sqrt(d_s[46] * d_s[1]) + 0.4 * 1.0 / np.sqrt(d_k[46] * d_k[1])) / np.sqrt(
        rows[46] * rows[1])
    graph = graphs.ks_adjacency(conditional, knowledge, lam=0.6, tau=0.03, eta=0.4)
    assert graph[46, 1] == pytest.approx(0.4 * by_hand, rel=1e-5)
    assert graph[49, 46] == pytest.approx(0.4 * 0.4 * 0.5 / np.sqrt(d_k[49] * d_k[46]) / np.sqrt(rows[49] * rows[46]),
                                          rel=1e-5)
    assert np.diag(graph).min() > 0.6   # (1 - eta) I plus eta times each label's own weight


def test_knowledge_from_an_edge_list_takes_the_max_over_relations(tmp_path):
    path = tmp_path / "edges.csv"
    pd.DataFrame({"head": ["0", "1", "cat", "0"], "relation": ["IsA", "IsA", "RelatedTo", "RelatedTo"],
                  "tail": ["1", "0", "2", "1"], "weight": [0.5, 0.3, 2.0, 0.9]}).to_csv(path, index=False)
    edges = graphs.read_knowledge_edges(str(path), 3, names={"cat": 1})
    adjacency = graphs.knowledge_adjacency(edges, 3, relation_weights={"RelatedTo": 0.5})
    # (0,1): max(IsA 0.5, IsA reversed 0.3, RelatedTo 0.9 * 0.5) = 0.5; (1,2): RelatedTo 2.0 * 0.5.
    np.testing.assert_allclose(adjacency, [[0, 0.5, 0], [0.5, 0, 1.0], [0, 1.0, 0]])


def test_vertical_knowledge_of_the_synthetic_vocabulary(synthetic_data):
    table = vocabulary.read_vocabulary(synthetic_data.vocabulary)
    adjacency = graphs.vertical_knowledge_adjacency(vocabulary.verticals(table), synthetic_data.num_classes)
    ids, verticals = table["Index"].to_numpy(), table["Vertical1"].to_numpy()
    same = verticals[:, None] == verticals[None, :]
    np.fill_diagonal(same, False)
    np.testing.assert_array_equal(adjacency[np.ix_(ids, ids)], same * graphs.PRIMARY_VERTICAL_WEIGHT)
    assert adjacency.sum() == same.sum()   # nothing outside the vocabulary's classes
    assert graphs.default_vocabulary_file(synthetic_data.frame_train) == synthetic_data.vocabulary


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize("shape", [(2, 5, 6), (2, 3, 4, 4, 6)])
def test_lateral_connection_keeps_shape_and_follows_the_embeddings(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    embeddings = rng.normal(size=(7, 6)).astype("float32")
    layer = LateralConnection(average_labels=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, embeddings)), x, rtol=1e-6)   # g starts at 0
    layer.merge.assign(rng.normal(size=(7, 6)).astype("float32"))   # as after training
    y = keras.ops.convert_to_numpy(layer(x, embeddings))
    assert y.shape == shape
    # Eq.7 by hand: x + (x . tanh(E)^T) G / N, N = 7 labels
    np.testing.assert_allclose(y, x + (x @ np.tanh(embeddings).T) @ layer.merge.numpy() / 7, rtol=1e-4, atol=1e-5)
    changed = keras.ops.convert_to_numpy(layer(x, embeddings + 1.0))
    assert np.abs(changed - y).max() > 1e-3


def test_lateral_connection_summed_from_torch_init_as_mssnet():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    embeddings = rng.normal(size=(7, 6)).astype("float32")
    layer = LateralConnection(average_labels=False, merge_initializer="fan_in_uniform")
    y = keras.ops.convert_to_numpy(layer(x, embeddings))
    merge = layer.merge.numpy()
    assert np.abs(merge).max() <= 1 / np.sqrt(7) and np.abs(merge).min() > 0   # torch Conv3d: U(+-1/sqrt(N))
    np.testing.assert_allclose(y, x + (x @ np.tanh(embeddings).T) @ merge, rtol=1e-4, atol=1e-5)   # no 1/N
    model = registry.build("KSSNetTemporal", num_classes=7, feature_size=40, width=8, embedding_dim=8,
                           lateral_merge="sum")
    assert not model.get_layer("lateral_2").average_labels
    with pytest.raises(ValueError, match="lateral_merge"):
        registry.build("KSSNetTemporal", num_classes=7, feature_size=40, width=8, lateral_merge="max")


def test_i3d_shapes_for_a_small_clip():
    clip = keras.Input((8, 32, 32, 3))
    seen = {}
    features = inception_i3d_features(clip, 0.125, after={e: (lambda x, e=e: seen.setdefault(e, x))
                                                          for e in ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f")})
    # T/8, H/32, W/32 at Mixed_5c; the LC endpoints at T/2 H/8, T/2 H/8, T/4 H/16.
    assert tuple(features.shape) == (None, 1, 1, 1, endpoint_channels("Mixed_5c", 0.125))
    assert tuple(seen["Conv3d_2c_3x3"].shape) == (None, 4, 8, 8, 24)
    assert tuple(seen["Mixed_3c"].shape) == (None, 4, 4, 4, endpoint_channels("Mixed_3c", 0.125))
    assert tuple(seen["Mixed_4f"].shape) == (None, 2, 2, 2, endpoint_channels("Mixed_4f", 0.125))
    assert [endpoint_channels(e) for e in ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f", "Mixed_5c")] == [192, 480, 832,
                                                                                                    1024]
    model = registry.build("KSSNetI3D", num_classes=5, feature_size=1, width_multiplier=0.125, embedding_dim=8)
    clip_batch = np.random.default_rng(0).integers(0, 256, (2, 8, 32, 32, 3), dtype=np.uint8)
    assert tuple(model({"clip": clip_batch}).shape) == (2, 5)


def test_inflated_2d_weights_are_repeated_over_time_and_divided():
    model = registry.build("I3DModel", num_classes=3, feature_size=1, width_multiplier=0.125,
                           final_endpoint="Conv3d_2c_3x3")
    kernel_2d = np.random.default_rng(0).normal(size=(7, 7, 3, 8)).astype("float32")
    gamma = np.full(8, 2.0, "float32")
    assert load_inflated_weights(model, {"Conv3d_1a_7x7_conv/kernel": kernel_2d, "Conv3d_1a_7x7_bn/gamma": gamma}) == 2
    kernel = model.get_layer("Conv3d_1a_7x7_conv").kernel.numpy()
    np.testing.assert_allclose(kernel, np.repeat(kernel_2d[None] / 7, 7, axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="names no weight"):
        load_inflated_weights(model, {"Conv3d_9z_conv/kernel": kernel_2d})


# ---------------------------------------------------------------- clip data and runs


def test_clip_reader_samples_crops_and_labels(clip_data):
    train = clips.clip_dataset(clip_data.train, num_classes=clip_data.num_classes, batch_size=5, clip_frames=8,
                               clip_size=32, training=True, shuffle=True)
    features, labels, weights = next(iter(train))
    assert features["clip"].shape == (5, 8, 32, 32, 3) and features["clip"].dtype == "uint8"
    assert labels.shape == (5, clip_data.num_classes) and float(weights.numpy().min()) == 1.0
    evaluation_batches = [clips.clip_dataset(clip_data.validate, num_classes=clip_data.num_classes, batch_size=4,
                                             clip_frames=20, clip_size=32, training=False,
                                             sampling="consecutive") for _ in range(2)]
    first, second = (next(iter(d))[0]["clip"].numpy() for d in evaluation_batches)
    np.testing.assert_array_equal(first, second)   # centred, hence deterministic
    for clip in first:   # 20 frames of a 10..16-frame video: it loops with its own length as period
        assert any(np.array_equal(clip[:20 - period], clip[period:]) for period in range(10, 17))
        assert not np.array_equal(clip[0], clip[1])   # the shapes move


class _Fixed:
    """A sampler whose every uniform draw is `u`."""

    def __init__(self, u):
        self.u = u

    def uniform(self, shape):
        return tf.fill(shape, self.u)


def test_tsn_and_consecutive_frame_indices_by_hand():
    lengths = tf.constant([10, 3, 8])
    index = {name: lambda sampler, name=name: clips.frame_indices(lengths, 4, name, sampler).numpy().tolist()
             for name in clips.SAMPLINGS}
    # Evaluation, TSN segment centres floor((2i + 1) L / 8): L=10 -> 1.25, 3.75, 6.25, 8.75; L=3 -> .375, 1.125...
    assert index["tsn"](None) == [[1, 3, 6, 8], [0, 1, 1, 2], [1, 3, 5, 7]]
    # Training, L // T = 2-frame segments of L=10 (frames 8-9 unused) and of L=8; L=3 < T: floor((i + u) 3/4).
    assert index["tsn"](_Fixed(0.0)) == [[0, 2, 4, 6], [0, 0, 1, 2], [0, 2, 4, 6]]
    assert index["tsn"](_Fixed(0.999)) == [[1, 3, 5, 7], [0, 1, 2, 2], [1, 3, 5, 7]]
    # Consecutive: the centred run (start (L - 4) // 2), a short video loops; training starts at u * (L - 3).
    assert index["consecutive"](None) == [[3, 4, 5, 6], [0, 1, 2, 0], [2, 3, 4, 5]]
    assert index["consecutive"](_Fixed(0.999)) == [[6, 7, 8, 9], [0, 1, 2, 0], [4, 5, 6, 7]]
    drawn = clips.frame_indices(tf.fill([400], 10), 4, "tsn", clips._Uniform(3)).numpy()
    for i in range(4):   # one random frame of each segment {2i, 2i + 1}, both drawn
        assert set(drawn[:, i]) == {2 * i, 2 * i + 1}


def test_tsn_clips_of_the_reader_spread_over_the_whole_video(clip_data):
    evaluation = clips.clip_dataset(clip_data.validate, num_classes=clip_data.num_classes, batch_size=4,
                                    clip_frames=20, clip_size=32, training=False)   # the default: tsn
    for clip in next(iter(evaluation))[0]["clip"].numpy():
        starts = [0] + [k for k in range(1, 20) if not np.array_equal(clip[k], clip[k - 1])]
        assert 10 <= len(starts) <= 16   # each of the video's 10..16 frames once or twice, in order, no loop
        assert not any(np.array_equal(clip[a], clip[b]) for a in starts for b in starts if a < b)


def test_kssnet_i3d_trains_and_evaluates_on_clips(clip_data, tmp_path):
    config = Config.from_flags(clip_data_pattern=clip_data.train, eval_data_pattern=clip_data.validate,
                    knowledge_edges=clip_data.knowledge_edges, num_classes=clip_data.num_classes, clip_frames=8,
                    clip_size=32, model="KSSNetI3D", label_embeddings=_random_embeddings(tmp_path, clip_data, 8),
                    model_params={"width_multiplier": 0.125, "embedding_dim": 8, "final_endpoint": "Mixed_3b",
                                  "lateral_endpoints": "Conv3d_2b_1x1,Conv3d_2c_3x3"},
                    batch_size=8, max_steps=4, steps_per_epoch=4, train_dir=str(tmp_path / "run"))
    result = training.train(config)
    assert result.steps == 4 and np.isfinite(result.final_loss)
    metrics = evaluation.evaluate(config, progress=False)
    assert metrics["num_examples"] == 8 and 0.0 <= metrics["gap"] <= 1.0
    graph = keras.models.load_model(result.model_path).get_layer("label_nodes").adjacency.numpy()
    assert graph[1, 0] > 0 and graph[1, 4] == 0   # IsA child -> parent kept, other groups unrelated


def test_frame_batch_norm_drops_a_direction_shared_by_every_frame_and_ignores_padding():
    from models.kssnet import FrameBatchNorm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    valid = np.arange(6)[None, :] < np.array([6, 4, 2])[:, None]
    norm = FrameBatchNorm(epsilon=0.0)
    out = np.asarray(norm(x, valid, training=True))
    # By hand: each channel standardised over the 12 valid frames of the batch.
    frames = x[valid]
    np.testing.assert_allclose(out[valid], (frames - frames.mean(0)) / frames.std(0), rtol=1e-4, atol=1e-5)
    # A vector added to every frame (what a lateral connection's g mostly adds) is gone after it,
    # and whatever sits in the padded frames takes no part in the statistics.
    shifted = np.where(valid[:, :, None], x + np.array([50.0, -20.0, 9.0, 3.0], "float32"), 1e3).astype("float32")
    np.testing.assert_allclose(np.asarray(norm(shifted, valid, training=True))[valid], out[valid], rtol=1e-3, atol=1e-3)
    layer = np.asarray(keras.layers.LayerNormalization(epsilon=0.0)(shifted))[valid]
    assert np.abs(layer - np.asarray(keras.layers.LayerNormalization(epsilon=0.0)(x))[valid]).max() > 0.5


def test_kssnet_temporal_runs_on_frame_features(synthetic_data, tmp_path):
    config = Config.from_flags(train_data_pattern=synthetic_data.frame_train, frame_features=True,
                    feature_names=("rgb", "audio"), feature_sizes=(1024, 128), num_classes=synthetic_data.num_classes,
                    model="KSSNetTemporal", label_embeddings=_random_embeddings(tmp_path, synthetic_data, 8),
                    model_params={"width": 8, "embedding_dim": 8}, batch_size=16, max_steps=3,
                    steps_per_epoch=3, train_dir=str(tmp_path / "run"))
    result = training.train(config)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    output = str(tmp_path / "submission.csv")
    evaluation.write_submission(config.replace(input_data_pattern=synthetic_data.frame_test, segment_labels=True,
                                               output_file=output), progress=False)
    assert open(output).readline().strip() == "Class,Segments"


def test_a_clip_model_without_clips_says_so(synthetic_data, tmp_path):
    config = Config.from_flags(train_data_pattern=synthetic_data.frame_train, frame_features=True,
                    feature_names=("rgb", "audio"), feature_sizes=(1024, 128), model="I3DModel",
                    train_dir=str(tmp_path))
    with pytest.raises(Exception, match="reads RGB clips; give --clip_data_pattern"):
        training.train(config)


def _random_embeddings(tmp_path, data, dim):
    path = os.path.join(str(tmp_path), "embeddings.npy")
    np.save(path, np.random.default_rng(0).normal(size=(data.num_classes, dim)).astype("float32"))
    return path
