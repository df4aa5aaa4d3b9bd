"""Deterministic synthetic YouTube-8M data in the official format: the project's default dataset.

The generative story (docs/ARCHITECTURE.md, DESIGN.md section 5):
- classes come in verticals; each vertical is a tree of classes: its top
  class and children (`branching` > 0: up to three levels, top -> parent ->
  kind); a video draws kinds (the tree's leaves) with Zipf-like frequencies
  of verticals and kinds, and a kind brings its ancestors along, so
  P(parent | kind) >> P(kind | parent);
- each class has an rgb and an audio prototype sharing a direction with its
  vertical (below the top level: with its parent's prototype), so a kind
  carries its ancestors' directions; "audible" classes have a weak rgb and a
  strong audio prototype; a class with children shows its own prototype
  scaled by `parent_evidence` (weak or none: it is seen through its kinds);
- a class is active on a few intervals of the video, an ancestor also
  (`ancestor_own_spans=False`: only) wherever any of its descendants is;
  frames are the active classes' prototypes (a weak trace of them elsewhere
  in the video) plus video-level and frame noise, quantised to uint8 the
  official way;
- video-level labels miss a fraction of the true classes (ancestors of a
  present class at their own rate, `ancestor_miss_rate`);
- validate/test videos carry segment ratings of a present rated class (an
  ancestor of a present class chosen with weight `ancestor_rating_weight`):
  one class per rated segment, 0/1 by true presence, positives, hard
  negatives (class in the video, not in the segment) and plain negatives (a
  related class absent from the video), with a little rater noise.
  The test truth goes to `frame/test_truth.csv`, never into the test records.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
import pandas as pd
import tensorflow as tf

from yt8m.data import schema
from yt8m.data import vocabulary
from yt8m.errors import UserError
from yt8m.fileio import atomic_output
from yt8m.progress import interactive

RGB_SIZE, AUDIO_SIZE = schema.FEATURE_SIZES
SPLITS = ("train", "validate", "test")
MARKER_FILE = "synthetic.json"      # written last: its presence means the set is complete
ID_ALPHABET = np.array(list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
ID_LENGTH = 4                       # official 2018+ ids are 4 characters


def _local_parents(per: int, branching: int) -> np.ndarray:
    """Parent of each class of a vertical (local index, -1 for the top): a tree filled breadth first."""
    local = np.arange(per)
    return np.where(local == 0, -1, (local - 1) // (branching or per - 1))


def _local_levels(per: int, branching: int) -> np.ndarray:
    """Depth of each class of a vertical's tree (the top is 0)."""
    parents, levels = _local_parents(per, branching), np.zeros(per, np.int64)
    for c in range(1, per):            # parents come first (breadth first)
        levels[c] = levels[parents[c]] + 1
    return levels


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Every size and knob of the generator; the defaults are the `easy` preset (flat verticals)."""

    seed: int = 0
    num_classes: int = schema.NUM_CLASSES     # label space; active ids are drawn inside it
    num_verticals: int = 10
    classes_per_vertical: int = 10            # one parent plus children
    branching: int = 0                        # children per class, breadth first; 0: all under the top
    num_rated_classes: int = 60               # active classes rated at segment level
    num_train_videos: int = 1500
    num_validate_videos: int = 400
    num_test_videos: int = 400
    min_frames: int = 30
    max_frames: int = 120
    files_per_split: int = 4
    zipf_exponent: float = 1.0                # verticals and children within a vertical
    parent_only_rate: float = 0.25            # a vertical shows only its parent class
    extra_children_mean: float = 0.5          # Poisson mean of children beyond the first
    parent_given_child: float = 0.9           # a kind brings its ancestors along
    parent_evidence: float = 1.0              # own prototype strength of a class with children
    ancestor_own_spans: bool = True           # an ancestor of a present kind has intervals of its own
    second_vertical_rate: float = 0.25        # a video touches a second vertical
    max_intervals: int = 3                    # active intervals per class
    min_interval_fraction: float = 0.1        # of the video's length
    max_interval_fraction: float = 0.4
    vertical_share: float = 0.5               # prototype variance shared with the vertical
    audible_fraction: float = 0.2             # classes with weak rgb, strong audio
    rgb_signal: float = 1.5                   # prototype norms
    audio_signal: float = 0.8
    audible_rgb_scale: float = 0.2
    audible_audio_scale: float = 2.0
    frame_noise: float = 0.5                  # per-dimension standard deviations
    video_noise: float = 0.25
    leak: float = 0.3                         # prototype strength outside the class's intervals
    label_miss_rate: float = 0.15             # true classes missing from the video labels
    ancestor_miss_rate: float | None = None   # the same for ancestors of a present class; None: as above
    rated_segments_per_class: int = 5
    ancestor_rating_weight: float = 1.0       # chance of a present ancestor being the rated class, vs a kind
    rated_positive_share: float = 0.4         # of a present class's rated segments; the rest hard negatives
    plain_negative_rate: float = 1.0          # a video also gets an absent class rated 0
    plain_negative_segments: int = 3
    rating_noise: float = 0.05                # rater flips a 0/1 score

    def __post_init__(self):
        problems = []
        if not schema.SEGMENT_FRAMES * 2 <= self.min_frames <= self.max_frames <= schema.MAX_FRAMES:
            problems.append(f"need {2 * schema.SEGMENT_FRAMES} <= min_frames <= max_frames <= "
                            f"{schema.MAX_FRAMES}")
        if self.num_verticals < 2 or self.classes_per_vertical < 2:
            problems.append("need at least 2 verticals of at least 2 classes")
        elif self.branching < 0 or self.hierarchy_levels > 3:
            problems.append("need branching >= 0 and at most 3 levels (top, parent, kind) per vertical")
        misses = [self.label_miss_rate, self.ancestor_miss_rate, self.parent_evidence, self.parent_given_child]
        if not all(value is None or 0.0 <= value <= 1.0 for value in misses):
            problems.append("label_miss_rate, ancestor_miss_rate, parent_evidence and parent_given_child "
                            "are in [0, 1]")
        if not 1 <= self.num_rated_classes <= self.num_active_classes:
            problems.append("need 1 <= num_rated_classes <= num_verticals * classes_per_vertical")
        if self.files_per_split < 1 or min(self.num_train_videos, self.num_validate_videos,
                                           self.num_test_videos) < self.files_per_split:
            problems.append("every split needs at least files_per_split (>= 1) videos")
        if not 0.0 <= self.rated_positive_share <= 1.0 or not 0.0 <= self.plain_negative_rate <= 1.0:
            problems.append("rated_positive_share and plain_negative_rate are shares in [0, 1]")
        if self.num_active_classes > self.num_classes:
            problems.append("more active classes than num_classes")
        if problems:
            raise ValueError(f"bad SyntheticConfig: {'; '.join(problems)}")

    @property
    def num_active_classes(self) -> int:
        return self.num_verticals * self.classes_per_vertical

    @property
    def hierarchy_levels(self) -> int:
        """Levels of a vertical's tree: 2 when flat (top and children), more with a small `branching`."""
        return int(_local_levels(self.classes_per_vertical, self.branching).max()) + 1

    @classmethod
    def small(cls, seed: int = 0) -> "SyntheticConfig":
        """A few seconds to generate: the tests' dataset."""
        return cls(seed=seed, num_verticals=5, classes_per_vertical=8, num_rated_classes=24,
                   num_train_videos=96, num_validate_videos=48, num_test_videos=48,
                   min_frames=20, max_frames=60, files_per_split=2)

    @classmethod
    def easy(cls, seed: int = 0) -> "SyntheticConfig":
        """Flat verticals, strong prototypes, long spans: the demo before the proving ground."""
        return cls(seed=seed)

    @classmethod
    def proving(cls, seed: int = 0) -> "SyntheticConfig":
        """The hard regime (DESIGN.md section 5): label dependency decides the segment score.

        Three-level verticals (top -> 3 parents -> 9 kinds) whose classes with
        children show little of their own, video labels that often miss a present
        kind's ancestors, weak prototypes in strong noise, short spans, and a
        validate split big enough for finetuning on its ratings to matter.
        """
        return cls(seed=seed, num_verticals=8, classes_per_vertical=13, branching=3, num_rated_classes=60,
                   num_train_videos=600, num_validate_videos=800, num_test_videos=400,
                   min_frames=30, max_frames=90, parent_only_rate=0.05, parent_given_child=1.0,
                   parent_evidence=0.25, rgb_signal=1.0, audio_signal=0.5, frame_noise=0.8,
                   min_interval_fraction=0.05, max_interval_fraction=0.2, label_miss_rate=0.1,
                   ancestor_miss_rate=0.3, ancestor_own_spans=False, ancestor_rating_weight=0.2)

    @classmethod
    def demo(cls, seed: int = 0) -> "SyntheticConfig":
        """The default of `python train.py`: the proving ground."""
        return cls.proving(seed)


