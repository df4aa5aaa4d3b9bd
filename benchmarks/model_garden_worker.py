"""Times the TF Model Garden YouTube-8M DBoF train step; runs inside the Model Garden venv.

Started by benchmarks/training.py (never imported by the project): the
tf-models-official 2.20 wheel needs TF 2.20 + tf-keras, which cannot share an
environment with the project's TF 2.21 / Keras 3. Protocol, one JSON object per
line: stdin {"config": {...}, "batches": "x.npz", "seconds": s} -> stdout
{"examples_per_second": r, "steps": n, "loss": l}.

The wheel ships the yt8m model and task but not its dataloaders/ or eval_utils/
folders, which the task module imports at load time; empty placeholder modules
stand in for them (the train step uses neither). Batches arrive as its
dataloader would hand them over in training: `video_matrix` float32
(B, num_sample_frames, D) already sampled and dequantized, `labels`, `num_frames`.
"""
import json
import sys
import time
import types

for _name in ("official.projects.yt8m.dataloaders", "official.projects.yt8m.dataloaders.yt8m_input",
              "official.projects.yt8m.eval_utils", "official.projects.yt8m.eval_utils.eval_util"):
    sys.modules.setdefault(_name, types.ModuleType(_name))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.projects.yt8m.configs import yt8m as yt8m_cfg  # noqa: E402
from official.projects.yt8m.tasks import yt8m_task  # noqa: E402


def build_step(config):
    """The task's own train_step around its own model, as its trainer runs it (tf.function)."""
    model_config = yt8m_cfg.VideoClassificationModel()
    model_config.backbone.dbof.cluster_size = config["cluster_size"]
    model_config.backbone.dbof.hidden_size = config["hidden_size"]
    model_config.head.moe.num_mixtures = config["num_mixtures"]
    task_config = yt8m_cfg.YT8MTask(
        model=model_config,
        train_data=yt8m_cfg.DataConfig(num_classes=config["num_classes"], feature_sizes=(1024, 128),
                                       num_sample_frames=config["sample_frames"]),
        gradient_clip_norm=1.0)
    task = yt8m_task.YT8MTask(task_config)
    model = task.build_model()
    optimizer = tf_keras.optimizers.Adam(config["learning_rate"])
    metrics = task.build_metrics(training=True)
    return tf.function(lambda inputs: task.train_step(inputs, model, optimizer, metrics))


def main():
    steps = {}
    data = {}
    for line in sys.stdin:
        request = json.loads(line)
        key = json.dumps(request["config"], sort_keys=True)
        if request["batches"] not in data:
            with np.load(request["batches"]) as archive:
                count = len([k for k in archive.files if k.startswith("video_matrix")])
                data[request["batches"]] = [
                    {"video_matrix": tf.constant(archive[f"video_matrix{i}"]),
                     "labels": tf.constant(archive[f"labels{i}"]),
                     "num_frames": tf.constant(archive[f"num_frames{i}"])} for i in range(count)]
        batches = data[request["batches"]]
        if key not in steps:
            steps[key] = build_step(request["config"])
            for batch in batches[:2]:  # trace + warm up
                steps[key](batch)
        step, done, examples = steps[key], 0, 0
        start = time.perf_counter()
        while done < 2 or time.perf_counter() - start < request["seconds"]:
            batch = batches[done % len(batches)]
            logs = step(batch)
            done += 1
            examples += int(batch["labels"].shape[0])
        loss = float(next(iter(logs.values())))
        elapsed = time.perf_counter() - start
        print(json.dumps({"examples_per_second": examples / elapsed, "steps": done, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
