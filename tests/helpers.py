"""Small shared pieces of the tests: running an entry point or a training in a fresh process, tiny run configs."""
import json
import os
import pathlib
import socket
import subprocess
import sys

from yt8m.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
TINY_DBOF = {"cluster_size": 16, "hidden_size": 16, "num_mixtures": 2, "sample_frames": 10}


def run_cli(script: str, *args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `python <script> <args>` from the project root; returns the finished process."""
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env={**ENV, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def frame_config(data, train_dir, **changes) -> Config:
    """A tiny frame-level DBoF run on the session's synthetic data."""
    base = Config.from_flags(train_data_pattern=data.frame_train, frame_features=True, feature_names=("rgb", "audio"),
                  feature_sizes=(1024, 128), num_classes=data.num_classes, model="DbofModel",
                  model_params=TINY_DBOF, batch_size=16, max_steps=12, steps_per_epoch=6,
                  base_learning_rate=0.01, train_dir=str(train_dir))
    return base.replace(**changes)


def tiny_dbof_flags(data, train_dir) -> list[str]:
    """The same run as command-line flags."""
    params = ",".join(f"{k}={v}" for k, v in TINY_DBOF.items())
    return [f"--train_data_pattern={data.frame_train}", "--frame_features", f"--num_classes={data.num_classes}",
            "--model=DbofModel", f"--model_params={params}", "--batch_size=16", f"--train_dir={train_dir}"]


def start_training(config, tmp_path, env: dict | None = None) -> subprocess.Popen:
    """yt8m.training.train on `config` in a fresh process (tests/train_in_subprocess.py), as kills and
    clusters need; stdout and stderr piped."""
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
    config.save(str(path))
    return subprocess.Popen([sys.executable, "-m", "tests.train_in_subprocess", str(path)], cwd=ROOT,
                            env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_training(process: subprocess.Popen, timeout: int = 300) -> tuple[dict, str]:
    """The run's JSON result line and its whole stdout (Keras's epoch lines)."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), out


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
