"""tf.data readers for the YouTube-8M records: video-level, frame-level and segment.

Every reader lists files with `yt8m.fileio.match_files`, shuffles them (files, interleaved,
and records, seeded) or reads them in turn, repeats, batches and only then parses the whole batch
(`parse_example` / `parse_sequence_example`, one vectorised `decode_raw` per feature;
frame batches parsed dense, padded by the parser, segments ragged). Each yields `(features, labels, weights)` as the table in
docs/ARCHITECTURE.md states. Frames stay uint8 (the model's `Dequantize` layer turns
them into floats) and are padded to the batch's longest video, or to `max_frames`.

Bad data stops a pipeline with a `tf.errors.InvalidArgumentError` whose message is
"assertion failed: [<one clear line>]"; wrap the loop over a dataset in
`data_errors(pattern, flag)` to turn that, and corrupt records, into `UserError`.

The record plumbing is public for the other readers of yt8m/data (clips, video_segments):
`record_batches` (files shuffled or in turn, repeated, batched: (serialized, file) batches),
`frame_record_batches` (the same after checking the first records for the frame features) and
`multi_hot_labels` (range-checked labels -> multi-hot).
"""
from __future__ import annotations

import contextlib
import re
import threading

import numpy as np
import tensorflow as tf

from yt8m import fileio
from yt8m.data import schema
from yt8m.errors import UserError

VIDEO_SHUFFLE_BUFFER = 4096   # records; a video-level record is ~5 KB
FRAME_SHUFFLE_BUFFER = 256    # records; a frame-level record is up to ~350 KB
SEGMENT_SHUFFLE_BUFFER = 1024  # segments, after the videos are cut into segments
MAX_PARALLEL_FILES = 8
RECORD_BLOCK = 32             # records a file's reader checks at once (offsets, its end)
# Videos are parsed in batches sized so that one parsed batch holds about batch_size
# segments: ~5 rated segments per validate video, up to 60 segments per test video.
RATED_SEGMENTS_PER_VIDEO = 5
TEST_SEGMENTS_PER_VIDEO = 60

_ASSERTION = re.compile(r"assertion failed: \[(.*?)\]")
_LOCK = threading.Lock()
_FILES_READ: dict[str, None] = {}   # every file a reader was built over, in order (a set that keeps order)


# ---------------------------------------------------------------- public API


