"""The registry's DbofModel and FrameLevelLogisticModel against the starter's own code
(google/youtube-8m), through golden fixtures (tests/fixtures/README.md says how they were made),
and the two starter options they need: frame L2 normalisation and DBoF inference sampling."""
import pathlib

import keras
import numpy as np
import pytest

from models import registry
from models.layers.frame_sampling import FrameSampleCounts
from models.layers.inputs import FrameMean, NormalizeFrames
from yt8m.data import schema
import model_harness

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CLASSES = 5


def load(name: str) -> dict:
    with np.load(FIXTURES / f"starter_{name}.npz") as data:
        return {key: data[key] for key in data.files}


def inputs_of(fixture: dict, padding_value: int = 0) -> dict:
    """The fixture's uint8 frames with the padding rows set to `padding_value` (the starter pads
    after dequantizing, so its padding is 0 whatever ours holds)."""
    frames = fixture["frames"].copy()
    frames[np.arange(frames.shape[1])[None, :] >= fixture["num_frames"][:, None]] = padding_value
    return {schema.FRAMES_INPUT: frames, schema.NUM_FRAMES_INPUT: fixture["num_frames"]}


def assign(variable, value):
    assert tuple(variable.shape) == value.shape, (variable.path, value.shape)
    variable.assign(value)


def assign_batch_norm(norm: keras.layers.BatchNormalization, fixture: dict, scope: str):
    for ours, theirs in (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "moving_mean"),
                         ("moving_variance", "moving_variance")):
        assign(getattr(norm, ours), fixture[f"var/{scope}/{theirs}"])


def starter_dbof(fixture: dict, **params) -> keras.Model:
    """The registry's DbofModel at the fixture's sizes holding the starter's variables."""
    model = registry.build("DbofModel", num_classes=CLASSES, feature_size=fixture["frames"].shape[-1],
                           cluster_size=8, hidden_size=6, num_mixtures=2, sample_frames=fixture["uniform"].shape[1],
                           activation=str(fixture["activation"]), pooling=str(fixture["pooling"]), **params)
    dbof = model.get_layer("dbof")
    assign_batch_norm(dbof.input_norm, fixture, "input_bn")
    assign(dbof.cluster.kernel, fixture["var/cluster_weights"])
    assign_batch_norm(dbof.cluster_norm, fixture, "cluster_bn")
    assign(model.get_layer("hidden").kernel, fixture["var/hidden1_weights"])
    assign_batch_norm(model.get_layer("hidden_bn"), fixture, "hidden1_bn")
    moe = model.get_layer("predictions")
    assign(moe.gates.kernel, fixture["var/gates/weights"])
    assign(moe.experts.kernel, fixture["var/experts/weights"])
    assign(moe.experts.bias, fixture["var/experts/biases"])
    return model


@pytest.fixture
def starter_draws(monkeypatch):
    """Makes the frame sampler draw the fixture's uniforms (the starter's were fixed the same way)."""
    def fix(uniform):
        monkeypatch.setattr(keras.random, "uniform", lambda shape, seed=None: keras.ops.convert_to_tensor(uniform))
    return fix


@pytest.mark.parametrize("name", ["dbof_sigmoid_max", "dbof_relu6_average"])
def test_dbof_matches_the_starter_with_its_options(name, starter_draws):
    """The starter's DbofModel (MoE head) at is_training=False, its inputs L2-normalised as in train.py,
    its SampleRandomFrames draws fixed: the same draws through our counts reproduce it."""
    fixture = load(name)
    model = starter_dbof(fixture, normalize_frames=True, sample_at_inference=True)
    starter_draws(fixture["uniform"])
    for padding in (0, 255):
        predicted = model(inputs_of(fixture, padding), training=False).numpy()
        np.testing.assert_allclose(predicted, fixture["predictions"], atol=1e-5, rtol=0)
    assert np.ptp(fixture["predictions"], axis=0).min() > 1e-3  # the videos' outputs differ
    regularization = sum(float(loss) for loss in model.losses)
    np.testing.assert_allclose(regularization, fixture["regularization_loss"], rtol=1e-5)


