"""The synthetic set: official format, determinism, and the structure the papers exploit."""
import collections
import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from yt8m.data import schema, synthetic, vocabulary
from yt8m.errors import UserError

RGB, AUDIO = schema.FEATURE_SIZES
SMALL = synthetic.SyntheticConfig.small()
TINY = dict(num_verticals=3, classes_per_vertical=4, num_rated_classes=6, num_train_videos=6,
            num_validate_videos=4, num_test_videos=4, min_frames=10, max_frames=20, files_per_split=2)


def _tiny(seed=0, **changes):
    return synthetic.SyntheticConfig(seed=seed, **{**TINY, **changes})


def _records(pattern):
    files = sorted(tf.io.gfile.glob(pattern))
    assert files, f"no files match {pattern}"
    return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def _parse_frames(record, context_keys):
    """Plain tf.io parse with the official keys and dtypes; returns (context, rgb, audio) numpy."""
    context_spec = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string)}
    context_spec.update({k: tf.io.VarLenFeature(dtype) for k, dtype in context_keys.items()})
    sequence_spec = {name: tf.io.FixedLenSequenceFeature([], tf.string)
                     for name in schema.FRAME_FEATURE_NAMES}
    context, sequences = tf.io.parse_single_sequence_example(record, context_spec, sequence_spec)
    frames = [tf.io.decode_raw(sequences[name], tf.uint8).numpy() for name in schema.FRAME_FEATURE_NAMES]
    values = {key: (value.values.numpy() if isinstance(value, tf.SparseTensor) else value.numpy())
              for key, value in context.items()}
    return values, frames[0], frames[1]


SEGMENT_KEYS = {schema.LABELS_KEY: tf.int64, schema.SEGMENT_LABELS_KEY: tf.int64,
                schema.SEGMENT_START_KEY: tf.int64, schema.SEGMENT_SCORES_KEY: tf.float32}


@pytest.fixture(scope="module")
def train_frames(synthetic_data):
    """id -> (labels, rgb uint8 (T, 1024), audio uint8 (T, 128)) from frame/train."""
    result = {}
    for record in _records(synthetic_data.frame_train):
        context, rgb, audio = _parse_frames(record, {schema.LABELS_KEY: tf.int64})
        result[context[schema.ID_KEY].decode()] = (context[schema.LABELS_KEY], rgb, audio)
    return result


@pytest.fixture(scope="module")
def validate_frames(synthetic_data):
    return [_parse_frames(record, SEGMENT_KEYS) for record in _records(synthetic_data.frame_validate)]


@pytest.fixture(scope="module")
def label_matrix(train_frames, synthetic_data):
    """(videos, classes) multi-hot of the written train labels, columns in vocabulary order."""
    ids = vocabulary.read_vocabulary(synthetic_data.vocabulary)["Index"].to_numpy()
    column = {c: i for i, c in enumerate(ids)}
    matrix = np.zeros((len(train_frames), len(ids)))
    for row, (labels, _, _) in enumerate(train_frames.values()):
        matrix[row, [column[c] for c in labels]] = 1
    return ids, matrix


def test_layout_and_official_file_names(synthetic_data):
    assert synthetic_data.num_classes == schema.NUM_CLASSES
    for pattern, split in [(synthetic_data.video_train, "train"), (synthetic_data.frame_train, "train"),
                           (synthetic_data.frame_validate, "validate"), (synthetic_data.frame_test, "test")]:
        names = [os.path.basename(f) for f in tf.io.gfile.glob(pattern)]
        assert sorted(names) == [f"{split}{i:04d}.tfrecord" for i in range(SMALL.files_per_split)]
    names = [name for _, _, files in os.walk(synthetic_data.root) for name in files]
    assert not [name for name in names if ".tmp-" in name]


def test_frame_records_parse_with_official_keys_and_sizes(train_frames):
    assert len(train_frames) == SMALL.num_train_videos
    for video_id, (labels, rgb, audio) in train_frames.items():
        assert re.fullmatch(r"[0-9A-Za-z]{4}", video_id)
        assert rgb.shape[1] == RGB and audio.shape[1] == AUDIO
        assert SMALL.min_frames <= len(rgb) == len(audio) <= SMALL.max_frames
        assert len(labels) >= 1 and np.all((labels >= 0) & (labels < schema.NUM_CLASSES))