def video_dataset(pattern: str, *, num_classes: int, feature_spec: schema.FeatureSpec,
                  batch_size: int, shuffle: bool = False, seed: int = 0,
                  num_epochs: int | None = 1, drop_remainder: bool = False,
                  flag: str = "train_data_pattern",
                  corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """Video-level Examples -> ({id, features float32 (B, D)}, multi-hot (B, C), ones (B, C))."""
    batches = record_batches(pattern, flag=flag, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             num_epochs=num_epochs, shuffle_buffer=VIDEO_SHUFFLE_BUFFER,
                             drop_remainder=drop_remainder, corrupt_records=corrupt_records)

    def parse(serialized, files):
        features, labels = parse_video_batch(serialized, feature_spec, num_classes)
        return features, labels, tf.ones_like(labels)

    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


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
    batches = frame_record_batches(pattern, feature_spec=feature_spec, flag=flag, batch_size=batch_size,
                                   shuffle=shuffle, seed=seed, num_epochs=num_epochs,
                                   drop_remainder=drop_remainder, corrupt_records=corrupt_records)

    def parse(serialized, files):
        features, labels = parse_frame_batch(serialized, feature_spec, num_classes, max_frames, pad_to_max,
                                             files=files, corrupt_records=corrupt_records)
        return features, labels, tf.ones_like(labels)

    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


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
    batches = frame_record_batches(pattern, feature_spec=feature_spec, rated=rated, flag=flag,
                                   batch_size=video_batch_size, shuffle=shuffle, seed=seed,
                                   num_epochs=num_epochs, drop_remainder=False, corrupt_records=corrupt_records)

    def parse(serialized, files):
        video = _parse_videos(serialized, feature_spec, num_classes, rated=rated, files=files,
                              corrupt_records=corrupt_records)
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
    return segments.prefetch(tf.data.AUTOTUNE)


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
                      max_frames: int = schema.MAX_FRAMES, pad_to_max: bool = False, files=None,
                      corrupt_records: "CorruptRecords | None" = None, rated: bool = False):
    """A batch of serialized SequenceExamples -> ({id, frames uint8, num_frames}, multi-hot labels).

    Frames are parsed dense: the parser itself pads each feature's frames to the batch's longest
    video and `decode_raw(fixed_length)` turns them into uint8 in the same pass, so after the parse
    the frame bytes are copied once (the features' concatenation), not decoded, concatenated and
    then padded. `files` (the records' files, when known) are named by errors; broken videos are
    handled as in `_parse_videos`. `rated`: the features also carry the ragged ratings
    (segment_start_times, segment_labels checked, segment_scores)."""
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string), schema.LABELS_KEY: _ragged(tf.int64)}
    if rated:
        context_keys.update({schema.SEGMENT_START_KEY: _ragged(tf.int64),
                             schema.SEGMENT_LABELS_KEY: _ragged(tf.int64),
                             schema.SEGMENT_SCORES_KEY: _ragged(tf.float32)})
    sequence_keys = {name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                     for name in feature_spec.names}
    context, sequences, lengths = tf.io.parse_sequence_example(
        serialized, context_features=context_keys, sequence_features=sequence_keys)
    context, sequences, lengths = _without_broken_videos(
        context, sequences, [lengths[name] for name in feature_spec.names], feature_spec, files, corrupt_records)
    frames, num_frames = _dense_frames(sequences, lengths[0], feature_spec, max_frames, pad_to_max)
    features = {schema.ID_KEY: context[schema.ID_KEY], schema.FRAMES_INPUT: frames,
                schema.NUM_FRAMES_INPUT: num_frames}
    if rated:
        features.update({schema.SEGMENT_START_KEY: context[schema.SEGMENT_START_KEY],
                         schema.SEGMENT_LABELS_KEY: _checked_labels(context[schema.SEGMENT_LABELS_KEY], num_classes),
                         schema.SEGMENT_SCORES_KEY: context[schema.SEGMENT_SCORES_KEY]})
    return features, multi_hot_labels(context[schema.LABELS_KEY], num_classes)


def multi_hot_labels(labels, num_classes: int):
    """Ragged (B, None) int64 labels -> dense (B, C) float32 multi-hot, every label asserted to lie
    in [0, num_classes) (the message names --num_classes)."""
    return _multi_hot(_checked_labels(labels, num_classes), num_classes)


def model_inputs(features: dict) -> dict:
    """Only the keys a model takes: `features`, or `frames` and `num_frames` (and, context-aware
    segment models, `segment_starts`), or `clip`."""
    model_keys = (schema.VIDEO_INPUT, schema.FRAMES_INPUT, schema.NUM_FRAMES_INPUT, schema.SEGMENT_STARTS_INPUT,
                  schema.CLIP_INPUT)
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
        named = _name_corrupt_record(exc.message or "")
        if named:
            raise UserError(f"{named} (in --{flag}={pattern!r})") from None
        raise UserError(
            f"a record in --{flag}={pattern!r} is corrupt or truncated ({_first_line(exc)}); "
            "re-download or regenerate that file, or leave it out of the pattern") from None
    except tf.errors.InvalidArgumentError as exc:
        message = _assertion_message(exc)
        if message:
            raise UserError(f"{message} (in --{flag}={pattern!r})") from None
        raise UserError(
            f"a record in --{flag}={pattern!r} cannot be parsed ({_first_line(exc)}); check that "
            "the files are YouTube-8M records of the expected level and --feature_names") from None


