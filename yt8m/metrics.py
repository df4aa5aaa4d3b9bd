"""Evaluation metrics of the official starter (google/youtube-8m), vectorised numpy.

Video level (`VideoMetrics`): GAP, MAP, Hit@1 and PERR exactly as the starter's
`eval_util.EvaluationMetrics`, streamed batch by batch in O(examples x top_k) memory.
Segment level: the 2019 challenge's MAP@K as `segment_eval_inference.py` computes
it, from a submission (`segment_map_at_k`) or from scored rated segments
(`rated_segment_map`).

Ties (the starter leaves them to `np.argpartition` and to a seeded shuffle):
  * choosing a video's top classes (top_k, Hit@1, PERR): equal scores go to the
    lower class index (what `np.argmax` does);
  * ranking for an average precision: equal scores rank negatives first, the
    pessimistic order; it never overestimates (the shuffle's stated purpose) and
    does not depend on the order or batching of the input.
Labels are multi-hot; a label > 0 is a positive.
"""
from __future__ import annotations

import collections
import concurrent.futures
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from yt8m.errors import UserError

SEGMENT_TRUTH_COLUMNS = ("segment_id", "class_id", "score")
SEGMENT_CSV_HEADER = "Class,Segments"
SUBMISSION_CHUNK_BYTES = 64 << 20   # submitted segment ids scored at once (~6M ids)


