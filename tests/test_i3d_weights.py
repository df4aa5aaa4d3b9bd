"""The kinetics-i3d converter on a TF1 checkpoint the test writes with deepmind's names (nothing downloaded)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from models import registry
from tests.helpers import ROOT
from yt8m import i3d_weights, training
from yt8m.config import Config
from yt8m.errors import UserError

WIDTH = 0.125
PREFIX = "RGB/inception_i3d/"   # rgb_imagenet / rgb_scratch


def _i3d(**params):
    return registry.build("I3DModel", num_classes=3, feature_size=1, width_multiplier=WIDTH, **params)


def _backbone_weights(model) -> dict:
    return {f"{layer.name}/{w.name}": w.numpy() for layer in model._flatten_layers(include_self=False)
            if layer.name.endswith(("_conv", "_bn")) for w in layer.weights}


@pytest.fixture(scope="module")
def i3d_model():
    """One I3DModel at WIDTH for the file (each build of the whole backbone takes seconds)."""
    return _i3d()


@pytest.fixture(scope="module")
def deepmind_arrays(i3d_model):
    """deepmind's variable names (rgb_imagenet style) with our backbone's shapes at WIDTH, random values."""
    shapes = {name: value.shape for name, value in _backbone_weights(i3d_model).items()}
    rng = np.random.default_rng(0)
    arrays = {}
    for scope, ours in i3d_weights.unit_scopes():
        arrays[f"{PREFIX}{scope}/conv_3d/w"] = rng.normal(size=shapes[f"{ours}_conv/kernel"]).astype("float32")
        for name in ("beta", "moving_mean", "moving_variance"):
            arrays[f"{PREFIX}{scope}/batch_norm/{name}"] = rng.uniform(0.5, 1.5, shapes[f"{ours}_bn/{name}"]
                                                                      ).astype("float32")
    channels = arrays[f"{PREFIX}Mixed_5c/Branch_3/Conv3d_0b_1x1/conv_3d/w"].shape[-1] * 4
    arrays[PREFIX + "Logits/Conv3d_0c_1x1/conv_3d/w"] = np.zeros((1, 1, 1, channels, 400), "float32")
    arrays[PREFIX + "Logits/Conv3d_0c_1x1/conv_3d/b"] = np.zeros(400, "float32")
    return arrays


@pytest.fixture(scope="module")
def checkpoint(deepmind_arrays, tmp_path_factory):
    """A TF1 Saver checkpoint of `deepmind_arrays` (prefix .../model.ckpt)."""
    prefix = str(tmp_path_factory.mktemp("rgb_imagenet") / "model.ckpt")
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name.replace("/", "_"))
                     for name, value in deepmind_arrays.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)
    return prefix


def test_the_57_units_name_every_backbone_weight_and_the_5b_quirk(i3d_model):
    scopes = dict(i3d_weights.unit_scopes())
    assert len(scopes) == 57 and len(i3d_weights.checkpoint_variables()) == 228
    assert scopes["Mixed_5b/Branch_2/Conv3d_0a_3x3"] == "Mixed_5b_Branch_2_Conv3d_0b_3x3"
    assert scopes["Mixed_5c/Branch_2/Conv3d_0b_3x3"] == "Mixed_5c_Branch_2_Conv3d_0b_3x3"
    ours = {f"{prefix}_{kind}" for prefix in scopes.values() for kind in ("conv", "bn")}
    model_layers = {layer.name for layer in i3d_model._flatten_layers(include_self=False)
                    if layer.name.endswith(("_conv", "_bn"))}
    assert ours == model_layers


def test_cli_converts_and_i3d_model_loads_every_backbone_weight(checkpoint, deepmind_arrays, tmp_path):
    output = str(tmp_path / "i3d.npz")
    done = subprocess.run([sys.executable, "-m", "yt8m.i3d_weights", f"--checkpoint={checkpoint}",
                           f"--output={output}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    assert "wrote 285 weights of 228 backbone variables (230 in the checkpoint" in done.stdout
    config = Config.from_flags(model="I3DModel", clip_data_pattern="unused", num_classes=3, i3d_weights=output,
                    model_params={"width_multiplier": WIDTH})
    loaded = _backbone_weights(training._initial_model(config))
    with np.load(output) as written:
        assert set(written.files) == set(loaded) and len(loaded) == 285
        for key in written.files:
            np.testing.assert_array_equal(loaded[key], written[key])
    np.testing.assert_array_equal(loaded["Conv3d_1a_7x7_conv/kernel"], deepmind_arrays[PREFIX + "Conv3d_1a_7x7/conv_3d/w"])
    np.testing.assert_array_equal(loaded["Mixed_5b_Branch_2_Conv3d_0b_3x3_bn/moving_mean"],
                                  deepmind_arrays[PREFIX + "Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/moving_mean"])
    np.testing.assert_array_equal(loaded["Mixed_4f_Branch_1_Conv3d_0b_3x3_conv/kernel"],
                                  deepmind_arrays[PREFIX + "Mixed_4f/Branch_1/Conv3d_0b_3x3/conv_3d/w"])
    assert np.all(loaded["Mixed_3c_Branch_3_Conv3d_0b_1x1_bn/gamma"] == 1.0)   # snt.BatchNorm has no scale


def test_kssnet_i3d_takes_the_checkpoint_itself_as_i3d_weights(checkpoint, deepmind_arrays):
    config = Config.from_flags(model="KSSNetI3D", clip_data_pattern="unused", num_classes=3, i3d_weights=checkpoint)
    arrays = training._pretrained_weights(config)["inflated_weights"]
    model = registry.build("KSSNetI3D", num_classes=3, feature_size=1, width_multiplier=WIDTH, embedding_dim=8,
                           inflated_weights=arrays)
    variance = model.get_layer("Mixed_4b_Branch_0_Conv3d_0a_1x1_bn").moving_variance.numpy()
    np.testing.assert_array_equal(variance, deepmind_arrays[PREFIX + "Mixed_4b/Branch_0/Conv3d_0a_1x1/batch_norm/"
                                                            "moving_variance"])
    assert np.isfinite(model.get_layer("gcn").convolutions[0].kernel.numpy()).all()   # the GCN keeps its init


def test_kin600_layout_converts_to_the_same_weights(deepmind_arrays):
    """rgb_scratch_kin600: no scope prefix, BN arrays (1, 1, 1, 1, C), /Momentum slots (skipped)."""
    kin600 = {}
    for name, value in deepmind_arrays.items():
        bare = name[len(PREFIX):]
        kin600[bare] = value.reshape(1, 1, 1, 1, -1) if "/batch_norm/" in bare else value
        if bare.endswith(("conv_3d/w", "batch_norm/beta")):
            kin600[bare + "/Momentum"] = np.zeros_like(kin600[bare])
    expected, converted = i3d_weights.convert(deepmind_arrays), i3d_weights.convert(kin600)
    assert set(expected) == set(converted)
    for key in expected:
        np.testing.assert_array_equal(expected[key], converted[key])


def test_missing_unknown_and_flow_checkpoints_are_named(deepmind_arrays):
    broken = dict(deepmind_arrays)
    del broken[PREFIX + "Mixed_4e/Branch_2/Conv3d_0b_3x3/batch_norm/beta"]
    broken[PREFIX + "Mixed_6a/Branch_0/Conv3d_0a_1x1/conv_3d/w"] = np.zeros(1)
    with pytest.raises(UserError, match=r"1 missing \(RGB/inception_i3d/Mixed_4e/Branch_2/Conv3d_0b_3x3/batch_norm"
                                        r"/beta\) 1 unknown \(RGB/inception_i3d/Mixed_6a/"):
        i3d_weights.convert(broken)
    flow = {name.replace("RGB/", "Flow/"): value for name, value in deepmind_arrays.items()}
    flow["Flow/inception_i3d/Conv3d_1a_7x7/conv_3d/w"] = flow["Flow/inception_i3d/Conv3d_1a_7x7/conv_3d/w"][:, :, :, :2]
    with pytest.raises(UserError, match="flow checkpoint"):
        i3d_weights.convert(flow)
    with pytest.raises(UserError, match="not one deepmind kinetics-i3d network"):
        i3d_weights.convert({**deepmind_arrays, **flow})