class CorruptRecords:
    """What `--skip_corrupt_records` skips, counted per file; pass one to a reader.

    A corrupt or truncated stretch of a TFRecord file is skipped and reading resumes at the
    next intact record (the next offset whose length field passes its CRC and whose records
    TensorFlow then reads with every CRC checked); videos with no frames, or with unequal frame
    counts of their features, are skipped and named. `report()` after the pass says what was
    lost in which file. The tallies live on the host (Python), filled while the pipeline runs.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._stopped: dict[str, int] = {}    # file -> the offset where TensorFlow's reader stopped
        self.files: dict[str, dict] = {}      # file -> {"regions", "lost_bytes", "recovered"} (one pass)
        self.videos: dict[bytes, tuple] = {}  # video id -> (file, reason)

    @property
    def count(self) -> int:
        """Corrupt regions plus skipped videos."""
        return sum(f["regions"] for f in self.files.values()) + len(self.videos)

    def records(self, file) -> tf.data.Dataset:
        """The intact records of `file` (a string tensor), corrupt stretches skipped and tallied."""
        def note(records, offset, index, last):
            noted = tf.cond(last, lambda: tf.py_function(self._note_stop, [file, offset], tf.bool),
                            lambda: tf.constant(False))
            with tf.control_dependencies([noted]):
                return tf.identity(records), last

        good = _framed_records(file).map(note).filter(lambda records, last: tf.logical_not(last))
        rest = tf.data.Dataset.from_generator(self._recover, args=(file,),
                                              output_signature=tf.TensorSpec([], tf.string))
        return good.map(lambda records, last: records).unbatch().concatenate(rest)

    def note_videos(self, ids, files, reasons):
        """Called (tf.py_function) with the ids, files and reasons of videos a reader dropped."""
        with self._lock:
            for video, file, reason in zip(ids.numpy(), files.numpy(), reasons.numpy()):
                self.videos[video] = (file.decode(), reason.decode())
        return True

    def report(self, pattern: str, flag: str) -> str:
        if not self.count:
            return f"no corrupt records in --{flag}={pattern!r}"
        lines = [f"--skip_corrupt_records skipped in --{flag}={pattern!r}:"]
        for file, lost in sorted(self.files.items()):
            if lost["regions"]:
                lines.append(f"  {file}: {lost['regions']} corrupt stretch(es), {lost['lost_bytes']} bytes lost, "
                             f"{lost['recovered']} intact records read after them")
        for video, (file, reason) in sorted(self.videos.items()):
            lines.append(f"  video {video.decode(errors='replace')} in {file}: {reason}")
        return "\n".join(lines)

    def _note_stop(self, file, offset):
        with self._lock:
            self._stopped[file.numpy().decode()] = int(offset.numpy())
        return True

    def _recover(self, file: bytes):
        """Generator: the intact records after the stretch where TensorFlow's reader stopped."""
        file = file.decode()
        with self._lock:
            position = self._stopped.pop(file, None)
        if position is None or position >= tf.io.gfile.stat(file).length:   # read whole by TensorFlow
            return
        with tf.io.gfile.GFile(file, "rb") as handle:
            data = handle.read()
        regions = lost = recovered = 0
        while position < len(data):
            start = _next_record_start(data, position + 1)
            regions, lost = regions + 1, lost + start - position
            position = start
            for record in _intact_records(data[start:]):
                recovered += 1
                position += len(record) + 16
                yield record
        with self._lock:
            self.files[file] = {"regions": regions, "lost_bytes": lost, "recovered": recovered}


# ------------------------------------------------------------- file reading


