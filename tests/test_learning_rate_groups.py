"""--gcn_learning_rate and --weight_decay: Adam's first step is ~lr * sign(g) per weight, so it shows each rate."""
import keras
import numpy as np
import pytest

from models import registry
from yt8m import optimizers
from yt8m.config import Config
from yt8m.optimizers import FusedAdam

NUM_CLASSES = 6


def _first_step_sizes(config: Config) -> dict:
    """Median |change| of a few KSSNetTemporal weights over one training step with the run's optimizer."""
    keras.utils.set_random_seed(0)   # the same weights and gradients every call (SGD's steps scale with them)
    model = registry.build("KSSNetTemporal", num_classes=NUM_CLASSES, feature_size=40, width=8, embedding_dim=8,
                           dropout=0.0)
    model.compile(optimizer=optimizers.make_optimizer(config), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    frames = {"frames": rng.integers(0, 256, (8, 12, 40), dtype=np.uint8), "num_frames": np.full(8, 12, "int32")}
    labels = (rng.uniform(size=(8, NUM_CLASSES)) < 0.3).astype("float32")
    names = ("gcn/gcn_0/kernel", "gcn/gcn_3/kernel", "conv_0/kernel", "lateral_1/merge", "linear_head/kernel")
    before = {v.path: v.numpy() for v in model.trainable_variables if v.path in names}
    model.train_on_batch(frames, labels)
    return {v.path: float(np.median(np.abs(v.numpy() - before[v.path])))
            for v in model.trainable_variables if v.path in names}


def test_gcn_layers_move_by_the_gcn_rate_and_the_rest_by_the_base_rate():
    steps = _first_step_sizes(Config.from_flags(base_learning_rate=1e-4, gcn_learning_rate=1e-3, batch_size=8))
    for name in ("gcn/gcn_0/kernel", "gcn/gcn_3/kernel"):
        assert steps[name] == pytest.approx(1e-3, rel=0.05), steps
    for name in ("conv_0/kernel", "lateral_1/merge", "linear_head/kernel"):   # as mssnet: LCs and head at base
        assert steps[name] == pytest.approx(1e-4, rel=0.05), steps
    one_rate = _first_step_sizes(Config.from_flags(base_learning_rate=1e-4, gcn_learning_rate=0.0, batch_size=8))   # 0: the base
    assert all(size == pytest.approx(1e-4, rel=0.05) for size in one_rate.values()), one_rate


def test_the_default_rates_by_stage():
    # No rate flag: a pretrain at 0.01 with the GCN at mssnet's 1e-3; a finetune at 1e-3 with the GCN at
    # 1e-3 * (0.001 / 0.01) = 1e-4.
    pretrain = _first_step_sizes(Config.from_flags(batch_size=8))
    assert [pretrain[name] for name in ("gcn/gcn_0/kernel", "gcn/gcn_3/kernel")] == pytest.approx([1e-3] * 2, rel=0.05)
    assert [pretrain[name] for name in ("conv_0/kernel", "linear_head/kernel")] == pytest.approx([1e-2] * 2, rel=0.05)
    finetune = Config.from_flags(stage="finetune", init_from="run", batch_size=8)
    assert finetune.training.learning_rate == 1e-3 and finetune.replace(base_learning_rate=0.01).training.learning_rate == 0.01
    steps = _first_step_sizes(finetune)
    assert [steps[name] for name in ("gcn/gcn_0/kernel", "gcn/gcn_3/kernel")] == pytest.approx([1e-4] * 2, rel=0.05)
    assert [steps[name] for name in ("conv_0/kernel", "lateral_1/merge", "linear_head/kernel")] == pytest.approx(
        [1e-3] * 3, rel=0.05)
    assert Config.from_flags(base_learning_rate=0.0).training.learning_rate == 0.0   # given, even as 0 (freezes every weight)
    # Given, a GCN rate holds in either stage (0: the stage's base rate).
    assert finetune.replace(gcn_learning_rate=1e-3).training.graph_learning_rate == 1e-3
    assert finetune.replace(gcn_learning_rate=0.0).training.graph_learning_rate == 1e-3


def test_sgd_takes_the_gcn_rate_too():
    steps = _first_step_sizes(Config.from_flags(optimizer="sgd", base_learning_rate=1e-4, gcn_learning_rate=1e-3, batch_size=8,
                                     clip_gradient_norm=0.0))
    ratio = steps["gcn/gcn_3/kernel"] / _first_step_sizes(Config.from_flags(optimizer="sgd", base_learning_rate=1e-4,
                                                                 gcn_learning_rate=0.0, batch_size=8,
                                                                 clip_gradient_norm=0.0))["gcn/gcn_3/kernel"]
    assert ratio == pytest.approx(10.0, rel=1e-3)


def _one_step(l2_decay: float, gradient: float) -> tuple[np.ndarray, np.ndarray]:
    layer = keras.layers.Dense(2, name="dense")
    layer.build((None, 1))
    layer.kernel.assign([[1.0, -2.0]])
    layer.bias.assign([1.0, 1.0])
    optimizer = FusedAdam(0.01, l2_decay=l2_decay)
    optimizer.apply_gradients([(np.full((1, 2), gradient, "float32"), layer.kernel),
                               (np.full(2, gradient, "float32"), layer.bias)])
    return layer.kernel.numpy()[0], layer.bias.numpy()


def test_weight_decay_is_l2_added_to_the_gradient_not_decoupled():
    kernel, bias = _one_step(l2_decay=0.05, gradient=0.0)   # only the decay pulls: -lr sign(w), biases stay
    np.testing.assert_allclose(kernel, [1.0 - 0.01, -2.0 + 0.01], rtol=1e-5)
    np.testing.assert_allclose(bias, [1.0, 1.0])
    # g' = 1 + 0.25 w = 1.25, 0.5 > 0: one Adam step of lr each; AdamW's decoupled decay would give
    # w - lr - lr 0.25 w = 0.9875, -2.005.
    kernel, _ = _one_step(l2_decay=0.25, gradient=1.0)
    np.testing.assert_allclose(kernel, [1.0 - 0.01, -2.0 - 0.01], rtol=1e-5)


def test_the_settings_survive_the_optimizer_config():
    optimizer = FusedAdam(0.01, learning_rate_multipliers={"gcn": 10.0}, l2_decay=1e-4)
    again = FusedAdam.from_config(optimizer.get_config())
    assert again.learning_rate_multipliers == {"gcn": 10.0} and again.l2_decay == 1e-4
