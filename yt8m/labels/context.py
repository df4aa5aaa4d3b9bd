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

LABEL_PARAMS = ("label_statistics", "label_embeddings", "label_graph")
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
    if "label_graph" in wanted:
        params["label_graph"] = ks_label_graph(config, stats)
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
    flag, pattern = (("clip_data_pattern", config.clip_data_pattern) if config.clip_data_pattern
                     else ("train_data_pattern", config.train_data_pattern))
    print(f"counting labels of --{flag}={pattern} for the label graph")
    clip_records = flag == "clip_data_pattern"  # clip records keep their labels in a SequenceExample context
    stats = count_labels(pattern, config.num_classes, frame_features=config.frame_features or clip_records, flag=flag)
    if config.train_dir:
        stats.save(os.path.join(config.train_dir, STATS_FILE))
    return stats


def ks_label_graph(config: Config, stats: LabelStatistics) -> np.ndarray:
    """(C, C) float32 A_KS (KSSNet Eq.1-4, yt8m/labels/graphs.py): the statistics' P(j|i) superimposed on
    the knowledge graph of --knowledge_edges, else of the shared verticals of --vocabulary_file (default:
    vocabulary.csv beside the training records or in their parent directory), with --ks_lambda/tau/eta."""
    from yt8m.labels import graphs

    vocabulary_file = config.vocabulary_file or graphs.default_vocabulary_file(
        config.clip_data_pattern or config.train_data_pattern)
    knowledge = graphs.knowledge_graph(stats.num_classes, edges_file=config.knowledge_edges,
                                       vocabulary_file=vocabulary_file)
    graph = graphs.ks_adjacency(stats.conditional_probability(), knowledge.adjacency, lam=config.ks_lambda,
                                tau=config.ks_tau, eta=config.ks_eta)
    edges = int(np.count_nonzero(graph) - np.count_nonzero(np.diag(graph)))
    print(f"KS label graph: knowledge from {knowledge.description}; lambda={config.ks_lambda}, "
          f"tau={config.ks_tau}, eta={config.ks_eta}: {edges} edges between {stats.num_classes} labels")
    return graph
