"""Label counts N_i and co-occurrences M_ij, streamed from TFRecords (any size)."""
from __future__ import annotations

import dataclasses
import io

import keras
import numpy as np
import tensorflow as tf

from yt8m import fileio
from yt8m.data import readers, schema
from yt8m.errors import UserError
from yt8m.progress import keras_verbose


@dataclasses.dataclass(frozen=True)
class LabelStatistics:
    """N_i = videos with label i, M_ij = videos with both i and j (zero diagonal)."""

    counts: np.ndarray        # (C,) int64
    cooccurrence: np.ndarray  # (C, C) int64, symmetric
    num_videos: int
    counted_on: str = ""      # the records counted, "--train_data_pattern=..." ("" when not recorded)

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    def conditional_probability(self) -> np.ndarray:
        """P_ij = M_ij / N_i = P(j | i) (seed 003 Eq.4); rows of unseen labels are 0."""
        counts = self.counts.astype(np.float64)[:, None]
        return np.divide(self.cooccurrence, counts, out=np.zeros(self.cooccurrence.shape), where=counts > 0)

    def frequencies(self) -> np.ndarray:
        """p_k = N_k / videos, the label's training frequency."""
        return self.counts / max(self.num_videos, 1)

    @property
    def description(self) -> str:
        """What was counted, e.g. "counted on --train_data_pattern=data/train*.tfrecord (1500 videos)"."""
        if not self.counted_on:  # saved before the pattern was recorded
            return f"{self.num_videos} videos, counted on records it does not name"
        return f"counted on {self.counted_on} ({self.num_videos} videos)"

    def save(self, path: str) -> None:
        buffer = io.BytesIO()  # zip needs a seekable file; GFile writers are not
        np.savez_compressed(buffer, label_counts=self.counts, cooccurrence=self.cooccurrence,
                            num_videos=self.num_videos, counted_on=self.counted_on)
        with fileio.atomic_output(path, "wb") as handle:
            handle.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str) -> "LabelStatistics":
        """From our `.npz` (or ML-GCN-style arrays `label_counts` and `cooccurrence`)."""
        if not tf.io.gfile.exists(path):
            raise UserError(f"no label statistics at {path}; leave --label_stats empty to compute them")
        with tf.io.gfile.GFile(path, "rb") as handle, np.load(handle) as data:
            counts = data["label_counts"].astype(np.int64)
            cooccurrence = data["cooccurrence"].astype(np.int64)
            num_videos = int(data["num_videos"]) if "num_videos" in data else int(counts.max(initial=0))
            counted_on = str(data["counted_on"]) if "counted_on" in data else ""
        return cls(counts, cooccurrence, num_videos, counted_on)


def count_labels(pattern: str, num_classes: int, *, frame_features: bool, batch_size: int = 1024,
                 flag: str = "train_data_pattern", progress: bool = False,
                 skip_corrupt_records: bool = False) -> LabelStatistics:
    """Streams the `labels` of every record once: memory O(C^2), whatever the number of videos;
    with `progress`, a line naming the records and a progress bar of the videos counted. With
    `skip_corrupt_records` corrupt stretches are skipped and reported as the readers do
    (`readers.file_records`); without it a corrupt record stops the count naming its file."""
    files = fileio.match_files(pattern, flag)
    parse = _labels_parser(frame_features)
    corrupt = readers.CorruptRecords() if skip_corrupt_records else None
    records = tf.data.Dataset.from_tensor_slices(files).interleave(  # errors name the file and record
        lambda file: readers.file_records(file, corrupt), cycle_length=min(len(files), readers.MAX_PARALLEL_FILES),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = (records.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
    counts = np.zeros(num_classes, np.int64)
    cooccurrence = np.zeros((num_classes, num_classes), np.int64)
    num_videos = 0
    if progress:
        print(f"counting the labels of --{flag}={pattern} ({len(files)} files)")
    bar = keras.utils.Progbar(None, unit_name="video", verbose=keras_verbose(progress))
    with readers.data_errors(pattern, flag):
        for labels in dataset:
            dense = labels.to_tensor(default_value=-1).numpy()
            if dense.size and dense.max() >= num_classes:
                raise UserError(f"label {dense.max()} is outside --num_classes={num_classes} (in --{flag}={pattern!r})")
            num_videos += len(dense)
            _accumulate(dense, counts, cooccurrence)
            bar.update(num_videos)
    bar.update(num_videos, finalize=True)
    if corrupt is not None and corrupt.count:
        print(corrupt.report(pattern, flag))
    return LabelStatistics(counts, cooccurrence, num_videos, f"--{flag}={pattern}")


def _labels_parser(frame_features: bool):
    spec = {schema.LABELS_KEY: tf.io.RaggedFeature(tf.int64)}

    def parse(serialized):
        if frame_features:
            context, _, _ = tf.io.parse_sequence_example(serialized, context_features=spec)
            return context[schema.LABELS_KEY]
        return tf.io.parse_example(serialized, spec)[schema.LABELS_KEY]

    return parse


def _accumulate(labels: np.ndarray, counts: np.ndarray, cooccurrence: np.ndarray) -> None:
    """Adds a padded (B, L) batch of label ids (-1 = padding): every ordered pair i != j of a video."""
    valid = labels >= 0
    np.add.at(counts, labels[valid], 1)
    first, second = labels[:, :, None], labels[:, None, :]
    pair = valid[:, :, None] & valid[:, None, :] & (first != second)
    np.add.at(cooccurrence, (np.broadcast_to(first, pair.shape)[pair], np.broadcast_to(second, pair.shape)[pair]), 1)
