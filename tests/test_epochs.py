"""What an epoch is without --max_steps: one pass over the training files, counted, no Keras warning."""
import glob
import json

import tensorflow as tf

from tests.helpers import run_cli, tiny_dbof_flags


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

