"""What an epoch is without --max_steps: one pass over the training files, counted, no Keras warning."""
import glob
import json

import pytest
import tensorflow as tf

from tests.helpers import frame_config, run_cli, tiny_dbof_flags
from yt8m import datasets, training


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
    assert training._pass_steps(config, False, str(tmp_path / "run")) == batches
