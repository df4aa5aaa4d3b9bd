import math

import numpy as np

from yt8m.losses import MultiLabelCrossentropy


def test_crossentropy_sums_classes_and_averages_the_batch_by_hand():
    y_true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype="float32")
    y_pred = np.array([[0.8, 0.1, 0.5], [0.2, 0.9, 0.6]], dtype="float32")
    # Row 1: -ln .8 - ln .9 - ln .5 ; row 2: -ln .8 - ln .9 - ln .6 ; mean of the two sums.
    row1 = -(math.log(0.8) + math.log(0.9) + math.log(0.5))
    row2 = -(math.log(0.8) + math.log(0.9) + math.log(0.6))
    loss = float(MultiLabelCrossentropy()(y_true, y_pred))
    assert math.isclose(loss, (row1 + row2) / 2, rel_tol=1e-5)


def test_crossentropy_with_segment_weights_counts_only_the_rated_class():
    y_true = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype="float32")
    y_pred = np.array([[0.8, 0.1, 0.5], [0.2, 0.9, 0.6]], dtype="float32")
    weights = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype="float32")  # rated: class 2, class 0
    expected = (-math.log(0.5) - math.log(0.8)) / 2
    loss = float(MultiLabelCrossentropy()(y_true, y_pred, sample_weight=weights))
    assert math.isclose(loss, expected, rel_tol=1e-5)