def test_dbof_without_inference_sampling_uses_every_frame():
    """Max pooling over the starter's draws = max pooling over the distinct drawn frames: fed exactly
    those frames, the default DbofModel (every valid frame at inference) gives the starter's output."""
    fixture = load("dbof_sigmoid_max")
    model = starter_dbof(fixture, normalize_frames=True)
    num_frames = fixture["num_frames"]
    index = (fixture["uniform"] * num_frames[:, None]).astype(np.int32)  # SampleRandomFrames' formula
    drawn = fixture["frames"][np.arange(len(index))[:, None], index]
    inputs = {schema.FRAMES_INPUT: drawn, schema.NUM_FRAMES_INPUT: np.full_like(num_frames, index.shape[1])}
    np.testing.assert_allclose(model(inputs, training=False).numpy(), fixture["predictions"], atol=1e-5, rtol=0)
    # ... and without the starter's normalisation the output is another one.
    unnormalized = starter_dbof(fixture)
    assert np.abs(unnormalized(inputs, training=False).numpy() - fixture["predictions"]).max() > 1e-3


@pytest.mark.parametrize("normalize_frames, key", [(True, "predictions_normalized"), (False, "predictions_raw")])
def test_frame_level_logistic_matches_the_starter(normalize_frames, key):
    fixture = load("frame_logistic")
    model = registry.build("FrameLevelLogisticModel", num_classes=CLASSES, feature_size=fixture["frames"].shape[-1],
                           normalize_frames=normalize_frames)
    dense = model.get_layer("predictions")
    assign(dense.kernel, fixture["var/m/fully_connected/weights"])
    assign(dense.bias, fixture["var/m/fully_connected/biases"])
    for padding in (0, 255):
        np.testing.assert_allclose(model(inputs_of(fixture, padding)).numpy(), fixture[key], atol=1e-5, rtol=0)
    np.testing.assert_allclose(sum(float(loss) for loss in model.losses), fixture["regularization_loss"], rtol=1e-5)


def test_starter_option_defaults():
    assert registry.is_frame_level("FrameLevelLogisticModel")
    assert registry.params("FrameLevelLogisticModel") == {"l2_penalty": 1e-8, "normalize_frames": False}
    dbof = registry.params("DbofModel")
    assert (dbof["normalize_frames"], dbof["sample_at_inference"]) == (False, False)


def test_normalize_frames_by_hand():
    frames = np.array([[[3.0, 4.0], [0.0, 2.0], [7.0, 7.0]]], np.float32)  # the last row is padding
    out = NormalizeFrames()(frames, np.array([2], np.int32)).numpy()
    np.testing.assert_allclose(out, [[[0.6, 0.8], [0.0, 1.0], [0.0, 0.0]]], atol=1e-7)
    assert NormalizeFrames.from_config(NormalizeFrames(epsilon=1e-6).get_config()).epsilon == 1e-6


def test_frame_mean_by_hand():
    frames = np.array([[[1.0, 2.0], [3.0, 6.0], [9.0, 9.0]], [[5.0, 5.0], [1.0, 1.0], [1.0, 1.0]]], np.float32)
    out = FrameMean()(frames, np.array([2, 0], np.int32)).numpy()
    np.testing.assert_allclose(out, [[2.0, 4.0], [0.0, 0.0]])  # padding ignored, an empty video 0


def test_sampling_at_inference_draws_and_survives_the_config():
    frames, num_frames = np.zeros((2, 6, 3), np.uint8), np.array([6, 2], np.int32)
    sampler = FrameSampleCounts(4, at_inference=True, seed=3)
    counts = [sampler(frames, num_frames, training=False)[1].numpy() for _ in range(4)]
    assert all(np.array_equal(c.sum(axis=1), [4, 4]) and not c[1, 2:].any() for c in counts)
    assert any(not np.array_equal(counts[0], c) for c in counts[1:])  # a fresh draw per call
    assert FrameSampleCounts.from_config(sampler.get_config()).at_inference
    every_frame = FrameSampleCounts(4)(frames, num_frames, training=False)[1].numpy()
    np.testing.assert_array_equal(every_frame, [[1] * 6, [1, 1, 0, 0, 0, 0]])


def test_normalized_dbof_passes_harness(tmp_path):
    model_harness.check_model("DbofModel", {"cluster_size": 16, "hidden_size": 8, "sample_frames": 4,
                                            "num_mixtures": 2, "normalize_frames": True}, tmp_path)


def test_inference_sampling_is_saved_with_the_model(tmp_path):
    model = registry.build("DbofModel", num_classes=3, feature_size=4, cluster_size=8, hidden_size=4,
                           sample_frames=3, sample_at_inference=True)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("frame_sampler").at_inference
