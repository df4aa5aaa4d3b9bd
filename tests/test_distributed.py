"""Strategies and resuming: each run is a fresh process, as TensorFlow's devices and clusters need."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, frame_config

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _start(config, tmp_path, *extra, env=None) -> subprocess.Popen:
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
    config.save(str(path))
    return subprocess.Popen([sys.executable, "-m", "tests.train_in_subprocess", str(path), *extra], cwd=ROOT,
                            env={**ENV, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, timeout: int = 300) -> tuple[dict, str]:
    """The run's JSON result line and its whole stdout (Keras's epoch lines)."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), out


def test_mirrored_fit_over_two_logical_cpu_devices(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", strategy="mirrored", max_steps=6, steps_per_epoch=3)
    result, _ = _finish(_start(config, tmp_path, "2"))
    assert result == {**result, "steps": 6, "replicas": 2}
    assert os.path.exists(tmp_path / "run" / "model.keras")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_fit_with_two_local_workers(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", strategy="multi_worker", max_steps=6, steps_per_epoch=3)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        _start(config, tmp_path, env={"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})})
        for index in range(2)]
    results = [_finish(p)[0] for p in processes]
    assert [(r["steps"], r["replicas"]) for r in results] == [(6, 2), (6, 2)]
    assert os.path.exists(tmp_path / "run" / "model.keras")  # the chief's
    assert os.path.exists(tmp_path / "run" / "workers" / "worker-1")  # the other worker's scratch


def test_a_killed_run_resumes_from_its_backup_to_the_same_step(synthetic_data, tmp_path):
    config = frame_config(synthetic_data, tmp_path / "run", max_steps=40, steps_per_epoch=5)
    metadata = tmp_path / "run" / "backup" / "training_metadata.json"
    process = _start(config, tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, "training finished before it could be killed; make the run longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(metadata.read_text())["epoch"]
    assert 2 <= killed_at < 8

    result, log = _finish(_start(config, tmp_path))
    assert result["steps"] == 40
    assert "Epoch 1/8" not in log and f"Epoch {killed_at + 1}/8" in log  # resumed, not restarted
