"""tf.data readers for the YouTube-8M records: video-level, frame-level and segment.

Every reader lists files with `yt8m.fileio.match_files`, interleaves them, shuffles
(files and records, seeded), repeats, batches and only then parses the whole batch
(`parse_example` / `parse_sequence_example` with ragged features, one vectorised
`decode_raw` per feature). Each yields `(features, labels, weights)` as the table in
docs/ARCHITECTURE.md states. Frames stay uint8 (the model's `Dequantize` layer turns
them into floats) and are padded to the batch's longest video, or to `max_frames`.

Bad data stops a pipeline with a `tf.errors.InvalidArgumentError` whose message is
"assertion failed: [<one clear line>]"; wrap the loop over a dataset in
`data_errors(pattern, flag)` to turn that, and corrupt records, into `UserError`.
"""
from __future__ import annotations

import contextlib
import re

import tensorflow as tf

from yt8m import fileio
from yt8m.data import schema
from yt8m.errors import UserError

VIDEO_SHUFFLE_BUFFER = 4096   # records; a video-level record is ~5 KB
FRAME_SHUFFLE_BUFFER = 256    # records; a frame-level record is up to ~350 KB
SEGMENT_SHUFFLE_BUFFER = 1024  # segments, after the videos are cut into segments
MAX_PARALLEL_FILES = 8
# Videos are parsed in batches sized so that one parsed batch holds about batch_size
# segments: ~5 rated segments per validate video, up to 60 segments per test video.
RATED_SEGMENTS_PER_VIDEO = 5
TEST_SEGMENTS_PER_VIDEO = 60

_ASSERTION = re.compile(r"assertion failed: \[(.*?)\]")


# ---------------------------------------------------------------- public API


