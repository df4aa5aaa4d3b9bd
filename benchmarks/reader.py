"""Frame reader speed against the bare parse limit and the per-example parse, same files.

    python benchmarks/reader.py [--data_pattern='data/frame/train*.tfrecord'] [--batch_size=128]

Without --data_pattern the demo synthetic set is generated once under data/synthetic.
Pipelines, each a full pass over the files, best of --passes, interleaved:
  reader        yt8m.data.readers.frame_dataset (labels, checks, padding, everything)
  bare parse    the reader's own record batches (readers.record_batches: the same files,
                interleaved and batched the same way) -> parse_sequence_example of the same
                features (id, labels, frames) -> decode_raw; nothing else: no multi-hot, no
                weights, no concatenation, no padding, no checks
  bare, files in turn  the same parse over TFRecordDataset(files) -> batch (no interleave)
  per-example   parse_single_sequence_example per record, float32 frames padded to
                max_frames, then batch (the official starter's per-example path)
  reader, shuffled  frame_dataset(shuffle=True), the training path (files interleaved, records
                shuffled); shown, not in the verdict
Every round runs each pipeline once (the order reversed every other round), so a load spike
hits all of them; each row shows the best and the median pass and the CPU per video (process
time over the pass: what it costs, apart from what it waits on). The verdict is on the median
over rounds of the reader's rate over each bare parse's in the same round, against the faster
peer (the lower median ratio), with its range; the best passes' ratio is printed too.
Batches are counted inside the graph (`Dataset.reduce`, as a training loop consumes them), so
no Python runs per batch.
Then the input-bound share of a training step: Model.fit step time with the real (shuffled)
reader against the same batches cached in memory (--step_steps=0 skips it), rounds
interleaved, each fit timed in steady state (from the end of its STEADY_AFTER-th step to its
last: a fit's start, the iterator's and the shuffle buffer's fill, is not a training step);
the verdict is on the median of the rounds' paired shares, with their range, the cores the
cached steps keep busy and the reader's CPU per step.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from yt8m import fileio  # noqa: E402
from yt8m.data import readers, schema  # noqa: E402

DEMO_DIR = "data/synthetic"


def _bare_parse_batch(spec):
    """Parse a batch of the features the reader yields (id, labels, frames) and decode the frames:
    ragged, one decode_raw per feature, nothing else."""
    sequence_keys = {name: tf.io.RaggedFeature(tf.string) for name in spec.names}
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                    schema.LABELS_KEY: tf.io.RaggedFeature(tf.int64)}

    def parse(serialized, *_files):
        context, sequences, _ = tf.io.parse_sequence_example(serialized, context_keys, sequence_keys)
        frames = {name: tf.io.decode_raw(sequences[name].flat_values, tf.uint8) for name in spec.names}
        return context[schema.ID_KEY], context[schema.LABELS_KEY], frames

    return parse


def bare_parse(pattern, spec, batch_size, epochs):
    """The limit: the reader's own record batches, parsed and decoded; no labels multi-hot, no
    weights, no concatenation, no padding, no checks."""
    batches = readers.record_batches(pattern, flag="data_pattern", batch_size=batch_size, num_epochs=epochs)
    return batches.map(_bare_parse_batch(spec), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)


def bare_parse_files_in_turn(files, spec, batch_size, epochs):
    """The same parse over the files read one after another (TFRecordDataset(files)), not interleaved."""
    return (tf.data.TFRecordDataset(files).repeat(epochs).batch(batch_size)
            .map(_bare_parse_batch(spec), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def per_example_parse(files, spec, batch_size, epochs, max_frames=schema.MAX_FRAMES):
    """The official starter's way: one record at a time, float32 frames padded to max_frames."""
    sequence_keys = {name: tf.io.FixedLenSequenceFeature([], tf.string) for name in spec.names}
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string),
                    schema.LABELS_KEY: tf.io.VarLenFeature(tf.int64)}

    def parse(serialized):
        context, sequences = tf.io.parse_single_sequence_example(
            serialized, context_keys, sequence_keys)
        columns = []
        for name, size in zip(spec.names, spec.sizes):
            decoded = tf.reshape(tf.io.decode_raw(sequences[name], tf.uint8), [-1, size])
            frames = schema.dequantize(tf.cast(decoded[:max_frames], tf.float32))
            columns.append(tf.pad(frames, [[0, max_frames - tf.shape(frames)[0]], [0, 0]]))
        return context[schema.ID_KEY], tf.concat(columns, axis=1)

    return (tf.data.TFRecordDataset(files).repeat(epochs).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def our_reader(pattern, spec, batch_size, epochs, num_classes, shuffle=False):
    return readers.frame_dataset(pattern, num_classes=num_classes, feature_spec=spec, batch_size=batch_size,
                                 shuffle=shuffle, num_epochs=epochs, flag="data_pattern")


def timed_pass(dataset, count_of) -> tuple[float, float]:
    """One full pass counted inside the graph: (examples per wall-clock second, CPU µs per example)."""
    start, cpu = time.perf_counter(), time.process_time()
    examples = int(dataset.reduce(tf.constant(0, tf.int64),
                                  lambda n, element: n + tf.cast(count_of(element), tf.int64)))
    return examples / (time.perf_counter() - start), (time.process_time() - cpu) / examples * 1e6


STEADY_AFTER = 4   # steps of each timed fit left out: its start (iterator, shuffle buffer, first batches)


def steady_after(steps: int) -> int:
    """The steps of a timed fit of `steps` left out: STEADY_AFTER, at most half of them (at least 1)."""
    return max(1, min(STEADY_AFTER, steps // 2))


class StepClock(keras.callbacks.Callback):
    """Wall and process time at the end of every training step."""

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((time.perf_counter(), time.process_time()))


def input_bound_share(pattern, batch_size, num_classes, steps, rounds):
    """Training step time with the real reader vs the same batches cached in memory.

    A small DbofModel (cluster 256, hidden 256, 30 frames, MoE 2) through Model.fit, so the
    reader's share shows; a bigger model only lowers it. Rounds alternate real and cached fits
    (the order reversed every other round); each fit is timed in steady state (after its first
    steady_after(steps) steps). Returns per round: (real s/step, cached s/step, cores the cached steps
    kept busy: process time over wall time, real and cached s/step of the whole fits).
    """
    from models import registry
    from yt8m import losses, optimizers
    from yt8m.config import Config

    config = Config.from_flags(frame_features=True, feature_names=("rgb", "audio"), num_classes=num_classes,
                    batch_size=batch_size, base_learning_rate=1e-3)
    spec = schema.FeatureSpec.parse(None, None, frame_features=True)
    real = readers.frame_dataset(pattern, num_classes=num_classes, feature_spec=spec, batch_size=batch_size,
                                 shuffle=True, num_epochs=None, flag="data_pattern")
    real = real.map(lambda f, y, w: (readers.model_inputs(f), y, w))
    cached = real.take(steps).cache()
    for _ in cached:  # fill the cache: the same batches, in memory
        pass
    model = registry.build("DbofModel", num_classes=num_classes, feature_size=spec.total_size, cluster_size=256,
                           hidden_size=256, sample_frames=30, num_mixtures=2)
    model.compile(optimizer=optimizers.make_optimizer(config), loss=losses.make_loss(config))
    model.fit(cached, steps_per_epoch=2, epochs=1, verbose=0)  # trace
    skip = steady_after(steps)
    results = []
    for round_ in range(rounds):
        timed = {}
        pair = (("real", real), ("cached", cached.repeat()))
        for name, dataset in (pair if round_ % 2 == 0 else pair[::-1]):
            clock, start = StepClock(), time.perf_counter()
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
            (wall0, cpu0), (wall1, cpu1) = clock.marks[skip - 1], clock.marks[-1]
            timed[name] = ((wall1 - wall0) / (steps - skip), (cpu1 - cpu0) / (wall1 - wall0),
                           (time.perf_counter() - start) / steps)
        results.append((timed["real"][0], timed["cached"][0], timed["cached"][1], timed["real"][2],
                        timed["cached"][2]))
    return results


def demo_pattern() -> str:
    from yt8m.data import synthetic

    paths = synthetic.ensure(DEMO_DIR, synthetic.SyntheticConfig.demo())
    return paths.frame_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_pattern", default="", help="frame-level files; default: demo set")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--passes", type=int, default=5, help="rounds: each pipeline once per round")
    parser.add_argument("--epochs_per_pass", type=int, default=4,
                        help="reads of the files per timed pass (longer passes, less noise)")
    parser.add_argument("--num_classes", type=int, default=schema.NUM_CLASSES)
    parser.add_argument("--step_steps", type=int, default=20,
                        help="steps per timed training fit for the input-bound share (0: skip)")
    parser.add_argument("--step_rounds", type=int, default=5, help="real/cached fit pairs for the share")
    args = parser.parse_args()

    pattern = args.data_pattern or demo_pattern()
    files = fileio.match_files(pattern, "data_pattern")
    spec = schema.FeatureSpec.parse(None, None, frame_features=True)
    first = lambda element: tf.shape(element[0])[0]  # noqa: E731 (ids first)
    ids = lambda element: tf.shape(element[0][schema.ID_KEY])[0]  # noqa: E731
    pipelines = {
        "reader": (our_reader(pattern, spec, args.batch_size, args.epochs_per_pass, args.num_classes), ids),
        "bare parse": (bare_parse(pattern, spec, args.batch_size, args.epochs_per_pass), first),
        "bare, files in turn": (bare_parse_files_in_turn(files, spec, args.batch_size, args.epochs_per_pass), first),
        "per-example": (per_example_parse(files, spec, args.batch_size, args.epochs_per_pass), first),
        "reader, shuffled": (our_reader(pattern, spec, args.batch_size, args.epochs_per_pass, args.num_classes,
                                        shuffle=True), ids),
    }
    peers = ("bare parse", "bare, files in turn")
    print(f"{len(files)} files ({pattern}) x{args.epochs_per_pass}, batch {args.batch_size}, "
          f"{args.passes} rounds, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    rates = {name: [] for name in pipelines}
    cpus = {name: [] for name in pipelines}
    with readers.data_errors(pattern, "data_pattern"):
        for dataset, count_of in pipelines.values():   # warm-up: trace every function once
            dataset.take(1).reduce(tf.constant(0, tf.int64), lambda n, element: n + 1)
        gc.collect()
        gc.freeze()   # TensorFlow's Python heap out of the collector: no full collection inside a pass
        for round_ in range(args.passes):
            names = list(pipelines) if round_ % 2 == 0 else list(pipelines)[::-1]
            for name in names:   # interleaved: a load spike hits every pipeline
                rate, cpu_per_example = timed_pass(*pipelines[name])
                rates[name].append(rate)
                cpus[name].append(cpu_per_example)
    best = {name: max(values) for name, values in rates.items()}
    ratios = {peer: [ours / theirs for ours, theirs in zip(rates["reader"], rates[peer])] for peer in peers}
    print(f"{'pipeline':<20} {'best ex/s':>10} {'median':>8} {'/ bare':>8} {'/ per-ex':>9} {'CPU us/video':>13}")
    for name in pipelines:
        print(f"{name:<20} {best[name]:>10.0f} {statistics.median(rates[name]):>8.0f} "
              f"{best[name] / max(best[p] for p in peers):>7.2f}x {best[name] / best['per-example']:>8.2f}x "
              f"{min(cpus[name]):>6.0f} (med {statistics.median(cpus[name]):.0f})")
    for peer in peers:
        print(f"reader / {peer} in the same round: median {statistics.median(ratios[peer]):.2f}x "
              f"[{min(ratios[peer]):.2f}-{max(ratios[peer]):.2f}]; best passes {best['reader'] / best[peer]:.2f}x")
    verdict = min(statistics.median(ratios[peer]) for peer in peers)
    print(f"target: reader >= 0.90x the faster bare parse (median paired ratio {verdict:.2f}x) -> "
          f"{'met' if verdict >= 0.9 else 'NOT met'}")
    if args.step_steps:
        results = input_bound_share(pattern, args.batch_size, args.num_classes, args.step_steps, args.step_rounds)
        shares = [1 - cached / real for real, cached, *_ in results]
        real, cached, cores, real_fit, cached_fit = (statistics.median(column) for column in zip(*results))
        reader_ms = min(cpus["reader, shuffled"]) * args.batch_size / 1000
        print(f"\ntraining step (small DbofModel, batch {args.batch_size}, {args.step_rounds} rounds x "
              f"{args.step_steps} steps, steady after {steady_after(args.step_steps)}): "
              f"real reader {real * 1000:.0f} ms/step "
              f"[{min(r[0] for r in results) * 1000:.0f}-{max(r[0] for r in results) * 1000:.0f}], "
              f"same batches cached {cached * 1000:.0f} "
              f"[{min(r[1] for r in results) * 1000:.0f}-{max(r[1] for r in results) * 1000:.0f}]; whole fits "
              f"(their start included) {real_fit * 1000:.0f} and {cached_fit * 1000:.0f} ms/step")
        print(f"input-bound share (paired rounds): median {statistics.median(shares):.0%} "
              f"[{min(shares):.0%} .. {max(shares):.0%}] -> target <= 5% "
              f"{'met' if statistics.median(shares) <= 0.05 else 'NOT met'}")
        print(f"the cached steps keep {cores:.2f} of {os.cpu_count()} cores busy; the reader needs {reader_ms:.0f} ms "
              f"of CPU per batch, {reader_ms / (os.cpu_count() * cached * 1000):.0%} of the machine's CPU in a "
              f"cached step")


if __name__ == "__main__":
    main()
