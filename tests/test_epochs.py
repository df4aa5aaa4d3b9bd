"""What an epoch is without --max_steps: one pass over the training files, counted, no Keras warning."""
import glob
import json
import os
import shutil
import warnings

import pytest
import tensorflow as tf

from tests.helpers import frame_config, run_cli, tiny_dbof_flags
from yt8m import datasets, pass_count, rundir, training


def test_an_epoch_is_one_pass_over_the_training_files_without_a_ran_out_of_data_warning(synthetic_data, tmp_path):
    videos = sum(1 for path in glob.glob(synthetic_data.frame_train) for _ in tf.data.TFRecordDataset(path))
    batch = 40
    assert videos % batch, "the last batch of a pass should be partial"
    per_epoch = -(-videos // batch)
    run = tmp_path / "run"
    flags = [*tiny_dbof_flags(synthetic_data, run), f"--batch_size={batch}"]
    trained = run_cli("train.py", *flags, "--num_epochs=2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "ran out of data" not in trained.stdout + trained.stderr
    assert f"an epoch: one pass over the training files, {per_epoch} steps of --batch_size={batch}" in trained.stdout
    epoch_lines = [line for line in trained.stdout.splitlines() if line.startswith(f"{per_epoch}/{per_epoch} - ")]
    assert len(epoch_lines) == 2, trained.stdout
    # Keras left to find the end of the data counted one step more per epoch than it trained (8 here).
    assert json.loads((run / "train_result.json").read_text())["steps"] == 2 * per_epoch



@pytest.mark.parametrize("reader", ["video", "frame", "segment"])
def test_the_steps_of_an_epoch_are_the_batches_of_one_pass_of_the_input(synthetic_data, tmp_path, reader):
    # Videos: the records counted unparsed, ceil(records / batch); segments: the batches of the pipeline itself.
    config = frame_config(synthetic_data, tmp_path / "run", max_steps=None, num_epochs=1, batch_size=40)
    if reader == "video":
        config = config.replace(train_data_pattern=synthetic_data.video_train, frame_features=False,
                                feature_names=("mean_rgb", "mean_audio"), model="LogisticModel", model_params={})
    if reader == "segment":
        config = config.replace(train_data_pattern=synthetic_data.frame_validate, segment_labels=True)
    batches = sum(1 for _ in datasets.training_dataset(config))
    assert batches > 1
    assert pass_count.pass_steps(config, False, str(tmp_path / "run")) == batches


def _video_run(data, train_dir, **changes):
    return frame_config(data, train_dir, max_steps=None, num_epochs=1, batch_size=40).replace(**{
        "train_data_pattern": data.video_train, "frame_features": False, "feature_names": ("mean_rgb", "mean_audio"),
        "model": "LogisticModel", "model_params": {}, **changes})


def _records(pattern: str) -> int:
    return sum(1 for path in glob.glob(pattern) for _ in tf.data.TFRecordDataset(path))


def _counts_once(monkeypatch) -> list:
    """pass_count._count wrapped: the calls listed; a second call fails the test (a pass read again)."""
    calls = []
    count = pass_count._count

    def once(*args, **kwargs):
        assert not calls, "one pass of the training files was read again"
        calls.append(args)
        return count(*args, **kwargs)
    monkeypatch.setattr(pass_count, "_count", once)
    return calls


def test_a_resumed_run_reads_no_record_to_count_its_epoch(synthetic_data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    calls = _counts_once(monkeypatch)
    training.train(_video_run(synthetic_data, run))
    assert len(calls) == 1
    saved = json.loads((run / rundir.PASS_COUNT_FILE).read_text())
    assert (saved["count"], saved["of"], saved["files"]) == (_records(synthetic_data.video_train), "records", 2)
    assert "counted in" in capsys.readouterr().out
    resumed = training.train(_video_run(synthetic_data, run, num_epochs=2))   # epoch 2: the count of the file
    steps = -(-saved["count"] // 40)
    assert resumed.steps == 2 * steps
    assert f"{steps} steps of --batch_size=40 (" in capsys.readouterr().out
    assert len(calls) == 1


def test_a_changed_file_set_or_batching_of_segments_is_counted_again(synthetic_data, tmp_path, monkeypatch):
    files = tmp_path / "files"
    files.mkdir()
    for path in glob.glob(synthetic_data.video_train):
        shutil.copy(path, files)
    run = str(tmp_path / "run")
    config = _video_run(synthetic_data, run, train_data_pattern=str(files / "*.tfrecord"))
    counted = []
    monkeypatch.setattr(pass_count, "_count", lambda *args: counted.append(args) or 1000)   # 1000 records a pass
    assert pass_count.pass_steps(config, False, run) == 25
    assert pass_count.pass_steps(config.replace(batch_size=100), False, run) == 10   # records: no new count
    assert len(counted) == 1
    with open(sorted(files.iterdir())[0], "ab") as handle:   # a file grew (or was replaced)
        handle.write(b"\0")
    pass_count.pass_steps(config, False, run)
    os.remove(sorted(files.iterdir())[1])                    # a file left the pattern
    pass_count.pass_steps(config, False, run)
    assert len(counted) == 3
    # Segments count the pipeline's batches: another --batch_size is another count.
    segments = frame_config(synthetic_data, run, max_steps=None, num_epochs=1, batch_size=40,
                            train_data_pattern=synthetic_data.frame_validate, segment_labels=True)
    pass_count.pass_steps(segments, False, run)
    pass_count.pass_steps(segments.replace(batch_size=64), False, run)
    assert len(counted) == 5


def test_above_the_size_limit_keras_finds_each_pass_end_quietly(synthetic_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pass_count, "PASS_COUNT_LIMIT_BYTES", 0)
    monkeypatch.setattr(pass_count, "_count", lambda *args: pytest.fail("the training files were read to count"))
    per_epoch = -(-_records(synthetic_data.video_train) // 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.train(_video_run(synthetic_data, tmp_path / "run", num_epochs=2))
    log = capsys.readouterr()
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert "ran out of data" not in log.out + log.err
    assert "its length is found at its end" in log.out
    assert len([line for line in log.out.splitlines() if line.startswith(f"{per_epoch}/{per_epoch} - ")]) == 2, log.out
    # One pass an epoch; Keras counts one step per epoch more than it trains (the failing read's).
    assert 2 * per_epoch <= result.steps <= 2 * (per_epoch + 1)
    assert not (tmp_path / "run" / rundir.PASS_COUNT_FILE).exists()
