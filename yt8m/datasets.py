"""The datasets a run's Config asks for: which reader (yt8m/data/), which files, which options.

Each split is read per example (videos, 5-frame segments or clips, by the Config), or with
`whole_videos` (--segment_context other than none, --time_shift) as whole videos with every
segment's place and rating (yt8m/data/video_segments.py), for the one-pass segment models.
"""
from __future__ import annotations

import tensorflow as tf

from yt8m.config import Config
from yt8m.data import clips, readers, video_segments
from yt8m.errors import UserError


def training_dataset(config: Config, corrupt_records: readers.CorruptRecords | None = None,
                     whole_videos: bool = False) -> tf.data.Dataset:
    """Shuffled (model inputs, labels, weights) for fit; repeats forever when --max_steps bounds the run.

    With `corrupt_records` (--skip_corrupt_records) corrupt records are skipped and counted there.
    """
    dataset = _dataset(config, config.data.train_data_pattern, "train_data_pattern", shuffle=True,
                       num_epochs=None if config.training.max_steps else 1, rated=True, corrupt_records=corrupt_records,
                       whole_videos=whole_videos)
    return dataset.map(lambda features, labels, weights: (readers.model_inputs(features), labels, weights))


def training_source(config: Config) -> tuple[str, str]:
    """(pattern, flag) of the files a training pass reads: the clips of a clip run, else --train_data_pattern."""
    if config.data.clip_data_pattern:
        return config.data.clip_data_pattern, "clip_data_pattern"
    return config.data.train_data_pattern, "train_data_pattern"


def eval_dataset(config: Config, corrupt_records: readers.CorruptRecords | None = None,
                 whole_videos: bool = False) -> tf.data.Dataset:
    """One ordered pass over --eval_data_pattern (rated segments with --segment_labels)."""
    return _dataset(config, config.data.eval_data_pattern, "eval_data_pattern", shuffle=False, num_epochs=1, rated=True,
                    corrupt_records=corrupt_records, whole_videos=whole_videos)


def inference_dataset(config: Config, corrupt_records: readers.CorruptRecords | None = None,
                      whole_videos: bool = False) -> tf.data.Dataset:
    """One ordered pass over --input_data_pattern (every 5-frame segment with --segment_labels)."""
    return _dataset(config, config.data.input_data_pattern, "input_data_pattern", shuffle=False, num_epochs=1,
                    rated=False, corrupt_records=corrupt_records, whole_videos=whole_videos)


def _dataset(config: Config, pattern: str, flag: str, *, shuffle: bool, num_epochs, rated: bool,
             corrupt_records=None, whole_videos: bool = False):
    if whole_videos:   # (B, S, C) targets and weights: every segment of each video in one example
        return video_segments.video_segment_dataset(
            pattern, num_classes=config.data.num_classes, feature_spec=config.data.feature_spec, batch_size=config.training.batch_size,
            shuffle=shuffle, seed=config.training.seed, num_epochs=num_epochs, rated=rated, max_frames=config.data.max_frames,
            flag=flag, corrupt_records=corrupt_records)
    if config.data.clip_data_pattern:  # a clip run: every split is read as RGB clips
        if flag == "train_data_pattern":
            pattern, flag = training_source(config)
        return clips.clip_dataset(pattern, num_classes=config.data.num_classes, batch_size=config.training.batch_size,
                                  clip_frames=config.data.clip_frames, clip_size=config.data.clip_size, training=shuffle,
                                  shuffle=shuffle, seed=config.training.seed, num_epochs=num_epochs, flag=flag,
                                  sampling=config.data.clip_sampling)
    options = dict(num_classes=config.data.num_classes, feature_spec=config.data.feature_spec, batch_size=config.training.batch_size,
                   shuffle=shuffle, seed=config.training.seed, num_epochs=num_epochs, flag=flag,
                   corrupt_records=corrupt_records)
    if config.data.segment_labels:
        if not config.data.frame_features:
            raise UserError("--segment_labels reads 5-frame segments of frame-level records; add --frame_features")
        return readers.segment_dataset(pattern, rated=rated, **options)
    if config.data.frame_features:
        return readers.frame_dataset(pattern, max_frames=config.data.max_frames, pad_to_max=config.data.pad_to_max_frames,
                                     **options)
    return readers.video_dataset(pattern, **options)
