"""Training stages, evaluation and submissions on the session's synthetic data."""
import glob
import io
import json
import os
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.helpers import TINY_DBOF, frame_config
from yt8m import callbacks, evaluation, metrics, rundir, training
from yt8m.backup import backup_weights_path
from yt8m.config import Config
from yt8m.data.vocabulary import read_segment_label_ids
from yt8m.errors import UserError


@pytest.fixture(scope="module")
def pretrained(synthetic_data, tmp_path_factory):
    config = frame_config(synthetic_data, tmp_path_factory.mktemp("runs") / "pretrain", max_steps=100,
                          steps_per_epoch=25, model_params={**TINY_DBOF, "cluster_size": 64, "hidden_size": 64})
    return config, training.train(config)


def test_pretrain_writes_the_run_and_counts_steps(pretrained):
    config, result = pretrained
    assert result.steps == 100
    for name in ("model.keras", "config.json", "backup", "logs"):
        assert os.path.exists(os.path.join(config.training.train_dir, name)), name
    assert Config.load(os.path.join(config.training.train_dir, "config.json")) == config


def test_the_model_file_holds_no_optimizer_state_and_the_backup_does(pretrained):
    config, _ = pretrained
    with zipfile.ZipFile(os.path.join(config.training.train_dir, "model.keras")) as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            assert "layers" in weights and "optimizer" not in weights
    with h5py.File(backup_weights_path(os.path.join(config.training.train_dir, "backup")), "r") as weights:
        assert "optimizer" in weights   # the resume's copy keeps Adam's moments


def test_finetune_starts_from_the_pretrained_weights_with_a_new_optimizer(pretrained, synthetic_data, tmp_path):
    pre_config, _ = pretrained
    config = pre_config.replace(stage="finetune", init_from=pre_config.training.train_dir, segment_labels=True,
                                train_data_pattern=synthetic_data.frame_validate, train_dir=str(tmp_path / "fine"),
                                max_steps=4, steps_per_epoch=4, base_learning_rate=0.0)
    resized = config.replace(model_params={**config.model_.model_params, "hidden_size": 8},
                             train_dir=str(tmp_path / "resized"))
    with pytest.raises(UserError, match="differ from those of the model --init_from built"):
        training.train(resized)   # the saved model would be trained as it is: the new size would do nothing
    result = training.train(config)   # the pretrain's own params (as the demo passes them) are fine
    assert result.steps == 4  # a fresh optimizer: its step count starts at 0, not at the pretrain's 100
    before = rundir.load_trained_model(pre_config.training.train_dir).trainable_weights
    after = rundir.load_trained_model(config.training.train_dir).trainable_weights
    assert len(before) == len(after) > 0
    for b, a in zip(before, after):  # learning rate 0: finetuning from the loaded weights keeps them
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_segment_eval_and_submission_beat_a_random_ranking(pretrained, synthetic_data, tmp_path):
    config, _ = pretrained
    segment = config.replace(segment_labels=True, eval_data_pattern=synthetic_data.frame_validate,
                             output_file=str(tmp_path / "eval.json"))
    result = evaluation.evaluate(segment, progress=False)
    with open(tmp_path / "eval.json") as handle:
        assert json.load(handle)["segment_map_at_k"] == pytest.approx(result["segment_map_at_k"])
    assert result["num_rated_segments"] > 0

    csv = str(tmp_path / "submission.csv")
    evaluation.write_submission(segment.replace(input_data_pattern=synthetic_data.frame_test, output_file=csv),
                                progress=False)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["Class", "Segments"]
    assert table["Class"].tolist() == read_segment_label_ids().tolist()
    truth = metrics.read_segment_truth(synthetic_data.test_truth)
    score = metrics.segment_map_at_k(metrics.read_segment_submission(csv), truth)
    rng = np.random.default_rng(0)
    random_map = np.mean([metrics.rated_segment_map(truth["class_id"].to_numpy(), rng.random(len(truth)),
                                                    truth["score"].to_numpy()) for _ in range(20)])
    assert score > random_map + 0.05, (score, random_map)


def test_video_level_model_trains_evaluates_and_writes_the_video_csv(synthetic_data, tmp_path):
    config = Config.from_flags(train_data_pattern=synthetic_data.video_train, eval_data_pattern=synthetic_data.video_train,
                    input_data_pattern=synthetic_data.video_train, num_classes=synthetic_data.num_classes,
                    model="LogisticModel", batch_size=32, max_steps=20, steps_per_epoch=20,
                    train_dir=str(tmp_path / "run"), output_file=str(tmp_path / "videos.csv"))
    training.train(config)
    result = evaluation.evaluate(config.replace(output_file=""), progress=False)
    assert set(result) >= {"gap", "map", "hit_at_one", "perr"}
    assert 0.0 < result["hit_at_one"] <= 1.0
    evaluation.write_submission(config, progress=False)
    table = pd.read_csv(tmp_path / "videos.csv")
    assert list(table.columns) == ["VideoId", "LabelConfidencePairs"]
    assert len(table["LabelConfidencePairs"][0].split()) == 40  # 20 (label, score) pairs