def test_video_records_parse_and_mean_rgb_is_mean_of_dequantized_frames(synthetic_data, train_frames):
    records = _records(synthetic_data.video_train)
    spec = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
            schema.LABELS_KEY: tf.io.VarLenFeature(tf.int64),
            "mean_rgb": tf.io.FixedLenFeature([RGB], tf.float32),
            "mean_audio": tf.io.FixedLenFeature([AUDIO], tf.float32)}
    parsed = tf.io.parse_example(tf.constant(records), spec)
    labels = tf.RaggedTensor.from_sparse(parsed[schema.LABELS_KEY])
    assert len(records) == len(train_frames)
    for i, video_id in enumerate(parsed[schema.ID_KEY].numpy()):
        frame_labels, rgb, audio = train_frames[video_id.decode()]
        np.testing.assert_array_equal(labels[i].numpy(), frame_labels)
        for mean, frames in [(parsed["mean_rgb"][i], rgb), (parsed["mean_audio"][i], audio)]:
            expected = schema.dequantize(frames.astype(np.float64)).mean(axis=0)
            np.testing.assert_allclose(mean.numpy(), expected, atol=1e-5)


def test_validate_records_carry_well_formed_segment_ratings(validate_frames):
    rated_pool = set(vocabulary.read_segment_label_ids().tolist())
    assert len(validate_frames) == SMALL.num_validate_videos
    for context, rgb, _ in validate_frames:
        starts = context[schema.SEGMENT_START_KEY]
        scores = context[schema.SEGMENT_SCORES_KEY]
        assert len(context[schema.LABELS_KEY]) >= 1
        assert len(starts) >= 1 and len(starts) == len(scores) == len(context[schema.SEGMENT_LABELS_KEY])
        assert np.all(starts % schema.SEGMENT_FRAMES == 0)
        assert np.all((starts >= 0) & (starts + schema.SEGMENT_FRAMES <= len(rgb)))
        assert set(np.unique(scores)) <= {0.0, 1.0}
        assert set(context[schema.SEGMENT_LABELS_KEY].tolist()) <= rated_pool


def test_ratings_hold_positives_hard_negatives_and_plain_negatives(validate_frames):
    kinds = collections.Counter()
    for context, _, _ in validate_frames:
        per_class = collections.defaultdict(list)
        for label, score in zip(context[schema.SEGMENT_LABELS_KEY], context[schema.SEGMENT_SCORES_KEY]):
            per_class[label].append(score)
        for label, scores in per_class.items():
            if max(scores) == 1:
                kinds["positive"] += scores.count(1.0)
                kinds["hard_negative"] += scores.count(0.0)   # in the video, not in this segment
            elif label not in context[schema.LABELS_KEY]:
                kinds["plain_negative"] += len(scores)
    total = sum(kinds.values())
    assert kinds["hard_negative"] >= 0.15 * total
    assert kinds["positive"] >= 0.25 * total
    assert kinds["plain_negative"] >= 0.05 * total


def test_test_records_carry_no_labels_and_truth_lies_beside(synthetic_data):
    lengths = {}
    for record in _records(synthetic_data.frame_test):
        assert set(tf.train.SequenceExample.FromString(record).context.feature) == {schema.ID_KEY}
        context, rgb, audio = _parse_frames(record, {})
        lengths[context[schema.ID_KEY].decode()] = len(rgb)
    assert len(lengths) == SMALL.num_test_videos
    assert os.path.dirname(synthetic_data.test_truth) == os.path.dirname(synthetic_data.frame_test)
    with open(synthetic_data.test_truth) as handle:
        lines = handle.read().splitlines()
    rated_videos = set()
    for line in lines:
        match = re.fullmatch(r"(\w{4}):(\d+),(\d+),([01])", line)
        assert match, line
        video_id, start = match.group(1), int(match.group(2))
        assert start % schema.SEGMENT_FRAMES == 0 and start + schema.SEGMENT_FRAMES <= lengths[video_id]
        rated_videos.add(video_id)
    assert rated_videos == set(lengths)
    assert len(set(line.rsplit(",", 1)[0] for line in lines)) == len(lines)


