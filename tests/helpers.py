"""Small shared pieces of the tests: running an entry point, tiny run configs."""
import os
import pathlib
import subprocess
import sys

from yt8m.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY_DBOF = {"cluster_size": 16, "hidden_size": 16, "num_mixtures": 2, "sample_frames": 10}


def run_cli(script: str, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `python <script> <args>` from the project root; returns the finished process."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def frame_config(data, train_dir, **changes) -> Config:
    """A tiny frame-level DBoF run on the session's synthetic data."""
    base = Config(train_data_pattern=data.frame_train, frame_features=True, feature_names=("rgb", "audio"),
                  feature_sizes=(1024, 128), num_classes=data.num_classes, model="DbofModel",
                  model_params=TINY_DBOF, batch_size=16, max_steps=12, steps_per_epoch=6,
                  base_learning_rate=0.01, train_dir=str(train_dir))
    return base.replace(**changes)


def tiny_dbof_flags(data, train_dir) -> list[str]:
    """The same run as command-line flags."""
    params = ",".join(f"{k}={v}" for k, v in TINY_DBOF.items())
    return [f"--train_data_pattern={data.frame_train}", "--frame_features", f"--num_classes={data.num_classes}",
            "--model=DbofModel", f"--model_params={params}", "--batch_size=16", f"--train_dir={train_dir}"]
