"""yt8m.metrics: values computed by hand from the starter's definitions."""
import numpy as np
import pandas as pd
import pytest

from yt8m import metrics
from yt8m.errors import UserError
from yt8m.metrics import (VideoMetrics, rated_segment_map, read_segment_submission, read_segment_truth,
                          segment_map_at_k, submission_map_at_k, top_k_mask)

# 4 videos x 4 classes.
PREDICTIONS = np.array([
    [0.9, 0.1, 0.6, 0.3],
    [0.2, 0.8, 0.4, 0.0],
    [0.5, 0.7, 0.3, 0.05],
    [0.0, 0.0, 0.0, 0.0],
], dtype=np.float32)
LABELS = np.array([
    [1, 0, 0, 1],
    [0, 1, 1, 0],
    [0, 0, 0, 0],   # no labels: PERR 0, still counted
    [1, 0, 0, 0],   # all scores 0: Hit@1 picks class 0 (a hit), PERR ignores scores <= 0
], dtype=np.float32)
# Hit@1: argmax 0 (+), 1 (+), 1 (-), 0 (+, tie -> lower class)             -> 3/4
# PERR: v0 n=2 top {0,2}: 1/2; v1 n=2 top {1,2}: 2/2; v2 n=0: 0;
#       v3 n=1 top {0}: positive but score 0 does not count: 0           -> 1.5/4 = 0.375
# top_k=2 triplets (class, score, label):
#   v0 (0,.9,+) (2,.6,-)   v1 (1,.8,+) (2,.4,+)   v2 (1,.7,-) (0,.5,-)   v3 (0,0,+) (1,0,-)
# positives per class (all of them, top_k or not): c0 2, c1 1, c2 1, c3 1; total 5
# GAP: .9+ .8+ .7- .6- .5- .4+ 0- 0+ (ties: negatives first)
#      (1/1 + 2/2 + 3/6 + 4/8) / 5 = 3/5
# MAP: c0 .9+ .5- 0+ -> (1/1 + 2/3)/2 = 5/6; c1 .8+ .7- 0- -> 1; c2 .6- .4+ -> 1/2;
#      c3 no triplet -> 0;  (5/6 + 1 + 1/2 + 0)/4 = 7/12
EXPECTED = {"hit_at_one": 3 / 4, "perr": 0.375, "gap": 3 / 5, "map": 7 / 12, "num_examples": 4}


def test_video_metrics_by_hand():
    metrics = VideoMetrics(num_classes=4, top_k=2)
    metrics.update(PREDICTIONS, LABELS)
    assert metrics.result() == pytest.approx(EXPECTED)


def test_video_metrics_streaming_and_order_do_not_matter():
    metrics = VideoMetrics(num_classes=4, top_k=2)
    for rows in ([3], [1, 0], [2]):
        metrics.update(PREDICTIONS[rows], LABELS[rows])
    assert metrics.result() == pytest.approx(EXPECTED)


def test_map_skips_classes_without_positives():
    # One video: top-2 triplets c0 (.9,+), c1 (.8,-). c1 and c2 have no positive: not averaged.
    # MAP = AP(c0) = 1 (it would be 1/3 if they counted); GAP = (1/1)/1 = 1.
    metrics = VideoMetrics(num_classes=3, top_k=2)
    metrics.update(np.array([[0.9, 0.8, 0.1]]), np.array([[1, 0, 0]]))
    result = metrics.result()
    assert result["map"] == pytest.approx(1.0)
    assert result["gap"] == pytest.approx(1.0)


def test_positives_outside_top_k_lower_the_aps():
    # top_k=1: triplet c0 (.9,+) only; c1's positive (.2) is not kept but is counted.
    # GAP = (1/1) / 2 = 1/2;  MAP = (AP c0 = 1, AP c1 = 0) / 2 = 1/2
    metrics = VideoMetrics(num_classes=3, top_k=1)
    metrics.update(np.array([[0.9, 0.2, 0.5]]), np.array([[1, 1, 0]]))
    assert metrics.result()["gap"] == pytest.approx(0.5)
    assert metrics.result()["map"] == pytest.approx(0.5)


def _reference_aps(predictions, labels, top_k):
    """GAP and MAP the slow way: per video, per class, Python lists (scores distinct)."""
    pooled, per_class = [], {}
    for scores, truth in zip(predictions, labels):
        for c in sorted(range(len(scores)), key=lambda c: -scores[c])[:top_k]:
            pooled.append((scores[c], truth[c]))
            per_class.setdefault(c, []).append((scores[c], truth[c]))

    def ap(entries, num_positives):
        hits, total = 0, 0.0
        for i, (_, positive) in enumerate(sorted(entries, key=lambda e: -e[0]), start=1):
            if positive:
                hits += 1
                total += hits / i
        return total / num_positives

    positives = labels.sum(axis=0)
    gap = ap(pooled, positives.sum())
    aps = [ap(per_class.get(c, []), positives[c]) for c in range(labels.shape[1]) if positives[c] > 0]
    return gap, float(np.mean(aps))