def test_vocabulary_lists_active_classes_in_verticals(synthetic_data, label_matrix):
    table = vocabulary.read_vocabulary(synthetic_data.vocabulary)
    assert len(table) == SMALL.num_active_classes
    assert table["Index"].is_monotonic_increasing
    assert table["KnowledgeGraphId"].str.fullmatch(r"/m/0syn\d+").all()
    by_vertical = collections.Counter(v[0] for v in vocabulary.verticals(table).values())
    assert sorted(by_vertical.values()) == [SMALL.classes_per_vertical] * SMALL.num_verticals
    _, matrix = label_matrix
    np.testing.assert_array_equal(table["TrainVideoCount"].to_numpy(), matrix.sum(axis=0))


def test_label_counts_are_zipf_like_across_classes_and_verticals(synthetic_data, label_matrix):
    table = vocabulary.read_vocabulary(synthetic_data.vocabulary)
    per_vertical = np.sort(table.groupby("Vertical1")["TrainVideoCount"].sum().to_numpy())
    assert per_vertical[-1] >= 3 * per_vertical[0]
    counts = np.sort(label_matrix[1].sum(axis=0))[::-1]
    assert counts[0] >= 4 * np.median(counts)
    ranks = np.arange(1, len(counts) + 1)
    seen = counts > 0
    assert np.corrcoef(np.log(ranks[seen]), np.log(counts[seen]))[0, 1] < -0.8


def test_parent_child_pairs_are_asymmetric_within_a_vertical(synthetic_data, label_matrix):
    ids, matrix = label_matrix
    class_vertical = vocabulary.verticals(vocabulary.read_vocabulary(synthetic_data.vocabulary))
    counts = matrix.sum(axis=0)
    given = (matrix.T @ matrix) / np.maximum(counts[:, None], 1)    # given[i, j] = P(j | i)
    asymmetric = [(i, j) for i, j in zip(*np.nonzero((given >= 0.7) & (given.T <= 0.3)))
                  if counts[i] >= 3 and i != j]
    assert asymmetric
    assert all(class_vertical[ids[i]] == class_vertical[ids[j]] for i, j in asymmetric)


def test_audible_classes_have_weak_rgb_and_strong_audio_prototypes():
    classes = synthetic._make_classes(SMALL)
    rgb, audio = np.linalg.norm(classes.rgb, axis=1), np.linalg.norm(classes.audio, axis=1)
    assert classes.audible.any() and not classes.audible.all()
    assert np.all(rgb[classes.audible] < audio[classes.audible])
    assert np.all(rgb[~classes.audible] > audio[~classes.audible])


def test_class_signal_is_localised_in_time(validate_frames):
    classes = synthetic._make_classes(SMALL)
    prototypes = np.concatenate([classes.rgb, classes.audio], axis=1)
    unit = dict(zip(classes.ids, prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)))
    projections = {0.0: [], 1.0: []}
    for context, rgb, audio in validate_frames:
        frames = schema.dequantize(np.concatenate([rgb, audio], axis=1).astype(np.float64))
        labels, starts = context[schema.SEGMENT_LABELS_KEY], context[schema.SEGMENT_START_KEY]
        scores = context[schema.SEGMENT_SCORES_KEY]
        present = set(labels[scores == 1].tolist())
        for label, start, score in zip(labels, starts, scores):
            if label in present:
                segment = frames[start:start + schema.SEGMENT_FRAMES].mean(axis=0)
                projections[score].append(segment @ unit[label])
    assert len(projections[0.0]) >= 10 and len(projections[1.0]) >= 10
    assert np.mean(projections[1.0]) - np.mean(projections[0.0]) > 0.3


def _file_bytes(root):
    result = {}
    for directory, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                result[os.path.relpath(os.path.join(directory, name), root)] = handle.read()
    return result


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first = _file_bytes(synthetic.generate(str(tmp_path / "a"), _tiny(), progress=False).root)
    second = _file_bytes(synthetic.generate(str(tmp_path / "b"), _tiny(), progress=False).root)
    other = _file_bytes(synthetic.generate(str(tmp_path / "c"), _tiny(seed=1), progress=False).root)
    assert first.keys() == second.keys() == other.keys()
    assert first == second
    assert first["frame/train0000.tfrecord"] != other["frame/train0000.tfrecord"]