@dataclasses.dataclass(frozen=True)
class SyntheticPaths:
    """Where a generated set lives: files and glob patterns, ready for the readers' flags."""

    root: str
    vocabulary: str
    video_train: str
    frame_train: str
    frame_validate: str
    frame_test: str
    test_truth: str
    num_classes: int


@dataclasses.dataclass(frozen=True)
class _Classes:
    """The active classes, indexed 0..K-1 (vertical-major, each vertical's tree breadth first)."""

    ids: np.ndarray        # (K,) vocabulary ids
    vertical: np.ndarray   # (K,)
    parent: np.ndarray     # (K,) index of the parent class, -1 for a vertical's top class
    ancestor: np.ndarray   # (K, K) bool: [a, c] when a is a strict ancestor of c
    rated: np.ndarray      # (K,) bool
    audible: np.ndarray    # (K,) bool
    rgb: np.ndarray        # (K, 1024) float32 prototypes
    audio: np.ndarray      # (K, 128)

    @property
    def inner(self) -> np.ndarray:
        """(K,) bool: classes with children."""
        return self.ancestor.any(axis=1)


@dataclasses.dataclass(frozen=True)
class _Video:
    id: str
    rgb: np.ndarray        # (T, 1024) uint8
    audio: np.ndarray      # (T, 128) uint8
    labels: np.ndarray     # sorted vocabulary ids (the incomplete video-level labels)
    present: np.ndarray    # sorted indices of the classes truly present (not written)
    ratings: tuple[np.ndarray, np.ndarray, np.ndarray] | None   # class ids, start times, scores