def test_video_metrics_match_a_plain_loop_on_random_data():
    rng = np.random.default_rng(7)
    predictions = rng.random((300, 25))
    labels = (rng.random((300, 25)) < 0.1).astype(np.float32)
    metrics = VideoMetrics(num_classes=25, top_k=5)
    for start in range(0, 300, 64):
        metrics.update(predictions[start:start + 64], labels[start:start + 64])
    gap, mean_ap = _reference_aps(predictions, labels, top_k=5)
    assert metrics.result()["gap"] == pytest.approx(gap)
    assert metrics.result()["map"] == pytest.approx(mean_ap)


def test_video_metrics_rejects_bad_input():
    metrics = VideoMetrics(num_classes=4)
    with pytest.raises(ValueError):
        metrics.result()
    with pytest.raises(ValueError):
        metrics.update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        metrics.update(np.full((1, 4), np.nan), np.zeros((1, 4)))


def test_top_k_mask_ties_and_per_row_k():
    scores = np.array([[1.0, 3.0, 3.0, 2.0],
                       [5.0, 5.0, 5.0, 5.0]])
    # row 0: k=2 -> the two 3s; row 1: k=3 -> all tied, lower columns 0, 1, 2
    assert top_k_mask(scores, np.array([2, 3])).tolist() == [[False, True, True, False],
                                                             [True, True, True, False]]
    # k=1 with tie keys: the tied 3s go to the lower key (column 2, key 4 < 9); row 1 to column 3
    keys = np.array([[0, 9, 4, 0], [3, 2, 1, 0]])
    assert top_k_mask(scores, 1, tie_keys=keys).tolist() == [[False, False, True, False],
                                                             [False, False, False, True]]
    assert not top_k_mask(scores, np.array([0, 0])).any()


# Segment truth: (segment, class, score).
TRUTH = pd.DataFrame({
    "segment_id": ["a:0", "b:0", "c:0", "d:0", "a:0", "b:0", "e:0"],
    "class_id":   [1,     1,     1,     1,     2,     2,     3],
    "score":      [1.0,   0.0,   1.0,   1.0,   0.0,   1.0,   0.0],
})
SUBMISSION = {
    1: ["a:0", "x:0", "b:0", "c:0"],   # x:0 is not rated for class 1: dropped, not a negative
    2: ["a:0", "b:0"],
    3: ["e:0"],                        # no positive rating: not averaged
    4: ["a:0"],                        # nothing rated: not averaged
}


def test_segment_map_by_hand():
    # class 1: a+ b- c+ -> (1/1 + 2/3) / 3 positives (a, c, d) = 5/9
    # class 2: a- b+    -> (1/2) / 1 = 1/2
    # MAP = (5/9 + 1/2) / 2 = 19/36
    assert segment_map_at_k(SUBMISSION, TRUTH, k=None) == pytest.approx(19 / 36)
    assert segment_map_at_k(SUBMISSION, TRUTH) == pytest.approx(19 / 36)


def test_segment_map_cuts_before_dropping_unrated():
    # k=3: class 1 keeps [a, x, b] -> a+ b- -> (1/1)/3 = 1/3 (dropping first would keep c: 5/9)
    # class 2 unchanged 1/2;  MAP = (1/3 + 1/2)/2 = 5/12
    assert segment_map_at_k(SUBMISSION, TRUTH, k=3) == pytest.approx(5 / 12)


def test_segment_map_counts_a_positive_class_with_an_empty_list():
    truth = pd.concat([TRUTH, pd.DataFrame({"segment_id": ["f:5"], "class_id": [5], "score": [1.0]})])
    # (5/9 + 1/2 + 0) / 3 = 19/54
    assert segment_map_at_k({**SUBMISSION, 5: []}, truth, k=None) == pytest.approx(19 / 54)
    assert np.isnan(segment_map_at_k({3: ["e:0"]}, TRUTH))


def test_rated_segment_map_by_hand():
    class_ids = [1, 1, 1, 2, 2]
    scores = [0.2, 0.9, 0.5, 0.3, 0.3]
    labels = [1, 0, 1, 1, 0]
    # class 1: .9- .5+ .2+ -> (1/2 + 2/3)/2 = 7/12;  class 2: tie at .3, negative first -> (1/2)/1
    # MAP = (7/12 + 1/2)/2 = 13/24
    assert rated_segment_map(class_ids, scores, labels) == pytest.approx(13 / 24)
    # k=2: class 1: .9- .5+ -> (1/2)/2 = 1/4;  MAP = (1/4 + 1/2)/2 = 3/8
    assert rated_segment_map(class_ids, scores, labels, k=2) == pytest.approx(3 / 8)


def test_rated_segment_map_equals_segment_map_at_k_of_the_ranked_submission():
    rng = np.random.default_rng(3)
    rated = pd.DataFrame({"segment_id": [f"v{i // 3}:{5 * (i % 3)}" for i in range(400)],
                          "class_id": rng.integers(0, 6, 400),
                          "score": (rng.random(400) < 0.3).astype(float)})
    predictions = rng.permutation(400) / 400.0          # distinct scores
    submission = {c: rated["segment_id"].to_numpy()[idx[np.argsort(-predictions[idx])]]
                  for c, idx in rated.groupby("class_id").indices.items()}
    for k in (None, 10, 40):
        expected = segment_map_at_k(submission, rated, k=k)
        assert rated_segment_map(rated["class_id"], predictions, rated["score"], k=k) == pytest.approx(expected)


