"""Readers: shapes, exact values on hand-built records, segments, shuffling, bad input."""
import re

import numpy as np
import pytest
import tensorflow as tf

from yt8m.data import readers, schema
from yt8m.errors import UserError

FRAME_SPEC = schema.FeatureSpec(("rgb", "audio"), (6, 3))
VIDEO_SPEC = schema.FeatureSpec(("mean_rgb", "mean_audio"), (4, 2))
NUM_CLASSES = 5


# ------------------------------------------------------------------ helpers


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _video_example(video_id, labels, features):
    feature = {"id": _bytes([video_id.encode()]), "labels": _int64(labels)}
    feature.update({name: _floats(values) for name, values in features.items()})
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _frame_example(video_id, frames, labels=None, segments=None):
    """frames: name -> uint8 (T, size); segments: (starts, classes, scores)."""
    context = {"id": _bytes([video_id.encode()])}
    if labels is not None:
        context["labels"] = _int64(labels)
    if segments is not None:
        starts, classes, scores = segments
        context.update({"segment_start_times": _int64(starts), "segment_labels": _int64(classes),
                        "segment_scores": _floats(scores)})
    feature_lists = {
        name: tf.train.FeatureList(feature=[_bytes([row.tobytes()]) for row in values])
        for name, values in frames.items()}
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=feature_lists)).SerializeToString()


def _random_frames(rng, num_frames, spec=FRAME_SPEC):
    return {name: rng.integers(0, 256, (num_frames, size), dtype=np.uint8)
            for name, size in zip(spec.names, spec.sizes)}


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def _collect(dataset, pattern="test"):
    with readers.data_errors(pattern, "data_pattern"):
        return [tf.nest.map_structure(lambda t: t.numpy(), batch) for batch in dataset]


def _concat(frames):
    return np.concatenate([frames[name] for name in FRAME_SPEC.names], axis=-1)


@pytest.fixture()
def frame_videos(tmp_path):
    """Three videos of 3, 7 and 5 frames with known bytes, and the file they are in."""
    rng = np.random.default_rng(0)
    videos = [("a", [1], _random_frames(rng, 3)), ("b", [0, 4], _random_frames(rng, 7)),
              ("c", [], _random_frames(rng, 5))]
    path = _write(tmp_path / "train0.tfrecord",
                  [_frame_example(vid, frames, labels) for vid, labels, frames in videos])
    return path, videos


# ------------------------------------------------------------- video level


def test_video_dataset_gives_the_written_floats_and_multi_hot_labels(tmp_path):
    rng = np.random.default_rng(1)
    videos = [(f"v{i}", labels, {"mean_rgb": rng.normal(size=4).astype(np.float32),
                                 "mean_audio": rng.normal(size=2).astype(np.float32)})
              for i, labels in enumerate([[0, 3], [4], [], [1, 1]])]
    path = _write(tmp_path / "train.tfrecord",
                  [_video_example(vid, labels, feats) for vid, labels, feats in videos])
    batches = _collect(readers.video_dataset(path, num_classes=NUM_CLASSES,
                                             feature_spec=VIDEO_SPEC, batch_size=3))
    assert [len(b[1]) for b in batches] == [3, 1]
    features, labels, weights = (np.concatenate(parts) for parts in zip(
        *[(b[0]["features"], b[1], b[2]) for b in batches]))
    ids = np.concatenate([b[0]["id"] for b in batches])
    assert features.dtype == np.float32 and features.shape == (4, 6)
    assert labels.dtype == np.float32 and weights.dtype == np.float32
    assert list(ids) == [b"v0", b"v1", b"v2", b"v3"]
    for row, (_, video_labels, feats) in enumerate(videos):
        np.testing.assert_array_equal(features[row],
                                      np.concatenate([feats["mean_rgb"], feats["mean_audio"]]))
        expected = np.zeros(NUM_CLASSES, np.float32)
        expected[video_labels] = 1
        np.testing.assert_array_equal(labels[row], expected)
    np.testing.assert_array_equal(weights, np.ones((4, NUM_CLASSES)))


# ------------------------------------------------------------- frame level


