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

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from yt8m.errors import UserError

SEGMENT_TRUTH_COLUMNS = ("segment_id", "class_id", "score")
SEGMENT_CSV_HEADER = "Class,Segments"


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


def _open_text(path: str):
    """A text handle for a local path, or through tf.io.gfile for gs:// and the like."""
    if "://" in path:
        import tensorflow as tf  # only for remote file systems; the metrics need no TF
        return tf.io.gfile.GFile(path, "r")
    return open(path, encoding="utf-8")


def read_segment_truth(path: str) -> pd.DataFrame:
    """The official scorer's label cache: no header, `<video_id>:<start>,<class_id>,<score>` lines.

    Returns columns segment_id (categorical str), class_id (int64), score (float64);
    a pair given twice keeps its last score (the scorer builds a dict).
    """
    try:
        with _open_text(path) as handle:
            truth = pd.read_csv(handle, header=None, names=list(SEGMENT_TRUTH_COLUMNS),
                                dtype={"segment_id": str, "class_id": np.int64, "score": np.float64})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"segment truth {path!r} cannot be read as "
                        f"'<video_id>:<start>,<class_id>,<score>' lines: {exc}") from None
    if truth.isna().any().any():
        raise UserError(f"segment truth {path!r} has lines with missing fields")
    truth = truth.drop_duplicates(["segment_id", "class_id"], keep="last").reset_index(drop=True)
    return truth.astype({"segment_id": "category"})  # the scorer matches by these integer codes


def _rated_segments_by_class(truth: pd.DataFrame) -> dict:
    return {c: pd.Index(ids) for c, ids in truth.groupby("class_id")["segment_id"]}


def read_segment_submission(path: str, *, k: int | None = None,
                            truth: pd.DataFrame | None = None) -> dict[int, np.ndarray]:
    """A `Class,Segments` CSV as {class_id: segment ids best first (object array)}.

    With `k` each list is cut at k; with `truth` only the segments rated for the
    class are kept, line by line (what the official scorer does, cutting first),
    so memory stays O(rated pairs) whatever the submission's size. Scoring the
    result with the same k and truth gives the same MAP@K as the full lists.
    """
    rated = _rated_segments_by_class(truth) if truth is not None else None
    submission: dict[int, np.ndarray] = {}
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or (number == 1 and line == SEGMENT_CSV_HEADER):
                continue
            class_text, _, segments = line.partition(",")
            try:
                class_id = int(class_text)
            except ValueError:
                raise UserError(f"{path}:{number}: expected '<class_id>,<segment ids>', "
                                f"got {line[:60]!r}") from None
            if class_id in submission:
                raise UserError(f"{path}:{number}: class {class_id} appears twice; give one row per class")
            ids = np.array(segments.split()[:k], dtype=object)
            if rated is not None:
                ids = ids[pd.Index(ids).isin(rated.get(class_id, pd.Index([])))]
            submission[class_id] = ids
    return submission


def _mean_ap(class_ids: np.ndarray, ap_sums: np.ndarray, truth_classes: np.ndarray,
             truth_positives: np.ndarray) -> float:
    """Mean over `class_ids` with a positive rating of ap_sum / that class's positive ratings."""
    num_positives = _sum_by_group(truth_classes, truth_positives, class_ids)
    scored = num_positives > 0
    return float((ap_sums[scored] / num_positives[scored]).mean()) if scored.any() else float("nan")


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
    class_ids = np.fromiter(submission.keys(), dtype=np.int64, count=len(submission))
    lists = [np.asarray(ids, dtype=object)[:k] for ids in submission.values()]
    lengths = np.array([ids.size for ids in lists], dtype=np.int64)
    segment_ids = np.concatenate(lists) if lists else np.array([], dtype=object)
    entry_classes = np.repeat(class_ids, lengths)
    rows = _truth_rows(truth, segment_ids, entry_classes)
    rated = rows >= 0
    # The submitted order is the ranking; each class's entries are one run, best first.
    groups, precisions = _positive_precisions_in_order(
        entry_classes[rated], truth["score"].to_numpy()[rows[rated]] > 0)
    ap_sums = _sum_by_group(groups, precisions, class_ids)
    return _mean_ap(class_ids, ap_sums, truth["class_id"].to_numpy(), (truth["score"] > 0).to_numpy())


def _truth_rows(truth: pd.DataFrame, segment_ids: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """The row of `truth` rating each (segment_ids[i], class_ids[i]) pair, -1 for an unrated pair.

    Each segment id string is hashed once, into the truth's integer segment codes; the
    pairs are then looked up as int64 keys code * classes + class in a hash index.
    """
    if truth.empty:
        return np.full(len(segment_ids), -1, dtype=np.int64)
    segments = truth["segment_id"]
    if isinstance(segments.dtype, pd.CategoricalDtype):          # read_segment_truth's: coded once
        codes, unique_segments = segments.cat.codes.to_numpy(), segments.cat.categories
    else:
        codes, unique_segments = pd.factorize(segments)
    truth_classes = truth["class_id"].to_numpy(dtype=np.int64)
    span = int(truth_classes.max()) + 1
    truth_keys = pd.Index(codes.astype(np.int64) * span + truth_classes)
    if not truth_keys.is_unique:
        raise ValueError("truth rates a (segment_id, class_id) pair twice; read it with read_segment_truth")
    entry_codes = pd.Index(unique_segments).get_indexer(segment_ids)
    known = (entry_codes >= 0) & (class_ids >= 0) & (class_ids < span)
    entry_keys = np.where(known, entry_codes.astype(np.int64) * span + class_ids, -1)
    return truth_keys.get_indexer(entry_keys)


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
    return _mean_ap(submitted, _sum_by_group(groups, precisions, submitted), class_ids, positives)