def test_video_labels_miss_some_classes_present_in_segments(tmp_path):
    config = _tiny(rating_noise=0.0, label_miss_rate=0.5, num_validate_videos=30)
    paths = synthetic.generate(str(tmp_path), config, progress=False)
    missed = 0
    for record in _records(paths.frame_validate):
        context, _, _ = _parse_frames(record, SEGMENT_KEYS)
        positive = context[schema.SEGMENT_LABELS_KEY][context[schema.SEGMENT_SCORES_KEY] == 1]
        missed += len(set(positive.tolist()) - set(context[schema.LABELS_KEY].tolist()))
    assert missed >= 1


def test_ensure_reuses_a_complete_set_and_regenerates_on_another_config(tmp_path):
    root = str(tmp_path)
    synthetic.ensure(root, _tiny(), progress=False)
    stamp = os.path.getmtime(os.path.join(root, "vocabulary.csv"))
    synthetic.ensure(root, _tiny(), progress=False)
    assert os.path.getmtime(os.path.join(root, "vocabulary.csv")) == stamp
    synthetic.ensure(root, _tiny(files_per_split=1), progress=False)
    assert sorted(os.listdir(tmp_path / "frame")) == [
        "test0000.tfrecord", "test_truth.csv", "train0000.tfrecord", "validate0000.tfrecord"]


def test_refuses_to_write_over_records_it_did_not_make(tmp_path):
    (tmp_path / "frame").mkdir()
    (tmp_path / "frame" / "train0000.tfrecord").write_bytes(b"")
    with pytest.raises(UserError, match="output_dir"):
        synthetic.generate(str(tmp_path), _tiny(), progress=False)


@pytest.mark.parametrize("changes", [dict(min_frames=4), dict(max_frames=301), dict(num_rated_classes=0),
                                     dict(files_per_split=5), dict(num_classes=10)])
def test_config_rejects_impossible_sizes(changes):
    with pytest.raises(ValueError, match="SyntheticConfig"):
        _tiny(**changes)


