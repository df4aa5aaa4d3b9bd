"""Kaggle submission CSVs, streamed: per-class top-K segments and per-video top-20 labels.

Segment submission (2019): `SegmentTopK` keeps, for each rated class, the K best
segments seen so far in memory bounded by classes x K however many batches come,
and `write_segment_csv` writes `Class,Segments` rows from it. Video-level
submission: `VideoTopKWriter` writes `VideoId,LabelConfidencePairs` rows batch by
batch. Every file goes through `yt8m.fileio.atomic_output`: an exception or a
kill leaves no file behind.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from yt8m.fileio import atomic_output
from yt8m.metrics import SEGMENT_CSV_HEADER, top_k_mask

VIDEO_CSV_HEADER = "VideoId,LabelConfidencePairs"


def _ascii_ids(ids) -> np.ndarray:
    """Ids (str, bytes or an object array of either, as tf.data yields them) as a bytes array."""
    return np.asarray(ids).astype(np.bytes_)


class SegmentTopK:
    """Streaming per-class top-K of segments by predicted score.

    `update(segment_ids, predictions)`: ids (B,) str/bytes `<video_id>:<start>`,
    predictions (B, C) over the full label space; column c of `class_ids` is
    class c's score. Scores are kept as float32 (the models' output type).
    Equal scores: the segment given first (earlier update, or earlier row) ranks first.

    Memory: per class K float32 scores and K int keys, plus a table of the ids
    they refer to (at most 2 x classes x K); new candidates are kept only if they
    beat the class's current K-th score and are merged into the kept arrays
    (np.partition) whenever a class has K of them pending, `merge_slots` cells at
    a time, so a merge's temporaries stay small beside the kept arrays.
    """

    def __init__(self, class_ids, k: int = 100000, merge_slots: int = 1 << 22):
        self.class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        if k <= 0 or self.class_ids.size == 0:
            raise ValueError(f"need k > 0 ({k}) and at least one class id")
        self.k = int(k)
        self.merge_slots = merge_slots                        # (class, slot) cells a merge works on at once
        num_classes = self.class_ids.size
        self._table_limit = 2 * num_classes * self.k          # ids kept before dropping unused ones
        self._key_type = np.int32 if 2 * self._table_limit < np.iinfo(np.int32).max else np.int64
        self._no_key = np.iinfo(self._key_type).max           # key of an empty slot (ranks last)
        self._scores = np.empty((num_classes, 0), dtype=np.float32)   # kept, (classes, <= K)
        self._keys = np.empty((num_classes, 0), dtype=self._key_type)
        self._threshold = np.full(num_classes, -np.inf, dtype=np.float32)  # K-th kept score
        self._table: list[np.ndarray] = []                    # segment ids; key = index in the concatenation
        self._table_size = 0
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (class row, score, key)
        self._pending_per_class = np.zeros(num_classes, dtype=np.int64)

    def update(self, segment_ids, predictions) -> None:
        """Offer one batch of segments: ids (B,) and predictions (B, C_total)."""
        ids = _ascii_ids(segment_ids).reshape(-1)
        predictions = np.asarray(predictions)
        if predictions.ndim != 2 or predictions.shape[0] != ids.size:
            raise ValueError(f"predictions {predictions.shape} must be (len(segment_ids)={ids.size}, classes)")
        if predictions.shape[1] <= self.class_ids.max():
            raise ValueError(f"predictions have {predictions.shape[1]} classes; class id "
                             f"{self.class_ids.max()} needs the full label space")
        scores = predictions[:, self.class_ids].astype(np.float32)
        if not np.isfinite(scores).all():
            raise ValueError("predictions contain NaN or infinity")
        rows, classes = np.nonzero(scores > self._threshold)      # only these can still enter
        if rows.size == 0:
            return
        used_rows = np.zeros(ids.size, dtype=bool)
        used_rows[rows] = True
        row_keys = self._table_size + np.cumsum(used_rows) - 1   # arrival order = key order
        self._table.append(ids[used_rows])
        self._table_size += int(used_rows.sum())
        self._pending.append((classes.astype(np.int32), scores[rows, classes],
                              row_keys[rows].astype(self._key_type)))
        self._pending_per_class += np.bincount(classes, minlength=self.class_ids.size)
        if self._pending_per_class.max() >= self.k:
            self._merge()

    def _merge(self) -> None:
        """Fold the pending candidates into the kept (classes, K) arrays, a chunk of classes at a time."""
        if not self._pending:
            return
        classes, scores, keys = (np.concatenate(parts) for parts in zip(*self._pending))
        self._pending = []
        order = np.argsort(classes, kind="stable")
        classes, scores, keys = classes[order], scores[order], keys[order]
        del order                                                 # a merge's biggest temporary
        counts = self._pending_per_class
        ends = np.cumsum(counts)
        starts = ends - counts
        num_classes, old_width = self._scores.shape
        pending_width = int(counts.max())
        width = min(self.k, old_width + pending_width)
        if width == old_width:                                    # chunks are read before written
            kept_scores, kept_keys = self._scores, self._keys
        else:
            kept_scores = np.empty((num_classes, width), dtype=np.float32)
            kept_keys = np.empty((num_classes, width), dtype=self._key_type)
        rows_per_chunk = max(1, self.merge_slots // (old_width + pending_width))
        for first in range(0, num_classes, rows_per_chunk):
            rows = slice(first, min(first + rows_per_chunk, num_classes))
            start, end = starts[first], ends[rows.stop - 1]
            # Pending entries of these classes, laid out one row per class, padded with empty slots.
            row = classes[start:end] - first
            slot = np.arange(start, end) - starts[classes[start:end]]
            new_scores = np.full((rows.stop - first, pending_width), -np.inf, dtype=np.float32)
            new_keys = np.full((rows.stop - first, pending_width), self._no_key, dtype=self._key_type)
            new_scores[row, slot] = scores[start:end]
            new_keys[row, slot] = keys[start:end]
            all_scores = np.hstack([self._scores[rows], new_scores])
            all_keys = np.hstack([self._keys[rows], new_keys])
            chosen = top_k_mask(all_scores, width, tie_keys=all_keys)   # exactly `width` per row
            kept_scores[rows] = all_scores[chosen].reshape(-1, width)
            kept_keys[rows] = all_keys[chosen].reshape(-1, width)
        self._scores, self._keys = kept_scores, kept_keys
        if width == self.k:
            self._threshold = self._scores.min(axis=1)           # empty slots are -inf: no pruning yet
        self._pending_per_class[:] = 0
        if self._table_size > self._table_limit:
            self._drop_unused_ids()

    def _drop_unused_ids(self) -> None:
        """Keep only the ids some class still holds; renumber keys keeping their order."""
        filled = self._keys != self._no_key
        live = np.unique(self._keys[filled])
        self._table = [np.concatenate(self._table)[live]]
        self._table_size = live.size
        self._keys[filled] = np.searchsorted(live, self._keys[filled])

    def _ranked_arrays(self) -> Iterator[tuple[int, np.ndarray]]:
        """(class_id, bytes array of segment ids best first) per class, in class_ids order."""
        self._merge()
        table = np.concatenate(self._table) if self._table else np.array([], dtype=np.bytes_)
        rows_per_chunk = max(1, self.merge_slots // max(1, self._scores.shape[1]))
        for first in range(0, self.class_ids.size, rows_per_chunk):
            rows = slice(first, first + rows_per_chunk)
            order = np.lexsort((self._keys[rows], -self._scores[rows]))   # score desc, then arrival
            keys = np.take_along_axis(self._keys[rows], order, axis=1)
            for class_id, class_keys in zip(self.class_ids[rows].tolist(), keys):
                yield class_id, table[class_keys[class_keys != self._no_key]]

    def ranked(self) -> Iterator[tuple[int, list[str]]]:
        """(class_id, segment ids best first, at most K) per class, in class_ids order."""
        for class_id, ids in self._ranked_arrays():
            yield class_id, ids.astype(str).tolist()


def write_segment_csv(path: str, topk: SegmentTopK) -> None:
    """`Class,Segments` CSV: one row per class of `topk`, segment ids space-separated best first."""
    with atomic_output(path, "wb") as handle:
        handle.write(f"{SEGMENT_CSV_HEADER}\n".encode())
        for class_id, ids in topk._ranked_arrays():
            handle.write(b"%d,%s\n" % (class_id, b" ".join(ids.tolist())))


class VideoTopKWriter:
    """Context manager writing `VideoId,LabelConfidencePairs` rows batch by batch.

    Each row holds the video's top_k `label score` pairs, best first (equal
    scores: lower label first), scores with 6 decimals. The rows go to a
    temporary file renamed to `path` on a clean exit; an exception leaves no file.
    """

    def __init__(self, path: str, top_k: int = 20):
        self.path = path
        self.top_k = top_k
        self._context = None
        self._handle = None

    def __enter__(self) -> "VideoTopKWriter":
        self._context = atomic_output(self.path, "wb")
        self._handle = self._context.__enter__()
        self._handle.write(f"{VIDEO_CSV_HEADER}\n".encode())
        return self

    def __exit__(self, *exc_info) -> bool:
        return bool(self._context.__exit__(*exc_info))

    def write(self, video_ids, predictions) -> None:
        """Append one batch: video ids (B,) str/bytes, predictions (B, num_classes)."""
        ids = _ascii_ids(video_ids).reshape(-1)
        predictions = np.asarray(predictions)
        if predictions.ndim != 2 or predictions.shape[0] != ids.size:
            raise ValueError(f"predictions {predictions.shape} must be (len(video_ids)={ids.size}, classes)")
        top_k = min(self.top_k, predictions.shape[1])
        rows, labels = np.nonzero(top_k_mask(predictions, top_k))
        labels = labels.reshape(-1, top_k)
        scores = predictions[rows, labels.reshape(-1)].reshape(-1, top_k)
        order = np.argsort(-scores, axis=1, kind="stable")       # best first, lower label on ties
        fields = np.empty((ids.size, 1 + 2 * top_k), dtype=object)
        fields[:, 0] = ids
        fields[:, 1::2] = np.take_along_axis(labels, order, axis=1)
        fields[:, 2::2] = np.take_along_axis(scores, order, axis=1).astype(np.float64)
        row_format = b"%s," + b" ".join([b"%d %.6f"] * top_k) + b"\n"
        self._handle.write(row_format * ids.size % tuple(fields.ravel().tolist()))  # one format call


def write_video_csv(path: str, batches: Iterable[tuple[object, np.ndarray]], top_k: int = 20) -> None:
    """Write a video-level submission from (video_ids, predictions) batches."""
    with VideoTopKWriter(path, top_k) as writer:
        for video_ids, predictions in batches:
            writer.write(video_ids, predictions)
