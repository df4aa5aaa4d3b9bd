"""FusedAdam: keras Adam's update and clipping, run as TensorFlow's fused kernels."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from yt8m.optimizers import FusedAdam


@pytest.mark.parametrize("clip", [None, 0.5])
def test_fused_adam_follows_keras_adam_step_by_step(clip):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
    gradients = [[rng.normal(scale=2.0, size=w.shape).astype(np.float32) for w in start] for _ in range(4)]
    runs = []
    for optimizer in (keras.optimizers.Adam(0.05, global_clipnorm=clip), FusedAdam(0.05, global_clipnorm=clip)):
        variables = [keras.Variable(w) for w in start]
        for step in gradients:
            optimizer.apply_gradients(zip([tf.constant(g) for g in step], variables))
        runs.append([v.numpy() for v in variables + optimizer.variables[1:]])
    assert not np.allclose(runs[1][0], start[0]), "the fused update moved nothing"
    for keras_value, fused_value in zip(*runs):
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=1e-6)


def test_fused_adam_round_trips_its_config():
    optimizer = FusedAdam(keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9), global_clipnorm=1.0)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, FusedAdam) and clone.global_clipnorm == 1.0