def video_dataset(pattern: str, *, num_classes: int, feature_spec: schema.FeatureSpec,
                  batch_size: int, shuffle: bool = False, seed: int = 0,
                  num_epochs: int | None = 1, drop_remainder: bool = False,
                  flag: str = "train_data_pattern",
                  corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """Video-level Examples -> ({id, features float32 (B, D)}, multi-hot (B, C), ones (B, C))."""
    batches = _serialized_batches(pattern, flag=flag, batch_size=batch_size, shuffle=shuffle,
                                  seed=seed, num_epochs=num_epochs,
                                  shuffle_buffer=VIDEO_SHUFFLE_BUFFER,
                                  drop_remainder=drop_remainder, corrupt_records=corrupt_records)

    def parse(serialized):
        features, labels = parse_video_batch(serialized, feature_spec, num_classes)
        return features, labels, tf.ones_like(labels)

    return _finish(batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def frame_dataset(pattern: str, *, num_classes: int, feature_spec: schema.FeatureSpec,
                  batch_size: int, shuffle: bool = False, seed: int = 0,
                  num_epochs: int | None = 1, max_frames: int = schema.MAX_FRAMES,
                  pad_to_max: bool = False, drop_remainder: bool = False,
                  flag: str = "train_data_pattern",
                  corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """Frame-level SequenceExamples -> ({id, frames uint8 (B, T, D), num_frames}, multi-hot, ones).

    T is the batch's longest video (at most `max_frames`), or `max_frames` when
    `pad_to_max`; longer videos are truncated to `max_frames`.
    """
    batches = _serialized_batches(pattern, flag=flag, batch_size=batch_size, shuffle=shuffle,
                                  seed=seed, num_epochs=num_epochs,
                                  shuffle_buffer=FRAME_SHUFFLE_BUFFER,
                                  drop_remainder=drop_remainder, corrupt_records=corrupt_records)

    def parse(serialized):
        features, labels = parse_frame_batch(serialized, feature_spec, num_classes, max_frames, pad_to_max)
        return features, labels, tf.ones_like(labels)

    return _finish(batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


def segment_dataset(pattern: str, *, num_classes: int, feature_spec: schema.FeatureSpec,
                    batch_size: int, shuffle: bool = False, seed: int = 0,
                    num_epochs: int | None = 1, rated: bool = True,
                    drop_remainder: bool = False,
                    flag: str = "train_data_pattern",
                    corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """Segment examples (5 frames each) cut from frame-level SequenceExamples.

    rated=True (validate files): one example per rated (segment, class); labels are
    the video labels with the rated class set to its 0/1 score, weights the one-hot
    of the rated class, `segment_class` the rated class.
    rated=False (test files): one example per 5-frame segment, starts 0, 5, ...,
    as the official inference.py cuts them, a trailing partial segment included
    (zero-padded, `num_frames` < 5); labels and weights are zeros.
    Segments reaching past the video's end are zero-padded; `num_frames` counts
    the real frames. Batches hold `batch_size` segments.
    """
    per_video = RATED_SEGMENTS_PER_VIDEO if rated else TEST_SEGMENTS_PER_VIDEO
    video_batch_size = max(1, batch_size // per_video)
    if rated:
        _require_segment_ratings(fileio.match_files(pattern, flag), flag)
    batches = _serialized_batches(pattern, flag=flag, batch_size=video_batch_size,
                                  shuffle=shuffle, seed=seed, num_epochs=num_epochs,
                                  shuffle_buffer=FRAME_SHUFFLE_BUFFER, drop_remainder=False,
                                  corrupt_records=corrupt_records)

    def parse(serialized):
        video = _parse_videos(serialized, feature_spec, num_classes, rated=rated)
        if rated:
            return _rated_segments(video, num_classes)
        return _test_segments(video, num_classes)

    segments = batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        segments = (segments.unbatch()
                    .shuffle(SEGMENT_SHUFFLE_BUFFER, seed=seed)
                    .batch(batch_size, drop_remainder=drop_remainder))
    else:
        segments = segments.rebatch(batch_size, drop_remainder=drop_remainder)
    return _finish(segments)


def make_dataset(kind: str, pattern: str, **options) -> tf.data.Dataset:
    """One entry for callers: kind is 'video', 'frame', 'segment' or 'segment_test'."""
    readers = {
        "video": video_dataset,
        "frame": frame_dataset,
        "segment": segment_dataset,
        "segment_test": lambda p, **o: segment_dataset(p, rated=False, **o),
    }
    if kind not in readers:
        raise ValueError(f"unknown reader kind {kind!r}; choose one of {sorted(readers)}")
    return readers[kind](pattern, **options)


def parse_video_batch(serialized, feature_spec: schema.FeatureSpec, num_classes: int):
    """A batch of serialized video-level Examples -> ({id, features}, multi-hot labels), in-graph
    (the readers' parse, also the serving signature's of yt8m/export.py)."""
    parsed = tf.io.parse_example(serialized, _video_keys(feature_spec))
    features = {schema.ID_KEY: parsed[schema.ID_KEY], schema.VIDEO_INPUT: _video_features(parsed, feature_spec)}
    return features, _multi_hot(parsed[schema.LABELS_KEY], num_classes)


def parse_frame_batch(serialized, feature_spec: schema.FeatureSpec, num_classes: int,
                      max_frames: int = schema.MAX_FRAMES, pad_to_max: bool = False):
    """A batch of serialized SequenceExamples -> ({id, frames uint8, num_frames}, multi-hot labels)."""
    video = _parse_videos(serialized, feature_spec, num_classes, rated=False)
    frames, num_frames = _pad_frames(video["frames"], max_frames, pad_to_max)
    features = {schema.ID_KEY: video[schema.ID_KEY], schema.FRAMES_INPUT: frames,
                schema.NUM_FRAMES_INPUT: num_frames}
    return features, _multi_hot(video[schema.LABELS_KEY], num_classes)


def model_inputs(features: dict) -> dict:
    """Only the keys a model takes: `features`, or `frames` and `num_frames`, or `clip`."""
    model_keys = (schema.VIDEO_INPUT, schema.FRAMES_INPUT, schema.NUM_FRAMES_INPUT, schema.CLIP_INPUT)
    return {key: value for key, value in features.items() if key in model_keys}


@contextlib.contextmanager
def data_errors(pattern: str, flag: str = "train_data_pattern"):
    """Turn data errors raised while iterating a reader's dataset into one-line UserErrors.

    Corrupt or truncated records (DataLossError), the readers' own checks (wrong
    feature size, label out of range, missing feature) and unparseable records
    (InvalidArgumentError) all name --flag=pattern and what to do.
    """
    try:
        yield
    except tf.errors.DataLossError as exc:
        raise UserError(
            f"a record in --{flag}={pattern!r} is corrupt or truncated ({_first_line(exc)}); "
            "re-download or regenerate that file, or leave it out of the pattern") from None
    except tf.errors.InvalidArgumentError as exc:
        found = _ASSERTION.search(exc.message or "")
        if found:
            message = found.group(1).replace("\\'", "'").replace('\\"', '"')  # TF escapes quotes
            raise UserError(f"{message} (in --{flag}={pattern!r})") from None
        raise UserError(
            f"a record in --{flag}={pattern!r} cannot be parsed ({_first_line(exc)}); check that "
            "the files are YouTube-8M records of the expected level and --feature_names") from None


class CorruptRecords:
    """Skips and counts corrupt records (`--skip_corrupt_records`); pass one to a reader.

    A corrupt or truncated record ends its file: TFRecord framing after a bad record
    cannot be trusted, so the rest of that file is skipped too. Each file read to
    less than its size counts one corrupt record and its unread bytes. Counts are
    int64 variables on the host, read with `report()` after the pass.
    """

    def __init__(self):
        with tf.init_scope(), tf.device("/cpu:0"):
            self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="corrupt_records")
            self.skipped_bytes = tf.Variable(0, dtype=tf.int64, trainable=False, name="corrupt_bytes")

    def records(self, file, size) -> tf.data.Dataset:
        """The records of `file` (`size` bytes) up to its first corrupt one, which is counted."""
        framed = tf.data.TFRecordDataset(file).ignore_errors().map(
            lambda record: (record, tf.cast(tf.strings.length(record), tf.int64) + 16, False))
        end = tf.data.Dataset.from_tensors((tf.constant(b""), tf.constant(0, tf.int64), True))

        def tally(read, element):
            record, length, last = element
            return read + length, (record, read + length, last)

        def count_short_file(record, read, last):
            short = tf.logical_and(last, read < size)
            with tf.control_dependencies([
                    self.count.assign_add(tf.cast(short, tf.int64)),
                    self.skipped_bytes.assign_add(tf.where(short, size - read, tf.constant(0, tf.int64)))]):
                return tf.identity(record), last

        return (framed.concatenate(end).scan(tf.constant(0, tf.int64), tally)
                .map(count_short_file).filter(lambda record, last: tf.logical_not(last))
                .map(lambda record, last: record))

    def report(self, pattern: str, flag: str) -> str:
        count, skipped = int(self.count.numpy()), int(self.skipped_bytes.numpy())
        if not count:
            return f"no corrupt records in --{flag}={pattern!r}"
        return (f"skipped {count} corrupt record(s) in --{flag}={pattern!r} (--skip_corrupt_records), "
                f"with the rest of their files: {skipped} bytes unread")


# ------------------------------------------------------------- file reading


def _serialized_batches(pattern, *, flag, batch_size, shuffle, seed, num_epochs,
                        shuffle_buffer, drop_remainder, corrupt_records=None) -> tf.data.Dataset:
    """Batches of serialized records: files interleaved, shuffled with `seed`, repeated.

    With a `CorruptRecords`, a file's corrupt record ends that file (the TFRecord framing
    after it cannot be trusted) and is counted there instead of stopping the run.
    """
    files = fileio.match_files(pattern, flag)
    if corrupt_records is None:
        records = tf.data.TFRecordDataset
    else:
        sizes = tf.constant([tf.io.gfile.stat(f).length for f in files], tf.int64)
        index = tf.constant(files)
        records = lambda file: corrupt_records.records(file, tf.gather(  # noqa: E731
            sizes, tf.argmax(tf.cast(tf.equal(index, file), tf.int32))))
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        records, cycle_length=min(len(files), MAX_PARALLEL_FILES),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return dataset.repeat(num_epochs).batch(batch_size, drop_remainder=drop_remainder)


def _finish(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return dataset.prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------ parsing


def _ragged(dtype):
    return tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)


def _video_keys(feature_spec):
    keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
            schema.LABELS_KEY: _ragged(tf.int64)}
    keys.update({name: _ragged(tf.float32) for name in feature_spec.names})
    return keys


def _video_features(parsed, feature_spec):
    """(B, D) float32: each feature checked against its size, concatenated in flag order."""
    columns = []
    for name, size in zip(feature_spec.names, feature_spec.sizes):
        values = parsed[name]
        check = _check_sizes(values.row_lengths(), size, f"feature '{name}' has {{}} values in "
                             f"a record but --feature_sizes says {size}; check --feature_names "
                             "and --feature_sizes against the data")
        with tf.control_dependencies([check]):
            columns.append(tf.reshape(values.flat_values, [-1, size]))
    return tf.concat(columns, axis=-1)


def _parse_videos(serialized, feature_spec, num_classes, *, rated):
    """A batch of SequenceExamples -> id, labels (ragged), frames (ragged (B, None, D) uint8)."""
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                    schema.LABELS_KEY: _ragged(tf.int64)}
    if rated:
        context_keys.update({schema.SEGMENT_START_KEY: _ragged(tf.int64),
                             schema.SEGMENT_LABELS_KEY: _ragged(tf.int64),
                             schema.SEGMENT_SCORES_KEY: _ragged(tf.float32)})
    sequence_keys = {name: _ragged(tf.string) for name in feature_spec.names}
    context, sequences, _ = tf.io.parse_sequence_example(
        serialized, context_features=context_keys, sequence_features=sequence_keys)
    context[schema.LABELS_KEY] = _checked_labels(context[schema.LABELS_KEY], num_classes)
    context["frames"] = _decode_frames(sequences, feature_spec)
    return context


def _decode_frames(sequences, feature_spec):
    """Ragged (B, None, D) uint8: every feature's bytes decoded at once, concatenated."""
    first_name = feature_spec.names[0]
    columns = [_decode_feature(sequences, name, size, first_name)
               for name, size in zip(feature_spec.names, feature_spec.sizes)]
    values = columns[0] if len(columns) == 1 else tf.concat(columns, axis=-1)
    return tf.RaggedTensor.from_row_splits(values, sequences[first_name].row_splits,
                                           validate=False)


def _decode_feature(sequences, name, size, first_name):
    """(frames in the batch, size) uint8 of one feature, its frame counts and width checked.

    decode_raw itself rejects frames of unequal sizes, so the width check is O(1).
    """
    frames = sequences[name]
    decoded = tf.io.decode_raw(frames.flat_values, tf.uint8)
    width = tf.shape(decoded, out_type=tf.int64)[-1]
    width_check = tf.debugging.Assert(
        tf.logical_or(tf.equal(tf.size(decoded), 0), tf.equal(width, size)),
        [tf.strings.format(f"feature '{name}' has {{}} values per frame in the data but "
                           f"--feature_sizes says {size}; make --feature_sizes match the data", width)])
    count_check = _check_frame_counts(name, frames.row_lengths(),
                                      sequences[first_name].row_lengths(), first_name)
    with tf.control_dependencies([width_check, count_check]):
        return tf.reshape(decoded, [-1, size])


def _pad_frames(frames, max_frames, pad_to_max):
    """Dense (B, T, D) uint8 padded with zeros (truncated at max_frames) and num_frames int32."""
    lengths = tf.minimum(frames.row_lengths(), max_frames)
    longest = max_frames if pad_to_max else tf.maximum(tf.reduce_max(lengths), 0)
    dense = frames.to_tensor(0, shape=tf.stack([frames.nrows(), tf.cast(longest, tf.int64),
                                                frames.values.shape[-1]]))
    if pad_to_max:
        dense = tf.ensure_shape(dense, [None, max_frames, frames.values.shape[-1]])
    return dense, tf.cast(lengths, tf.int32)


# ------------------------------------------------------------------ checks


def _check_sizes(lengths, size, message):
    """Assert every length equals `size`; `message` has one {} for the first wrong length."""
    wrong = tf.not_equal(lengths, tf.cast(size, lengths.dtype))
    first_wrong = tf.gather(tf.concat([lengths, tf.cast([size], lengths.dtype)], 0),
                            tf.argmax(tf.concat([wrong, [True]], 0)))
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(wrong)),
                               [tf.strings.format(message, first_wrong)])


def _check_frame_counts(name, lengths, first_lengths, first_name):
    """Every video has frames of `name`, as many as of the first feature."""
    missing = tf.debugging.Assert(
        tf.reduce_all(lengths > 0),
        [f"a record has no '{name}' frames; check --feature_names against the data "
         f"(the official frame-level names are {', '.join(schema.FRAME_FEATURE_NAMES)})"])
    mismatch = tf.debugging.Assert(
        tf.reduce_all(tf.equal(lengths, first_lengths)),
        [f"a record has a different number of '{name}' and '{first_name}' frames; "
         "the record is malformed, regenerate it"])
    return tf.group(missing, mismatch)


def _checked_labels(labels, num_classes):
    """Ragged int64 labels, asserted to lie in [0, num_classes)."""
    values = labels.flat_values
    outside = tf.logical_or(values < 0, values >= num_classes)
    first_outside = tf.gather(tf.concat([values, tf.zeros([1], values.dtype)], 0),
                              tf.argmax(tf.concat([outside, [True]], 0)))
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(outside)), [tf.strings.format(
        "label {} is outside --num_classes=" + str(num_classes)
        + "; set --num_classes to the vocabulary size", first_outside)])
    with tf.control_dependencies([check]):
        return tf.identity(labels)


