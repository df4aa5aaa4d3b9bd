"""yt8m.submission: streaming top-K against a full sort, exact CSV text, atomic writes."""
import os

import numpy as np
import pandas as pd
import pytest

from yt8m.metrics import rated_segment_map, read_segment_submission, segment_map_at_k
from yt8m.submission import SegmentTopK, VideoTopKWriter, write_segment_csv, write_video_csv


def _full_sort_top_k(ids, predictions, class_ids, k):
    """Reference: per class, a stable sort of all segments by score desc (ties: first given)."""
    return [ids[np.argsort(-predictions[:, c], kind="stable")[:k]].tolist() for c in class_ids]


def _random_batches(rng, num_updates, num_classes, max_batch, levels=None):
    for update in range(num_updates):
        size = int(rng.integers(0, max_batch + 1))
        ids = np.array([f"v{update}x{row}:{5 * row}" for row in range(size)])
        scores = rng.random((size, num_classes)).astype(np.float32)
        if levels:  # few distinct values: many ties
            scores = np.round(scores * levels) / levels
        yield ids, scores


@pytest.mark.parametrize("k, levels, merge_slots", [(7, None, 1 << 22), (7, 4, 20), (50, 10, 1), (1000, None, 64)])
def test_segment_top_k_equals_a_full_sort(k, levels, merge_slots):
    rng = np.random.default_rng(k)
    class_ids = np.array([9, 0, 4, 11])
    topk = SegmentTopK(class_ids, k=k, merge_slots=merge_slots)   # small: merges one class at a time
    all_ids, all_scores = [], []
    for ids, scores in _random_batches(rng, 120, num_classes=12, max_batch=9, levels=levels):
        topk.update(ids.astype(np.bytes_) if len(all_ids) % 2 else ids, scores)  # str and bytes ids
        all_ids.append(ids)
        all_scores.append(scores)
    expected = _full_sort_top_k(np.concatenate(all_ids), np.concatenate(all_scores), class_ids, k)
    assert [class_id for class_id, _ in topk.ranked()] == class_ids.tolist()
    assert [ids for _, ids in topk.ranked()] == expected


def _pending_entries(topk):
    return sum(part[0].size for part in topk._pending)


@pytest.mark.parametrize("ascending", [False, True])
def test_segment_top_k_memory_stays_bounded(ascending):
    # ascending scores make every new segment beat the kept ones: the worst case for pruning
    num_classes, k = 3, 10
    topk = SegmentTopK(range(num_classes), k=k)
    rng = np.random.default_rng(0)
    for update in range(400):
        ids = np.array([f"v{update}:{5 * row}" for row in range(8)])
        scores = (update * 8 + np.arange(8)[:, None] + np.zeros((1, num_classes))) if ascending \
            else rng.random((8, num_classes))
        topk.update(ids, scores)
        assert topk._scores.shape[1] <= k and topk._keys.shape == topk._scores.shape
        assert _pending_entries(topk) < num_classes * k        # merged as soon as a class has K pending
        assert topk._table_size < 3 * num_classes * k           # ids nobody keeps are dropped
        assert sum(chunk.size for chunk in topk._table) == topk._table_size
    if ascending:  # the best are the last 10 segments, newest first
        assert next(topk.ranked())[1] == [f"v399:{5 * row}" for row in range(7, -1, -1)] + ["v398:35", "v398:30"]


def test_segment_top_k_rejects_bad_input():
    topk = SegmentTopK([0, 5], k=3)
    with pytest.raises(ValueError, match="full label space"):
        topk.update(["a:0"], np.zeros((1, 5)))
    with pytest.raises(ValueError):
        topk.update(["a:0", "b:0"], np.zeros((1, 6)))
    with pytest.raises(ValueError, match="NaN"):
        topk.update(["a:0"], np.full((1, 6), np.nan))


def _hand_topk(k):
    # class 5: v1:0 .4, v1:5 .7, v2:0 .4  -> v1:5, then the tie at .4 in arrival order: v1:0, v2:0
    # class 2: v1:0 .9, v1:5 .1, v2:0 .2  -> v1:0, v2:0, v1:5
    topk = SegmentTopK([5, 2], k=k)
    first = np.zeros((2, 6), dtype=np.float32)
    first[:, 5], first[:, 2] = [0.4, 0.7], [0.9, 0.1]
    topk.update(np.array([b"v1:0", b"v1:5"]), first)
    second = np.zeros((1, 6), dtype=np.float32)
    second[0, 5], second[0, 2] = 0.4, 0.2
    topk.update(["v2:0"], second)
    return topk


