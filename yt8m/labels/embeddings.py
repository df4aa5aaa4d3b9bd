"""Initial label embeddings for the graph models: a file the user gives, or a default (ASGE)."""
from __future__ import annotations

import io
import os
import re

import keras
import numpy as np
import tensorflow as tf

from yt8m import fileio
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.progress import keras_verbose

EMBEDDINGS_FILE = "label_embeddings.npy"  # the run's ASGE embeddings, reused by later runs


def initial_embeddings(config: Config, stats) -> np.ndarray:
    """(C, E) float32: `--label_embeddings` (a (C, E) .npy, or a GloVe-format text file of word vectors
    mapped to the names of `--vocabulary_file`); without one, ASGE embeddings of the label graph
    (`train_asge`), reused from the run's (or its --init_from's) label_embeddings.npy, else trained
    once and saved there."""
    if config.model_.label_embeddings:
        if config.model_.label_embeddings.endswith(".npy"):
            with tf.io.gfile.GFile(config.model_.label_embeddings, "rb") as handle:
                array = np.load(handle).astype(np.float32)
        else:
            from yt8m.labels import graphs

            vocabulary_file = config.data.vocabulary_file or graphs.default_vocabulary_file(config.data.train_data_pattern)
            array = glove_embeddings(config.model_.label_embeddings, vocabulary_file, stats.num_classes, seed=config.training.seed)
        if array.ndim != 2 or array.shape[0] != stats.num_classes:
            raise UserError(f"--label_embeddings has shape {array.shape}; expected ({stats.num_classes}, dim)")
        return array
    for run in (config.training.train_dir, config.training.init_from):
        saved = os.path.join(run, EMBEDDINGS_FILE) if run else ""
        if saved and tf.io.gfile.exists(saved):
            with tf.io.gfile.GFile(saved, "rb") as handle:
                array = np.load(handle)
            if array.shape == (stats.num_classes, config.model_.label_embedding_dim):
                return array.astype(np.float32)
    print(f"training ASGE label embeddings ({config.model_.asge_steps} steps, dim {config.model_.label_embedding_dim})")
    array = train_asge(stats, config.model_.label_embedding_dim, config.model_.asge_steps, alpha=config.model_.asge_alpha,
                       seed=config.training.seed)
    if config.training.train_dir:
        buffer = io.BytesIO()
        np.save(buffer, array)
        with fileio.atomic_output(os.path.join(config.training.train_dir, EMBEDDINGS_FILE), "wb") as handle:
            handle.write(buffer.getvalue())
    return array


def train_asge(statistics, dim: int, steps: int, *, alpha: float = 0.1, hidden: int | None = None,
               learning_rate: float = 0.01, class_batch: int = 1024, seed: int = 0,
               verbose: bool = True) -> np.ndarray:
    """(C, dim) float32 ASGE label embeddings (CMA Eq.1-5), trained as a short stage of its own.

    Only labels seen in training (N_i > 0) are fitted: an unseen label has no row or
    column in the graph, so the relaxed loss only asks it to stay below `alpha` in cosine
    with everything. It gets a seeded isotropic Gaussian direction of the seen embeddings'
    mean norm instead (|cos| ~ 1/sqrt(dim) against any fixed vector), at no training cost.
    With more than `class_batch` seen labels, each Adam step fits a random subset of them
    (memory and time O(class_batch^2)); the final embeddings use batch statistics over all seen labels.
    """
    from models.layers.asge import AsgeEncoder, asge_loss
    from yt8m.labels import graphs

    rng = np.random.default_rng(seed)
    num_classes = statistics.num_classes
    seen = np.flatnonzero(np.asarray(statistics.counts) > 0)
    result = rng.standard_normal((num_classes, dim)).astype(np.float32)
    if len(seen) < 2:
        return result
    graph, symmetric = (g[np.ix_(seen, seen)].astype(np.float32) for g in graphs.asge_graph(statistics))
    hidden = hidden or 2 * dim
    encoder = AsgeEncoder(len(seen), units=(hidden, hidden, dim), seed=seed, name="asge")
    encoder.build()
    optimizer = keras.optimizers.Adam(learning_rate)
    batch = min(class_batch, len(seen))

    @tf.function
    def train_step(ids):
        with tf.GradientTape() as tape:
            pairs = tf.cast(tf.size(ids) * (tf.size(ids) - 1), tf.float32)
            loss = asge_loss(encoder(ids, training=True), tf.gather(tf.gather(graph, ids), ids, axis=1),
                             tf.gather(tf.gather(symmetric, ids), ids, axis=1), alpha) / pairs
        optimizer.apply_gradients(zip(tape.gradient(loss, encoder.trainable_variables),
                                      encoder.trainable_variables))
        return loss

    all_ids = np.arange(len(seen), dtype=np.int32)
    first = last = float("nan")
    if verbose:
        print(f"ASGE: training the label embeddings of {len(seen)} seen labels, {steps} steps")
    bar = keras.utils.Progbar(steps, unit_name="step", verbose=keras_verbose(verbose))
    for step in range(steps):
        ids = all_ids if batch == len(seen) else np.sort(rng.choice(len(seen), batch, replace=False))
        last = float(train_step(tf.constant(ids, tf.int32)))
        first = last if step == 0 else first
        bar.update(step + 1, [("loss", last)])
    fitted = keras.ops.convert_to_numpy(encoder(tf.constant(all_ids), training=True))
    if verbose:
        final = float(asge_loss(fitted, graph, symmetric, alpha)) / max(len(seen) * (len(seen) - 1), 1)
        print(f"ASGE: {len(seen)} seen labels of {num_classes}; mean pair loss "
              f"{first if steps else final:.4f} (first step) -> {final:.4f}")
    scale = np.linalg.norm(fitted, axis=1).mean() / np.sqrt(dim)
    result *= scale
    result[seen] = fitted
    return result


