import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import frame_config
from yt8m import training
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.labels import context
from yt8m.labels.statistics import LabelStatistics, count_labels


def _write_video_records(path, label_lists):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i, labels in enumerate(label_lists):
            features = {"id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"v{i}".encode()])),
                        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def test_streamed_counts_equal_a_numpy_count(tmp_path):
    rng = np.random.default_rng(0)
    label_lists = [sorted(rng.choice(6, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(50)]
    _write_video_records(tmp_path / "a.tfrecord", label_lists[:20])
    _write_video_records(tmp_path / "b.tfrecord", label_lists[20:])
    stats = count_labels(str(tmp_path / "*.tfrecord"), 6, frame_features=False, batch_size=7)
    multi_hot = np.zeros((50, 6), np.int64)
    for row, labels in enumerate(label_lists):
        multi_hot[row, labels] = 1
    expected = multi_hot.T @ multi_hot
    np.testing.assert_array_equal(stats.counts, np.diag(expected))
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(stats.cooccurrence, expected)
    assert stats.num_videos == 50


def test_a_corrupt_record_stops_the_count_naming_its_file_or_is_skipped(tmp_path):
    label_lists = [[i % 6] for i in range(40)]
    _write_video_records(tmp_path / "good.tfrecord", label_lists[:20])
    _write_video_records(tmp_path / "bad.tfrecord", label_lists[20:])
    data = bytearray((tmp_path / "bad.tfrecord").read_bytes())
    data[len(data) // 2:len(data) // 2 + 8] = bytes(8)   # one record's bytes zeroed: its CRC fails
    (tmp_path / "bad.tfrecord").write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"bad\.tfrecord: record \d+ \(at byte \d+"):
        count_labels(str(tmp_path / "*.tfrecord"), 6, frame_features=False)
    skipped = count_labels(str(tmp_path / "*.tfrecord"), 6, frame_features=False, skip_corrupt_records=True)
    assert 38 <= skipped.num_videos < 40   # the damaged record (or two) lost, the records after it read


def test_frame_level_records_give_the_same_counts_as_video_level(synthetic_data):
    from_frames = count_labels(synthetic_data.frame_train, synthetic_data.num_classes, frame_features=True)
    from_videos = count_labels(synthetic_data.video_train, synthetic_data.num_classes, frame_features=False)
    np.testing.assert_array_equal(from_frames.counts, from_videos.counts)
    np.testing.assert_array_equal(from_frames.cooccurrence, from_videos.cooccurrence)
    assert from_frames.counts.sum() > 0


def test_conditional_probability_on_coco_matches_the_kssnet_figure(reference_dir):
    stats = LabelStatistics.load(str(reference_dir / "coco_label_graph.npz"))
    names = list(np.load(reference_dir / "coco_label_graph.npz")["label_names"])
    p = stats.conditional_probability()
    ball, racket = names.index("sports ball"), names.index("tennis racket")
    assert round(p[ball, racket], 4) == 0.4223  # P(tennis racket | sports ball)
    assert round(p[racket, ball], 4) == 0.5325


def test_save_and_load_round_trip(tmp_path):
    stats = LabelStatistics(np.array([3, 1]), np.array([[0, 1], [1, 0]]), 4)
    stats.save(str(tmp_path / "s.npz"))
    again = LabelStatistics.load(str(tmp_path / "s.npz"))
    np.testing.assert_array_equal(again.cooccurrence, stats.cooccurrence)
    assert again.num_videos == 4 and again.frequencies()[0] == 0.75


def test_old_files_without_the_counted_pattern_still_load(tmp_path):
    np.savez(tmp_path / "old.npz", label_counts=np.array([3, 1]), cooccurrence=np.array([[0, 1], [1, 0]]),
             num_videos=4)
    old = LabelStatistics.load(str(tmp_path / "old.npz"))
    assert old.counted_on == "" and old.num_videos == 4 and "4 videos" in old.description
    counted = LabelStatistics(old.counts, old.cooccurrence, 4, "--train_data_pattern=data/train*.tfrecord")
    counted.save(str(tmp_path / "new.npz"))
    assert LabelStatistics.load(str(tmp_path / "new.npz")).description == (
        "counted on --train_data_pattern=data/train*.tfrecord (4 videos)")


# ------------------------------------------------------------------ where a run's statistics come from


def _split_counts(data, pattern):
    return count_labels(pattern, data.num_classes, frame_features=True)


def test_a_bce_pretrain_saves_the_training_set_statistics_that_its_finetune_uses(synthetic_data, tmp_path,
                                                                                    capsys):
    train, validate = (_split_counts(synthetic_data, p) for p in (synthetic_data.frame_train,
                                                                  synthetic_data.frame_validate))
    assert not np.array_equal(train.counts, validate.counts)  # so the tests below can tell them apart
    pre = frame_config(synthetic_data, tmp_path / "pre", max_steps=2, steps_per_epoch=2)  # plain BCE
    training.train(pre)
    saved_file = os.path.join(pre.training.train_dir, context.STATS_FILE)
    saved = LabelStatistics.load(saved_file)
    np.testing.assert_array_equal(saved.counts, train.counts)
    np.testing.assert_array_equal(saved.cooccurrence, train.cooccurrence)
    assert saved.counted_on == f"--train_data_pattern={synthetic_data.frame_train}"
    assert "counting the labels of --train_data_pattern=" in capsys.readouterr().out

    fine = pre.replace(stage="finetune", init_from=pre.training.train_dir, segment_labels=True, loss="reweighted",
                       label_smoothing="correlation", train_data_pattern=synthetic_data.frame_validate,
                       train_dir=str(tmp_path / "fine"))
    training.train(fine)
    out = capsys.readouterr().out
    assert (f"label statistics: {saved_file}, counted on --train_data_pattern={synthetic_data.frame_train} "
            f"({train.num_videos} videos)") in out
    assert "counting the labels" not in out
    copy = LabelStatistics.load(os.path.join(fine.training.train_dir, context.STATS_FILE))  # for a finetune of it
    np.testing.assert_array_equal(copy.counts, train.counts)

    # Without the pretrain's npz: its config.json names its training records, which are counted, never the
    # finetune's; also through a finetune of the finetune.
    os.remove(saved_file)
    os.remove(os.path.join(fine.training.train_dir, context.STATS_FILE))
    again = context.label_statistics(fine.replace(train_dir=str(tmp_path / "fine2")))
    np.testing.assert_array_equal(again.counts, train.counts)
    np.testing.assert_array_equal(again.cooccurrence, train.cooccurrence)
    assert f"counting the labels of --train_data_pattern={synthetic_data.frame_train}" in capsys.readouterr().out
    chained = context.label_statistics(fine.replace(init_from=fine.training.train_dir, train_dir=""))
    np.testing.assert_array_equal(chained.counts, train.counts)


def test_a_finetune_with_no_statistics_and_no_pretrain_config_names_the_flags(tmp_path):
    (tmp_path / "pre").mkdir()
    config = Config.from_flags(stage="finetune", init_from=str(tmp_path / "pre"), loss="reweighted",
                    label_smoothing="correlation", train_dir=str(tmp_path / "fine"))
    with pytest.raises(UserError, match="--label_stats") as error:
        context.label_statistics(config)
    assert "--init_from" in str(error.value) and "\n" not in str(error.value)
    # --label_stats wins over everything; a pretrain keeps a copy of it.
    stats = LabelStatistics(np.array([3, 1]), np.array([[0, 1], [1, 0]]), 4, "--train_data_pattern=x*")
    stats.save(str(tmp_path / "given.npz"))
    assert context.label_statistics(config.replace(label_stats=str(tmp_path / "given.npz"))).num_videos == 4
    context.label_statistics(Config.from_flags(label_stats=str(tmp_path / "given.npz"), train_dir=str(tmp_path / "p2")))
    assert LabelStatistics.load(str(tmp_path / "p2" / context.STATS_FILE)).counted_on == "--train_data_pattern=x*"
