import numpy as np
import tensorflow as tf

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
