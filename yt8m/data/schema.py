"""The YouTube-8M record format: feature names, sizes and the 8-bit quantisation.

Everything here is the official format (google/youtube-8m); the readers and the
synthetic generator take their facts from here. What a model itself relies on (the
input keys, dequantisation, the 5-frame segment) is models/contract.py's, named here too.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from models.contract import (CLIP_INPUT, FRAMES_INPUT, MAX_QUANTIZED, NUM_FRAMES_INPUT,  # noqa: F401
                             SEGMENT_FRAMES, SEGMENT_STARTS_INPUT, VIDEO_INPUT, dequantize)

NUM_CLASSES = 3862          # the 2018/2019 vocabulary
MAX_FRAMES = 300            # one frame per second, at most 300 per video

# Record keys, as written by the official dataset.
ID_KEY = "id"
LABELS_KEY = "labels"
SEGMENT_LABELS_KEY = "segment_labels"
SEGMENT_START_KEY = "segment_start_times"
SEGMENT_SCORES_KEY = "segment_scores"

VIDEO_FEATURE_NAMES = ("mean_rgb", "mean_audio")
FRAME_FEATURE_NAMES = ("rgb", "audio")
FEATURE_SIZES = (1024, 128)

# Clip records (Charades frames layout): a SequenceExample with context `id`,
# `labels` and one JPEG-encoded RGB frame per step in the feature list below.
CLIP_FRAME_KEY = "image/encoded"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Which features to read and how wide each is, like the starter's flags."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def __post_init__(self):
        if len(self.names) != len(self.sizes):
            raise ValueError(
                f"--feature_names has {len(self.names)} entries but --feature_sizes has "
                f"{len(self.sizes)}; give one size per feature name")
        if not self.names:
            raise ValueError("--feature_names is empty; give at least one feature, e.g. rgb,audio")
        if any(s <= 0 for s in self.sizes):
            raise ValueError(f"--feature_sizes must be positive, got {self.sizes}")

    @property
    def total_size(self) -> int:
        return int(sum(self.sizes))

    @classmethod
    def parse(cls, names: str | None, sizes: str | None, frame_features: bool) -> "FeatureSpec":
        """From the comma-separated flag strings; empty means the official defaults."""
        default_names = FRAME_FEATURE_NAMES if frame_features else VIDEO_FEATURE_NAMES
        name_list = tuple(n.strip() for n in names.split(",") if n.strip()) if names else default_names
        if sizes:
            try:
                size_list = tuple(int(s) for s in sizes.split(",") if s.strip())
            except ValueError:
                raise ValueError(f"--feature_sizes must be comma-separated integers, got {sizes!r}") from None
        else:
            size_list = FEATURE_SIZES[: len(name_list)]
        return cls(name_list, size_list)


def quantize(x: np.ndarray, max_quantized_value: float = MAX_QUANTIZED,
             min_quantized_value: float = -MAX_QUANTIZED) -> np.ndarray:
    """Inverse of `dequantize` up to the bin width: q = round((clip(x) - min) * 255/range)."""
    quantized_range = max_quantized_value - min_quantized_value
    clipped = np.clip(x, min_quantized_value, max_quantized_value)
    return np.round((clipped - min_quantized_value) * 255.0 / quantized_range).astype(np.uint8)
