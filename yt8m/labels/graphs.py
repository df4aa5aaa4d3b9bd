"""Label graphs derived from label statistics and knowledge (numpy, offline).

One function per paper equation, each cited in a one-line comment. Models get
the results as arrays (LabelNodes weights); nothing here is a Keras op.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np
import pandas as pd
import tensorflow as tf

from yt8m.errors import UserError

EDGE_COLUMNS = ("head", "relation", "tail", "weight")
VOCABULARY_FILE = "vocabulary.csv"
# Vertical knowledge for YouTube-8M (vocabulary.csv): two classes that share their
# first vertical are related with weight 1, two that share only a secondary one
# (Vertical2/3) with weight 0.5 (Eq.1 with two "relations", max over them).
PRIMARY_VERTICAL_WEIGHT = 1.0
SECONDARY_VERTICAL_WEIGHT = 0.5


# ------------------------------------------------------------ ML-GCN


def mlgcn_adjacency(conditional: np.ndarray, t: float = 0.4, p: float = 0.25) -> np.ndarray:
    """ML-GCN Eq.7-8 (Chen et al. 2019): binarise P_ij = P(j|i) at t, scale each column to sum p, add I.

    Reference: COCO with t=0.4, p=0.25 sums to 85.75 (before normalising).
    """
    binary = (np.asarray(conditional, np.float64) >= t).astype(np.float64)
    column_sums = binary.sum(axis=0, keepdims=True)
    reweighted = binary * p / (column_sums + 1e-6)
    return reweighted + np.eye(len(binary))


def mlgcn_normalize(adjacency: np.ndarray) -> np.ndarray:
    """ML-GCN's gen_adj: D^-1/2 A^T D^-1/2 with D the row sums of A (note the transpose)."""
    inv_sqrt = _inverse_sqrt(np.asarray(adjacency, np.float64).sum(axis=1))
    return inv_sqrt[:, None] * np.asarray(adjacency, np.float64).T * inv_sqrt[None, :]


# ------------------------------------------------------------ KSSNet


def symmetric_normalize(adjacency: np.ndarray) -> np.ndarray:
    """KSSNet Eq.3 (and the GCN's Eq.6 normalisation): A' = D^-1/2 A D^-1/2, D the row sums (0 rows stay 0)."""
    adjacency = np.asarray(adjacency, np.float64)
    inv_sqrt = _inverse_sqrt(adjacency.sum(axis=1))
    return inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


def knowledge_adjacency(edges: pd.DataFrame, num_classes: int,
                        relation_weights: Mapping[str, float] | None = None,
                        symmetric: bool = True) -> np.ndarray:
    """KSSNet Eq.1: A_K[i, j] = max over relations r of w_r * s_r(i, j).

    `edges` has integer `head`/`tail` class indices, a `relation` name and the
    edge's `weight` s_r(i, j) (ConceptNet's edge weight). w_r comes from
    `relation_weights` (relations not listed weigh 1). Undirected by default:
    an edge i->j also relates j to i. The diagonal is zero (Eq.4 adds I).
    """
    weights = relation_weights or {}
    adjacency = np.zeros((num_classes, num_classes))
    if len(edges):
        head = edges["head"].to_numpy(np.int64)
        tail = edges["tail"].to_numpy(np.int64)
        value = edges["weight"].to_numpy(np.float64) * np.array(
            [weights.get(str(r), 1.0) for r in edges["relation"]], np.float64)
        np.maximum.at(adjacency, (head, tail), value)
        if symmetric:
            np.maximum.at(adjacency, (tail, head), value)
    np.fill_diagonal(adjacency, 0.0)
    return adjacency


def vertical_knowledge_adjacency(class_verticals: Mapping[int, tuple[str, ...]], num_classes: int) -> np.ndarray:
    """KSSNet Eq.1 for YouTube-8M's vocabulary: classes sharing a vertical are related.

    Two relations: "same first vertical" (weight PRIMARY_VERTICAL_WEIGHT) and
    "share any vertical" (SECONDARY_VERTICAL_WEIGHT); the max of the two.
    `class_verticals` maps a class Index to its verticals (vocabulary.verticals).
    """
    rows = []
    by_primary: dict[str, list[int]] = {}
    by_any: dict[str, list[int]] = {}
    for index, names in class_verticals.items():
        if not 0 <= index < num_classes or not names:
            continue
        by_primary.setdefault(names[0], []).append(index)
        for name in names:
            by_any.setdefault(name, []).append(index)
    for relation, groups, weight in (("primary", by_primary, PRIMARY_VERTICAL_WEIGHT),
                                     ("any", by_any, SECONDARY_VERTICAL_WEIGHT)):
        for members in groups.values():
            members = np.asarray(members)
            head, tail = np.meshgrid(members, members, indexing="ij")
            rows.append(pd.DataFrame({"head": head.ravel(), "relation": relation, "tail": tail.ravel(),
                                      "weight": weight}))
    edges = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(EDGE_COLUMNS))
    return knowledge_adjacency(edges, num_classes)


def superimpose(statistical: np.ndarray, knowledge: np.ndarray, lam: float = 0.6) -> np.ndarray:
    """KSSNet Eq.2-3: A = lambda A'_S + (1 - lambda) A'_K, normalised again as mathkey/mssnet's graph is.

    A'_S = mlgcn_normalize(A_S) (A_S the ML-GCN adjacency: ML-GCN's propagation direction),
    A'_K = symmetric_normalize(A_K); the mix is then symmetric_normalize'd, so its top eigenvalue is 1
    (D^-1/2 A D^-1/2 is similar to the row-stochastic D^-1 A) and tau filters a graph of one scale
    whatever lambda. Symmetric when A_S is; A_S from P(j|i) is directed, as ML-GCN's own graph.
    """
    mixed = lam * mlgcn_normalize(statistical) + (1.0 - lam) * symmetric_normalize(knowledge)
    return symmetric_normalize(mixed)


