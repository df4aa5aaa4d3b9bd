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
from yt8m.rundir import CONFIG_FILE, STATS_FILE
from yt8m.errors import UserError
from yt8m.labels import embeddings
from yt8m.labels.statistics import LabelStatistics, count_labels

LABEL_PARAMS = ("label_statistics", "label_embeddings", "label_graph")


def label_params(config: Config, wanted, stats: LabelStatistics | None = None) -> dict:
    """The LABEL_PARAMS among `wanted`, computed or loaded once each (`stats` when already at hand)."""
    wanted = set(wanted) & set(LABEL_PARAMS)
    if not wanted:
        return {}
    stats = stats if stats is not None else label_statistics(config, save=False)
    params = {"label_statistics": stats}
    if "label_embeddings" in wanted:
        params["label_embeddings"] = embeddings.initial_embeddings(config, stats)
    if "label_graph" in wanted:
        params["label_graph"] = ks_label_graph(config, stats)
    return {name: params[name] for name in wanted}


def label_statistics(config: Config, save: bool = True) -> LabelStatistics:
    """The label statistics of the pretraining set (DESIGN.md §4), never of the finetune files:
    --label_stats if given; else for a pretrain its own label_stats.npz (when counted on its records)
    or a count of its --train_data_pattern (--clip_data_pattern for clip models); for a finetune
    --init_from's label_stats.npz, else a count of the training records named by --init_from's
    config.json (followed back through earlier finetunes). With `save`, a copy goes to --train_dir.
    The log names the source."""
    stats, path = (_loaded(config.data.label_stats) if config.data.label_stats else
                   _pretrain_run_statistics(config.training.init_from) if config.training.stage == "finetune" else
                   _own_statistics(config))
    target = os.path.join(config.training.train_dir, STATS_FILE) if save and config.training.train_dir else ""
    saved = f", saved as {target}" if target and not _same_file(path, target) else ""
    print(f"label statistics: {path + ', ' if path else ''}{stats.description}{saved}")
    if saved:
        stats.save(target)
    return stats


def _loaded(path: str) -> tuple[LabelStatistics, str]:
    return LabelStatistics.load(path), path


def _own_statistics(config: Config) -> tuple[LabelStatistics, str]:
    """A pretrain's saved copy when it was counted on the run's own records (or says not), else a count."""
    saved = os.path.join(config.training.train_dir, STATS_FILE) if config.training.train_dir else ""
    if saved and tf.io.gfile.exists(saved):
        stats = LabelStatistics.load(saved)
        if stats.counted_on in ("", "--{}={}".format(*_counted_flag(config))):
            return stats, saved
    return _count(config), ""


def _pretrain_run_statistics(init_from: str, followed: tuple[str, ...] = ()) -> tuple[LabelStatistics, str]:
    """--init_from's label_stats.npz, else a count of the records its config.json trained on."""
    saved = os.path.join(init_from, STATS_FILE)
    if tf.io.gfile.exists(saved):
        return _loaded(saved)
    run_config = os.path.join(init_from, CONFIG_FILE)
    if not tf.io.gfile.exists(run_config) or init_from in followed:
        raise UserError(f"no label statistics for the finetune: --init_from={init_from!r} has neither "
                        f"{STATS_FILE} nor a config.json naming its training files; give --label_stats=FILE "
                        f"(the pretraining set's {STATS_FILE}) or an --init_from written by train.py")
    pretrain = Config.load(run_config)
    if pretrain.training.stage == "finetune":
        return _pretrain_run_statistics(pretrain.training.init_from, followed + (init_from,))
    print(f"{init_from} has no {STATS_FILE}: counting the pretrain run's training records "
          f"(from its config.json)")
    try:
        return _count(pretrain), ""
    except UserError as exc:
        raise UserError(f"cannot count the label statistics of --init_from={init_from!r}'s training records "
                        f"({exc}); give --label_stats=FILE") from None


def _counted_flag(config: Config) -> tuple[str, str]:
    """The flag and pattern of the records a pretrain counts: its clips or its training records."""
    if config.data.clip_data_pattern:
        return "clip_data_pattern", config.data.clip_data_pattern
    return "train_data_pattern", config.data.train_data_pattern


def _count(config: Config) -> LabelStatistics:
    flag, pattern = _counted_flag(config)
    clip_records = flag == "clip_data_pattern"  # clip records keep their labels in a SequenceExample context
    return count_labels(pattern, config.data.num_classes, frame_features=config.data.frame_features or clip_records,
                        flag=flag, progress=True, skip_corrupt_records=config.data.skip_corrupt_records)


def _same_file(path: str, other: str) -> bool:
    return bool(path) and os.path.abspath(path) == os.path.abspath(other)


def ks_label_graph(config: Config, stats: LabelStatistics) -> np.ndarray:
    """(C, C) float32 A_KS (KSSNet Eq.1-4, yt8m/labels/graphs.ks_adjacency): the ML-GCN adjacency of the
    statistics' P(j|i) (t=0.4, p=0.25) superimposed on the knowledge graph of --knowledge_edges, else of
    the shared verticals of --vocabulary_file (default:
    vocabulary.csv beside the training records or in their parent directory), with --ks_lambda/tau/eta."""
    from yt8m.labels import graphs

    vocabulary_file = config.data.vocabulary_file or graphs.default_vocabulary_file(
        config.data.clip_data_pattern or config.data.train_data_pattern)
    knowledge = graphs.knowledge_graph(stats.num_classes, edges_file=config.model_.knowledge_edges,
                                       vocabulary_file=vocabulary_file)
    graph = graphs.ks_adjacency(stats.conditional_probability(), knowledge.adjacency, lam=config.model_.ks_lambda,
                                tau=config.model_.ks_tau, eta=config.model_.ks_eta)
    edges = int(np.count_nonzero(graph) - np.count_nonzero(np.diag(graph)))
    print(f"KS label graph: knowledge from {knowledge.description}; lambda={config.model_.ks_lambda}, "
          f"tau={config.model_.ks_tau}, eta={config.model_.ks_eta}: {edges} edges between {stats.num_classes} labels")
    return graph