def dataset_paths(output_dir: str, num_classes: int = schema.NUM_CLASSES) -> SyntheticPaths:
    """The paths `generate` writes under `output_dir`."""
    frame = os.path.join(output_dir, "frame")
    return SyntheticPaths(
        root=output_dir,
        vocabulary=os.path.join(output_dir, "vocabulary.csv"),
        video_train=os.path.join(output_dir, "video", "train*.tfrecord"),
        frame_train=os.path.join(frame, "train*.tfrecord"),
        frame_validate=os.path.join(frame, "validate*.tfrecord"),
        frame_test=os.path.join(frame, "test*.tfrecord"),
        test_truth=os.path.join(frame, "test_truth.csv"),
        num_classes=num_classes)


def generate(output_dir: str, config: SyntheticConfig = SyntheticConfig(),
             progress: bool = True) -> SyntheticPaths:
    """Write the whole synthetic set under `output_dir` (every file atomically) and return its paths."""
    paths = dataset_paths(output_dir, config.num_classes)
    _clear_previous_set(output_dir)
    classes = _make_classes(config)
    ids = _video_ids(config)
    report = _progress_reporter(sum(len(split_ids) for split_ids in ids), progress)
    train_labels = _write_train(output_dir, ids[0], classes, config, report)
    _write_rated(output_dir, "validate", ids[1], classes, config, report)
    truth = _write_rated(output_dir, "test", ids[2], classes, config, report)
    _write_truth(paths.test_truth, truth)
    _write_vocabulary(paths.vocabulary, classes, config, train_labels)
    with atomic_output(os.path.join(output_dir, MARKER_FILE)) as handle:
        json.dump(dataclasses.asdict(config), handle, indent=1)
    return paths


def ensure(output_dir: str, config: SyntheticConfig = SyntheticConfig(),
           progress: bool = True) -> SyntheticPaths:
    """The set under `output_dir`, generated only when missing or made from another config."""
    marker = os.path.join(output_dir, MARKER_FILE)
    if tf.io.gfile.exists(marker):
        with tf.io.gfile.GFile(marker) as handle:
            if json.load(handle) == json.loads(json.dumps(dataclasses.asdict(config))):
                return dataset_paths(output_dir, config.num_classes)
    return generate(output_dir, config, progress)