# ---------------------------------------------------------- labels/segments


def _multi_hot(labels, num_classes):
    """Ragged (B, None) int64 -> dense (B, C) float32 with ones at the labels (repeats allowed)."""
    indices = tf.stack([labels.value_rowids(), labels.flat_values], axis=1)
    shape = tf.stack([labels.nrows(), tf.cast(num_classes, tf.int64)])
    ones = tf.ones_like(labels.flat_values, tf.float32)
    return tf.sparse.to_dense(tf.SparseTensor(indices, ones, shape), validate_indices=False)


def _cut_segments(video, starts):
    """Frames [start, start+5) of each (ragged (B, None)) start: ids, frames, num_frames, video."""
    frames = video["frames"]
    owner = starts.value_rowids()
    start = starts.flat_values
    length = tf.gather(frames.row_lengths(), owner)
    check = tf.debugging.Assert(
        tf.reduce_all((start >= 0) & (start < length)),
        ["a segment_start_times entry lies outside its video; the record is malformed"])
    offsets = start[:, None] + tf.range(schema.SEGMENT_FRAMES, dtype=tf.int64)[None, :]
    real = offsets < length[:, None]
    with tf.control_dependencies([check]):
        rows = tf.gather(frames.row_splits, owner)[:, None] + tf.minimum(offsets, length[:, None] - 1)
    cut = tf.gather(frames.values, rows)
    cut = cut * tf.cast(real, cut.dtype)[:, :, None]
    ids = tf.strings.join([tf.gather(video[schema.ID_KEY], owner), tf.strings.as_string(start)],
                          separator=":")
    num_frames = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    return {schema.ID_KEY: ids, schema.FRAMES_INPUT: cut,
            schema.NUM_FRAMES_INPUT: num_frames}, owner


