"""Initial label embeddings for the graph models: a file the user gives, or a default."""
from __future__ import annotations

import numpy as np

from yt8m.config import Config
from yt8m.errors import UserError


def initial_embeddings(config: Config, stats) -> np.ndarray:
    """(C, E) float32: `--label_embeddings` (.npy of shape (C, E)) or, without one, seeded random vectors."""
    if config.label_embeddings:
        if not config.label_embeddings.endswith(".npy"):
            raise UserError(f"--label_embeddings={config.label_embeddings!r}: give a .npy array of shape "
                            f"(num_classes, dim)")
        array = np.load(config.label_embeddings).astype(np.float32)
        if array.ndim != 2 or array.shape[0] != stats.num_classes:
            raise UserError(f"--label_embeddings has shape {array.shape}; expected ({stats.num_classes}, dim)")
        return array
    rng = np.random.default_rng(config.seed)
    return rng.standard_normal((stats.num_classes, config.label_embedding_dim)).astype(np.float32)
