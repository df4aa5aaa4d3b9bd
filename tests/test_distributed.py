"""Strategies in a fresh process each, as TensorFlow's devices and clusters need: the mirrored fit here, and the
helpers test_faults.py starts its killed, resumed and multi-worker runs with (a plain multi-worker fit is its
restarted job's first start)."""
import json
import os
import socket
import subprocess
import sys

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
