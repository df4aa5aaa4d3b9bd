"""A small synthetic clip set in the Charades frames layout, so the 3-D models run here.

The story mirrors yt8m/data/synthetic.py on pixels: classes come in groups (a
parent and its children); a group has one colour and each class of it one shape
(square, disc, triangle, cross, ...), so related classes look alike. A video picks
a group by a Zipf weight, shows its parent alone or children that bring the parent
along (P(parent | child) >> P(child | parent)), sometimes a class of a second
group. Each present class is its shape moving in a straight line (bouncing off the
borders) over a noisy grey background. Frames are JPEG-encoded, one per step of
`image/encoded`, the labels in the context (`id`, `labels`), split into
`clips/train*.tfrecord` and `clips/validate*.tfrecord`. `knowledge_edges.csv`
(`head,relation,tail,weight`) states the group structure as knowledge: `IsA`
child -> parent (1.0) and `RelatedTo` between siblings (0.5).

`python -m yt8m.data.synthetic_clips --output_dir=data/synthetic_clips`.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from yt8m.data import schema
from yt8m.data.synthetic import write_records, zipf_weights
from yt8m.fileio import atomic_output

MARKER_FILE = "synthetic_clips.json"
SPLITS = ("train", "validate")
COLOURS = np.array([[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 210, 40], [200, 60, 220],
                    [40, 210, 210]], np.float32)
SHAPES = ("square", "disc", "triangle", "cross", "ring", "bar")


@dataclasses.dataclass(frozen=True)
class SyntheticClipConfig:
    seed: int = 0
    num_groups: int = 4
    classes_per_group: int = 3          # one parent plus children
    num_train_videos: int = 96
    num_validate_videos: int = 32
    min_frames: int = 10
    max_frames: int = 16
    frame_size: int = 40
    shape_radius: int = 7
    files_per_split: int = 2
    parent_only_rate: float = 0.3
    parent_given_child: float = 0.9
    second_group_rate: float = 0.3
    background_noise: float = 20.0

    def __post_init__(self):
        if not 1 <= self.num_groups <= len(COLOURS) or not 2 <= self.classes_per_group <= len(SHAPES):
            raise ValueError(f"bad SyntheticClipConfig: 1..{len(COLOURS)} groups of 2..{len(SHAPES)} classes")
        if not 1 <= self.min_frames <= self.max_frames or self.frame_size < 4 * self.shape_radius:
            raise ValueError("bad SyntheticClipConfig: need 1 <= min_frames <= max_frames, frame_size >= 4 radii")

    @property
    def num_classes(self) -> int:
        return self.num_groups * self.classes_per_group


@dataclasses.dataclass(frozen=True)
class ClipPaths:
    root: str
    train: str
    validate: str
    knowledge_edges: str
    num_classes: int


def dataset_paths(output_dir: str, num_classes: int) -> ClipPaths:
    clips = os.path.join(output_dir, "clips")
    return ClipPaths(output_dir, os.path.join(clips, "train*.tfrecord"), os.path.join(clips, "validate*.tfrecord"),
                     os.path.join(output_dir, "knowledge_edges.csv"), num_classes)


def generate(output_dir: str, config: SyntheticClipConfig = SyntheticClipConfig()) -> ClipPaths:
    """Writes the clip set under `output_dir` (each file atomically, the marker last)."""
    paths = dataset_paths(output_dir, config.num_classes)
    marker = os.path.join(output_dir, MARKER_FILE)
    if tf.io.gfile.exists(marker):
        tf.io.gfile.remove(marker)
    counts = (config.num_train_videos, config.num_validate_videos)
    for split_code, (split, count) in enumerate(zip(SPLITS, counts), start=1):
        for file_index, chunk in enumerate(np.array_split(np.arange(count), config.files_per_split)):
            records = [_clip_example(f"{split[0]}{i:05d}", np.random.default_rng([config.seed, split_code, int(i)]),
                                     config) for i in chunk]
            write_records(os.path.join(output_dir, "clips", f"{split}{file_index:04d}.tfrecord"), records)
    with atomic_output(paths.knowledge_edges) as handle:
        _knowledge_edges(config).to_csv(handle, index=False)
    with atomic_output(marker) as handle:
        json.dump(dataclasses.asdict(config), handle, indent=1)
    return paths


def ensure(output_dir: str, config: SyntheticClipConfig = SyntheticClipConfig()) -> ClipPaths:
    """The set under `output_dir`, generated only when missing or made from another config."""
    marker = os.path.join(output_dir, MARKER_FILE)
    if tf.io.gfile.exists(marker):
        with tf.io.gfile.GFile(marker) as handle:
            if json.load(handle) == json.loads(json.dumps(dataclasses.asdict(config))):
                return dataset_paths(output_dir, config.num_classes)
    return generate(output_dir, config)


def class_names(config: SyntheticClipConfig) -> list[str]:
    return [f"{('parent_' if c == 0 else '')}{SHAPES[c]}_{g}" for g in range(config.num_groups)
            for c in range(config.classes_per_group)]


def _knowledge_edges(config: SyntheticClipConfig) -> pd.DataFrame:
    rows = []
    per = config.classes_per_group
    for group in range(config.num_groups):
        parent = group * per
        children = range(parent + 1, parent + per)
        rows += [(child, "IsA", parent, 1.0) for child in children]
        rows += [(a, "RelatedTo", b, 0.5) for a in children for b in children if a < b]
    return pd.DataFrame(rows, columns=["head", "relation", "tail", "weight"])


def _active_classes(rng: np.random.Generator, config: SyntheticClipConfig) -> np.ndarray:
    per = config.classes_per_group

    def of_group(group: int) -> list[int]:
        parent = group * per
        if rng.random() < config.parent_only_rate:
            return [parent]
        child = parent + 1 + int(rng.choice(per - 1, p=zipf_weights(per - 1, 1.0)))
        return [parent, child] if rng.random() < config.parent_given_child else [child]

    first = int(rng.choice(config.num_groups, p=zipf_weights(config.num_groups, 1.0)))
    active = of_group(first)
    if config.num_groups > 1 and rng.random() < config.second_group_rate:
        active += of_group(int(rng.choice(np.delete(np.arange(config.num_groups), first))))
    return np.unique(active)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray, radius: int) -> np.ndarray:
    """Bool mask of a shape centred at the origin, on offset grids dy, dx."""
    r = float(radius)
    if shape == "square":
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    if shape == "disc":
        return dy ** 2 + dx ** 2 <= r ** 2
    if shape == "triangle":
        return (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == "cross":
        return ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)) | ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r))
    if shape == "ring":
        d2 = dy ** 2 + dx ** 2
        return (d2 <= r ** 2) & (d2 >= (0.55 * r) ** 2)
    return (np.abs(dy) <= r * 0.25) & (np.abs(dx) <= r)           # bar


def _render(rng: np.random.Generator, active: np.ndarray, num_frames: int, config: SyntheticClipConfig) -> np.ndarray:
    """(T, S, S, 3) uint8 frames: moving shapes over a noisy grey background."""
    size, radius = config.frame_size, config.shape_radius
    frames = 110 + config.background_noise * rng.standard_normal((num_frames, size, size, 3))
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    low, span = radius, size - 2 * radius
    for cls in active:
        group, local = divmod(int(cls), config.classes_per_group)
        start = rng.uniform(low, size - radius, 2)
        velocity = rng.uniform(-2.5, 2.5, 2)
        # bouncing: reflect the unconstrained path into [low, low + span]
        path = (start[None, :] - low + velocity[None, :] * t[:, :, 0]) % (2 * span)
        centre = low + np.where(path > span, 2 * span - path, path)                 # (T, 2)
        mask = _shape_mask(SHAPES[local], grid_y[None] - centre[:, 0, None, None],
                           grid_x[None] - centre[:, 1, None, None], radius)
        frames[mask] = COLOURS[group] + 10 * rng.standard_normal((mask.sum(), 3))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def _clip_example(video_id: str, rng: np.random.Generator, config: SyntheticClipConfig) -> bytes:
    active = _active_classes(rng, config)
    num_frames = int(rng.integers(config.min_frames, config.max_frames + 1))
    frames = _render(rng, active, num_frames, config)
    example = tf.train.SequenceExample()
    example.context.feature[schema.ID_KEY].bytes_list.value.append(video_id.encode())
    example.context.feature[schema.LABELS_KEY].int64_list.value.extend(active.tolist())
    feature_list = example.feature_lists.feature_list[schema.CLIP_FRAME_KEY].feature
    for frame in frames:
        feature_list.add().bytes_list.value.append(tf.io.encode_jpeg(frame, quality=90).numpy())
    return example.SerializeToString(deterministic=True)


def main(argv) -> None:
    del argv
    from absl import flags
    paths = generate(flags.FLAGS.output_dir, SyntheticClipConfig(seed=flags.FLAGS.seed))
    print(f"synthetic clips written under {paths.root}: --clip_data_pattern={paths.train} "
          f"--eval_data_pattern={paths.validate} --knowledge_edges={paths.knowledge_edges} "
          f"--num_classes={paths.num_classes}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("output_dir", "data/synthetic_clips", "Directory to write the clip set to.")
    flags.DEFINE_integer("seed", 0, "Seed of the generator.")
    app.run(main)
