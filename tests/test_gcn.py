import numpy as np
import keras
from keras import ops

from models.layers.gcn import GCNStack, GraphConvolution, LabelNodes, low_rank_units, normalize_adjacency


def test_symmetric_normalisation_by_hand():
    a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]], "float32")
    # degrees 2, 3, 2: entry (0,1) = 1/sqrt(2*3), (1,1) = 1/3, (0,0) = 1/2
    out = ops.convert_to_numpy(normalize_adjacency(a))
    np.testing.assert_allclose(out[0, 1], 1 / np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(out[1, 1], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0], 1 / 2, rtol=1e-6)
    assert out[0, 2] == 0


def test_graph_convolution_is_leaky_relu_of_a_e_w():
    layer = GraphConvolution(2)
    e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "float32")
    a = np.eye(3, dtype="float32")[[1, 0, 2]]  # swaps nodes 0 and 1
    layer.build(e.shape, a.shape)
    layer.kernel.assign(np.array([[1.0, -1.0], [2.0, 0.0]], "float32"))
    out = ops.convert_to_numpy(layer(e, a))
    # E W = [[1,-1],[2,0],[3,-1]]; A swaps rows 0/1; LeakyReLU(0.2) scales negatives.
    np.testing.assert_allclose(out, [[2.0, 0.0], [1.0, -0.2], [3.0, -0.2]], rtol=1e-6)


def test_low_rank_graph_convolution_is_a_e_w1_w2_plus_b_as_mssnet():
    assert low_rank_units(300, 192) == 61 and low_rank_units(8, 16) == 32   # max(32, (in + out) / 8)
    layer = GraphConvolution(2, activation=None, use_bias=True, kernel_initializer="fan_out_uniform", low_rank=True)
    e = np.array([[1.0, 2.0], [0.0, 1.0]], "float32")
    a = np.array([[0.5, 0.5], [0.0, 1.0]], "float32")
    layer.build(e.shape, a.shape)
    assert layer.kernel.shape == (2, 32) and layer.kernel_out.shape == (32, 2)
    assert np.abs(layer.kernel.numpy()).max() <= 1 / np.sqrt(32) and np.abs(layer.kernel_out.numpy()).max() <= 1 / np.sqrt(2)
    w1 = np.zeros((2, 32), "float32"); w1[0, 0], w1[1, 1] = 1.0, 2.0
    w2 = np.zeros((32, 2), "float32"); w2[0, 0], w2[1, 1] = 3.0, -1.0
    layer.kernel.assign(w1); layer.kernel_out.assign(w2); layer.bias.assign([0.5, 0.0])
    # E W1 W2 = [[3, -4], [0, -2]]; A mixes row 0 with row 1: [[1.5, -3], [0, -2]]; + b.
    np.testing.assert_allclose(ops.convert_to_numpy(layer(e, a)), [[2.0, -3.0], [0.5, -2.0]], rtol=1e-6)
    again = GraphConvolution.from_config(layer.get_config())
    assert again.low_rank and not GraphConvolution(2).low_rank


def test_label_nodes_keep_their_arrays_through_save_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    embeddings, adjacency = rng.random((4, 3)).astype("float32"), rng.random((4, 4)).astype("float32")
    features = keras.Input((5,))
    nodes, graph = LabelNodes(4, 3, embeddings=embeddings, adjacency=adjacency, normalize=False)(features)
    classifiers = GCNStack([6, 5])(nodes, graph)[-1]
    model = keras.Model(features, ops.sigmoid(ops.matmul(features, ops.transpose(classifiers))))
    x = rng.random((2, 5)).astype("float32")
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)
    layer = next(l for l in again.layers if isinstance(l, LabelNodes))
    np.testing.assert_allclose(layer.adjacency.numpy(), adjacency)
    np.testing.assert_allclose(layer.embeddings.numpy(), embeddings)


def test_a_learned_adjacency_trains():
    rng = np.random.default_rng(1)
    features = keras.Input((5,))
    nodes, graph = LabelNodes(4, 3, learn_adjacency=True, seed=0)(features)
    classifiers = GCNStack([8, 5])(nodes, graph)[-1]
    model = keras.Model(features, ops.sigmoid(ops.matmul(features, ops.transpose(classifiers))))
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    x = rng.random((64, 5)).astype("float32")
    y = (x[:, :4] > 0.5).astype("float32")
    before = model.get_layer(index=1).adjacency.numpy().copy()
    history = model.fit(x, y, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(model.get_layer(index=1).adjacency.numpy(), before)


def test_a_random_adjacency_keeps_labels_apart():
    """The default random start must not average every label into one vector (C = 500 here)."""
    nodes = LabelNodes(500, 16, learn_adjacency=True, seed=0)
    embeddings, adjacency = nodes(np.zeros((1, 1), "float32"))
    mixed = ops.convert_to_numpy(ops.matmul(adjacency, embeddings))
    unit = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    mean_cosine = (unit @ unit.T)[~np.eye(500, dtype=bool)].mean()
    assert abs(mean_cosine) < 0.5


def test_gcn_stack_gives_pre_activations_and_feeds_on_activations():
    rng = np.random.default_rng(2)
    e, a = rng.normal(size=(4, 3)).astype("float32"), np.eye(4, dtype="float32")
    stack = GCNStack([5, 2], use_bias=True, kernel_initializer="fan_out_uniform", return_pre_activations=True)
    pre = [ops.convert_to_numpy(x) for x in stack(e, a)]
    first, second = stack.convolutions
    bound = 1 / np.sqrt(5)   # ML-GCN / mssnet init: U(-1/sqrt(units), 1/sqrt(units)), bias too
    assert np.abs(first.kernel.numpy()).max() <= bound and np.abs(first.bias.numpy()).max() <= bound
    np.testing.assert_allclose(pre[0], e @ first.kernel.numpy() + first.bias.numpy(), rtol=1e-5, atol=1e-6)
    assert (pre[0] < 0).any()   # not LeakyReLU'd ...
    hidden = np.where(pre[0] > 0, pre[0], 0.2 * pre[0])   # ... but the next layer gets the LeakyReLU
    np.testing.assert_allclose(pre[1], hidden @ second.kernel.numpy() + second.bias.numpy(), rtol=1e-5, atol=1e-6)
    post = GCNStack.from_config({**stack.get_config(), "return_pre_activations": False})
    post.build(e.shape)
    post.set_weights(stack.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(post(e, a)[0]), hidden, rtol=1e-5, atol=1e-6)
