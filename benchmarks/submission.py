"""Segment submission and segment MAP@K: ours against the starter's way, same inputs.

    python benchmarks/submission.py [--classes=200] [--k=1000]

Top-K + CSV, at three test-set sizes (segments), time and peak memory (tracemalloc):
  ours       yt8m.submission.SegmentTopK fed batch by batch, then write_segment_csv
  starter    inference.py's post-processing: one Python heap of (score, segment) per
             class, heappush / heappushpop for every (segment, class), then sort and
             write (without its temp-file round trip, which only adds to its time)
Scores are distinct, so both CSVs must be byte-identical (checked).
MAP@K scorer, at three submission sizes: yt8m.metrics.segment_map_at_k against a
per-class Python loop over a {(segment, class): score} dict, as segment_eval_inference.py;
both with the truth already read (outside the timing), best of 3.
"""
from __future__ import annotations

import argparse
import heapq
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from yt8m.metrics import segment_map_at_k  # noqa: E402
from yt8m.submission import SegmentTopK, write_segment_csv  # noqa: E402

BATCH = 1000


def make_batches(num_segments, num_classes, seed=0):
    """(ids, predictions) batches; every score distinct (k / 2^24 is exact in float32)."""
    rng = np.random.default_rng(seed)
    scores = (rng.permutation(num_segments * num_classes) / 2**24).astype(np.float32)
    scores = scores.reshape(num_segments, num_classes)
    ids = np.array([f"{i // 60:05x}:{5 * (i % 60)}" for i in range(num_segments)])
    return [(ids[s:s + BATCH], scores[s:s + BATCH]) for s in range(0, num_segments, BATCH)]


def ours(batches, num_classes, k, path):
    topk = SegmentTopK(np.arange(num_classes), k=k)
    for ids, predictions in batches:
        topk.update(ids, predictions)
    write_segment_csv(path, topk)


def starter(batches, num_classes, k, path):
    heaps = {c: [] for c in range(num_classes)}
    for ids, predictions in batches:
        for segment_id, row in zip(ids.tolist(), predictions.tolist()):
            for c, score in enumerate(row):
                heap = heaps[c]
                if len(heap) >= k:
                    heapq.heappushpop(heap, (score, segment_id))
                else:
                    heapq.heappush(heap, (score, segment_id))
    with open(path, "w") as handle:
        handle.write("Class,Segments\n")
        for c, heap in heaps.items():
            heap.sort(key=lambda entry: entry[0], reverse=True)
            handle.write("%d,%s\n" % (c, " ".join(entry[1] for entry in heap)))


def measure(function, *args):
    """(seconds, peak MiB): time without tracing, then a second run under tracemalloc."""
    start = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    function(*args)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def bench_top_k(num_classes, k, sizes):
    print(f"Top-K + CSV: {num_classes} classes, K={k}, batches of {BATCH} segments")
    print(f"{'segments':>9} {'ours s':>8} {'starter s':>10} {'speed-up':>9} "
          f"{'ours MiB':>9} {'starter MiB':>12} {'memory ratio':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for num_segments in sizes:
            batches = make_batches(num_segments, num_classes)
            mine, theirs = os.path.join(tmp, "ours.csv"), os.path.join(tmp, "starter.csv")
            our_s, our_mib, _ = measure(ours, batches, num_classes, k, mine)
            their_s, their_mib, _ = measure(starter, batches, num_classes, k, theirs)
            with open(mine) as a, open(theirs) as b:
                assert a.read() == b.read(), "the two CSVs differ"
            print(f"{num_segments:>9} {our_s:>8.2f} {their_s:>10.2f} {their_s / our_s:>8.1f}x "
                  f"{our_mib:>9.1f} {their_mib:>12.1f} {their_mib / our_mib:>12.1f}x")


def loop_ratings(truth):
    """segment_eval_inference.py's label cache: {(segment, class): score}, positives per class."""
    ratings = {(s, c): v for s, c, v in truth.itertuples(index=False)}
    positives = {}
    for (_, c), v in ratings.items():
        if v > 0:
            positives[c] = positives.get(c, 0) + 1
    return ratings, positives


def loop_map_at_k(submission, prepared, k):
    """segment_eval_inference.py's scoring: dict look-ups and a Python loop per class."""
    ratings, positives = prepared
    aps = []
    for c, ids in submission.items():
        if not positives.get(c):
            continue
        rated = [ratings[(s, c)] for s in list(ids)[:k] if (s, c) in ratings]
        hits, total = 0, 0.0
        for rank, value in enumerate(rated, start=1):
            if value > 0:
                hits += 1
                total += hits / rank
        aps.append(total / positives[c])
    return float(np.mean(aps))


def best_time(function, *args, repeats=3):
    """(best seconds of `repeats` runs, result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_scorer(num_classes, sizes, k=100000):
    print(f"\nSegment MAP@K scorer: {num_classes} classes, a third of the submitted pairs rated, best of 3.\n"
          f"  per call: the truth as a plain frame (ours codes it, the loop builds its dict, each call);\n"
          f"  truth read once: ours gets read_segment_truth's categorical frame, the loop its dict ready")
    print(f"{'entries':>9} {'ours s':>8} {'loop s':>8} {'per call':>9} {'ours s':>8} {'loop s':>8} "
          f"{'read once':>9} {'MAP@K':>10}")
    rng = np.random.default_rng(1)
    for per_class in sizes:
        pool = np.array([f"{i // 60:05x}:{5 * (i % 60)}" for i in range(3 * per_class)], dtype=object)
        submission = {c: rng.choice(pool, per_class, replace=False) for c in range(num_classes)}
        rated = [(ids[rng.random(per_class) < 1 / 3], c) for c, ids in submission.items()]
        truth = pd.DataFrame({"segment_id": np.concatenate([ids for ids, _ in rated]),
                              "class_id": np.concatenate([np.full(ids.size, c) for ids, c in rated]),
                              "score": 0.0})
        truth["score"] = (rng.random(len(truth)) < 0.3).astype(float)
        row = [per_class * num_classes]
        for ours_truth, loop_truth, loop in ((truth, truth, lambda sub, t, k: loop_map_at_k(sub, loop_ratings(t), k)),
                                             (truth.astype({"segment_id": "category"}), loop_ratings(truth),
                                              loop_map_at_k)):
            our_s, our_map = best_time(segment_map_at_k, submission, ours_truth, k)
            loop_s, loop_map = best_time(loop, submission, loop_truth, k)
            assert abs(our_map - loop_map) < 1e-9, (our_map, loop_map)
            row += [our_s, loop_s, loop_s / our_s]
        print(f"{row[0]:>9} {row[1]:>8.3f} {row[2]:>8.3f} {row[3]:>8.1f}x {row[4]:>8.3f} {row[5]:>8.3f} "
              f"{row[6]:>8.1f}x {our_map:>10.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    bench_top_k(args.classes, args.k, sizes=(5000, 20000, 50000))
    bench_scorer(args.classes, sizes=(500, 2000, 5000))


if __name__ == "__main__":
    main()