def test_write_segment_csv_exact_text(tmp_path):
    path = tmp_path / "out" / "segments.csv"
    write_segment_csv(str(path), _hand_topk(k=2))
    assert path.read_text() == "Class,Segments\n5,v1:5 v1:0\n2,v1:0 v2:0\n"
    write_segment_csv(str(path), _hand_topk(k=5))        # fewer segments than K
    assert path.read_text() == "Class,Segments\n5,v1:5 v1:0 v2:0\n2,v1:0 v2:0 v1:5\n"
    write_segment_csv(str(path), SegmentTopK([5, 2], k=5))
    assert path.read_text() == "Class,Segments\n5,\n2,\n"


def test_segment_csv_round_trip_scores_like_the_rated_segments(tmp_path):
    # Each segment rated for one class; the submission ranks every segment for every class.
    rng = np.random.default_rng(11)
    class_ids = np.array([1, 3, 4])
    ids = np.array([f"v{i // 4}:{5 * (i % 4)}" for i in range(300)])
    predictions = rng.random((300, 5)).astype(np.float32)
    rated_class = rng.choice(class_ids, 300)
    truth = pd.DataFrame({"segment_id": ids, "class_id": rated_class,
                          "score": (rng.random(300) < 0.4).astype(float)})
    topk = SegmentTopK(class_ids, k=300)
    for start in range(0, 300, 17):
        topk.update(ids[start:start + 17], predictions[start:start + 17])
    path = tmp_path / "segments.csv"
    write_segment_csv(str(path), topk)
    submission = read_segment_submission(str(path))
    expected = rated_segment_map(rated_class, predictions[np.arange(300), rated_class], truth["score"])
    assert segment_map_at_k(submission, truth) == pytest.approx(expected)


def _no_files_left(directory):
    return os.listdir(directory) == []


def test_interrupted_segment_csv_leaves_no_file(tmp_path):
    topk = _hand_topk(k=2)
    rows = topk._ranked_arrays

    def first_row_then_fail():
        yield next(rows())
        raise RuntimeError("killed while writing")

    topk._ranked_arrays = first_row_then_fail
    with pytest.raises(RuntimeError):
        write_segment_csv(str(tmp_path / "segments.csv"), topk)
    assert _no_files_left(tmp_path)


def test_video_csv_exact_text_over_batches(tmp_path):
    path = tmp_path / "videos.csv"
    batches = [
        (np.array([b"aa", b"bb"], dtype=object), np.array([[0.1, 0.5, 0.5, 0.2],
                                                            [1e-7, 0.0, 0.3, 0.9]], dtype=np.float32)),
        (["cc"], np.array([[0.25, 0.125, 0.0, 1.0]])),
    ]
    write_video_csv(str(path), batches, top_k=3)
    # aa: tie at .5 -> lower label first; bb: 1e-7 rounds to 0.000000 but beats 0.0
    assert path.read_text() == ("VideoId,LabelConfidencePairs\n"
                                "aa,1 0.500000 2 0.500000 3 0.200000\n"
                                "bb,3 0.900000 2 0.300000 0 0.000000\n"
                                "cc,3 1.000000 0 0.250000 1 0.125000\n")


def test_video_csv_default_is_top_20(tmp_path):
    path = tmp_path / "videos.csv"
    scores = np.arange(30, dtype=np.float32)[None, :] / 100
    write_video_csv(str(path), [(["v"], scores)])
    row = path.read_text().splitlines()[1].split(",")[1].split(" ")
    assert row[0::2] == [str(label) for label in range(29, 9, -1)]
    assert row[1] == "0.290000"


def test_exception_while_writing_videos_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoTopKWriter(str(tmp_path / "videos.csv")) as writer:
            writer.write(["aa"], np.ones((1, 30)))
            raise RuntimeError("the reader failed")
    assert _no_files_left(tmp_path)
