"""The package pins Keras to its TensorFlow backend before Keras loads; another backend is one clear error."""
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _import(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3", **env})


def test_importing_the_package_pins_the_tensorflow_backend_before_keras_loads():
    done = _import("import os, sys, yt8m; print(os.environ['KERAS_BACKEND'], 'keras' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tensorflow", "False"]


@pytest.mark.parametrize("code, message", [
    ("import models", "KERAS_BACKEND=jax: this project runs on Keras's TensorFlow backend"),
    ("import yt8m.config", "KERAS_BACKEND=jax: this project runs on Keras's TensorFlow backend")])
def test_another_backend_is_one_clear_error(code, message):
    done = _import(code, KERAS_BACKEND="jax")
    assert done.returncode != 0 and message in done.stderr.strip().splitlines()[-1]