def record_batches(pattern: str, *, flag: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                   num_epochs: int | None = 1, shuffle_buffer: int = FRAME_SHUFFLE_BUFFER,
                   drop_remainder: bool = False,
                   corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """Batches of (serialized records (B,) string, their files (B,) string) of any record type: the
    files of `pattern` (--flag), shuffled with `seed` (files, interleaved, then records in a buffer of
    `shuffle_buffer`) or read in turn, repeated `num_epochs` times (None: forever). Parse each batch in
    a `map`.

    Records are read by TensorFlow's own reader, unchecked and uncopied (checking every file's
    framing as it is read cost 1.4-1.9x the CPU per video); a corrupt or truncated record stops
    the pipeline, and `data_errors` then re-reads the files with the checked `file_records` to
    name the file, the record's number and its byte offset. With a `CorruptRecords` the checked
    reader runs from the start: the stretch is skipped and reading resumes after it.
    """
    files = fileio.match_files(pattern, flag)
    with _LOCK:
        _FILES_READ.update(dict.fromkeys(files))     # what data_errors searches when a record is corrupt
    dataset = tf.data.Dataset.from_tensor_slices(files)
    records = tf.data.TFRecordDataset if corrupt_records is None else corrupt_records.records
    with_files = lambda file: tf.data.Dataset.zip((records(file),  # noqa: E731 (no function per record)
                                                   tf.data.Dataset.from_tensors(file).repeat()))
    if shuffle:
        dataset = (dataset.shuffle(len(files), seed=seed)
                   .interleave(with_files, cycle_length=min(len(files), MAX_PARALLEL_FILES),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .shuffle(shuffle_buffer, seed=seed))
    else:   # files in turn: the parallel interleave's hand-offs cost ~10% of an unshuffled reader's CPU
        dataset = dataset.flat_map(with_files)
    return dataset.repeat(num_epochs).batch(batch_size, drop_remainder=drop_remainder)


def frame_record_batches(pattern: str, *, feature_spec: schema.FeatureSpec, rated: bool = False,
                         flag: str, batch_size: int, **options) -> tf.data.Dataset:
    """`record_batches` of frame-level SequenceExamples (shuffle buffer FRAME_SHUFFLE_BUFFER unless
    given), after a UserError check of the first file's first records for the --feature_names
    frame features (and, `rated`, for segment ratings)."""
    _check_first_records(fileio.match_files(pattern, flag), flag, feature_spec, rated=rated)
    return record_batches(pattern, flag=flag, batch_size=batch_size, **options)


def _name_corrupt_record(reported: str) -> str | None:
    """The checked reader's one line for the first corrupt record among the files readers were built
    over ('<file>: record N (at byte O of S) is corrupt or truncated; ...'), or None if none is.

    Only files with a record where TensorFlow's message (`reported`) says it failed are re-read,
    found by walking their record headers."""
    at = re.search(r"record at (\d+)", reported)
    with _LOCK:
        files = list(_FILES_READ)
    for file in reversed(files):                         # the latest reader's files first
        try:
            if at and not _record_starts_at(file, int(at.group(1))):
                continue
            for _ in file_records(tf.constant(file)):
                pass
        except tf.errors.InvalidArgumentError as exc:
            if _assertion_message(exc):
                return _assertion_message(exc)
        except tf.errors.OpError:                        # gone or unreadable now: not the one
            continue
    return None


def _record_starts_at(file: str, offset: int) -> bool:
    """Whether walking `file`'s TFRecord headers from its start lands on the record TensorFlow reported
    at `offset` (the record's start, or its data's: 12 bytes on, after a data CRC failure); 8 bytes
    read per record (its length), the rest skipped (the length's CRC, the record, its CRC)."""
    with tf.io.gfile.GFile(file, "rb") as handle:
        position = 0
        while position < offset - 12:
            handle.seek(position)
            header = handle.read(8)
            if len(header) < 8:
                return False
            position += 16 + int.from_bytes(header, "little")
        return position in (offset, offset - 12)


def _assertion_message(exc: tf.errors.OpError) -> str | None:
    """The one line a reader's tf.debugging.Assert carried, unescaped; None for another error."""
    found = _ASSERTION.search(exc.message or "")
    return found.group(1).replace("\\'", "'").replace('\\"', '"') if found else None   # TF escapes quotes


def file_records(file, corrupt_records: "CorruptRecords | None" = None) -> tf.data.Dataset:
    """The serialized records of one TFRecord file (a string tensor).

    Without `corrupt_records`, a corrupt or truncated record raises (through `data_errors`) an
    error naming the file, the record's number and its offset; with it, see `CorruptRecords`.
    """
    if corrupt_records is not None:
        return corrupt_records.records(file)

    def checked(records, offset, index, last):
        size = tf.cond(last, lambda: tf.py_function(_file_size, [file], tf.int64), lambda: offset)
        check = tf.debugging.Assert(offset >= size, [tf.strings.join([
            file, ": record ", tf.strings.as_string(index + 1), " (at byte ", tf.strings.as_string(offset), " of ",
            tf.strings.as_string(size), ") is corrupt or truncated; re-download or regenerate that file, leave it "
            "out of the pattern, or pass --skip_corrupt_records"])])
        with tf.control_dependencies([check]):
            return tf.identity(records), last

    return (_framed_records(file).map(checked).filter(lambda records, last: tf.logical_not(last))
            .map(lambda records, last: records).unbatch())


def _framed_records(file) -> tf.data.Dataset:
    """Blocks of the records TensorFlow reads from `file` before its first error:
    (records (n,), offset of the first, index of the first, False), then one ([], offset reached,
    records read, True). Blocks of RECORD_BLOCK records keep the per-record cost at TensorFlow's
    own reader: every function here runs once a block."""
    read = tf.data.TFRecordDataset(file).ignore_errors().batch(RECORD_BLOCK).map(
        lambda records: (records, tf.reduce_sum(tf.cast(tf.strings.length(records), tf.int64) + 16),
                         tf.size(records, out_type=tf.int64), False))   # 8 length, 4 its CRC, 4 the data's
    end = tf.data.Dataset.from_tensors((tf.constant([], tf.string), tf.constant(0, tf.int64),
                                        tf.constant(0, tf.int64), True))

    def tally(state, element):
        offset, index = state
        records, framed, count, last = element
        return (offset + framed, index + count), (records, offset, index, last)

    return read.concatenate(end).scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), tally)