def test_command_line_writes_a_set(tmp_path):
    root = str(tmp_path / "cli")
    result = subprocess.run([sys.executable, "-m", "yt8m.data.synthetic", f"--output_dir={root}",
                             "--preset=small", "--seed=3"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{SMALL.num_test_videos + SMALL.num_train_videos + SMALL.num_validate_videos}" in result.stderr
    same_in_process = synthetic.generate(str(tmp_path / "api"), synthetic.SyntheticConfig.small(seed=3),
                                         progress=False)
    assert _file_bytes(root) == _file_bytes(same_in_process.root)


# ---------------------------------------------------------------- the proving ground's hierarchy

HARD = dataclasses.replace(synthetic.SyntheticConfig.proving(), num_verticals=4, num_rated_classes=24,
                           num_train_videos=300, num_validate_videos=60, num_test_videos=20,
                           files_per_split=1)


@pytest.fixture(scope="module")
def hard_videos():
    """(classes, train videos, validate videos) of a small hard set, straight from the generator."""
    classes = synthetic._make_classes(HARD)
    ids = synthetic._video_ids(HARD)
    videos = {split: [v for _, chunk in synthetic._split_videos(split, split_ids, classes, HARD, lambda *a: None)
                      for v in chunk] for split, split_ids in zip(synthetic.SPLITS[:2], ids[:2])}
    return classes, videos["train"], videos["validate"]


def test_proving_verticals_are_three_level_trees():
    classes = synthetic._make_classes(HARD)
    assert HARD.hierarchy_levels == 3 and SMALL.hierarchy_levels == 2
    per = HARD.classes_per_vertical
    np.testing.assert_array_equal(classes.parent[:per], [-1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    assert classes.ancestor[0, 4] and classes.ancestor[1, 4] and not classes.ancestor[2, 4]
    assert not classes.ancestor[:, :per].any(axis=0)[0] and classes.ancestor[0, 1:per].all()
    # a kind's prototype carries its parent's direction, more than a cousin's
    unit = classes.rgb / np.linalg.norm(classes.rgb, axis=1, keepdims=True)
    assert unit[4] @ unit[1] > unit[4] @ unit[2] + 0.2
    with pytest.raises(ValueError, match="3 levels"):
        dataclasses.replace(HARD, branching=2)          # 13 classes in binary trees: 4 levels


def test_a_kind_implies_its_ancestors_in_true_classes_and_ratings(hard_videos):
    classes, train, validate = hard_videos
    for video in train + validate:
        present = np.zeros(len(classes.ids), bool)
        present[video.present] = True
        assert np.all(present[np.flatnonzero(classes.ancestor[:, video.present].any(axis=1))])
    # an ancestor of a present kind is on exactly where its present descendants are (no spans of its own),
    # and its segment ratings follow that: positive where a descendant is on
    rng = np.random.default_rng(7)
    starts = np.arange(0, 30 - schema.SEGMENT_FRAMES + 1, schema.SEGMENT_FRAMES)
    checked = 0
    for _ in range(50):
        active = synthetic._sample_active(rng, classes, HARD, need_rated=False)
        masks = synthetic._activity_masks(rng, active, classes, 30, HARD)
        descendants = classes.ancestor[np.ix_(active, active)]
        for row in np.flatnonzero(descendants.any(axis=1)):
            np.testing.assert_array_equal(masks[row], masks[descendants[row]].any(axis=0))
            below = synthetic._segment_truth(masks[descendants[row]].any(axis=0), starts)
            np.testing.assert_array_equal(synthetic._segment_truth(masks[row], starts), below)
            checked += 1
    assert checked >= 50


def test_raters_mostly_rate_the_kind_not_its_ancestors(hard_videos):
    classes, _, validate = hard_videos
    chose_ancestor, uniform_share = [], []
    for video in validate:
        rated = video.present[classes.rated[video.present]]
        is_ancestor = classes.ancestor[np.ix_(rated, video.present)].any(axis=1)
        if is_ancestor.any() and not is_ancestor.all():
            chose_ancestor.append(classes.ids[rated[is_ancestor]].tolist().count(video.ratings[0][0]) > 0)
            uniform_share.append(is_ancestor.mean())
    assert len(chose_ancestor) >= 20
    assert np.mean(chose_ancestor) < np.mean(uniform_share) - 0.15     # uniform choice: uniform_share


def test_ancestor_labels_are_missed_at_their_own_rate(hard_videos):
    classes, train, _ = hard_videos
    missed = {"ancestor": [], "leaf": []}
    for video in train:
        labelled = np.isin(classes.ids[video.present], video.labels)
        is_ancestor = classes.ancestor[np.ix_(video.present, video.present)].any(axis=1)
        missed["ancestor"].extend(~labelled[is_ancestor])
        missed["leaf"].extend(~labelled[~is_ancestor])
    assert len(missed["ancestor"]) >= 300
    assert abs(np.mean(missed["ancestor"]) - HARD.ancestor_miss_rate) < 0.06
    assert np.mean(missed["leaf"]) <= HARD.label_miss_rate + 0.03


def test_parent_given_kind_far_exceeds_kind_given_parent_in_train_labels(tmp_path):
    paths = synthetic.generate(str(tmp_path), HARD, progress=False)
    classes = synthetic._make_classes(HARD)
    column = {c: i for i, c in enumerate(classes.ids)}          # columns in class order
    matrix = np.zeros((HARD.num_train_videos, len(classes.ids)))
    for row, record in enumerate(_records(paths.frame_train)):
        context, _, _ = _parse_frames(record, {schema.LABELS_KEY: tf.int64})
        matrix[row, [column[c] for c in context[schema.LABELS_KEY]]] = 1
    given = (matrix.T @ matrix) / np.maximum(matrix.sum(axis=0)[:, None], 1)    # given[i, j] = P(j | i)
    kinds, parents = np.nonzero(classes.ancestor.T & (matrix.sum(axis=0)[:, None] >= 5))
    assert len(kinds) >= 20
    assert np.median(given[kinds, parents]) >= 0.5 > 2 * np.median(given[parents, kinds])
