"""--mixed_precision's policy (bfloat16 on a CPU-only host, float16 with a GPU) and --steps_per_execution."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import frame_config
from yt8m import training
from yt8m.config import Config
from yt8m.errors import UserError


@pytest.mark.parametrize("gpus, policy", [([], "mixed_bfloat16"),
                                          ([tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")],
                                           "mixed_float16")])
def test_mixed_precision_picks_bfloat16_without_a_gpu_and_float16_with_one(monkeypatch, gpus, policy):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    assert training.mixed_precision_policy() == policy
    before = keras.config.dtype_policy().name

    def build():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid", name="dense")(inputs))

    model = training._with_precision(Config.from_flags(mixed_precision=True), build)
    assert model.get_layer("dense").compute_dtype == policy.removeprefix("mixed_")
    assert model.get_layer("dense").kernel.dtype == "float32" and model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == before
    plain = training._with_precision(Config.from_flags(mixed_precision=False), build)
    assert plain.get_layer("dense").compute_dtype == "float32"


def test_steps_per_execution_goes_to_compile_and_max_steps_still_holds(synthetic_data, tmp_path, monkeypatch):
    compiled = []
    original = keras.Model.compile

    def spy(self, *args, **kwargs):
        compiled.append(kwargs.get("steps_per_execution"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", spy)
    config = frame_config(synthetic_data, tmp_path / "run", max_steps=6, steps_per_epoch=6, steps_per_execution=3)
    result = training.train(config)
    assert compiled == [3]
    assert result.steps == 6 and np.isfinite(result.final_loss)


def test_steps_per_execution_below_one_is_a_user_error():
    with pytest.raises(UserError, match="--steps_per_execution must be >= 1, got 0"):
        Config.from_flags(steps_per_execution=0)
