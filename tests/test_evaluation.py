"""yt8m/evaluation.py's prediction loop: one trace of the forward pass for a whole pass over the data."""
import glob

import keras
import numpy as np
import tensorflow as tf

from models import registry
from tests.helpers import frame_config
from yt8m import datasets, evaluation
from yt8m.data import readers


class CountingTraces(keras.Model):
    """`inner` whose Python call runs once per trace of a tf.function around it (and never in a traced call)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.traces = 0

    def call(self, inputs, training=False):
        self.traces += 1
        return self.inner(inputs, training=training)


def test_predict_batches_traces_the_model_once_per_pass(synthetic_data, tmp_path):
    videos = sum(1 for path in glob.glob(synthetic_data.frame_validate) for _ in tf.data.TFRecordDataset(path))
    batch = 7
    assert videos % batch and videos > 2 * batch, "a pass of full batches and a partial last one"
    config = frame_config(synthetic_data, tmp_path / "run", eval_data_pattern=synthetic_data.frame_validate,
                          batch_size=batch)
    model = CountingTraces(registry.build("FrameLevelLogisticModel", num_classes=synthetic_data.num_classes,
                                          feature_size=config.data.feature_spec.total_size))
    dataset = datasets.eval_dataset(config)
    frame_counts = {int(features["frames"].shape[1]) for features, _, _ in dataset}
    assert len(frame_counts) > 1, "batches padded to different lengths"
    model(readers.model_inputs(next(iter(dataset))[0]))   # built eagerly: the count below is the traces alone
    model.traces = 0
    rows = list(evaluation.predict_batches(model, dataset, config.data.eval_data_pattern, "eval_data_pattern",
                                           progress=False))
    assert model.traces == 1   # reduce_retracing alone: 2 (the first batch's shapes, then relaxed)
    assert [len(p) for _, _, p in rows] == [batch] * (videos // batch) + [videos % batch]
    features = {key: tf.constant(value) for key, value in readers.model_inputs(rows[-1][0]).items()}
    np.testing.assert_allclose(rows[-1][2], model.inner(features, training=False), rtol=1e-5, atol=1e-6)
