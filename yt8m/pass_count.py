"""How many steps an epoch of --num_epochs is: one pass over the training files, counted once before fit
(and kept in the run's PASS_COUNT_FILE), or, above PASS_COUNT_LIMIT_BYTES, found by Keras at each pass's end."""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
import warnings

import numpy as np
import tensorflow as tf

from yt8m import backup, datasets, rundir
from yt8m.config import Config
from yt8m.data import readers
from yt8m.errors import UserError
from yt8m.fileio import atomic_output, match_files

# --num_epochs: above this many bytes of training files (local disk reads 2 GiB in seconds, GCS in a minute or
# two) an epoch's steps are not counted before fit; YouTube-8M's train split is ~30 GB of video-level and ~1.4 TB
# of frame-level records, which one read would delay by tens of minutes to hours.
PASS_COUNT_LIMIT_BYTES = 2 * 1024 ** 3
PROGRESS_SECONDS = 10   # a count still running prints a line after 1 s, then every PROGRESS_SECONDS


def pass_steps(config: Config, whole_videos: bool, work_dir: str) -> int | None:
    """--num_epochs: the steps of an epoch, the batches of one pass over the training files, for fit to
    take that many steps per epoch of the repeated passes. (Left to find the end of the data itself,
    Keras 3.15 warns "Your input ran out of data" and counts one step more per epoch than it trains: the
    failing read and the optimizer's step increment are unordered.)

    Counted once per file set: the count is kept in the run's PASS_COUNT_FILE under a key of the matched
    files and their sizes (and, for a pipeline's batches, what shapes them), so a resumed run reads
    nothing and a changed file set is counted again. The readers batch serialized records before parsing
    them, so a pass of videos or clips is ceil(records / batch) batches, the records counted unparsed;
    segments (re-batched) and --skip_corrupt_records (records dropped) count the batches of a copy of the
    input (its own shuffle seeds: the run's order is unchanged). Above PASS_COUNT_LIMIT_BYTES nothing is
    read and None is returned: Keras finds the end of each pass (quiet_pass_ends). Nothing is read
    either when no epoch is left."""
    if backup.completed_epochs(os.path.join(work_dir, "backup")) >= config.training.num_epochs:
        return 1   # the rerun of a finished run: fit takes no step
    files = match_files(*datasets.training_source(config))
    sizes = _sizes(files)
    if sizes is None:
        print(f"an epoch: one pass over the training files ({len(files)} files, more than the "
              f"{_gib(PASS_COUNT_LIMIT_BYTES)} counted before training); its length is found at its end")
        return None
    extent = f"{_gib(sum(sizes))} in {len(files)} files"
    by_records = not (config.data.segment_labels or whole_videos or config.data.skip_corrupt_records)
    key = {"files": dict(zip(files, sizes))}
    if not by_records:   # the pipeline's batches also depend on what it reads and how it batches
        key["pipeline"] = {**dataclasses.asdict(config.data), "batch_size": config.training.batch_size,
                           "whole_videos": whole_videos}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=list).encode()).hexdigest()
    cache = os.path.join(work_dir, rundir.PASS_COUNT_FILE)
    count = _cached_count(cache, digest)
    if count is not None:
        how = f"as counted before, {cache}"
    else:
        started = time.monotonic()
        if by_records:
            counts = tf.data.Dataset.from_tensor_slices(files).map(
                lambda path: tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, record: n + 1),
                num_parallel_calls=min(len(files), 16), deterministic=False)
            count = _count(counts, "records", len(files))
        else:
            corrupt = readers.CorruptRecords() if config.data.skip_corrupt_records else None   # the run reports its own
            batches = datasets.training_dataset(config, corrupt, whole_videos=whole_videos)
            count = _count(batches.map(lambda *batch: np.int64(1)).batch(1024).map(tf.reduce_sum), "batches")
        with atomic_output(cache) as handle:
            json.dump({"key": digest, "count": count, "of": "records" if by_records else "batches",
                       "files": len(files), "bytes": sum(sizes)}, handle)
        how = f"counted in {time.monotonic() - started:.1f} s"
    steps = math.ceil(count / config.training.batch_size) if by_records else count
    if not steps:
        raise UserError("one pass over the training files gives no batch: no example to train on")
    print(f"an epoch: one pass over the training files, {steps} steps of --batch_size={config.training.batch_size} "
          f"({extent}, {how})")
    return steps


def _sizes(files: list[str]) -> list[int] | None:
    """The files' sizes (tf.io.gfile.stat, 16 at a time: on GCS each is a request), None as soon as they
    add up to more than PASS_COUNT_LIMIT_BYTES (YouTube-8M's frame-level files: within the first 64)."""
    sizes: list[int] = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for start in range(0, len(files), 64):
            sizes += pool.map(lambda path: tf.io.gfile.stat(path).length, files[start:start + 64])
            if sum(sizes) > PASS_COUNT_LIMIT_BYTES:
                return None
    return sizes


def _cached_count(path: str, digest: str) -> int | None:
    """The count PASS_COUNT_FILE holds for this key, None when it holds none (or another file set's)."""
    if not tf.io.gfile.exists(path):
        return None
    try:
        with tf.io.gfile.GFile(path) as handle:
            saved = json.load(handle)
    except ValueError:   # not JSON: counted again, and replaced
        return None
    return int(saved["count"]) if isinstance(saved, dict) and saved.get("key") == digest else None


def _count(counts: tf.data.Dataset, unit: str, files: int | None = None) -> int:
    """The sum of a dataset of counts (one per file, or per chunk of batches), with a progress line
    after the first second and every PROGRESS_SECONDS after it."""
    started = time.monotonic()
    shown, total = started - PROGRESS_SECONDS + 1, 0
    for done, value in enumerate(counts.as_numpy_iterator(), 1):
        total += int(value)
        if time.monotonic() - shown >= PROGRESS_SECONDS:
            shown = time.monotonic()
            of_files = f" in {done} of {files} files" if files else ""
            print(f"counting one pass over the training files: {total} {unit}{of_files}, "
                  f"{shown - started:.0f} s", flush=True)
    return total


def _gib(size: int) -> str:
    return f"{size / 1024 ** 3:.2f} GiB" if size >= 1024 ** 3 else f"{size / 1024 ** 2:.1f} MiB"


@contextlib.contextmanager
def quiet_pass_ends(uncounted: bool):
    """Where fit finds the end of each pass itself (steps_per_epoch=None), Keras's EpochIterator warns
    "Your input ran out of data" (warnings.warn, a UserWarning) at every epoch's end: that end is
    expected here, so the warning is filtered for this fit only. Keras also counts one optimizer step per
    epoch that it does not train (the failing read and the step increment are unordered), left as it is:
    negligible at real scale (YouTube-8M's train split: ~3,800 steps a pass at --batch_size=1024), though
    a frame-level set just over the limit (~6,000 videos) has only tens of steps a pass."""
    if not uncounted:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        yield
