"""Frame reader speed against the bare parse limit and the per-example parse, same files.

    python benchmarks/reader.py [--data_pattern='data/frame/train*.tfrecord'] [--batch_size=128]

Without --data_pattern the demo synthetic set is generated once under data/synthetic.
Pipelines, each a full pass over the files, best of --passes:
  reader       yt8m.data.readers.frame_dataset (labels, checks, padding, everything)
  bare parse   TFRecordDataset -> batch -> parse_sequence_example -> decode_raw, nothing else
  per-example  parse_single_sequence_example per record, float32 frames padded to
               max_frames, then batch (the official starter's per-example path)
Then the input-bound share of a training step: Model.fit step time with the real
reader against the same batches cached in memory (--step_steps=0 skips it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from yt8m import fileio  # noqa: E402
from yt8m.data import readers, schema  # noqa: E402

DEMO_DIR = "data/synthetic"


def bare_parse(files, spec, batch_size, epochs):
    """The limit: batch, then parse and decode the batch; no labels, no padding."""
    sequence_keys = {name: tf.io.RaggedFeature(tf.string) for name in spec.names}
    context_keys = {schema.ID_KEY: tf.io.FixedLenFeature([], tf.string)}

    def parse(serialized):
        context, sequences, _ = tf.io.parse_sequence_example(serialized, context_keys, sequence_keys)
        frames = {name: tf.io.decode_raw(sequences[name].flat_values, tf.uint8)
                  for name in spec.names}
        return context[schema.ID_KEY], frames

    return (tf.data.TFRecordDataset(files).repeat(epochs).batch(batch_size)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


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


def examples_per_second(dataset, count_of) -> float:
    """One full pass; examples per wall-clock second."""
    start, examples = time.perf_counter(), 0
    for element in dataset:
        examples += int(count_of(element))
    return examples / (time.perf_counter() - start)


def input_bound_share(pattern, batch_size, num_classes, steps, rounds):
    """Training step time with the real reader vs the same batches cached in memory.

    A small DbofModel (cluster 256, hidden 256, 30 frames, MoE 2) through Model.fit, so the
    reader's share shows; a bigger model only lowers it. Returns (real s/step, cached s/step).
    """
    from models import registry
    from yt8m import losses, training
    from yt8m.config import Config

    config = Config(frame_features=True, feature_names=("rgb", "audio"), num_classes=num_classes,
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
    model.compile(optimizer=training._optimizer(config), loss=losses.make_loss(config))
    model.fit(cached, steps_per_epoch=2, epochs=1, verbose=0)  # trace
    best = {"real": float("inf"), "cached": float("inf")}
    for _ in range(rounds):
        for name, dataset in (("real", real), ("cached", cached.repeat())):
            start = time.perf_counter()
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return best["real"], best["cached"]


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
    pipelines = {
        "reader": (our_reader(pattern, spec, args.batch_size, args.epochs_per_pass, args.num_classes),
                   lambda element: tf.shape(element[0][schema.ID_KEY])[0]),
        "bare parse": (bare_parse(files, spec, args.batch_size, args.epochs_per_pass),
                       lambda element: tf.shape(element[0])[0]),
        "per-example": (per_example_parse(files, spec, args.batch_size, args.epochs_per_pass),
                        lambda element: tf.shape(element[0])[0]),
    }
    print(f"{len(files)} files ({pattern}) x{args.epochs_per_pass}, batch {args.batch_size}, "
          f"best of {args.passes} passes, "
          f"{os.cpu_count()} CPUs")
    best = {name: 0.0 for name in pipelines}
    with readers.data_errors(pattern, "data_pattern"):
        for _ in range(args.passes):
            for name, (dataset, count_of) in pipelines.items():   # interleaved: fair to all
                best[name] = max(best[name], examples_per_second(dataset, count_of))
    print(f"{'pipeline':<12} {'examples/s':>11} {'/ bare':>8} {'/ per-ex':>9}")
    for name, rate in best.items():
        print(f"{name:<12} {rate:>11.0f} {rate / best['bare parse']:>7.2f}x "
              f"{rate / best['per-example']:>8.2f}x")
    print(f"target: reader >= 0.90x bare parse -> "
          f"{'met' if best['reader'] >= 0.9 * best['bare parse'] else 'NOT met'}")
    if args.step_steps:
        real, cached = input_bound_share(pattern, args.batch_size, args.num_classes, args.step_steps, 3)
        print(f"\ntraining step (small DbofModel, batch {args.batch_size}, best of 3 x {args.step_steps} steps): "
              f"real reader {real * 1000:.0f} ms/step, same batches cached {cached * 1000:.0f} ms/step "
              f"-> input-bound share {max(0.0, 1 - cached / real):.0%}")


if __name__ == "__main__":
    main()
