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
The ratio's peer is the faster of the two bare parses. Batches are counted inside the graph
(`Dataset.reduce`, as a training loop consumes them), so no Python runs per batch; the CPU
time per video (process time over the pass) says what each pipeline costs, apart from
what it waits on.
Then the input-bound share of a training step: Model.fit step time with the real
reader against the same batches cached in memory (--step_steps=0 skips it), with the cores
the cached step keeps busy and the reader's CPU per step (its share of the machine if
nothing overlapped).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def our_reader(pattern, spec, batch_size, epochs, num_classes):
    return readers.frame_dataset(pattern, num_classes=num_classes, feature_spec=spec,
                                 batch_size=batch_size, num_epochs=epochs, flag="data_pattern")


def timed_pass(dataset, count_of) -> tuple[float, float]:
    """One full pass counted inside the graph: (examples per wall-clock second, CPU µs per example)."""
    start, cpu = time.perf_counter(), time.process_time()
    examples = int(dataset.reduce(tf.constant(0, tf.int64),
                                  lambda n, element: n + tf.cast(count_of(element), tf.int64)))
    return examples / (time.perf_counter() - start), (time.process_time() - cpu) / examples * 1e6


def input_bound_share(pattern, batch_size, num_classes, steps, rounds):
    """Training step time with the real reader vs the same batches cached in memory.

    A small DbofModel (cluster 256, hidden 256, 30 frames, MoE 2) through Model.fit, so the
    reader's share shows; a bigger model only lowers it. Returns (real s/step, cached s/step,
    cores the cached steps kept busy: process time over wall time).
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
    best = {"real": float("inf"), "cached": float("inf")}
    cores = 0.0
    for _ in range(rounds):
        for name, dataset in (("real", real), ("cached", cached.repeat())):
            start, cpu = time.perf_counter(), time.process_time()
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
            wall = time.perf_counter() - start
            if name == "cached" and wall / steps < best[name]:
                cores = (time.process_time() - cpu) / wall
            best[name] = min(best[name], wall / steps)
    return best["real"], best["cached"], cores


def demo_pattern() -> str:
    from yt8m.data import synthetic

    paths = synthetic.ensure(DEMO_DIR, synthetic.SyntheticConfig.demo())
    return paths.frame_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_pattern", default="", help="frame-level files; default: demo set")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--epochs_per_pass", type=int, default=4,
                        help="reads of the files per timed pass (longer passes, less noise)")
    parser.add_argument("--num_classes", type=int, default=schema.NUM_CLASSES)
    parser.add_argument("--step_steps", type=int, default=20,
                        help="steps per timed training pass for the input-bound share (0: skip)")
    args = parser.parse_args()

    pattern = args.data_pattern or demo_pattern()
    files = fileio.match_files(pattern, "data_pattern")
    spec = schema.FeatureSpec.parse(None, None, frame_features=True)
    first = lambda element: tf.shape(element[0])[0]  # noqa: E731 (ids first)
    pipelines = {
        "reader": (our_reader(pattern, spec, args.batch_size, args.epochs_per_pass, args.num_classes),
                   lambda element: tf.shape(element[0][schema.ID_KEY])[0]),
        "bare parse": (bare_parse(pattern, spec, args.batch_size, args.epochs_per_pass), first),
        "bare, files in turn": (bare_parse_files_in_turn(files, spec, args.batch_size, args.epochs_per_pass), first),
        "per-example": (per_example_parse(files, spec, args.batch_size, args.epochs_per_pass), first),
    }
    print(f"{len(files)} files ({pattern}) x{args.epochs_per_pass}, batch {args.batch_size}, "
          f"best of {args.passes} passes, "
          f"{os.cpu_count()} CPUs")
    best = {name: 0.0 for name in pipelines}
    cpu = {name: float("inf") for name in pipelines}
    with readers.data_errors(pattern, "data_pattern"):
        for dataset, count_of in pipelines.values():   # warm-up: trace every function once
            dataset.take(1).reduce(tf.constant(0, tf.int64), lambda n, element: n + 1)
        gc.collect()
        gc.freeze()   # TensorFlow's Python heap out of the collector: no full collection inside a pass
        for _ in range(args.passes):
            for name, (dataset, count_of) in pipelines.items():   # interleaved: fair to all
                rate, cpu_per_example = timed_pass(dataset, count_of)
                best[name], cpu[name] = max(best[name], rate), min(cpu[name], cpu_per_example)
    peer = max(best["bare parse"], best["bare, files in turn"])
    print(f"{'pipeline':<20} {'examples/s':>11} {'/ bare':>8} {'/ per-ex':>9} {'CPU us/video':>13}")
    for name, rate in best.items():
        print(f"{name:<20} {rate:>11.0f} {rate / peer:>7.2f}x {rate / best['per-example']:>8.2f}x {cpu[name]:>13.0f}")
    print(f"target: reader >= 0.90x the faster bare parse -> {'met' if best['reader'] >= 0.9 * peer else 'NOT met'}")
    if args.step_steps:
        real, cached, cores = input_bound_share(pattern, args.batch_size, args.num_classes, args.step_steps, 3)
        reader_ms = cpu["reader"] * args.batch_size / 1000
        print(f"\ntraining step (small DbofModel, batch {args.batch_size}, best of 3 x {args.step_steps} steps): "
              f"real reader {real * 1000:.0f} ms/step, same batches cached {cached * 1000:.0f} ms/step "
              f"-> input-bound share {max(0.0, 1 - cached / real):.0%}")
        print(f"the cached steps keep {cores:.2f} of {os.cpu_count()} cores busy; the reader needs {reader_ms:.0f} ms "
              f"of CPU per batch, {reader_ms / (os.cpu_count() * cached * 1000):.0%} of the machine's CPU in a "
              f"cached step")


if __name__ == "__main__":
    main()