def _clear_previous_set(output_dir: str) -> None:
    """Remove an earlier synthetic set (known by its marker); refuse to mix with foreign data."""
    marker = os.path.join(output_dir, MARKER_FILE)
    ours = [os.path.join(output_dir, sub, f"{split}*.tfrecord")
            for sub in ("video", "frame") for split in SPLITS]
    existing = [f for pattern in ours for f in tf.io.gfile.glob(pattern)]
    if existing and not tf.io.gfile.exists(marker):
        raise UserError(f"--output_dir={output_dir} already holds records not generated here "
                        f"(e.g. {existing[0]}); choose an empty directory")
    if tf.io.gfile.exists(marker):
        tf.io.gfile.remove(marker)
    for path in existing:
        tf.io.gfile.remove(path)


# ---------------------------------------------------------------- classes


def _make_classes(config: SyntheticConfig) -> _Classes:
    """Verticals, class trees, rated flags, vocabulary ids and prototypes of the active classes."""
    rng = np.random.default_rng([config.seed, 0])
    per = config.classes_per_vertical
    index = np.arange(config.num_active_classes)
    vertical = index // per
    local_parent = _local_parents(per, config.branching)[index % per]
    parent = np.where(local_parent < 0, -1, vertical * per + local_parent)
    ancestor = np.zeros((len(index), len(index)), bool)
    for c in index[parent >= 0]:       # parents come first: their ancestors are known
        ancestor[:, c] = ancestor[:, parent[c]]
        ancestor[parent[c], c] = True
    rated = np.zeros(config.num_active_classes, bool)
    rated[rng.choice(config.num_active_classes, config.num_rated_classes, replace=False)] = True
    audible = rng.random(config.num_active_classes) < config.audible_fraction
    rgb_scale = np.where(audible, config.audible_rgb_scale, 1.0) * config.rgb_signal
    audio_scale = np.where(audible, config.audible_audio_scale, 1.0) * config.audio_signal
    return _Classes(
        ids=_class_ids(rng, rated, config.num_classes),
        vertical=vertical, parent=parent, ancestor=ancestor, rated=rated, audible=audible,
        rgb=_prototypes(rng, vertical, parent, RGB_SIZE, config.vertical_share) * rgb_scale[:, None],
        audio=_prototypes(rng, vertical, parent, AUDIO_SIZE, config.vertical_share) * audio_scale[:, None])


def _class_ids(rng: np.random.Generator, rated: np.ndarray, num_classes: int) -> np.ndarray:
    """Vocabulary ids: rated classes from the 2019 rated list, the others from the rest of the range."""
    rated_pool = np.unique(vocabulary.read_segment_label_ids())
    rated_pool = rated_pool[rated_pool < num_classes]
    other_pool = np.setdiff1d(np.arange(num_classes), rated_pool)
    if len(rated_pool) < rated.sum() or len(other_pool) < (~rated).sum():
        raise ValueError(f"num_classes={num_classes} is too small for the rated/unrated classes asked")
    ids = np.empty(len(rated), np.int64)
    ids[rated] = rng.choice(rated_pool, rated.sum(), replace=False)
    ids[~rated] = rng.choice(other_pool, (~rated).sum(), replace=False)
    return ids


def _prototypes(rng: np.random.Generator, vertical: np.ndarray, parent: np.ndarray, size: int,
                share: float) -> np.ndarray:
    """Unit vectors mixing a shared direction (variance `share`) with the class's own.

    The shared direction is the vertical's for its top class and the top's
    children, the parent's prototype below that: a kind carries its ancestors.
    """
    vertical_dirs = _unit_rows(rng.standard_normal((vertical.max() + 1, size)))
    own_dirs = _unit_rows(rng.standard_normal((len(vertical), size)))
    mixed = _unit_rows(np.sqrt(share) * vertical_dirs[vertical] + np.sqrt(1.0 - share) * own_dirs)
    for c in np.flatnonzero((parent >= 0) & (parent[np.maximum(parent, 0)] >= 0)):   # parents first
        direction = np.sqrt(share) * mixed[parent[c]] + np.sqrt(1.0 - share) * own_dirs[c]
        mixed[c] = direction / np.linalg.norm(direction)
    return mixed.astype(np.float32)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Probabilities of ranks 1..n proportional to 1 / rank**exponent."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