def ks_adjacency(conditional: np.ndarray, knowledge: np.ndarray, lam: float = 0.6, tau: float = 0.03,
                 eta: float = 0.4, t: float = 0.4, p: float = 0.25) -> np.ndarray:
    """KSSNet Eq.2-4 as seed 000 / mssnet build it: A_S = mlgcn_adjacency(P(j|i), t, p) ("following
    Chen et al."), superimposed on A_K (`superimpose`); A_tau zeroes its entries below tau;
    A_KS = eta A_tau + (1-eta) I.

    The GCN then uses symmetric_normalize(A_KS) (LabelNodes does it on the fly, as mssnet after eta).
    lam=1 is the statistics-only graph, lam=0 knowledge only, eta=0 no graph (I).
    """
    superimposed = superimpose(mlgcn_adjacency(conditional, t=t, p=p), knowledge, lam)
    thresholded = np.where(superimposed >= tau, superimposed, 0.0)
    return (eta * thresholded + (1.0 - eta) * np.eye(len(thresholded))).astype(np.float32)


# ------------------------------------------------------------ ASGE


def asge_graph(statistics) -> tuple[np.ndarray, np.ndarray]:
    """CMA Eq.1-2: A_ij = P(v_i | v_j) = M_ij / N_j and its symmetrisation A' = (A + A^T) / 2."""
    graph = np.asarray(statistics.conditional_probability(), np.float64).T
    return graph, (graph + graph.T) / 2.0


# ------------------------------------------------------------ seed 003 (label correlation)


def thresholded_correlation(stats, tau: float = 0.5) -> np.ndarray:
    """P'_ij = P_ij if P_ij >= tau else 0, zero diagonal; P_ij = M_ij / N_i = P(j | i) (seed 003 Eq.5)."""
    conditional = np.asarray(stats.conditional_probability(), np.float64)
    smoothed = np.where(conditional >= tau, conditional, 0.0)
    np.fill_diagonal(smoothed, 0.0)
    return smoothed


# ------------------------------------------------------------ files


def read_knowledge_edges(path: str, num_classes: int, names: Mapping[str, int] | None = None) -> pd.DataFrame:
    """An edge list CSV `head,relation,tail,weight` (ConceptNet style) with class indices or names.

    `head`/`tail` are class indices, or class names looked up in `names`
    (vocabulary Name -> Index). Rows naming classes outside the label space are
    an error; a missing weight column means 1.
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"--knowledge_edges={path} does not exist; give a CSV with header "
                        f"{','.join(EDGE_COLUMNS)}")
    with tf.io.gfile.GFile(path) as handle:
        try:
            table = pd.read_csv(handle, dtype={"head": str, "tail": str, "relation": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserError(f"--knowledge_edges={path} is not a readable CSV: {exc}") from None
    missing = [c for c in ("head", "relation", "tail") if c not in table.columns]
    if missing:
        raise UserError(f"--knowledge_edges={path} lacks the columns {missing}; expected header "
                        f"{','.join(EDGE_COLUMNS)}")
    if "weight" not in table.columns:
        table["weight"] = 1.0
    for column in ("head", "tail"):
        table[column] = [_class_index(value, names, path) for value in table[column]]
    outside = table[(table["head"] >= num_classes) | (table["tail"] >= num_classes)]
    if len(outside):
        raise UserError(f"--knowledge_edges={path} names class {int(outside[['head', 'tail']].max().max())}, "
                        f"outside --num_classes={num_classes}")
    table["weight"] = pd.to_numeric(table["weight"], errors="coerce").fillna(0.0)
    return table[list(EDGE_COLUMNS)]


def _class_index(value, names, path) -> int:
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    if names and text in names:
        return int(names[text])
    raise UserError(f"--knowledge_edges={path}: {text!r} is neither a class index nor a vocabulary name")


def default_vocabulary_file(data_pattern: str) -> str:
    """vocabulary.csv in the training files' directory or its parent (the synthetic and the
    official download layouts), or '' when there is none."""
    first = (data_pattern or "").split(",")[0].strip()
    if not first:
        return ""
    directory = os.path.dirname(first)
    for candidate in (directory, os.path.dirname(directory)):
        path = os.path.join(candidate, VOCABULARY_FILE) if candidate else VOCABULARY_FILE
        if tf.io.gfile.exists(path):
            return path
    return ""


@dataclasses.dataclass(frozen=True)
class KnowledgeSource:
    """Where the knowledge graph came from (printed by the run)."""

    description: str
    adjacency: np.ndarray


def knowledge_graph(num_classes: int, *, edges_file: str = "", vocabulary_file: str = "",
                    relation_weights: Mapping[str, float] | None = None) -> KnowledgeSource:
    """A_K from an edge list when given, else from the vocabulary's verticals, else empty (zero)."""
    from yt8m.data import vocabulary

    names = None
    table = vocabulary.read_vocabulary(vocabulary_file) if vocabulary_file else None
    if table is not None:
        names = {str(n): int(i) for n, i in zip(table["Name"], table["Index"])}
    if edges_file:
        edges = read_knowledge_edges(edges_file, num_classes, names)
        return KnowledgeSource(f"edges of {edges_file}",
                               knowledge_adjacency(edges, num_classes, relation_weights))
    if table is not None:
        return KnowledgeSource(f"shared verticals of {vocabulary_file}",
                               vertical_knowledge_adjacency(vocabulary.verticals(table), num_classes))
    return KnowledgeSource("none (no --knowledge_edges, no vocabulary.csv)", np.zeros((num_classes, num_classes)))


def _inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    return np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-300)), 0.0)
