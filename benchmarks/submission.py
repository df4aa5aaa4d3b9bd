"""Segment submission and segment MAP@K: ours against the starter's and the official scorer, same inputs.

    python benchmarks/submission.py [--classes=200] [--k=1000] [--official_source=DIR]
    python benchmarks/submission.py --scale=real      # 1000 classes, K=100,000, 3M segments (ours only)

Top-K + CSV, at three test-set sizes (segments), time and peak memory (tracemalloc):
  ours       yt8m.submission.SegmentTopK fed batch by batch, then write_segment_csv
  starter    inference.py's post-processing: one Python heap of (score, segment) per
             class, heappush / heappushpop for every (segment, class), then sort and
             write (without its temp-file round trip, which only adds to its time)
Scores are distinct, so both CSVs must be byte-identical (checked).
--scale=real: the challenge's size, ours only (the heaps would take hours): time and
peak resident memory of the top-K and its CSV, scores drawn batch by batch.

MAP@K scorer end to end (read the label cache, read the `Class,Segments` submission,
score): yt8m.metrics (read_segment_truth + submission_map_at_k) against the official
google/youtube-8m segment_eval_inference.py run in this process (its main(), flags
set). Its three files are fetched at run time into a temporary folder, never kept:
from --official_source (a git directory or checkout of google/youtube-8m) or else
from GitHub at OFFICIAL_COMMIT; without either it prints why and times ours alone.
Equal values are checked.
"""
from __future__ import annotations

import argparse
import heapq
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
import urllib.request

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from yt8m.metrics import read_segment_truth, submission_map_at_k  # noqa: E402
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


OFFICIAL_REPO = "google/youtube-8m"
OFFICIAL_COMMIT = "e6f6bf682d20bb21904ea9c081c15e070809d914"
OFFICIAL_FILES = ("segment_eval_inference.py", "mean_average_precision_calculator.py",
                  "average_precision_calculator.py")


def fetch_official(source: str, into: str) -> str:
    """The official scorer's files copied into `into`: from `source` (a git directory, read at
    OFFICIAL_COMMIT, or a checkout) or else from GitHub. '' when done, else why not."""
    for name in OFFICIAL_FILES:
        try:
            if source and os.path.isdir(os.path.join(source, "objects")):
                text = subprocess.run(["git", f"--git-dir={source}", "show", f"{OFFICIAL_COMMIT}:{name}"],
                                      check=True, capture_output=True, timeout=60).stdout
            elif source:
                with open(os.path.join(source, name), "rb") as handle:
                    text = handle.read()
            else:
                url = f"https://raw.githubusercontent.com/{OFFICIAL_REPO}/{OFFICIAL_COMMIT}/{name}"
                with urllib.request.urlopen(url, timeout=20) as response:
                    text = response.read()
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{name} not fetched from {source or 'GitHub'} ({exc})"
        with open(os.path.join(into, name), "wb") as handle:
            handle.write(text)
    return ""


def load_official(folder: str):
    """segment_eval_inference as a module, its MAP recorded: (module, list the MAPs go to).

    The only patch, for TF 2: `import tensorflow as tf` -> `tensorflow.compat.v1` (its
    tf.gfile and tf.logging). Its main() logs the MAP to 6 digits, so the calculator it
    uses is wrapped to keep the mean of peek_map_at_n() exactly.
    """
    sys.path.insert(0, folder)
    import mean_average_precision_calculator as calculators  # noqa: E402 (the fetched file)

    path = os.path.join(folder, "segment_eval_inference.py")
    with open(path) as handle:
        source = handle.read().replace("import tensorflow as tf", "import tensorflow.compat.v1 as tf")
    module = types.ModuleType("segment_eval_inference")
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 (the official code, fetched now)
    maps = []

    class Recorded(calculators.MeanAveragePrecisionCalculator):
        def peek_map_at_n(self):
            aps = super().peek_map_at_n()
            maps.append(float(np.mean(aps)))
            return aps

    module.map_calculator = types.SimpleNamespace(MeanAveragePrecisionCalculator=Recorded)
    return module, maps


def official_map_at_k(official, truth_path, submission_path, k):
    """The official scorer end to end: `segment_eval_inference.py --label_cache --submission_file --top_n`."""
    module, maps = official
    module.FLAGS(["segment_eval_inference", f"--label_cache={truth_path}",
                  f"--submission_file={submission_path}", f"--top_n={k}"])
    module.main([])
    return maps[-1]


def our_map_at_k(truth_path, submission_path, k):
    return submission_map_at_k(submission_path, read_segment_truth(truth_path), k)


