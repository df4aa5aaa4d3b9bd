"""The class-imbalance loss of the CMA paper (Eq.12), by hand."""
import numpy as np
import pytest

from yt8m import losses
from yt8m.config import Config
from yt8m.labels.statistics import LabelStatistics


def test_class_balanced_weights_by_hand():
    y = np.array([[1.0, 0.0, 1.0]], "float32")
    p = np.array([[0.8, 0.3, 0.4]], "float32")
    frequency = np.array([0.1, 0.6, 0.5], "float32")
    loss = losses.ClassBalancedCrossentropy(frequency, beta=2.0)
    bce = -np.array([np.log(0.8), np.log(0.7), np.log(0.4)])
    weights = np.array([np.exp(2 * 0.9), np.exp(2 * 0.6), np.exp(2 * 0.5)])  # y e^{b(1-p)} + (1-y) e^{b p}
    np.testing.assert_allclose(np.asarray(loss.call(y, p))[0], 3 * weights * bce, rtol=1e-5)
    assert float(loss(y, p)) == pytest.approx((weights * bce).sum(), rel=1e-5)
    one_hot = np.array([[0.0, 1.0, 0.0]], "float32")  # a segment rating's reader weights
    assert float(loss(y, p, sample_weight=one_hot)) == pytest.approx(weights[1] * bce[1], rel=1e-5)


def test_beta_zero_is_bce():
    rng = np.random.default_rng(0)
    y = (rng.random((4, 6)) > 0.5).astype("float32")
    p = rng.random((4, 6)).astype("float32")
    balanced = losses.ClassBalancedCrossentropy(rng.random(6), beta=0.0)
    np.testing.assert_allclose(float(balanced(y, p)), float(losses.MultiLabelCrossentropy()(y, p)), rtol=1e-6)


def test_make_loss_uses_the_training_frequencies(tmp_path):
    LabelStatistics(np.array([3, 1]), np.zeros((2, 2), int), num_videos=4).save(str(tmp_path / "stats.npz"))
    loss = losses.make_loss(Config.from_flags(loss="class_balanced", beta=0.5, num_classes=2,
                                   label_stats=str(tmp_path / "stats.npz")))
    assert isinstance(loss, losses.ClassBalancedCrossentropy) and loss.beta == 0.5
    np.testing.assert_allclose(loss.frequencies, [0.75, 0.25])