def top_k_mask(scores: np.ndarray, k, tie_keys: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of each row's k largest scores (k an int or one per row).

    Equal scores go to the lower `tie_keys` entry (default: the lower column),
    so every row gets exactly min(k, columns) entries, deterministically.
    """
    rows, cols = scores.shape
    k = np.broadcast_to(np.minimum(np.asarray(k, dtype=np.int64), cols), (rows,))
    selected = np.zeros(scores.shape, dtype=bool)
    if rows == 0 or k.max() <= 0:
        return selected
    # After one partition at every needed position, column cols-n holds the n-th largest.
    positions = np.unique(cols - k[k > 0])
    partitioned = np.partition(scores, positions, axis=1)
    kth = np.where(k > 0, partitioned[np.arange(rows), np.minimum(cols - k, cols - 1)], np.inf)
    selected = scores > kth[:, None]
    missing = k - selected.sum(axis=1)          # how many equal-to-kth entries each row still takes
    tied_rows, tied_cols = np.nonzero(scores == kth[:, None])
    if tie_keys is not None:
        order = np.lexsort((tie_keys[tied_rows, tied_cols], tied_rows))
        tied_rows, tied_cols = tied_rows[order], tied_cols[order]
    rank_in_row = np.arange(tied_rows.size) - np.searchsorted(tied_rows, tied_rows)
    take = rank_in_row < missing[tied_rows]
    selected[tied_rows[take], tied_cols[take]] = True
    return selected


def _check_batch(predictions, labels, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions)
    positives = np.asarray(labels) > 0
    if predictions.ndim != 2 or predictions.shape != positives.shape or predictions.shape[1] != num_classes:
        raise ValueError(f"predictions {predictions.shape} and labels {positives.shape} must both be "
                         f"(batch, {num_classes})")
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or infinity")
    return predictions, positives


def _ranked_positive_precisions(groups: np.ndarray, scores: np.ndarray, positives: np.ndarray,
                                k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rank within each group by score (desc; equal scores put negatives first), cut at k.

    Returns (group, precision@rank) of every positive entry ranked within k,
    the terms of an average precision to be summed per group.
    """
    order = np.lexsort((positives, -scores, groups))
    return _positive_precisions_in_order(groups[order], positives[order], k)


def _positive_precisions_in_order(groups: np.ndarray, positives: np.ndarray,
                                  k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`_ranked_positive_precisions` of entries already ranked: each group one contiguous run, best first."""
    index = np.arange(groups.size)
    first = np.ones(groups.size, dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    start = np.maximum.accumulate(np.where(first, index, 0))       # first index of each entry's run
    rank = index + 1 - start                                        # 1-based rank in the group
    hits = np.cumsum(positives)
    hits_in_group = hits - (hits[start] - positives[start])         # positives ranked so far, this group
    kept = positives & (rank <= k) if k else positives
    return groups[kept], hits_in_group[kept] / rank[kept]          # precision@i = hits@i / i


def _sum_by_group(groups: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Sum of `values` per group, in the order of `keys` (0 for a key with no entry)."""
    return pd.Series(values, dtype=np.float64).groupby(groups).sum().reindex(keys, fill_value=0.0).to_numpy()


class VideoMetrics:
    """Streaming GAP@top_k, MAP, Hit@1 and PERR of the starter's `eval_util`.

    Per example only its top_k (class, score, label) triplets and a few sums are
    kept; no (examples, classes) matrix of the whole set is ever held.
    """

    def __init__(self, num_classes: int, top_k: int = 20):
        if num_classes <= 0 or top_k <= 0:
            raise ValueError(f"num_classes ({num_classes}) and top_k ({top_k}) must be positive")
        self.num_classes = num_classes
        self.top_k = min(top_k, num_classes)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated (the starter's `clear`)."""
        self.num_examples = 0
        self._hits_at_one = 0.0
        self._perr_sum = 0.0
        self._class_positives = np.zeros(self.num_classes, dtype=np.int64)  # all positives, top_k or not
        self._top_classes: list[np.ndarray] = []
        self._top_scores: list[np.ndarray] = []
        self._top_positives: list[np.ndarray] = []

    def update(self, predictions, labels) -> None:
        """Accumulate one batch: predictions and multi-hot labels, both (batch, num_classes)."""
        predictions, positives = _check_batch(predictions, labels, self.num_classes)
        batch = np.arange(predictions.shape[0])
        # Hit@1: is the best-scored class a positive.
        self._hits_at_one += positives[batch, np.argmax(predictions, axis=1)].sum()
        # PERR: precision in the top n, n = the video's number of positives; only scores > 0
        # count; a video without positives scores 0 but counts (as in the starter).
        num_positives = positives.sum(axis=1)
        in_top_n = top_k_mask(predictions, num_positives)
        hits = (in_top_n & positives & (predictions > 0)).sum(axis=1)
        self._perr_sum += (hits / np.maximum(num_positives, 1)).sum()
        # MAP/GAP keep each video's top_k triplets (the starter's top_k_by_class).
        rows, cols = np.nonzero(top_k_mask(predictions, self.top_k))
        self._top_classes.append(cols.astype(np.int32))
        self._top_scores.append(predictions[rows, cols])
        self._top_positives.append(positives[rows, cols])
        self._class_positives += positives.sum(axis=0)
        self.num_examples += predictions.shape[0]

    def result(self) -> dict:
        """{'gap', 'map', 'hit_at_one', 'perr', 'num_examples'} over everything accumulated.

        gap: AP of all top_k triplets pooled, over all positives of the set.
        map: mean over classes with a positive of the class's AP over its triplets
        (NaN when no class has one).
        """
        if self.num_examples == 0:
            raise ValueError("no examples accumulated; call update() first")
        classes = np.concatenate(self._top_classes)
        scores = np.concatenate(self._top_scores)
        positives = np.concatenate(self._top_positives)
        total_positives = self._class_positives.sum()
        # AP = sum of precision@i over the positive entries / all positives (top_k or not).
        _, pooled = _ranked_positive_precisions(np.zeros_like(classes), scores, positives)
        gap = pooled.sum() / total_positives if total_positives else 0.0
        positive_classes, precisions = _ranked_positive_precisions(classes, scores, positives)
        ap_sum = np.bincount(positive_classes, weights=precisions, minlength=self.num_classes)
        rated = self._class_positives > 0
        mean_ap = (ap_sum[rated] / self._class_positives[rated]).mean() if rated.any() else float("nan")
        return {"gap": float(gap), "map": float(mean_ap),
                "hit_at_one": float(self._hits_at_one / self.num_examples),
                "perr": float(self._perr_sum / self.num_examples),
                "num_examples": int(self.num_examples)}


def _open_binary(path: str):
    """A binary handle for a local path, or through tf.io.gfile for gs:// and the like."""
    if "://" in path:
        import tensorflow as tf  # only for remote file systems; the metrics need no TF
        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")


def read_segment_truth(path: str) -> pd.DataFrame:
    """The official scorer's label cache: no header, `<video_id>:<start>,<class_id>,<score>` lines.

    Returns columns segment_id (categorical str), class_id (int64), score (float64), in file
    order; a pair given twice keeps its last score (the scorer builds a dict). Parsed by
    pyarrow's multi-threaded CSV reader, segment ids dictionary-coded as they are read.
    """
    types = {"segment_id": pa.dictionary(pa.int32(), pa.string()), "class_id": pa.int64(), "score": pa.float64()}
    try:
        with _open_binary(path) as handle:
            table = pa_csv.read_csv(handle, read_options=pa_csv.ReadOptions(column_names=list(SEGMENT_TRUTH_COLUMNS)),
                                    convert_options=pa_csv.ConvertOptions(column_types=types))
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"segment truth {path!r} cannot be read as "
                        f"'<video_id>:<start>,<class_id>,<score>' lines: {exc}") from None
    if any(column.null_count for column in table.columns):
        raise UserError(f"segment truth {path!r} has lines with missing fields")
    segments = table.unify_dictionaries().column("segment_id").combine_chunks()
    codes = segments.indices.to_numpy(zero_copy_only=False)
    classes = table.column("class_id").to_numpy()
    truth = pd.DataFrame({
        "segment_id": pd.Categorical.from_codes(codes, categories=pd.Index(segments.dictionary.to_pandas())),
        "class_id": classes, "score": table.column("score").to_numpy()})
    return truth[_last_of_each_pair(codes, classes)].reset_index(drop=True)


def _last_of_each_pair(codes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Mask of the last row of each (segment code, class) pair, by sorting (not hashing: cache-friendly)."""
    keys = (classes.astype(np.int64) - classes.min(initial=0)) * (int(codes.max(initial=0)) + 1) + codes
    ordered = np.sort(keys)
    if ordered.size < 2 or (ordered[1:] != ordered[:-1]).all():   # the usual case: no pair twice
        return np.ones(keys.size, dtype=bool)
    order = np.argsort(keys, kind="stable")                 # a pair's rows stay in file order
    last = np.ones(keys.size, dtype=bool)
    last[order[:-1]] = keys[order[:-1]] != keys[order[1:]]
    return last


class _TruthByClass:
    """The truth's rated segment ids grouped by class (pyarrow string arrays) and whether each is positive.

    A submitted class's list is matched only against the ids rated for that class: one
    probe per submitted id into a hash table of one class's ratings, small enough to stay
    in cache, and no (segment, class) pair key at all.
    """

    def __init__(self, truth: pd.DataFrame):
        classes = truth["class_id"].to_numpy(dtype=np.int64)
        segments = truth["segment_id"]
        if not isinstance(segments.dtype, pd.CategoricalDtype):
            segments = segments.astype("category")
        codes = segments.cat.codes.to_numpy()
        if not _last_of_each_pair(codes, classes).all():
            raise ValueError("truth rates a (segment_id, class_id) pair twice; read it with read_segment_truth")
        offset = classes - classes.min(initial=0)
        order = np.argsort(offset.astype(np.min_scalar_type(offset.max(initial=0))), kind="stable")  # radix
        categories = pa.array(segments.cat.categories.array).cast(pa.large_string())
        self._segments = categories.take(pa.array(codes[order]))
        self._positive = (truth["score"] > 0).to_numpy()[order]
        self.classes, starts, counts = np.unique(classes[order], return_index=True, return_counts=True)
        self._spans = dict(zip(self.classes.tolist(), zip(starts.tolist(), counts.tolist())))
        self.positives = np.add.reduceat(self._positive, starts) if starts.size else np.zeros(0, np.int64)

    def matched(self, class_id: int, segment_ids: pa.Array) -> np.ndarray:
        """For each submitted id of `class_id`, in order: 1 rated positive, 0 rated negative, -1 unrated."""
        start, count = self._spans.get(class_id, (0, 0))
        found = pc.index_in(segment_ids, value_set=self._segments.slice(start, count))
        rows = found.fill_null(-1).to_numpy(zero_copy_only=False)
        return np.where(rows >= 0, self._positive[start + rows], -1)

    def num_positives(self, class_ids: np.ndarray) -> np.ndarray:
        """Positive ratings of each class (0 for a class without ratings)."""
        where = np.searchsorted(self.classes, class_ids)
        known = (where < self.classes.size) & (self.classes[np.minimum(where, self.classes.size - 1)] == class_ids)
        return np.where(known, self.positives[np.minimum(where, max(self.classes.size - 1, 0))], 0)


def _submission_lines(path: str, k: int | None):
    """(class id, its segment ids as a pyarrow string array) per line of a `Class,Segments` CSV.

    Each list is split on single spaces and cut at k, as the official scorer does
    (`split(" ")[:k]`); up to SUBMISSION_CHUNK_BYTES of lines are split at once.
    """
    seen: set[int] = set()
    classes, texts, size = [], [], 0

    def split():
        offsets = np.cumsum([0] + [len(text) for text in texts], dtype=np.int64)
        joined = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(b"".join(texts)))
        lists = pc.split_pattern(joined, " ", max_splits=k)      # a list's rest past k: one entry, cut below
        starts = lists.offsets.to_numpy()
        values = lists.values
        for i, class_id in enumerate(classes):
            length = int(starts[i + 1] - starts[i])
            yield class_id, values.slice(int(starts[i]), min(length, k) if k else length)

    with _open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or (number == 1 and line == SEGMENT_CSV_HEADER.encode()):
                continue
            class_text, _, segments = line.partition(b",")
            try:
                class_id = int(class_text)
            except ValueError:
                raise UserError(f"{path}:{number}: expected '<class_id>,<segment ids>', "
                                f"got {line[:60].decode(errors='replace')!r}") from None
            if class_id in seen:
                raise UserError(f"{path}:{number}: class {class_id} appears twice; give one row per class")
            seen.add(class_id)
            classes.append(class_id)
            texts.append(segments)
            size += len(segments)
            if size >= SUBMISSION_CHUNK_BYTES:
                yield from split()
                classes, texts, size = [], [], 0
    if classes:
        yield from split()


def read_segment_submission(path: str, *, k: int | None = None,
                            truth: pd.DataFrame | None = None) -> dict[int, np.ndarray]:
    """A `Class,Segments` CSV as {class_id: segment ids best first (object array)}.

    With `k` each list is cut at k; with `truth` only the segments rated for the
    class are kept (what the official scorer does, cutting first), line by line,
    so memory stays O(rated pairs) whatever the submission's size. Scoring the
    result with the same k and truth gives the same MAP@K as the full lists.
    `submission_map_at_k` scores a file without building this dict.
    """
    rated = _TruthByClass(truth) if truth is not None else None
    submission: dict[int, np.ndarray] = {}
    for class_id, segment_ids in _submission_lines(path, k):
        keep = pc.not_equal(segment_ids, "").to_numpy(zero_copy_only=False)
        if rated is not None:
            keep &= rated.matched(class_id, segment_ids) >= 0
        submission[class_id] = segment_ids.to_numpy(zero_copy_only=False)[keep]
    return submission


def _ap_sum(matched: np.ndarray) -> float:
    """Sum of precision@i over the positive entries of one ranked list (1 positive, 0 negative,
    -1 unrated: dropped, not a negative); the AP is this over the class's positive ratings."""
    positive = matched[matched >= 0] == 1
    hits = np.cumsum(positive)[positive]
    return float((hits / (np.flatnonzero(positive) + 1)).sum())   # precision@i = hits@i / i


def _mean_ap(class_ids: np.ndarray, ap_sums: np.ndarray, num_positives: np.ndarray) -> float:
    """Mean over `class_ids` with a positive rating of ap_sum / that class's positive ratings."""
    scored = num_positives > 0
    return float((ap_sums[scored] / num_positives[scored]).mean()) if scored.any() else float("nan")


def _map_of_lists(lists, truth: pd.DataFrame) -> float:
    """MAP@K of (class id, pyarrow array of ids best first, already cut at k) pairs, the classes matched
    on a thread per core (pyarrow's kernels release the GIL), a few lines in flight at a time."""
    rated = _TruthByClass(truth)
    class_ids, ap_sums = [], []
    workers = os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        for class_id, segment_ids in lists:
            class_ids.append(class_id)
            pending.append(pool.submit(lambda c, ids: _ap_sum(rated.matched(c, ids)), class_id, segment_ids))
            if len(pending) > 2 * workers:
                ap_sums.append(pending.popleft().result())
        ap_sums.extend(future.result() for future in pending)
    class_ids = np.array(class_ids, dtype=np.int64)
    return _mean_ap(class_ids, np.array(ap_sums, dtype=np.float64), rated.num_positives(class_ids))


def segment_map_at_k(submission: Mapping[int, Sequence[str]], truth: pd.DataFrame,
                     k: int | None = 100000) -> float:
    """Segment MAP@K of the 2019 challenge (the official `segment_eval_inference.py`).

    submission: {class_id: segment ids best first} (e.g. `read_segment_submission`);
    truth: `read_segment_truth`'s frame. Per submitted class its list is cut at k,
    segments not rated for the class dropped (unrated is not negative), AP = sum
    of precision@i over the positive entries / positive ratings of the class; the
    score is the mean over submitted classes with a positive rating (NaN if none).
    k=None: no cut.
    """
    lists = ((int(c), pa.array(np.asarray(ids, dtype=object)[:k], type=pa.large_string()))
             for c, ids in submission.items())
    return _map_of_lists(lists, truth)


def submission_map_at_k(path: str, truth: pd.DataFrame, k: int | None = 100000) -> float:
    """`segment_map_at_k` of a `Class,Segments` CSV, scored line by line as it is read (no dict of
    id lists, no Python string per segment): the fast end-to-end scorer."""
    return _map_of_lists(_submission_lines(path, k), truth)


def rated_segment_map(class_ids, scores, labels, k: int | None = 100000) -> float:
    """Segment MAP@K straight from rated segments: one score per rated (segment, class) pair.

    Each class's rated segments are ranked by score (desc; equal scores rank
    negatives first), cut at k, and scored as `segment_map_at_k`; with distinct
    scores it equals segment_map_at_k of the submission ranking those segments.
    """
    class_ids = np.asarray(class_ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(labels) > 0
    if not class_ids.shape == scores.shape == positives.shape or class_ids.ndim != 1:
        raise ValueError("class_ids, scores and labels must be 1-D arrays of one length")
    submitted = np.unique(class_ids)
    groups, precisions = _ranked_positive_precisions(class_ids, scores, positives, k)
    return _mean_ap(submitted, _sum_by_group(groups, precisions, submitted),
                    _sum_by_group(class_ids, positives, submitted))