def write_scorer_files(folder, num_classes, k, rated_share=0.2, seed=1):
    """A label cache and a submission (classes x k entries, about `rated_share` of them rated,
    plus unsubmitted ratings; every class has a positive). Paths (truth, submission), ratings.

    No header: the official reader takes every line as `class,ids` (int('Class') fails). The
    last id of each line is left unrated: the official `split(" ")` keeps the line's newline
    on it, so it never matches a rating, while ours strips the line.
    """
    rng = np.random.default_rng(seed)
    pool = np.array([f"{i // 60:05x}:{5 * (i % 60)}" for i in range(2 * k)], dtype=object)
    truth_parts, lines = [], []
    for c in range(num_classes):
        submitted = rng.choice(pool.size, k, replace=False)
        rated = rng.random(k) < rated_share
        rated[-1] = False
        others = np.setdiff1d(rng.choice(pool.size, k // 50, replace=False), submitted)
        segments = np.concatenate([submitted[rated], others])
        scores = (rng.random(segments.size) < 0.3).astype(float)
        scores[0] = 1.0
        truth_parts.append(pd.DataFrame({"segment_id": pool[segments], "class_id": c, "score": scores}))
        lines.append(f"{c},{' '.join(pool[submitted])}\n")
    truth = pd.concat(truth_parts).sample(frac=1.0, random_state=seed)   # the cache is a dict dump
    truth_path, submission_path = os.path.join(folder, "labels.csv"), os.path.join(folder, "submission.csv")
    truth.to_csv(truth_path, header=False, index=False)
    with open(submission_path, "w") as handle:
        handle.writelines(lines)
    return truth_path, submission_path, len(truth)


def bench_scorer(num_classes, k, source, repeats=2):
    print(f"\nSegment MAP@K end to end (read the label cache, read the submission, score): "
          f"{num_classes} classes x K={k}, best of {repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        truth_path, submission_path, ratings = write_scorer_files(tmp, num_classes, k)
        os.makedirs(os.path.join(tmp, "official"))
        why_not = fetch_official(source, os.path.join(tmp, "official"))
        official = None if why_not else load_official(os.path.join(tmp, "official"))
        our_s, our_map = best_time(our_map_at_k, truth_path, submission_path, k, repeats=repeats)
        print(f"{ratings} ratings, {num_classes * k} submitted entries")
        if official is None:
            print(f"ours {our_s:.2f} s, MAP@K {our_map:.6f}\nofficial scorer skipped: {why_not}; "
                  f"pass --official_source=<a git directory or checkout of {OFFICIAL_REPO}>")
            return
        their_s, their_map = best_time(official_map_at_k, official, truth_path, submission_path, k,
                                       repeats=repeats)
        assert abs(our_map - their_map) < 1e-9, (our_map, their_map)
        print(f"{'ours s':>8} {'official s':>11} {'speed-up':>9} {'MAP@K (equal)':>14}\n"
              f"{our_s:>8.2f} {their_s:>11.2f} {their_s / our_s:>8.1f}x {our_map:>14.9f}\n"
              f"target: >= 10x the official scorer -> {'met' if their_s >= 10 * our_s else 'NOT met'}")


def best_time(function, *args, repeats=3):
    """(best seconds of `repeats` runs, result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def real_scale_top_k(num_classes=1000, k=100000, num_segments=3_000_000, seed=0):
    """The challenge's size, ours only: top-K of `num_segments` scored batch by batch, then the CSV.

    Timed without tracemalloc (its tracing of the CSV's per-id bytes objects tripled that time);
    memory is the process's peak resident set (ru_maxrss) against its size before. Scores are
    drawn per batch (never all held; their time is reported apart), the ids made once.
    """
    print(f"Top-K + CSV at the challenge's size: {num_classes} classes, K={k}, {num_segments} segments, "
          f"batches of {BATCH}")
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i // 60:05x}:{5 * (i % 60)}" for i in range(num_segments)]).astype(np.bytes_)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    topk = SegmentTopK(np.arange(num_classes), k=k)
    draw_s, start = 0.0, time.perf_counter()
    for first in range(0, num_segments, BATCH):
        drawn = time.perf_counter()
        predictions = rng.random((min(BATCH, num_segments - first), num_classes), dtype=np.float32)
        draw_s += time.perf_counter() - drawn
        topk.update(ids[first:first + BATCH], predictions)
    update_s = time.perf_counter() - start - draw_s
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "submission.csv")
        written = time.perf_counter()
        write_segment_csv(path, topk)
        write_s = time.perf_counter() - written
        size = os.path.getsize(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"update {update_s:.1f} s + CSV {write_s:.1f} s = {update_s + write_s:.1f} s "
          f"(scores drawn apart: {draw_s:.1f} s); peak RSS {peak:.0f} MiB ({before:.0f} MiB before the "
          f"top-K; held: classes x K float32 scores + int keys = {num_classes * k * 8 / 2**20:.0f} MiB); "
          f"CSV {size / 2**20:.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("small", "real"), default="small",
                        help="real: only the top-K + CSV at 1000 classes, K=100,000, 3M segments")
    parser.add_argument("--real_segments", type=int, default=3_000_000, help="--scale=real: test segments")
    parser.add_argument("--classes", type=int, default=200, help="top-K classes (small scale)")
    parser.add_argument("--k", type=int, default=1000, help="top-K K (small scale)")
    parser.add_argument("--scorer_classes", type=int, default=60)
    parser.add_argument("--scorer_k", type=int, default=100000, help="submitted segments per class")
    parser.add_argument("--skip_top_k", action="store_true", help="only the MAP@K scorer (small scale)")
    parser.add_argument("--official_source", default="",
                        help=f"a git directory or checkout of {OFFICIAL_REPO}; default: fetch from GitHub")
    args = parser.parse_args()
    if args.scale == "real":
        real_scale_top_k(num_segments=args.real_segments)
        return
    if not args.skip_top_k:
        bench_top_k(args.classes, args.k, sizes=(5000, 20000, 50000))
    bench_scorer(args.scorer_classes, args.scorer_k, args.official_source)


if __name__ == "__main__":
    main()