def _file_size(file) -> tf.Tensor:
    return tf.constant(tf.io.gfile.stat(file.numpy().decode()).length, tf.int64)


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_CRC32C = _crc32c_table()
_SCAN_CHUNK = 1 << 20


def _next_record_start(data: bytes, start: int) -> int:
    """The first offset >= start whose 8 bytes (a record's length) match the masked CRC-32C after
    them, as TFRecord frames a record; len(data) when there is none. Vectorised over positions."""
    array = np.frombuffer(data, np.uint8)
    for chunk in range(start, len(data) - 12 + 1, _SCAN_CHUNK):
        positions = np.arange(chunk, min(chunk + _SCAN_CHUNK, len(data) - 12 + 1))
        crc = np.full(positions.size, 0xFFFFFFFF, np.uint32)
        for k in range(8):
            crc = _CRC32C[(crc ^ array[positions + k]) & 0xFF] ^ (crc >> np.uint32(8))
        crc ^= np.uint32(0xFFFFFFFF)
        masked = (((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)).astype(np.uint32)
        stored = (array[positions + 8].astype(np.uint32) | array[positions + 9].astype(np.uint32) << 8
                  | array[positions + 10].astype(np.uint32) << 16 | array[positions + 11].astype(np.uint32) << 24)
        found = np.flatnonzero(masked == stored)
        if found.size:
            return int(positions[found[0]])
    return len(data)


def _intact_records(data: bytes):
    """The records TensorFlow reads (every CRC checked) from `data`, up to its first error."""
    path = f"ram://yt8m-recovery/{threading.get_ident()}-{id(data)}.tfrecord"
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(data)
    try:
        for record in tf.data.TFRecordDataset(path).ignore_errors():
            yield record.numpy()
    finally:
        tf.io.gfile.remove(path)


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


def _parse_videos(serialized, feature_spec, num_classes, *, rated, files=None, corrupt_records=None):
    """A batch of SequenceExamples -> id, labels (ragged), frames (ragged (B, None, D) uint8).

    A video with no frames, or with unequal frame counts of its features, stops the pipeline naming
    its id and file; with `corrupt_records` (--skip_corrupt_records) it is dropped and named there.
    """
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                    schema.LABELS_KEY: _ragged(tf.int64)}
    if rated:
        context_keys.update({schema.SEGMENT_START_KEY: _ragged(tf.int64),
                             schema.SEGMENT_LABELS_KEY: _ragged(tf.int64),
                             schema.SEGMENT_SCORES_KEY: _ragged(tf.float32)})
    sequence_keys = {name: _ragged(tf.string) for name in feature_spec.names}
    context, sequences, _ = tf.io.parse_sequence_example(
        serialized, context_features=context_keys, sequence_features=sequence_keys)
    context, sequences, _ = _without_broken_videos(
        context, sequences, [sequences[name].row_lengths() for name in feature_spec.names], feature_spec, files,
        corrupt_records)
    context[schema.LABELS_KEY] = _checked_labels(context[schema.LABELS_KEY], num_classes)
    context["frames"] = _decode_frames(sequences, feature_spec)
    return context