def _scalars(log_dir) -> dict:
    """{tag: [(step, value), ...]} of the TensorBoard event files under log_dir."""
    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                found.setdefault(value.tag, []).append((event.step, number))
    return found


def test_validation_while_pretraining_writes_video_metrics_and_keeps_the_best(synthetic_data, tmp_path, capsys):
    config = Config.from_flags(train_data_pattern=synthetic_data.video_train, eval_data_pattern=synthetic_data.video_train,
                    num_classes=synthetic_data.num_classes, batch_size=32, max_steps=30, steps_per_epoch=10,
                    base_learning_rate=1e-4, train_dir=str(tmp_path / "run"), eval_every_steps=0,
                    keep_best_checkpoint=True)
    result = training.train(config)
    scalars = _scalars(tmp_path / "run" / "logs" / "validation")
    for name in ("gap", "map", "hit_at_one", "perr"):
        assert [step for step, _ in scalars[name]] == [10, 20, 30], name
    gaps = [value for _, value in scalars["gap"]]
    assert [v["gap"] for v in result.validation] == pytest.approx(gaps) and len(set(gaps)) == 3
    assert "validation at step 20: " in capsys.readouterr().out
    best = json.loads((tmp_path / "run" / "best_eval.json").read_text())
    assert best["metric"] == "gap" and best["value"] == pytest.approx(max(gaps)) == pytest.approx(result.best["value"])
    assert best["step"] == 10 * (1 + int(np.argmax(gaps)))
    kept = evaluation.score(config, rundir.load_trained_model(str(tmp_path / "run")), progress=False)
    assert kept["gap"] == pytest.approx(gaps[-1])   # the validation is eval.py's metric on the final model
    best_model = keras.models.load_model(tmp_path / "run" / "best_model.keras", compile=False)
    assert evaluation.score(config, best_model, progress=False)["gap"] == pytest.approx(max(gaps))


def test_validation_while_finetuning_every_few_steps_scores_segments(pretrained, synthetic_data, tmp_path):
    pre_config, _ = pretrained
    config = pre_config.replace(stage="finetune", init_from=pre_config.training.train_dir, segment_labels=True,
                                train_data_pattern=synthetic_data.frame_validate, train_dir=str(tmp_path / "fine"),
                                eval_data_pattern=synthetic_data.frame_validate, max_steps=5, steps_per_epoch=5,
                                eval_every_steps=2, keep_best_checkpoint=True)
    result = training.train(config)
    scalars = _scalars(tmp_path / "fine" / "logs" / "validation")
    # Step 0 is the --init_from model as loaded; then every 2 steps, and at the end.
    assert [step for step, _ in scalars["segment_map_at_k"]] == [0, 2, 4, 5]
    assert [v["step"] for v in result.validation] == [0, 2, 4, 5]
    pretrained_score = evaluation.score(config, rundir.load_trained_model(pre_config.training.train_dir), progress=False)
    assert result.validation[0]["segment_map_at_k"] == pytest.approx(pretrained_score["segment_map_at_k"])
    scores = [v["segment_map_at_k"] for v in result.validation]
    assert result.best["value"] == pytest.approx(max(scores))
    assert result.best["step"] == result.validation[int(np.argmax(scores))]["step"]   # the first of equal bests
    # eval.py --best_checkpoint scores the kept model; a run without one says how to keep one.
    assert evaluation.score(config.replace(best_checkpoint=True), progress=False)["segment_map_at_k"] == pytest.approx(
        result.best["value"])
    with pytest.raises(UserError, match="no best_model.keras under --train_dir=.*--keep_best_checkpoint"):
        evaluation.score(pre_config.replace(best_checkpoint=True), progress=False)


def test_a_non_finite_loss_stops_with_a_clear_error(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", base_learning_rate=1e30, clip_gradient_norm=0.0,
                          max_steps=30)
    with pytest.raises(UserError, match="loss became"):
        training.train(config)


@pytest.mark.parametrize("change, message", [
    (dict(model="NoSuchModel"), "unknown model 'NoSuchModel'"),
    (dict(model="LogisticModel"), "add --frame_features|drop --frame_features"),
    (dict(feature_sizes=(512, 128)), "rgb"),
    (dict(stage="finetune", init_from="/nonexistent/run"), "no model.keras under --init_from"),
])
def test_bad_settings_stop_with_one_clear_line(synthetic_data, tmp_path, change, message):
    with pytest.raises(UserError, match=message) as error:
        training.train(frame_config(synthetic_data, tmp_path / "run", **change))
    assert "\n" not in str(error.value)


