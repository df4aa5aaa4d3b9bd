"""inference.py --export_dir: a SavedModel that parses serialized records itself and predicts
what the Keras model predicts on the same records."""
import glob
import os

import keras
import numpy as np
import tensorflow as tf

from tests.helpers import frame_config, run_cli
from yt8m import export, rundir, training
from yt8m.config import Config
from yt8m.data import readers


def _records(pattern, count):
    return [r.numpy() for r in tf.data.TFRecordDataset(sorted(glob.glob(pattern))).take(count)]


def _keras_predictions(model, dataset):
    ids, probabilities = [], []
    for features, _, _ in dataset:
        ids.extend(features["id"].numpy())
        probabilities.append(model(readers.model_inputs(features), training=False).numpy())
    return ids, np.concatenate(probabilities)


def test_frame_level_export_through_inference_py_serves_the_models_predictions(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", max_steps=3, steps_per_epoch=3)
    training.train(config)
    export_dir = tmp_path / "exported"
    result = run_cli("inference.py", f"--train_dir={tmp_path / 'run'}", f"--export_dir={export_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not glob.glob(f"{export_dir}.tmp-*")

    records = _records(synthetic_data.frame_train, 10)
    served = tf.saved_model.load(str(export_dir)).signatures[export.SIGNATURE](serialized=tf.constant(records))
    model = rundir.load_trained_model(str(tmp_path / "run"))
    dataset = readers.frame_dataset(sorted(glob.glob(synthetic_data.frame_train))[0], num_classes=config.data.num_classes,
                                    feature_spec=config.data.feature_spec, batch_size=4)
    ids, expected = _keras_predictions(model, dataset.take(3))
    assert list(served["video_id"].numpy()) == ids[:10]
    probabilities = served["probabilities"].numpy()
    assert probabilities.shape == (10, config.data.num_classes) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected[:10], rtol=1e-5, atol=1e-6)
    top = served["top_classes"].numpy()
    assert top.shape == (10, 20)
    np.testing.assert_array_equal(top[:, 0], expected[:10].argmax(axis=1))
    np.testing.assert_allclose(served["top_scores"].numpy()[:, 0], expected[:10].max(axis=1), rtol=1e-6)


def test_video_level_export_takes_examples(synthetic_data, tmp_path):
    config = Config.from_flags(train_data_pattern=synthetic_data.video_train, num_classes=synthetic_data.num_classes,
                    model="LogisticModel", batch_size=16, max_steps=3, steps_per_epoch=3,
                    train_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "exported"))
    training.train(config)
    export.export_run(config)
    records = _records(synthetic_data.video_train, 7)
    served = tf.saved_model.load(config.evaluation.export_dir).signatures[export.SIGNATURE](serialized=tf.constant(records))
    model = rundir.load_trained_model(config.training.train_dir)
    dataset = readers.video_dataset(sorted(glob.glob(synthetic_data.video_train))[0],
                                    num_classes=config.data.num_classes, feature_spec=config.data.feature_spec, batch_size=7)
    ids, expected = _keras_predictions(model, dataset.take(1))
    assert list(served["video_id"].numpy()) == ids
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert os.path.exists(os.path.join(config.evaluation.export_dir, "saved_model.pb"))


def test_mixed_precision_trains_on_cpu_and_serves_float32(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", max_steps=3, steps_per_epoch=3, mixed_precision=True,
                          export_dir=str(tmp_path / "exported"))
    result = training.train(config)
    # With float16 (a GPU) the loss scale starts high, so the first steps may overflow and be skipped.
    assert result.steps >= 1 and np.isfinite(result.final_loss)
    model = rundir.load_trained_model(config.training.train_dir)
    compute = training.mixed_precision_policy().removeprefix("mixed_")   # bfloat16 on a CPU-only host
    assert model.get_layer("dbof").compute_dtype == compute and model.output.dtype == "float32"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    export.export_run(config)
    served = tf.saved_model.load(config.evaluation.export_dir).signatures[export.SIGNATURE](
        serialized=tf.constant(_records(synthetic_data.frame_train, 3)))
    assert served["probabilities"].dtype == tf.float32
    assert keras.config.dtype_policy().name == "float32"   # the global policy is restored
