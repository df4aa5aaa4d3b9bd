"""Offline label knowledge a model or loss asks for: statistics and initial label embeddings.

A registry builder that declares a keyword parameter named in LABEL_PARAMS gets
it from here: `label_statistics` (a LabelStatistics) or `label_embeddings`
(a (C, E) float32 array). Models never read files; this module does.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from yt8m.config import Config
from yt8m.labels import embeddings
from yt8m.labels.statistics import LabelStatistics, count_labels

LABEL_PARAMS = ("label_statistics", "label_embeddings")
STATS_FILE = "label_stats.npz"


def label_params(config: Config, wanted) -> dict:
    """The LABEL_PARAMS among `wanted`, computed or loaded once each."""
    wanted = set(wanted) & set(LABEL_PARAMS)
    if not wanted:
        return {}
    stats = label_statistics(config)
    params = {"label_statistics": stats}
    if "label_embeddings" in wanted:
        params["label_embeddings"] = embeddings.initial_embeddings(config, stats)
    return {name: params[name] for name in wanted}


def label_statistics(config: Config) -> LabelStatistics:
    """--label_stats if given; else the run's (or its --init_from's) saved copy; else counted from
    the training records' video labels and saved beside the run."""
    if config.label_stats:
        return LabelStatistics.load(config.label_stats)
    for run in (config.train_dir, config.init_from):
        saved = os.path.join(run, STATS_FILE) if run else ""
        if saved and tf.io.gfile.exists(saved):
            return LabelStatistics.load(saved)
    print(f"counting labels of --train_data_pattern={config.train_data_pattern} for the label graph")
    stats = count_labels(config.train_data_pattern, config.num_classes, frame_features=config.frame_features)
    if config.train_dir:
        stats.save(os.path.join(config.train_dir, STATS_FILE))
    return stats