def _without_broken_videos(context, sequences, lengths, feature_spec, files, corrupt_records):
    """Checks every video has frames, as many of each feature (`lengths`: per feature, (B,)); drops (and
    notes) those that do not when `corrupt_records` is given, else asserts naming the first one's id and
    file. Returns (context, sequences, lengths) of the videos kept; sequences ragged or dense."""
    ids = context[schema.ID_KEY]
    files = tf.fill(tf.shape(ids), "(file unknown)") if files is None else files
    first = feature_spec.names[0]
    empty = tf.equal(lengths[0], 0)
    unequal = tf.zeros_like(empty)
    for length in lengths[1:]:
        unequal = tf.logical_or(unequal, tf.not_equal(length, lengths[0]))
    unequal = tf.logical_and(unequal, tf.logical_not(empty))
    broken = tf.logical_or(empty, unequal)
    reasons = lambda empty: tf.where(empty, f"no '{first}' frames (an empty video)",  # noqa: E731
                                     f"unequal frame counts of {', '.join(feature_spec.names)} (a malformed record)")
    if corrupt_records is None:
        shown = lambda values, default: _first_where(broken, values, default)  # noqa: E731
        message = tf.strings.join(["video ", shown(ids, ""), " in ", shown(files, ""), " has ",
                                   reasons(shown(empty, False)),
                                   "; pass --skip_corrupt_records to skip such videos, or regenerate the file"])
        check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(broken)), [message])
        with tf.control_dependencies([check]):
            return ({k: tf.identity(v) for k, v in context.items()},
                    {k: tf.identity(v) for k, v in sequences.items()}, [tf.identity(n) for n in lengths])
    noted = tf.cond(tf.reduce_any(broken),
                    lambda: tf.py_function(corrupt_records.note_videos, [tf.boolean_mask(ids, broken),
                                           tf.boolean_mask(files, broken), tf.boolean_mask(reasons(empty), broken)],
                                           tf.bool),
                    lambda: tf.constant(False))
    keep = tf.logical_not(broken)
    with tf.control_dependencies([noted]):
        keep = tf.identity(keep)
    masked = lambda v: tf.ragged.boolean_mask(v, keep) if isinstance(v, tf.RaggedTensor) else tf.boolean_mask(v, keep)  # noqa: E731
    return ({k: masked(v) for k, v in context.items()}, {k: masked(v) for k, v in sequences.items()},
            [masked(n) for n in lengths])


def _check_first_records(files, flag, feature_spec, rated: bool = False, records: int = 8):
    """UserError naming the file when none of the first records of `files[0]` has a frame feature of
    --feature_names (or, `rated`, segment ratings).

    Checked once, before reading: in the pipeline a missing feature would look like empty videos,
    and a rated reader over unrated files yields no segment at all (a repeating one, forever).
    """
    seen_features, seen_ratings = set(), False
    for serialized in tf.data.TFRecordDataset(files[0]).take(records).ignore_errors():
        try:
            example = tf.train.SequenceExample.FromString(serialized.numpy())
        except Exception:  # noqa: BLE001 (not a SequenceExample: reported below as missing features)
            continue
        seen_features |= set(example.feature_lists.feature_list)
        seen_ratings |= schema.SEGMENT_START_KEY in example.context.feature
    missing = [name for name in feature_spec.names if name not in seen_features]
    if missing:
        found = ", ".join(sorted(seen_features)) or "none"
        raise UserError(f"{files[0]} (--{flag}) has no frame feature {', '.join(map(repr, missing))} in its first "
                        f"records (frame features found: {found}); check --feature_names and that the files are "
                        f"frame-level")
    if rated and not seen_ratings:
        raise UserError(f"{files[0]} (--{flag}) has no segment ratings ({schema.SEGMENT_START_KEY}, "
                        f"{schema.SEGMENT_LABELS_KEY}, {schema.SEGMENT_SCORES_KEY}); --segment_labels trains and "
                        f"evaluates on the rated validate files of the 2019 challenge, e.g. validate*.tfrecord")