# ---------------------------------------------------------------- one video


def _make_video(rng: np.random.Generator, video_id: str, classes: _Classes,
                config: SyntheticConfig, rated: bool) -> _Video:
    """Frames, video labels and (when `rated`) segment ratings of one video."""
    num_frames = int(rng.integers(config.min_frames, config.max_frames + 1))
    active = _sample_active(rng, classes, config, need_rated=rated)
    masks = _activity_masks(rng, active, classes, num_frames, config)
    evidence = np.where(classes.inner[active], config.parent_evidence, 1.0).astype(np.float32)
    strength = np.where(masks, 1.0, config.leak).astype(np.float32).T * evidence     # (T, n)
    rgb = _render(rng, strength @ classes.rgb[active], config)
    audio = _render(rng, strength @ classes.audio[active], config)
    ratings = _rate_segments(rng, active, masks, classes, config) if rated else None
    labels = _video_labels(rng, active, masks.sum(axis=1) * evidence, classes, config)
    return _Video(video_id, rgb, audio, labels, active, ratings)


def _sample_active(rng: np.random.Generator, classes: _Classes, config: SyntheticConfig,
                   need_rated: bool) -> np.ndarray:
    """Sorted indices of the classes present in a video (with a rated one when `need_rated`)."""
    vertical_p = zipf_weights(config.num_verticals, config.zipf_exponent)
    for _ in range(1000):
        first = rng.choice(config.num_verticals, p=vertical_p)
        active = _classes_of_vertical(rng, first, classes, config, 1 + rng.poisson(config.extra_children_mean))
        if rng.random() < config.second_vertical_rate:
            second = rng.choice(np.delete(np.arange(config.num_verticals), first))
            active = np.concatenate([active, _classes_of_vertical(rng, second, classes, config, 1)])
        if not need_rated or classes.rated[active].any():
            return np.unique(active)
    raise ValueError("bad SyntheticConfig: videos almost never show a rated class; raise num_rated_classes")


def _classes_of_vertical(rng: np.random.Generator, vertical: int, classes: _Classes,
                         config: SyntheticConfig, num_kinds: int) -> np.ndarray:
    """The top class alone, or kinds (leaves) drawn by Zipf weight, mostly with their ancestors."""
    members = np.flatnonzero(classes.vertical == vertical)
    if rng.random() < config.parent_only_rate:
        return members[:1]
    leaves = members[~classes.inner[members]]
    count = min(num_kinds, len(leaves))
    kinds = leaves[rng.choice(len(leaves), count, replace=False, p=zipf_weights(len(leaves), config.zipf_exponent))]
    with_ancestors = rng.random() < config.parent_given_child
    return np.concatenate([np.flatnonzero(classes.ancestor[:, kinds].any(axis=1)), kinds]) if with_ancestors \
        else kinds


def _activity_masks(rng: np.random.Generator, active: np.ndarray, classes: _Classes,
                    num_frames: int, config: SyntheticConfig) -> np.ndarray:
    """(n, T) bool: each class on a few random intervals; an ancestor also wherever its descendants are.

    Without `ancestor_own_spans` an ancestor of a present class is on only where its descendants are.
    """
    n, k = len(active), config.max_intervals
    lengths = np.maximum(schema.SEGMENT_FRAMES, np.round(num_frames * rng.uniform(
        config.min_interval_fraction, config.max_interval_fraction, (n, k)))).astype(int)
    starts = np.floor(rng.random((n, k)) * (num_frames - lengths + 1)).astype(int)
    used = np.arange(k)[None, :] < rng.integers(1, k + 1, (n, 1))
    t = np.arange(num_frames)[None, None, :]
    inside = (t >= starts[..., None]) & (t < (starts + lengths)[..., None]) & used[..., None]
    masks = inside.any(axis=1)
    descendant = classes.ancestor[np.ix_(active, active)]                    # (ancestor row, descendant col)
    if not config.ancestor_own_spans:
        masks[descendant.any(axis=1)] = False
    return masks | (descendant.astype(np.int32) @ masks.astype(np.int32) > 0)