def test_a_corrupt_record_names_the_pattern(synthetic_data, tmp_path):
    source = sorted(glob.glob(synthetic_data.frame_train))[0]
    broken = tmp_path / "train-corrupt.tfrecord"
    shutil.copy(source, broken)
    data = bytearray(broken.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    broken.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt") as error:
        training.train(frame_config(synthetic_data, tmp_path / "run", train_data_pattern=str(broken),
                                    max_steps=None, num_epochs=1))
    assert str(broken) in str(error.value)



# ------------------------------------------------ yt8m/callbacks.py: no read per step, same stops


def _callback_fit(callbacks, *, nan_at=None, steps=30, steps_per_epoch=10, epochs=3):
    """A one-weight model fit on batches of one; the label of batch `nan_at` (0-based) is NaN."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    y = np.zeros((steps, 1), np.float32)
    if nan_at is not None:
        y[nan_at] = np.nan
    data = tf.data.Dataset.from_tensor_slices((np.ones((steps, 1), np.float32), y)).batch(1).repeat()
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0)
    return model


def test_callbacks_leave_keras_free_to_dispatch_batch_ends_asynchronously(monkeypatch):
    from keras.src import backend

    monkeypatch.setattr(backend, "IS_THREAD_SAFE", True)   # as on the backends that dispatch asynchronously
    listed = keras.callbacks.CallbackList([callbacks.StopAtStep(5), callbacks.StopOnNonFiniteLoss()])
    assert listed._async_train
    assert not keras.callbacks.CallbackList([keras.callbacks.TerminateOnNaN()])._async_train  # the check can fail


@pytest.mark.parametrize("max_steps", [7, 10, 30])
def test_stop_at_step_stops_at_the_step_within_an_epoch_and_at_its_end(max_steps):
    model = _callback_fit([callbacks.StopAtStep(max_steps)])
    assert int(model.optimizer.iterations.numpy()) == max_steps


def test_stop_at_step_counts_from_the_step_a_fit_starts_at():
    model = _callback_fit([callbacks.StopAtStep(4)])
    model.fit(np.ones((8, 1)), np.zeros((8, 1)), batch_size=1, epochs=1, verbose=0, callbacks=[callbacks.StopAtStep(6)])
    assert int(model.optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize("nan_at, every, stopped_at", [
    (4, 100, 10),   # seen at the first epoch end (the epoch's mean loss stays NaN)
    (12, 5, 15),    # seen at the first check after it, mid-epoch
    (0, 100, 1),    # the first step's loss is always read
])
def test_stop_on_non_finite_loss_reads_every_few_steps_and_at_the_epoch_end(nan_at, every, stopped_at):
    guard = callbacks.StopOnNonFiniteLoss(every=every)
    model = _callback_fit([guard], nan_at=nan_at)
    assert guard.bad_step == stopped_at and np.isnan(guard.bad_value)
    assert int(model.optimizer.iterations.numpy()) == stopped_at


def test_the_demo_runs_the_mission_and_prints_its_table(synthetic_data, tmp_path, monkeypatch, capsys):
    from yt8m import demo

    monkeypatch.setattr(demo.synthetic, "ensure", lambda *args, **kwargs: synthetic_data)   # the tests' small set
    monkeypatch.setattr(demo, "RUN_DIR", str(tmp_path / "demo"))
    monkeypatch.setattr(demo, "DEMO_MODEL", "FrameLevelLogisticModel")   # the cheapest frame model to build
    monkeypatch.setattr(demo, "DEMO_MODEL_PARAMS", {})
    monkeypatch.setattr(demo, "DEMO_TRAINING", {"batch_size": 16, "base_learning_rate": 0.01, "max_steps": 4,
                                                "steps_per_epoch": 2})
    monkeypatch.setattr(demo, "FINETUNE", {**demo.FINETUNE, "batch_size": 16, "max_steps": 2, "steps_per_epoch": 2})
    results = demo.run_demo({})   # no flag given on the command line
    shown = capsys.readouterr().out
    rows = ["pretrain (video labels)", "finetune, BCE on the rated class", "finetune, seed 003 (reweighted m=2.5",
            "random ranking"]
    table = shown[shown.index("== the mission"):]
    assert all(row in table for row in rows), table
    scores = [value for name, value in results.items() if name.endswith("test segment MAP@K")]
    assert len(scores) == 4 and len(set(scores)) == 4 and all(0 < s <= 1 for s in scores)   # four different rankings
    verdict = next(line for line in table.splitlines() if "over the plain one here" in line)
    assert verdict.endswith(f"{scores[2] - scores[1]:+.4f}")   # the gain over the plain finetune, as it is
    assert set(results) >= {"pretrain video gap", "pretrain video hit_at_one"}
    for run in ("pretrain", "finetune", "finetune_seed003"):
        assert (tmp_path / "demo" / run / "submission.csv").exists(), run
    assert glob.glob(str(tmp_path / "demo" / "pretrain" / "logs" / "validation" / "events.out.tfevents.*"))
    assert not (tmp_path / "demo" / "finetune" / "logs" / "validation").exists()   # trained on validate: not validated