def _require_segment_ratings(files, flag, records: int = 8):
    """UserError naming the file when none of the first records of `files[0]` has segment ratings.

    Without ratings a rated reader yields no segment at all and a repeating one reads forever.
    """
    for serialized in tf.data.TFRecordDataset(files[0]).take(records).ignore_errors():
        context = tf.train.SequenceExample.FromString(serialized.numpy()).context.feature
        if schema.SEGMENT_START_KEY in context:
            return
    raise UserError(f"{files[0]} (--{flag}) has no segment ratings ({schema.SEGMENT_START_KEY}, "
                    f"{schema.SEGMENT_LABELS_KEY}, {schema.SEGMENT_SCORES_KEY}); --segment_labels trains and "
                    f"evaluates on the rated validate files of the 2019 challenge, e.g. validate*.tfrecord")


def _rated_segments(video, num_classes):
    """One example per rated (segment, class) of a batch of validate videos.

    A batch of videos none of which is rated stops the reader (unrated files in the pattern:
    a repeating reader would otherwise read them forever and yield nothing).
    """
    starts = video[schema.SEGMENT_START_KEY]
    unrated = tf.debugging.Assert(
        tf.logical_or(tf.size(starts.flat_values) > 0, tf.equal(starts.nrows(), 0)),
        [tf.strings.format("no video of a batch has segment ratings (e.g. video {}); --segment_labels needs the "
                           "rated validate files of the 2019 challenge", video[schema.ID_KEY][:1])])
    with tf.control_dependencies([unrated]):
        starts = tf.identity(starts)
    classes = _checked_labels(video[schema.SEGMENT_LABELS_KEY], num_classes).flat_values
    scores = video[schema.SEGMENT_SCORES_KEY].flat_values
    features, owner = _cut_segments(video, starts)
    video_labels = tf.gather(_multi_hot(video[schema.LABELS_KEY], num_classes), owner)
    rated = tf.stack([tf.range(tf.size(classes, out_type=tf.int64)), classes], axis=1)
    labels = tf.tensor_scatter_nd_update(video_labels, rated, scores)
    weights = tf.one_hot(classes, num_classes, dtype=tf.float32)
    features["segment_class"] = tf.cast(classes, tf.int32)
    return features, labels, weights


def _test_segments(video, num_classes):
    """Every 5-frame segment (starts 0, 5, ...; the last may be partial) of a batch of videos."""
    lengths = video["frames"].row_lengths()
    count = (lengths + schema.SEGMENT_FRAMES - 1) // schema.SEGMENT_FRAMES
    starts = tf.ragged.range(count) * schema.SEGMENT_FRAMES
    features, owner = _cut_segments(video, starts)
    zeros = tf.zeros(tf.stack([tf.size(owner), num_classes]), tf.float32)
    return features, zeros, zeros


def _first_line(exc: tf.errors.OpError) -> str:
    """TF's own reason, without its function-node and iterator prefixes."""
    lines = (exc.message or "").strip().splitlines() or [type(exc).__name__]
    line = re.sub(r"^\{\{.*?\}\}\s*", "", lines[0])
    line = re.sub(r"^.*Iterator::\S+: ", "", line)
    return re.sub(r"\s*\[Op:.*$", "", line).strip()
