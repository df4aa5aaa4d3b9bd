"""ASGE (CMA Eq.1-5): the label graph, the relaxed cosine-fit loss by hand, training, and the
embeddings source of the graph models (cached ASGE, .npy, GloVe text)."""
import os

import numpy as np
import pytest

from models.layers.asge import AsgeEncoder, asge_loss, cosine_matrix
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.labels import embeddings, graphs
from yt8m.labels.statistics import LabelStatistics


def three_label_stats():
    # N = (4, 2, 2); labels 0 and 1 together in 2 videos, 0 and 2 in 1, 1 and 2 never.
    cooccurrence = np.array([[0, 2, 1], [2, 0, 0], [1, 0, 0]])
    return LabelStatistics(np.array([4, 2, 2]), cooccurrence, num_videos=5)


def test_graph_is_p_of_i_given_j_and_its_symmetrisation():
    a, a_sym = graphs.asge_graph(three_label_stats())
    # A_ij = M_ij / N_j: A_01 = 2/2, A_10 = 2/4, A_02 = 1/2, A_20 = 1/4.
    np.testing.assert_allclose(a, [[0, 1.0, 0.5], [0.5, 0, 0], [0.25, 0, 0]])
    np.testing.assert_allclose(a_sym, [[0, 0.75, 0.375], [0.75, 0, 0], [0.375, 0, 0]])


def test_loss_by_hand_with_a_pair_switched_off():
    a, a_sym = graphs.asge_graph(three_label_stats())
    e = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], "float32")  # cos01 = cos12 = 1/sqrt(2), cos02 = 0
    c = 1 / np.sqrt(2)
    # alpha = 0.3: (2,0) has A_20 = 0.25 < alpha and cos = 0 < alpha -> off; (0,2) has A_02 = 0.5 -> on;
    # (1,2), (2,1): A = 0 but cos = 0.707 >= alpha -> on, target 0.
    expected = 2 * (c - 0.75) ** 2 + 0.375 ** 2 + 2 * c ** 2
    assert float(asge_loss(e, a, a_sym, alpha=0.3)) == pytest.approx(expected, rel=1e-5)
    # alpha = 0 switches nothing off: (2,0) adds its (0 - 0.375)^2.
    assert float(asge_loss(e, a, a_sym, alpha=0.0)) == pytest.approx(expected + 0.375 ** 2, rel=1e-5)


def small_graph_stats():
    counts = np.array([40, 20, 20, 10, 0])  # label 4 is never seen
    m = np.zeros((5, 5), int)
    for i, j, n in ((0, 1, 16), (0, 2, 10), (1, 3, 5), (2, 3, 1)):
        m[i, j] = m[j, i] = n
    return LabelStatistics(counts, m, num_videos=60)


def test_training_lowers_the_loss_and_fits_the_graph():
    stats = small_graph_stats()
    a, a_sym = graphs.asge_graph(stats)
    seen = np.ix_(range(4), range(4))
    before = embeddings.train_asge(stats, 16, 0, alpha=0.1, seed=0)
    after = embeddings.train_asge(stats, 16, 150, alpha=0.1, seed=0)
    loss_before = float(asge_loss(before[:4], a[seen], a_sym[seen], 0.1))
    loss_after = float(asge_loss(after[:4], a[seen], a_sym[seen], 0.1))
    assert loss_after < 0.05 * loss_before
    cosine = np.asarray(cosine_matrix(after))[seen]
    strong = (a[seen] >= 0.1) & ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(cosine[strong], a_sym[seen][strong], atol=0.03)
    error_before = np.abs(np.asarray(cosine_matrix(before))[seen] - a_sym[seen])[strong].max()
    assert np.abs(cosine - a_sym[seen])[strong].max() < error_before / 5
    # the unseen label gets a finite vector of the seen embeddings' scale, not fitted
    assert np.all(np.isfinite(after[4])) and 0.3 < np.linalg.norm(after[4]) / np.linalg.norm(after[:4], axis=1).mean() < 3


def test_encoder_is_three_fc_bn_relu_on_one_hot_labels():
    encoder = AsgeEncoder(5, units=(8, 8, 4), seed=0)
    out = np.asarray(encoder(np.arange(5), training=True))
    assert out.shape == (5, 4) and out.min() >= 0  # ReLU last
    assert len(encoder.hidden) == 2 and len(encoder.norms) == 3


def test_class_batches_for_large_label_spaces():
    stats = small_graph_stats()
    out = embeddings.train_asge(stats, 8, 5, class_batch=2, seed=1, verbose=False)
    assert out.shape == (5, 8) and np.all(np.isfinite(out))


def test_default_embeddings_are_asge_cached_in_the_run(tmp_path):
    stats = small_graph_stats()
    config = Config.from_flags(num_classes=5, label_embedding_dim=8, asge_steps=10, train_dir=str(tmp_path))
    first = embeddings.initial_embeddings(config, stats)
    saved = tmp_path / embeddings.EMBEDDINGS_FILE
    np.testing.assert_array_equal(np.load(saved), first)
    np.save(saved, first + 1)  # the cached copy is what a second call returns
    np.testing.assert_array_equal(embeddings.initial_embeddings(config, stats), first + 1)
    finetune = config.replace(train_dir=str(tmp_path / "next"), init_from=str(tmp_path), stage="finetune")
    np.testing.assert_array_equal(embeddings.initial_embeddings(finetune, stats), first + 1)


def test_glove_text_file_averages_the_words_of_names(tmp_path):
    vocabulary = tmp_path / "vocabulary.csv"
    vocabulary.write_text("Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,"
                          "WikiDescription\n0,1,/m/a,Video game,u,Games,,,d\n1,1,/m/b,Car,u,Autos,,,d\n"
                          "2,1,/m/c,Zzyzx,u,Autos,,,d\n")
    glove = tmp_path / "glove.txt"
    glove.write_text("the 9 9 9\nvideo 1 0 2\ngame 3 2 0\ncar 0 1 1\n")
    config = Config.from_flags(num_classes=4, label_embeddings=str(glove), vocabulary_file=str(vocabulary))
    out = embeddings.initial_embeddings(config, LabelStatistics(np.ones(4, int), np.zeros((4, 4), int), 1))
    np.testing.assert_allclose(out[0], [2, 1, 1])
    np.testing.assert_allclose(out[1], [0, 1, 1])
    assert out.shape == (4, 3) and np.all(np.isfinite(out[2:])) and np.abs(out[2:]).sum() > 0
    with pytest.raises(UserError, match="vocabulary_file"):
        embeddings.initial_embeddings(config.replace(vocabulary_file=""),
                                      LabelStatistics(np.ones(4, int), np.zeros((4, 4), int), 1))
