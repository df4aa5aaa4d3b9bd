"""Training losses. Each returns per-element values (B, C); the reader's (B, C)
weights arrive as `sample_weight` (ones for video labels, the rated class's
one-hot for segment ratings)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from yt8m.config import UNRATED_TARGETS, Config


@keras.saving.register_keras_serializable(package="yt8m")
class MultiLabelCrossentropy(keras.losses.Loss):
    """Binary cross-entropy on probabilities, summed over classes, averaged over the batch.

    The per-element values are scaled by C so that Keras's sum_over_batch_size
    reduction (a mean over B x C elements, which also keeps Keras's scaling
    under tf.distribute) yields the starter's sum over classes / B.
    """

    def __init__(self, epsilon: float = 1e-7, name: str = "multi_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return bce * ops.cast(ops.shape(y_pred)[-1], bce.dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


class ReweightedCrossentropy(MultiLabelCrossentropy):
    """Seed 003's finetuning loss: reweighted BCE (Eq.2-3) on correlation-smoothed targets (Eq.4-6).

    The reader's (B, C) weights mark the annotated classes (> 0): the one-hot of the rated class
    for segment ratings, every class for video labels (whose targets are the labels, unchanged).
    For segment ratings, `unrated_targets` reads the reader's labels (the video labels, the rated
    class overwritten by its 0/1 score) as
      - "zero" (the paper, §3.2): a one-hot-like target, the rated class's score and 0 elsewhere;
      - "video_labels": the video labels as the targets of the unrated classes.
    Each element's BCE is weighted m on an annotated class and n on the other classes of the label
    space: with `classes` ((C,) 0/1, --unrated_classes=seen: the classes the pretraining statistics
    have seen) n on those alone and 0 on outputs no training video carries. With `smoothing`
    (P' of `graphs.thresholded_correlation`, (C, C)) the targets become y' = min(1, y + y P'), so
    under "zero" only an annotated-1 class spreads; with `keep_rated_scores` (segment ratings) a
    rated class keeps its own score. m = 1, n = 0 without smoothing is plain weighted BCE.
    Not serialisable with its matrix (losses are rebuilt from the config).
    """

    def __init__(self, m: float = 2.5, n: float = 0.1, smoothing=None, keep_rated_scores: bool = True,
                 unrated_targets: str = "zero", classes=None, epsilon: float = 1e-7,
                 name: str = "reweighted_crossentropy", **kwargs):
        super().__init__(epsilon=epsilon, name=name, **kwargs)
        if unrated_targets not in UNRATED_TARGETS:
            raise ValueError(f"unrated_targets={unrated_targets!r} is not one of {', '.join(UNRATED_TARGETS)}")
        self.m, self.n, self.keep_rated_scores = float(m), float(n), keep_rated_scores
        self.unrated_targets = unrated_targets
        self.classes = None if classes is None else np.asarray(classes, np.float32)
        self._others = self.n if self.classes is None else self.n * self.classes   # n off the annotated classes, once
        self.smoothing = None
        if smoothing is not None:
            rows, cols = np.nonzero(smoothing)  # P' is sparse: only correlations >= tau survive
            self.smoothing = tf.sparse.reorder(tf.SparseTensor(  # transposed: y P' = (P'^T y^T)^T
                np.stack([cols, rows], 1).astype("int64"), np.asarray(smoothing)[rows, cols].astype("float32"),
                np.shape(smoothing)[::-1]))

    def targets(self, y_true, rated):
        """The training targets: the segment label, then smoothed by the label correlations."""
        if self.unrated_targets == "zero":
            y_true = y_true * rated  # seed 003 §3.2: the rated class's score, 0 on every other class
        if self.smoothing is None:
            return y_true
        spread = tf.transpose(tf.sparse.sparse_dense_matmul(self.smoothing, y_true, adjoint_b=True))
        smoothed = ops.minimum(1.0, y_true + spread)  # seed 003 Eq.6: y' = min(1, y + y P')
        return ops.where(rated > 0, y_true, smoothed) if self.keep_rated_scores else smoothed

    def weights(self, rated):
        return self._others + (self.m - self._others) * rated  # seed 003 Eq.2-3: m on the annotated classes, n on the others

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true, rated = _labels_and_rated(y_true, sample_weight)
        return super().__call__(self.targets(y_true, rated), y_pred, sample_weight=self.weights(rated))

    def get_config(self):
        return {**super().get_config(), "m": self.m, "n": self.n, "keep_rated_scores": self.keep_rated_scores,
                "unrated_targets": self.unrated_targets,
                "classes": None if self.classes is None else self.classes.tolist()}


def _labels_and_rated(y_true, sample_weight):
    """The reader's labels as float32 and its weights as 0/1 "annotated" marks (all 1 without weights)."""
    y_true = ops.cast(y_true, "float32")
    rated = ops.ones_like(y_true) if sample_weight is None else ops.cast(
        ops.cast(sample_weight, "float32") > 0, "float32")
    return y_true, rated


@keras.saving.register_keras_serializable(package="yt8m")
class ClassBalancedCrossentropy(MultiLabelCrossentropy):
    """CMA Eq.12: BCE weighted per element by w_k = y_k e^{beta (1 - p_k)} + (1 - y_k) e^{beta p_k},
    p_k the label's training frequency (LabelStatistics.frequencies()): a rare label's positives
    and a frequent label's negatives weigh more. beta = 0 is plain BCE (the paper's printed
    "(1 - log y*)" read as log(1 - y*))."""

    def __init__(self, frequencies, beta: float = 1.0, epsilon: float = 1e-7,
                 name: str = "class_balanced_crossentropy", **kwargs):
        super().__init__(epsilon=epsilon, name=name, **kwargs)
        self.frequencies = np.asarray(frequencies, np.float32)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.cast(self.frequencies, y_pred.dtype)
        weights = y_true * ops.exp(self.beta * (1.0 - p)) + (1.0 - y_true) * ops.exp(self.beta * p)
        return weights * super().call(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "frequencies": self.frequencies.tolist(), "beta": self.beta}


class WeakNegativeCrossentropy(ReweightedCrossentropy):
    """2019 2nd place: cross-entropy on the rated class plus `alpha` times the MEAN cross-entropy
    towards 0 over the weak negatives, the classes neither rated nor in the video's labels.

    Per element (B, C): the targets and weights of ReweightedCrossentropy (m on the rated classes,
    n elsewhere, the unrated classes' targets per `unrated_targets`) and, added on the weak
    negatives N (not rated, not a video label, target 0 after any smoothing), alpha / |N|. So
    m = 1, n = 0 (--loss=weak_negative) is the 2nd place's loss, and m, n of seed 003
    (--loss=reweighted --weak_negative_alpha=a) is the reweighted loss plus the weak-negative term;
    --label_smoothing=correlation changes the targets first, and a class it makes positive is no
    weak negative. Video labels (every class rated) have no weak negatives: the loss is m x BCE.
    Not serialisable with its matrix (rebuilt from the config).
    """

    def __init__(self, alpha: float = 1.0, m: float = 1.0, n: float = 0.0, smoothing=None,
                 keep_rated_scores: bool = True, unrated_targets: str = "zero", classes=None, epsilon: float = 1e-7,
                 name: str = "weak_negative_crossentropy", **kwargs):
        super().__init__(m, n, smoothing, keep_rated_scores, unrated_targets, classes, epsilon=epsilon, name=name,
                         **kwargs)
        self.alpha = float(alpha)

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true, rated = _labels_and_rated(y_true, sample_weight)
        targets = self.targets(y_true, rated)
        weak = (1.0 - rated) * ops.cast((y_true <= 0) & (targets <= 0), "float32")
        count = ops.maximum(ops.sum(weak, axis=-1, keepdims=True), 1.0)
        weights = self.weights(rated) + self.alpha * weak / count  # 2019 2nd place: + alpha x mean over N
        return MultiLabelCrossentropy.__call__(self, targets, y_pred, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def needs_label_statistics(config: Config) -> bool:
    """Whether make_loss needs `label_statistics` (correlation smoothing, class frequencies, the classes
    the reweighted loss's n covers under --unrated_classes=seen)."""
    return (config.loss_.label_smoothing == "correlation" or config.loss_.loss == "class_balanced"
            or (config.loss_.loss == "reweighted" and config.loss_.unrated_classes == "seen"))


def _label_space(config: Config, label_statistics):
    """(C,) 0/1: the classes seen by the pretraining statistics (--unrated_classes=seen), else None (all)."""
    if config.loss_.unrated_classes != "seen":
        return None
    if label_statistics is None:
        raise ValueError("--unrated_classes=seen needs the label statistics")
    return (np.asarray(label_statistics.counts) > 0).astype(np.float32)


def make_loss(config: Config, label_statistics=None) -> keras.losses.Loss:
    """The loss named by --loss; `label_statistics` (a LabelStatistics) when needs_label_statistics(config)."""
    smoothing = None
    if config.loss_.label_smoothing == "correlation":
        from yt8m.labels import graphs

        if label_statistics is None:
            raise ValueError("--label_smoothing=correlation needs the label statistics")
        smoothing = graphs.thresholded_correlation(label_statistics, config.loss_.tau)
    alpha = config.loss_.effective_weak_negative_alpha
    if config.loss_.loss == "weak_negative" or (config.loss_.loss == "reweighted" and alpha > 0):
        m, n = (1.0, 0.0) if config.loss_.loss == "weak_negative" else (config.loss_.reweight_m, config.loss_.reweight_n)
        classes = _label_space(config, label_statistics) if config.loss_.loss == "reweighted" else None
        return WeakNegativeCrossentropy(alpha, m, n, smoothing, keep_rated_scores=config.data.segment_labels,
                                        unrated_targets=config.loss_.unrated_targets, classes=classes)
    if config.loss_.loss == "reweighted":
        return ReweightedCrossentropy(config.loss_.reweight_m, config.loss_.reweight_n, smoothing,
                                      keep_rated_scores=config.data.segment_labels, unrated_targets=config.loss_.unrated_targets,
                                      classes=_label_space(config, label_statistics))
    if config.loss_.loss == "class_balanced":
        if smoothing is not None:
            raise ValueError("--label_smoothing=correlation works with --loss=bce or reweighted, not class_balanced")
        if label_statistics is None:
            from yt8m.labels import context

            label_statistics = context.label_statistics(config)
        return ClassBalancedCrossentropy(label_statistics.frequencies(), config.loss_.beta)
    if config.loss_.loss == "bce" and smoothing is not None:  # weighted BCE on smoothed targets
        return ReweightedCrossentropy(1.0, 0.0, smoothing, keep_rated_scores=config.data.segment_labels,
                                      unrated_targets=config.loss_.unrated_targets)
    if config.loss_.loss == "bce":
        return MultiLabelCrossentropy()
    raise ValueError(f"unknown loss {config.loss_.loss!r}")
