"""Evaluation and inference loops: a trained model over TFRecords -> metrics or a submission CSV."""
from __future__ import annotations

import json
import os
from typing import Iterator

import keras
import numpy as np
import tensorflow as tf

from yt8m import candidates, datasets, metrics, rundir, segment_context, submission
from yt8m.config import Config
from yt8m.data import readers
from yt8m.data.vocabulary import read_segment_label_ids
from yt8m.errors import UserError
from yt8m.fileio import atomic_output, probe_writable, remove_stale_temp_files
from yt8m.forward import forward_function
from yt8m.progress import CountLines, keras_verbose


def predict_batches(model: keras.Model, dataset: tf.data.Dataset, pattern: str, flag: str,
                    progress: bool = True) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
    """Yields (features, labels, probabilities) per batch, numpy, with a progress bar."""
    forward = forward_function(model, dataset)
    bar = keras.utils.Progbar(None, unit_name="example", verbose=keras_verbose(progress))
    lines = CountLines(f"predicting {pattern}", "example", progress)   # a pipe sees the bar only at the end
    seen = 0
    with readers.data_errors(pattern, flag):
        for features, labels, _ in dataset:
            probabilities = forward(readers.model_inputs(features)).numpy()
            seen += len(probabilities)
            bar.update(seen)
            lines.update(seen)
            yield {k: v.numpy() for k, v in features.items()}, labels.numpy(), probabilities
    bar.update(seen, finalize=True)


def _candidate_table(config: Config, model: keras.Model, pattern: str, flag: str, progress: bool):
    """--candidate_top_k > 0: the first pass choosing each video's candidate classes, else None."""
    if not (config.data.segment_labels and config.evaluation.candidate_top_k):
        return None
    return candidates.video_candidates(config, pattern, flag, segment_model=model, progress=progress)


def _prediction_pass(config: Config, make_dataset, pattern: str, flag: str, progress: bool,
                     model: keras.Model | None = None):
    """`model` (default: the run's) over `pattern`: its prediction batches, the candidate table (or None)
    and the corrupt-record counter (or None) of --skip_corrupt_records."""
    model = model if model is not None else rundir.load_evaluated_model(config)
    table = _candidate_table(config, model, pattern, flag, progress)
    corrupt = readers.CorruptRecords() if config.data.skip_corrupt_records else None
    predict, whole_videos = predict_batches, False
    if config.data.segment_labels:
        segment_context.check_model(model, config)
    if config.model_.segment_context != "none" or config.evaluation.time_shift:   # each video read and encoded once, all its segments scored
        predict = segment_context.predict_batches
        model = segment_context.whole_video_model(model, config)   # --time_shift: the shifted passes averaged
        whole_videos = True
    return predict(model, make_dataset(config, corrupt, whole_videos), pattern, flag, progress), table, corrupt


def evaluate(config: Config, progress: bool = True) -> dict:
    """Scores config.training.train_dir's model on --eval_data_pattern and writes the metrics JSON.

    Segment ratings: MAP@K over the rated segments (the 2019 metric). Video labels:
    GAP@20, MAP, Hit@1 and PERR of the starter.
    """
    if not (config.evaluation.output_file or config.training.train_dir):
        raise UserError("--output_file and --train_dir are empty; give one for the metrics JSON")
    output = config.evaluation.output_file or os.path.join(config.training.train_dir, rundir.EVAL_FILE)
    probe_writable(output, "output_file" if config.evaluation.output_file else "train_dir", is_file=True)
    result = score(config, progress=progress)
    with atomic_output(output) as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    return {**result, "output_file": output}


def score(config: Config, model: keras.Model | None = None, progress: bool = True) -> dict:
    """The metrics of `model` (default: config.training.train_dir's) on --eval_data_pattern, as evaluate reports
    them; nothing written (the validation during training calls it with the model being trained)."""
    batches, table, corrupt = _prediction_pass(config, datasets.eval_dataset, config.data.eval_data_pattern,
                                               "eval_data_pattern", progress, model)
    if config.data.segment_labels:
        result = _segment_metrics(batches, config.submission_top_k, table)
    else:
        video = metrics.VideoMetrics(config.data.num_classes, top_k=20)
        for _, labels, probabilities in batches:
            video.update(probabilities, labels)
        result = video.result()
    if corrupt is not None:
        print(corrupt.report(config.data.eval_data_pattern, "eval_data_pattern"))
    return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in result.items()}


def _segment_metrics(batches, k: int, table: candidates.CandidateTable | None = None) -> dict:
    classes, scores, ratings, kept = [], [], [], []
    for features, labels, probabilities in batches:
        rated = features["segment_class"]
        rows = np.arange(len(rated))
        classes.append(rated)
        scores.append(probabilities[rows, rated])
        ratings.append(labels[rows, rated])
        if table is not None:
            kept.append(table.contains(features["id"], rated))
    if not classes:
        raise UserError("--eval_data_pattern has no rated segments; --segment_labels needs the "
                        "validate files of the 2019 challenge (segment_labels, segment_start_times, segment_scores)")
    class_ids, score, rating = (np.concatenate(a) for a in (classes, scores, ratings))
    result = {"segment_map_at_k": metrics.rated_segment_map(class_ids, score, rating, k=k),
              "num_rated_segments": len(class_ids)}
    if table is not None:  # the gated ranking: non-candidates demoted below every candidate
        kept = np.concatenate(kept)
        result = {"segment_map_at_k": metrics.rated_segment_map(
                      class_ids, np.where(kept, score, score - candidates.DEMOTION), rating, k=k),
                  "ungated_segment_map_at_k": result["segment_map_at_k"],
                  "candidate_recall": float(kept[rating > 0].mean()) if (rating > 0).any() else float("nan"),
                  "num_rated_segments": len(class_ids)}
    return result


def write_submission(config: Config, progress: bool = True) -> str:
    """Predicts --input_data_pattern with config.training.train_dir's model and writes the Kaggle CSV.

    Segment submissions keep a streaming top-K per class (memory bounded by
    classes x K); video submissions stream their top-20 rows. Both are written
    atomically: an interrupted run leaves no CSV.
    """
    if not config.evaluation.output_file:
        raise UserError("--output_file is empty; give the CSV path to write")
    probe_writable(config.evaluation.output_file, "output_file", is_file=True)   # before predicting, not after
    remove_stale_temp_files(os.path.dirname(config.evaluation.output_file))
    batches, table, corrupt = _prediction_pass(config, datasets.inference_dataset, config.data.input_data_pattern,
                                               "input_data_pattern", progress)
    if config.data.segment_labels:
        class_ids = read_segment_label_ids(config.evaluation.segment_label_ids_file or None)
        if class_ids.max() >= config.data.num_classes:
            raise UserError(f"--segment_label_ids_file lists class {class_ids.max()}, outside "
                            f"--num_classes={config.data.num_classes}")
        top = submission.SegmentTopK(class_ids, k=config.submission_top_k)
        for features, _, probabilities in batches:
            if table is not None:
                probabilities = table.gate(features["id"], probabilities)
            top.update(features["id"], probabilities)
        submission.write_segment_csv(config.evaluation.output_file, top)
    else:
        with submission.VideoTopKWriter(config.evaluation.output_file, top_k=config.submission_top_k) as writer:
            for features, _, probabilities in batches:
                writer.write(features["id"], probabilities)
    if corrupt is not None:
        print(corrupt.report(config.data.input_data_pattern, "input_data_pattern"))
    return config.evaluation.output_file