def glove_embeddings(path: str, vocabulary_file: str, num_classes: int, seed: int = 0) -> np.ndarray:
    """(C, dim) from a GloVe-format text file (`word v1 ... vdim` per line): each class name of
    `vocabulary_file` (lower-cased, split on non-alphanumerics) averages the vectors of its words
    found in the file; classes with no known word (or absent from the vocabulary) get seeded
    Gaussian vectors of the known vectors' mean norm."""
    from yt8m.data.vocabulary import read_vocabulary

    if not vocabulary_file:
        raise UserError(f"--label_embeddings={path!r} is a word-vector text file: give --vocabulary_file "
                        f"(vocabulary.csv; found none beside --train_data_pattern) so class names map to words")
    table = read_vocabulary(vocabulary_file)
    words_of = {int(i): _words(name) for i, name in zip(table["Index"], table["Name"].fillna(""))
                if int(i) < num_classes}
    wanted = {w for words in words_of.values() for w in words}
    vectors = _read_word_vectors(path, wanted)
    dim = len(next(iter(vectors.values()))) if vectors else 0
    if not dim:
        raise UserError(f"--label_embeddings={path!r} has no vector for any word of the class names in "
                        f"{vocabulary_file}; is it a GloVe-format text file (word then numbers per line)?")
    result = np.zeros((num_classes, dim), np.float32)
    known = np.zeros(num_classes, bool)
    for index, words in words_of.items():
        found = [vectors[w] for w in words if w in vectors]
        if found:
            result[index] = np.mean(found, axis=0)
            known[index] = True
    rng = np.random.default_rng(seed)
    scale = np.linalg.norm(result[known], axis=1).mean() / np.sqrt(dim)
    result[~known] = scale * rng.standard_normal(((~known).sum(), dim))
    print(f"word vectors for {known.sum()} of {num_classes} classes from {path}; the rest random")
    return result


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", str(name).lower()) if w]


def _read_word_vectors(path: str, wanted: set) -> dict:
    """Streams the text file once, keeping only the wanted words (memory O(wanted))."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"--label_embeddings file {path} does not exist; give a .npy or a GloVe text file")
    vectors, dim = {}, None
    with tf.io.gfile.GFile(path, "r") as handle:
        for number, line in enumerate(handle, 1):
            word, _, rest = line.rstrip().partition(" ")
            if word.lower() not in wanted or word.lower() in vectors:
                continue
            try:
                vector = np.array(rest.split(), np.float32)
            except ValueError:
                raise UserError(f"--label_embeddings {path} line {number}: expected a word then numbers") from None
            if dim is not None and len(vector) != dim:
                raise UserError(f"--label_embeddings {path} line {number}: {len(vector)} numbers, earlier "
                                f"lines had {dim}")
            dim = len(vector)
            vectors[word.lower()] = vector
    return vectors