def _decode_frames(sequences, feature_spec):
    """Ragged (B, None, D) uint8: every feature's bytes decoded at once, concatenated."""
    first_name = feature_spec.names[0]
    columns = [_decode_feature(sequences, name, size)
               for name, size in zip(feature_spec.names, feature_spec.sizes)]
    values = columns[0] if len(columns) == 1 else tf.concat(columns, axis=-1)
    return tf.RaggedTensor.from_row_splits(values, sequences[first_name].row_splits,
                                           validate=False)


def _decode_feature(sequences, name, size):
    """(frames in the batch, size) uint8 of one feature, its width checked.

    decode_raw itself rejects frames of unequal sizes, so the width check is O(1).
    """
    frames = sequences[name]
    decoded = tf.io.decode_raw(frames.flat_values, tf.uint8)
    width = tf.shape(decoded, out_type=tf.int64)[-1]
    width_check = tf.debugging.Assert(
        tf.logical_or(tf.equal(tf.size(decoded), 0), tf.equal(width, size)),
        [tf.strings.format(f"feature '{name}' has {{}} values per frame in the data but "
                           f"--feature_sizes says {size}; make --feature_sizes match the data", width)])
    with tf.control_dependencies([width_check]):   # frame counts: _without_broken_videos
        return tf.reshape(decoded, [-1, size])


def _dense_frames(sequences, lengths, feature_spec, max_frames, pad_to_max):
    """Dense (B, T, D) uint8 (zeros past each video's end, truncated at max_frames) and num_frames
    int32, from the parser's dense (B, T_feature) frame strings ('' past a video's end).

    Each feature's frame widths are checked from the string lengths (decode_raw(fixed_length)
    would pad or cut a wrong-sized frame silently)."""
    longest = tf.minimum(tf.reduce_max(tf.concat([lengths, [0]], 0)), max_frames)
    real = tf.sequence_mask(tf.minimum(lengths, longest), longest)
    columns = []
    for name, size in zip(feature_spec.names, feature_spec.sizes):
        strings = sequences[name][:, :longest]       # no copy unless a dropped video was the longest
        widths = tf.strings.length(strings)
        wrong = tf.logical_and(real, tf.not_equal(widths, size))
        check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(wrong)), [tf.strings.format(
            f"feature '{name}' has {{}} values per frame in the data but --feature_sizes says {size}; "
            "make --feature_sizes match the data", _first_where(tf.reshape(wrong, [-1]), tf.reshape(widths, [-1]), 0))])
        with tf.control_dependencies([check]):
            columns.append(tf.io.decode_raw(strings, tf.uint8, fixed_length=size))
    dense = columns[0] if len(columns) == 1 else tf.concat(columns, axis=-1)
    if pad_to_max:
        dense = tf.pad(dense, [[0, 0], [0, max_frames - tf.shape(dense)[1]], [0, 0]])
        dense = tf.ensure_shape(dense, [None, max_frames, feature_spec.total_size])
    return dense, tf.cast(tf.minimum(lengths, longest), tf.int32)


# ------------------------------------------------------------------ checks


def _first_where(mask, values, default):
    """values[i] at the first i where the (N,) `mask` holds, else `default`: a scalar for a check's message.

    The checks build their messages on every batch (a few scalar ops): a tf.cond that built them only
    on failure cost more than the strings (the branch functions run per batch inside tf.data)."""
    where = tf.argmax(tf.concat([tf.cast(mask, tf.int32), [1]], 0))
    return tf.gather(tf.concat([values, tf.cast([default], values.dtype)], 0), where)


def _check_sizes(lengths, size, message):
    """Assert every length equals `size`; `message` has one {} for the first wrong length."""
    wrong = tf.not_equal(lengths, tf.cast(size, lengths.dtype))
    first_wrong = tf.gather(tf.concat([lengths, tf.cast([size], lengths.dtype)], 0),
                            tf.argmax(tf.concat([wrong, [True]], 0)))
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(wrong)),
                               [tf.strings.format(message, first_wrong)])


def _checked_labels(labels, num_classes):
    """Ragged int64 labels, asserted to lie in [0, num_classes)."""
    values = labels.flat_values
    outside = tf.logical_or(values < 0, values >= num_classes)
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(outside)), [tf.strings.format(
        "label {} is outside --num_classes=" + str(num_classes) + "; set --num_classes to the vocabulary size",
        _first_where(outside, values, 0))])
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