def _render(rng: np.random.Generator, signal: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """Signal plus video-level and frame noise, quantised to uint8."""
    frames, size = signal.shape
    noise = config.video_noise * rng.standard_normal(size, dtype=np.float32)
    noise = noise + config.frame_noise * rng.standard_normal((frames, size), dtype=np.float32)
    return schema.quantize(signal + noise)


def _video_labels(rng: np.random.Generator, active: np.ndarray, visibility: np.ndarray,
                  classes: _Classes, config: SyntheticConfig) -> np.ndarray:
    """The annotated ids: the true classes less a random fraction (the most visible one always kept).

    visibility: (n,) frames on times the class's own evidence. Ancestors of a
    present class are missed at `ancestor_miss_rate`, the others at `label_miss_rate`.
    """
    ancestor_rate = config.label_miss_rate if config.ancestor_miss_rate is None else config.ancestor_miss_rate
    is_ancestor = classes.ancestor[np.ix_(active, active)].any(axis=1)
    keep = rng.random(len(active)) >= np.where(is_ancestor, ancestor_rate, config.label_miss_rate)
    keep[np.argmax(visibility)] = True
    return np.sort(classes.ids[active[keep]])


def _rate_segments(rng: np.random.Generator, active: np.ndarray, masks: np.ndarray,
                   classes: _Classes, config: SyntheticConfig):
    """(class ids, start times, scores): one present rated class and maybe one absent one.

    The present class is drawn uniformly, an ancestor of a present class with
    relative weight `ancestor_rating_weight` (raters mostly rate the specific kind).
    """
    starts = np.arange(0, masks.shape[1] - schema.SEGMENT_FRAMES + 1, schema.SEGMENT_FRAMES)
    present = active[classes.rated[active]]
    weights = None
    if config.ancestor_rating_weight != 1.0:
        is_ancestor = classes.ancestor[np.ix_(present, active)].any(axis=1)
        weights = np.where(is_ancestor, config.ancestor_rating_weight, 1.0)
        weights = weights / weights.sum() if weights.sum() > 0 else None
    row = int(np.flatnonzero(active == rng.choice(present, p=weights))[0])
    positive = _segment_truth(masks[row], starts)
    chosen = _pick_segments(rng, positive, config.rated_segments_per_class, config.rated_positive_share)
    rated_class = [np.full(len(chosen), classes.ids[active[row]])]
    rated_start, scores = [starts[chosen]], [positive[chosen].astype(np.float32)]
    absent = _absent_rated_class(rng, active, classes)
    if absent is not None and rng.random() < config.plain_negative_rate:
        count = min(config.plain_negative_segments, len(starts))
        rated_class.append(np.full(count, classes.ids[absent]))
        rated_start.append(rng.choice(starts, count, replace=False))
        scores.append(np.zeros(count, np.float32))
    score = np.concatenate(scores)
    flip = rng.random(len(score)) < config.rating_noise
    score = np.where(flip, 1.0 - score, score).astype(np.float32)
    return np.concatenate(rated_class), np.concatenate(rated_start), score


def _segment_truth(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """A segment is positive when the class is on in most of its frames."""
    frames = mask[starts[:, None] + np.arange(schema.SEGMENT_FRAMES)[None, :]]
    return frames.sum(axis=1) * 2 > schema.SEGMENT_FRAMES


def _pick_segments(rng: np.random.Generator, positive: np.ndarray, count: int,
                   positive_share: float) -> np.ndarray:
    """Segment indices, `positive_share` of them positives and the rest hard negatives when both exist."""
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    count = min(count, len(positive))
    num_neg = min(len(neg), count - round(count * positive_share))
    num_pos = min(len(pos), count - num_neg)
    num_neg = min(len(neg), count - num_pos)
    picked = [rng.choice(pos, num_pos, replace=False), rng.choice(neg, num_neg, replace=False)]
    return np.sort(np.concatenate(picked))


def _absent_rated_class(rng: np.random.Generator, active: np.ndarray, classes: _Classes):
    """A rated class absent from the video, from one of its verticals when there is one (confusable)."""
    absent = classes.rated.copy()
    absent[active] = False
    related = absent & np.isin(classes.vertical, classes.vertical[active])
    pool = np.flatnonzero(related if related.any() else absent)
    return int(rng.choice(pool)) if len(pool) else None


# ---------------------------------------------------------------- records


def _video_example(video: _Video) -> bytes:
    """Video-level Example: id, labels, mean_rgb and mean_audio (means of the dequantized frames)."""
    feature = {
        schema.ID_KEY: _bytes_feature([video.id.encode()]),
        schema.LABELS_KEY: _int_feature(video.labels),
        schema.VIDEO_FEATURE_NAMES[0]: _float_feature(_dequantized_mean(video.rgb)),
        schema.VIDEO_FEATURE_NAMES[1]: _float_feature(_dequantized_mean(video.audio)),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)   # map order would vary across processes


def _frame_example(video: _Video, with_labels: bool) -> bytes:
    """Frame-level SequenceExample; segment ratings in the context when the video has them."""
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[schema.ID_KEY].bytes_list.value.append(video.id.encode())
    if with_labels:
        context[schema.LABELS_KEY].int64_list.value.extend(video.labels.tolist())
    if with_labels and video.ratings is not None:
        class_ids, starts, scores = video.ratings
        context[schema.SEGMENT_LABELS_KEY].int64_list.value.extend(class_ids.tolist())
        context[schema.SEGMENT_START_KEY].int64_list.value.extend(starts.tolist())
        context[schema.SEGMENT_SCORES_KEY].float_list.value.extend(scores.tolist())
    for name, frames in zip(schema.FRAME_FEATURE_NAMES, (video.rgb, video.audio)):
        feature_list = example.feature_lists.feature_list[name].feature
        for row in frames:
            feature_list.add().bytes_list.value.append(row.tobytes())
    return example.SerializeToString(deterministic=True)


def _dequantized_mean(frames: np.ndarray) -> np.ndarray:
    return schema.dequantize(frames.astype(np.float32)).mean(axis=0)


def _bytes_feature(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _int_feature(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))


def _float_feature(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))


def write_records(path: str, records) -> None:
    """A TFRecord file written under a temporary name and renamed on success."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


# ---------------------------------------------------------------- splits


def _video_ids(config: SyntheticConfig) -> list[np.ndarray]:
    """Unique 4-character ids (official style), one array per split."""
    rng = np.random.default_rng([config.seed, len(SPLITS) + 1])
    counts = (config.num_train_videos, config.num_validate_videos, config.num_test_videos)
    codes = rng.choice(len(ID_ALPHABET) ** ID_LENGTH, sum(counts), replace=False)
    digits = codes[:, None] // len(ID_ALPHABET) ** np.arange(ID_LENGTH)[None, :] % len(ID_ALPHABET)
    ids = np.array(["".join(chars) for chars in ID_ALPHABET[digits]])
    return np.split(ids, np.cumsum(counts)[:-1])


def _split_videos(split: str, ids: np.ndarray, classes: _Classes, config: SyntheticConfig, report):
    """Yield (file index, videos of that file); each video from its own seeded generator."""
    split_code = SPLITS.index(split) + 1
    for file_index, chunk in enumerate(np.array_split(np.arange(len(ids)), config.files_per_split)):
        videos = [_make_video(np.random.default_rng([config.seed, split_code, int(i)]), str(ids[i]),
                              classes, config, rated=split != "train") for i in chunk]
        report(split, len(videos))
        yield file_index, videos


def _write_train(output_dir: str, ids: np.ndarray, classes: _Classes, config: SyntheticConfig,
                 report) -> list[np.ndarray]:
    """frame/train*.tfrecord and video/train*.tfrecord of the same videos; returns their labels."""
    labels = []
    for index, videos in _split_videos("train", ids, classes, config, report):
        name = f"train{index:04d}.tfrecord"
        write_records(os.path.join(output_dir, "frame", name), (_frame_example(v, True) for v in videos))
        write_records(os.path.join(output_dir, "video", name), (_video_example(v) for v in videos))
        labels.extend(v.labels for v in videos)
    return labels


def _write_rated(output_dir: str, split: str, ids: np.ndarray, classes: _Classes,
                 config: SyntheticConfig, report) -> list[str]:
    """frame/<split>*.tfrecord; the test records carry no labels. Returns truth lines."""
    truth = []
    for index, videos in _split_videos(split, ids, classes, config, report):
        path = os.path.join(output_dir, "frame", f"{split}{index:04d}.tfrecord")
        write_records(path, (_frame_example(v, with_labels=split != "test") for v in videos))
        truth.extend(line for v in videos for line in _truth_lines(v))
    return truth


def _truth_lines(video: _Video) -> list[str]:
    """The official scorer's label-cache lines: `<video_id>:<start_time>,<class_id>,<score>`."""
    class_ids, starts, scores = video.ratings
    return [f"{video.id}:{s},{c},{int(v)}" for c, s, v in zip(class_ids, starts, scores)]


def _write_truth(path: str, lines: list[str]) -> None:
    with atomic_output(path) as handle:
        handle.write("".join(line + "\n" for line in lines))


def _write_vocabulary(path: str, classes: _Classes, config: SyntheticConfig,
                      train_labels: list[np.ndarray]) -> None:
    """vocabulary.csv with the official columns, one row per active class, sorted by Index."""
    all_labels = np.concatenate(train_labels) if train_labels else np.zeros(0, np.int64)
    counts = (all_labels[:, None] == classes.ids[None, :]).sum(axis=0)
    local = np.arange(config.num_active_classes) % config.classes_per_vertical
    names = [f"vertical{v}/{'parent' if c == 0 else f'class{c}'}" for v, c in zip(classes.vertical, local)]
    roles = np.where(classes.parent < 0, "parent", np.where(classes.inner, "child and parent", "child"))
    descriptions = [
        f"Synthetic {r} class of vertical{v}"
        f"{'' if p < 0 else f', child of {names[p]}'}{', mostly audible' if a else ''}."
        for v, r, p, a in zip(classes.vertical, roles, classes.parent, classes.audible)]
    table = pd.DataFrame({
        "Index": classes.ids,
        "TrainVideoCount": counts,
        "KnowledgeGraphId": [f"/m/0syn{i}" for i in classes.ids],
        "Name": names,
        "WikiUrl": [f"https://en.wikipedia.org/wiki/Synthetic_class_{i}" for i in classes.ids],
        "Vertical1": [f"Vertical{v}" for v in classes.vertical],
        "Vertical2": "",
        "Vertical3": "",
        "WikiDescription": descriptions,
    }, columns=list(vocabulary.VOCABULARY_COLUMNS)).sort_values("Index")
    with atomic_output(path) as handle:
        table.to_csv(handle, index=False)


def _progress_reporter(total: int, enabled: bool):
    """A callback(split, videos_done) printing progress to stderr: one updating line on a terminal,
    else a plain line at each tenth of the videos."""
    done = [0]
    lines = not interactive(sys.stderr)

    def report(split: str, count: int) -> None:
        before = done[0]
        done[0] += count
        if not enabled or (lines and done[0] * 10 // total == before * 10 // total and done[0] < total):
            return
        start, end = ("", "\n") if lines else ("\r", "\n" if done[0] >= total else "")
        print(f"{start}synthetic data: {done[0]}/{total} videos ({split})", end=end, file=sys.stderr, flush=True)

    return report


def main(argv) -> None:
    del argv
    from absl import flags
    config = getattr(SyntheticConfig, flags.FLAGS.preset)(seed=flags.FLAGS.seed)
    paths = generate(flags.FLAGS.output_dir, config, progress=True)
    print(f"synthetic {flags.FLAGS.preset} set written under {paths.root}")


def _define_flags() -> None:
    from absl import flags
    flags.DEFINE_string("output_dir", "data/synthetic", "Directory to write the synthetic set to.")
    flags.DEFINE_enum("preset", "demo", ["demo", "proving", "easy", "small"],
                      "Preset of SyntheticConfig: demo = proving (the hard regime), easy (flat verticals), "
                      "small (the tests').")
    flags.DEFINE_integer("seed", 0, "Seed of the generator; the same seed gives identical files.")


if __name__ == "__main__":
    from absl import app
    _define_flags()
    app.run(main)