def test_frame_dataset_pads_uint8_frames_to_the_batch_longest_video(frame_videos):
    path, videos = frame_videos
    (features, labels, weights), = _collect(readers.frame_dataset(
        path, num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC, batch_size=3))
    frames = features["frames"]
    assert frames.dtype == np.uint8 and frames.shape == (3, 7, 9)
    assert features["num_frames"].dtype == np.int32
    assert list(features["num_frames"]) == [3, 7, 5]
    for row, (_, _, written) in enumerate(videos):
        expected = _concat(written)
        np.testing.assert_array_equal(frames[row, :len(expected)], expected)
        assert not frames[row, len(expected):].any()
    np.testing.assert_array_equal(labels, [[0, 1, 0, 0, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(weights, np.ones((3, NUM_CLASSES)))


def test_frame_dataset_pad_to_max_fixes_the_shape_and_truncates_long_videos(frame_videos):
    path, videos = frame_videos
    options = dict(num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC, batch_size=2, max_frames=6)
    fixed = readers.frame_dataset(path, pad_to_max=True, **options)
    assert fixed.element_spec[0]["frames"].shape.as_list() == [None, 6, 9]
    batches = _collect(fixed)
    assert [b[0]["frames"].shape for b in batches] == [(2, 6, 9), (1, 6, 9)]
    assert list(batches[0][0]["num_frames"]) == [3, 6]
    np.testing.assert_array_equal(batches[0][0]["frames"][1], _concat(videos[1][2])[:6])
    dynamic = _collect(readers.frame_dataset(path, **options))
    assert [b[0]["frames"].shape for b in dynamic] == [(2, 6, 9), (1, 5, 9)]


def test_model_inputs_keeps_only_model_keys(frame_videos):
    path, _ = frame_videos
    (features, _, _), = _collect(readers.make_dataset(
        "frame", path, num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC, batch_size=8))
    assert sorted(readers.model_inputs(features)) == ["frames", "num_frames"]
    with pytest.raises(ValueError, match="unknown reader kind"):
        readers.make_dataset("frames", path)


# ----------------------------------------------------------------- segments


def test_rated_segments_cut_frames_and_set_the_rated_class(tmp_path):
    rng = np.random.default_rng(2)
    first, second = _random_frames(rng, 12), _random_frames(rng, 10)
    # video "a" has labels 2, 3: class 2 is rated 1 at 0s and 0 (a hard negative) at 5s.
    records = [_frame_example("a", first, [2, 3], ([0, 5, 10], [2, 2, 4], [1.0, 0.0, 1.0])),
               _frame_example("b", second, [1], ([5], [1], [1.0]))]
    path = _write(tmp_path / "validate0.tfrecord", records)
    batches = _collect(readers.segment_dataset(path, num_classes=NUM_CLASSES,
                                               feature_spec=FRAME_SPEC, batch_size=3))
    assert [len(b[1]) for b in batches] == [3, 1]
    features = {key: np.concatenate([b[0][key] for b in batches]) for key in batches[0][0]}
    labels = np.concatenate([b[1] for b in batches])
    weights = np.concatenate([b[2] for b in batches])
    assert list(features["id"]) == [b"a:0", b"a:5", b"a:10", b"b:5"]
    assert features["frames"].dtype == np.uint8 and features["frames"].shape == (4, 5, 9)
    assert list(features["num_frames"]) == [5, 5, 2, 5]
    assert features["segment_class"].dtype == np.int32
    assert list(features["segment_class"]) == [2, 2, 4, 1]
    video_a, video_b = _concat(first), _concat(second)
    np.testing.assert_array_equal(features["frames"][0], video_a[0:5])
    np.testing.assert_array_equal(features["frames"][1], video_a[5:10])
    np.testing.assert_array_equal(features["frames"][2][:2], video_a[10:12])
    assert not features["frames"][2][2:].any()
    np.testing.assert_array_equal(features["frames"][3], video_b[5:10])
    np.testing.assert_array_equal(labels, [[0, 0, 1, 1, 0], [0, 0, 0, 1, 0],
                                           [0, 0, 1, 1, 1], [0, 1, 0, 0, 0]])
    np.testing.assert_array_equal(weights, np.eye(NUM_CLASSES)[[2, 2, 4, 1]])


def test_test_segments_cover_every_five_frames_like_the_official_inference(tmp_path):
    rng = np.random.default_rng(3)
    lengths = [12, 10, 3]
    videos = [_random_frames(rng, n) for n in lengths]
    # test files carry no labels key
    path = _write(tmp_path / "test0.tfrecord",
                  [_frame_example(f"t{i}", frames) for i, frames in enumerate(videos)])
    batches = _collect(readers.segment_dataset(path, num_classes=NUM_CLASSES,
                                               feature_spec=FRAME_SPEC, batch_size=4, rated=False))
    assert [len(b[1]) for b in batches] == [4, 2]
    ids = [i for b in batches for i in b[0]["id"]]
    # a trailing partial segment is kept (official inference.py), ceil(num_frames / 5) each
    assert ids == [b"t0:0", b"t0:5", b"t0:10", b"t1:0", b"t1:5", b"t2:0"]
    frames = np.concatenate([b[0]["frames"] for b in batches])
    assert list(np.concatenate([b[0]["num_frames"] for b in batches])) == [5, 5, 2, 5, 5, 3]
    np.testing.assert_array_equal(frames[4], _concat(videos[1])[5:10])
    np.testing.assert_array_equal(frames[2][:2], _concat(videos[0])[10:12])
    assert not frames[2][2:].any()
    for _, labels, weights in batches:
        assert labels.shape[1] == NUM_CLASSES and not labels.any() and not weights.any()
    assert "segment_class" not in batches[0][0]


# ------------------------------------------------------------------ shuffle


def _shuffled_ids(pattern, seed, num_epochs=1):
    dataset = readers.video_dataset(pattern, num_classes=NUM_CLASSES, feature_spec=VIDEO_SPEC,
                                    batch_size=7, shuffle=True, seed=seed, num_epochs=num_epochs)
    return [i for features, _, _ in _collect(dataset) for i in features["id"]]


def test_shuffle_is_deterministic_per_seed(tmp_path):
    features = {"mean_rgb": [0.0] * 4, "mean_audio": [0.0] * 2}
    for f in range(4):
        _write(tmp_path / f"train{f}.tfrecord",
               [_video_example(f"f{f}r{r}", [], features) for r in range(16)])
    pattern = str(tmp_path / "train*.tfrecord")
    first = _shuffled_ids(pattern, seed=1)
    assert sorted(first) == sorted(f"f{f}r{r}".encode() for f in range(4) for r in range(16))
    assert _shuffled_ids(pattern, seed=1) == first
    assert _shuffled_ids(pattern, seed=2) != first
    two_epochs = _shuffled_ids(pattern, seed=1, num_epochs=2)
    assert len(two_epochs) == 128 and two_epochs[64:] != two_epochs[:64]
    unshuffled = readers.video_dataset(pattern, num_classes=NUM_CLASSES, feature_spec=VIDEO_SPEC,
                                       batch_size=64)
    ids = [i for features, _, _ in _collect(unshuffled) for i in features["id"]]
    assert ids == [f"f{f}r{r}".encode() for f in range(4) for r in range(16)]  # unshuffled: files in turn


# --------------------------------------------------------------- bad input


def test_no_matching_files_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no files match --eval_data_pattern"):
        readers.frame_dataset(str(tmp_path / "none*.tfrecord"), num_classes=NUM_CLASSES,
                              feature_spec=FRAME_SPEC, batch_size=2, flag="eval_data_pattern")


def test_wrong_frame_feature_size_names_the_feature(frame_videos):
    path, _ = frame_videos
    spec = schema.FeatureSpec(("rgb", "audio"), (8, 3))
    dataset = readers.frame_dataset(path, num_classes=NUM_CLASSES, feature_spec=spec, batch_size=2)
    with pytest.raises(UserError, match=r"^feature 'rgb' has 6 values per frame in the data but "
                                        r"--feature_sizes says 8; make --feature_sizes match the data "
                                        r"\(in --data_pattern='test'\)$"):
        _collect(dataset)


def test_frames_of_unequal_sizes_are_a_user_error(tmp_path):
    rng = np.random.default_rng(5)
    frames = _random_frames(rng, 3)
    record = tf.train.SequenceExample.FromString(_frame_example("a", frames, [1]))
    record.feature_lists.feature_list["rgb"].feature[1].bytes_list.value[0] = b"short"
    path = _write(tmp_path / "f.tfrecord", [record.SerializeToString()])
    dataset = readers.frame_dataset(path, num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC,
                                    batch_size=2)
    # The frame reader checks every frame's width: the short frame is named with its size.
    with pytest.raises(UserError, match=r"^feature 'rgb' has 5 values per frame in the data but --feature_sizes "
                                        r"says 6; make --feature_sizes match the data \(in --data_pattern='test'\)$"):
        _collect(dataset)


def test_wrong_video_feature_size_names_the_feature(tmp_path):
    path = _write(tmp_path / "v.tfrecord",
                  [_video_example("v", [1], {"mean_rgb": [0.0] * 4, "mean_audio": [0.0] * 3})])
    dataset = readers.video_dataset(path, num_classes=NUM_CLASSES, feature_spec=VIDEO_SPEC,
                                    batch_size=2)
    with pytest.raises(UserError, match="feature 'mean_audio' has 3 values in a record but "
                                        "--feature_sizes says 2"):
        _collect(dataset)


def test_label_outside_num_classes_is_a_user_error(tmp_path):
    rng = np.random.default_rng(4)
    path = _write(tmp_path / "f.tfrecord", [_frame_example("a", _random_frames(rng, 2), [1]),
                                            _frame_example("b", _random_frames(rng, 2), [9, 2])])
    dataset = readers.frame_dataset(path, num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC,
                                    batch_size=4)
    with pytest.raises(UserError, match="label 9 is outside --num_classes=5"):
        _collect(dataset)


def test_missing_feature_is_a_user_error(frame_videos):
    path, _ = frame_videos
    spec = schema.FeatureSpec(("rgb", "depth"), (6, 3))
    with pytest.raises(UserError, match=r"train0.tfrecord \(--train_data_pattern\) has no frame feature 'depth' in "
                                        r"its first records \(frame features found: audio, rgb\); check --feature_names"):
        readers.frame_dataset(path, num_classes=NUM_CLASSES, feature_spec=spec, batch_size=2)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_record_is_a_user_error(frame_videos, damage):
    path, _ = frame_videos
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    middle = len(data) // 2
    if damage == "flip":
        data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    else:
        data = data[:middle]
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    dataset = readers.frame_dataset(path, num_classes=NUM_CLASSES, feature_spec=FRAME_SPEC,
                                    batch_size=1)
    with pytest.raises(UserError, match=rf"{re.escape(str(path))}: record \d+ \(at byte \d+ of {len(data)}\) is corrupt "
                                        r"or truncated; re-download or regenerate .*\(in --data_pattern='pat'\)"):
        _collect(dataset, pattern="pat")


def test_a_corrupt_record_among_several_files_is_named_after_the_fast_read_fails(tmp_path):
    """Records are read unchecked; only when TensorFlow's reader fails are the files re-read
    (checked) to name the bad one, here the second of three, with its record and offset."""
    rng = np.random.default_rng(1)
    paths = [_write(tmp_path / f"train{i}.tfrecord",
                    [_frame_example(f"v{i}{j}", _random_frames(rng, 4), [1]) for j in range(6)]) for i in range(3)]
    with open(paths[1], "rb") as handle:
        data = bytearray(handle.read())
    record = len(data) // 6                       # six records of one size: the fourth starts at 3 * record
    data[3 * record + 20] ^= 0xFF                 # in the fourth record's data: its data CRC fails
    with open(paths[1], "wb") as handle:
        handle.write(bytes(data))
    dataset = readers.frame_dataset(str(tmp_path / "train*.tfrecord"), num_classes=NUM_CLASSES,
                                    feature_spec=FRAME_SPEC, batch_size=4)
    with pytest.raises(UserError, match=rf"^{re.escape(paths[1])}: record 4 \(at byte {3 * record} of {len(data)}\) "
                                        r"is corrupt or truncated"):
        _collect(dataset)


# --------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synthetic(request):
    pytest.importorskip("yt8m.data.synthetic")
    return request.getfixturevalue("synthetic_data")


def test_readers_on_the_synthetic_dataset(synthetic):
    classes = synthetic.num_classes
    frame_spec = schema.FeatureSpec.parse(None, None, frame_features=True)
    video_spec = schema.FeatureSpec.parse(None, None, frame_features=False)
    video = readers.video_dataset(synthetic.video_train, num_classes=classes,
                                  feature_spec=video_spec, batch_size=16)
    features, labels, weights = next(iter(video))
    assert features["features"].shape == (16, 1152) and features["features"].dtype == tf.float32
    assert labels.shape == (16, classes) and weights.shape == (16, classes)
    frame = readers.frame_dataset(synthetic.frame_train, num_classes=classes,
                                  feature_spec=frame_spec, batch_size=8)
    features, labels, _ = next(iter(frame))
    assert features["frames"].dtype == tf.uint8 and features["frames"].shape[2] == 1152
    assert features["frames"].shape[1] == int(tf.reduce_max(features["num_frames"]))
    assert labels.shape == (8, classes) and float(tf.reduce_max(tf.reduce_sum(labels, 1))) >= 1
    rated = readers.segment_dataset(synthetic.frame_validate, num_classes=classes,
                                    feature_spec=frame_spec, batch_size=32)
    features, labels, weights = next(iter(rated))
    assert features["frames"].shape[1:] == (5, 1152)
    assert np.all(tf.reduce_sum(weights, 1).numpy() == 1)
    test = readers.segment_dataset(synthetic.frame_test, num_classes=classes,
                                   feature_spec=frame_spec, batch_size=32, rated=False)
    features, labels, _ = next(iter(test))
    assert features["frames"].shape[1:] == (5, 1152) and labels.shape == (32, classes)