def test_read_segment_truth_and_submission(tmp_path):
    truth_path = tmp_path / "truth.csv"
    truth_path.write_text("a:0,1,1.0\nb:0,1,0.0\nb:0,2,1\nb:0,1,1.0\n")   # b:0/1 given twice: last wins
    truth = read_segment_truth(str(truth_path))
    assert list(truth.columns) == ["segment_id", "class_id", "score"]
    assert truth.to_dict("list") == {"segment_id": ["a:0", "b:0", "b:0"], "class_id": [1, 2, 1],
                                     "score": [1.0, 1.0, 1.0]}
    submission_path = tmp_path / "submission.csv"
    submission_path.write_text("Class,Segments\n1,x:0 b:0 a:0\n2,b:0\n7,\n")
    submission = read_segment_submission(str(submission_path))
    assert {c: list(ids) for c, ids in submission.items()} == {1: ["x:0", "b:0", "a:0"], 2: ["b:0"], 7: []}
    filtered = read_segment_submission(str(submission_path), k=2, truth=truth)
    assert {c: list(ids) for c, ids in filtered.items()} == {1: ["b:0"], 2: ["b:0"], 7: []}
    # class 1 at k=2: [x, b] -> b+ at rank 1 -> (1/1)/2 positives = 1/2; class 2: 1;  MAP 3/4
    assert segment_map_at_k(submission, truth, k=2) == pytest.approx(3 / 4)
    assert segment_map_at_k(filtered, truth, k=2) == pytest.approx(3 / 4)


def test_bad_segment_files_raise_user_error(tmp_path):
    bad_truth = tmp_path / "truth.csv"
    bad_truth.write_text("a:0,one,1\n")
    with pytest.raises(UserError, match="truth.csv"):
        read_segment_truth(str(bad_truth))
    with pytest.raises(UserError, match="missing"):
        read_segment_truth(str(tmp_path / "missing.csv"))
    bad_submission = tmp_path / "submission.csv"
    bad_submission.write_text("Class,Segments\n1,a:0\n1,b:0\n")
    with pytest.raises(UserError, match="twice"):
        read_segment_submission(str(bad_submission))


def test_submission_map_at_k_scores_the_file_as_the_official_scorer(tmp_path):
    truth_path = tmp_path / "truth.csv"
    truth_path.write_text("a:0,1,1.0\nb:0,1,0.0\nc:0,1,1.0\nd:0,1,1.0\na:0,2,0.0\nb:0,2,1.0\ne:0,3,0.0\n")
    truth = read_segment_truth(str(truth_path))
    path = tmp_path / "submission.csv"
    # No header (the official reader has none); class 4 rates nothing; class 1's double space is an
    # empty id that counts towards k, as the official split(" ") does.
    path.write_text("1,a:0 x:0  b:0 c:0\n2,a:0 b:0\n3,e:0\n4,a:0\n")
    # class 1 (k=None): a+ b- c+ -> (1/1 + 2/3)/3 = 5/9; class 2: (1/2)/1; MAP 19/36 (as test_segment_map_by_hand)
    assert submission_map_at_k(str(path), truth, k=None) == pytest.approx(19 / 36)
    # k=3: class 1 keeps [a, x, ''] -> (1/1)/3; MAP (1/3 + 1/2)/2 = 5/12
    assert submission_map_at_k(str(path), truth, k=3) == pytest.approx(5 / 12)
    # A segment submitted twice is looked up twice (the official scorer's list comprehension does).
    path.write_text("Class,Segments\n2,b:0 b:0\n")
    assert submission_map_at_k(str(path), truth) == pytest.approx((1 / 1 + 2 / 2) / 1)


def test_submission_map_at_k_reads_in_chunks(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    pool = np.array([f"v{i}:{5 * (i % 3)}" for i in range(300)], dtype=object)
    truth = pd.DataFrame({"segment_id": pool[rng.integers(0, 300, 400)], "class_id": rng.integers(0, 8, 400),
                          "score": (rng.random(400) < 0.4).astype(float)}).drop_duplicates(["segment_id", "class_id"])
    submission = {c: rng.permutation(pool)[:120] for c in range(8)}
    path = tmp_path / "submission.csv"
    path.write_text("Class,Segments\n" + "".join(f"{c},{' '.join(ids)}\n" for c, ids in submission.items()))
    monkeypatch.setattr(metrics, "SUBMISSION_CHUNK_BYTES", 700)      # a few lines per chunk
    for k in (None, 50):
        expected = segment_map_at_k(submission, truth, k=k)
        assert 0 < expected < 1
        assert submission_map_at_k(str(path), truth, k=k) == pytest.approx(expected)
        assert segment_map_at_k(read_segment_submission(str(path), k=k, truth=truth), truth, k=k) == \
            pytest.approx(expected)
