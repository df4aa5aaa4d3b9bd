"""The registry's NeXtVLADModel and NeXtVLADMixture reproduce linrongc/youtube-8m's own outputs.

Fixtures (tests/fixtures/linrongc_*.npz, how they were made: tests/fixtures/README.md): linrongc's
NeXtVLADModel and MixNeXtVladModel run in inference mode at rgb 16 + audio 8 dims, K=4, G=2,
hidden 8, gating reduction 2, 5 classes, with every variable (BN moving statistics included)
seeded to non-trivial values; our models load those variables (models/linrongc.py).
"""
import os

import keras
import numpy as np
import pytest

from models import registry
from models.linrongc import load_linrongc_weights

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SIZES = dict(num_classes=5, feature_size=24, audio_size=8, groups=2, expansion=2, hidden_size=8, dropout=0.5,
             classifier_kind="logistic", l2_penalty=1e-5)


def _fixture(name):
    data = np.load(os.path.join(FIXTURES, name))
    variables = {key.removeprefix("var/"): data[key] for key in data.files if key.startswith("var/")}
    inputs = {"frames": data["frames"], "num_frames": data["num_frames"]}
    return data, variables, inputs


def _count(model):
    return sum(1 for w in model.weights if "seed_generator" not in w.path)


def test_nextvlad_model_matches_linrongc():
    data, variables, inputs = _fixture("linrongc_nextvlad.npz")
    model = registry.build("NeXtVLADModel", cluster_size=4, gating_reduction=2, **SIZES)
    assert _count(model) == len(variables)  # every variable has its place, none is left over
    load_linrongc_weights(model, variables)
    assert len(set(data["num_frames"])) > 1  # padded videos: masking is pinned too
    layers = keras.Model(model.input, [model.get_layer(n).output for n in ("rgb_nextvlad", "audio_nextvlad")])
    rgb, audio = layers.predict(inputs, verbose=0)
    order = lambda k, f: (np.arange(f)[None, :] * k + np.arange(k)[:, None]).ravel()  # noqa: E731
    np.testing.assert_allclose(rgb, data["rgb_vlad"][:, order(4, 16)], atol=1e-5)
    np.testing.assert_allclose(audio, data["audio_vlad"][:, order(2, 16)], atol=1e-5)
    predictions = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(predictions, data["predictions"], atol=1e-5)
    assert predictions.std(axis=0).min() > 1e-3  # the videos get different predictions
    # linrongc's LogisticModel: slim l2 1e-5 on the classifier's weights and biases, nothing else
    assert float(sum(model.losses)) == pytest.approx(float(data["regularization_loss"]), rel=1e-5)


def test_mixture_with_the_video_gate_matches_linrongc():
    data, variables, inputs = _fixture("linrongc_mix_nextvlad.npz")
    model = registry.build("NeXtVLADMixture", cluster_size_0=4, cluster_size_1=4, cluster_size_2=4,
                           gating_reduction_0=2, gating_reduction_1=2, gating_reduction_2=2, attention_gru=False,
                           mixture_gate="video", **SIZES)
    assert _count(model) == len(variables)
    load_linrongc_weights(model, variables)
    names = ["mean_frame"] + [f"branch{i}_classifier" for i in range(3)]
    mean_frame, *logits = keras.Model(model.input, [model.get_layer(n).output for n in names]).predict(
        inputs, verbose=0)
    np.testing.assert_allclose(np.stack(logits, 1), data["branch_logits"], atol=1e-5)
    weights = keras.ops.convert_to_numpy(model.get_layer("mixture").mixture_weights(mean_frame))
    np.testing.assert_allclose(weights, data["mix_weights"], atol=1e-5)
    np.testing.assert_allclose(model.predict(inputs, verbose=0), data["predictions"], atol=1e-5)
    assert float(sum(model.losses)) == pytest.approx(float(data["regularization_loss"]), rel=1e-5)


def test_mixture_training_outputs_and_distillation_match_linrongc():
    """linrongc's training mode (batch statistics, drop_rate 0) with cl_lambda 9, cl_temperature 3."""
    _, variables, inputs = _fixture("linrongc_mix_nextvlad.npz")
    data = np.load(os.path.join(FIXTURES, "linrongc_mix_nextvlad_training.npz"))
    model = registry.build("NeXtVLADMixture", cluster_size_0=4, cluster_size_1=4, cluster_size_2=4,
                           gating_reduction_0=2, gating_reduction_1=2, gating_reduction_2=2, attention_gru=False,
                           mixture_gate="video", distill_weight=float(data["cl_lambda"]),
                           distill_temperature=float(data["cl_temperature"]),
                           **{**SIZES, "dropout": 0.0})
    load_linrongc_weights(model, variables)
    predictions = model({k: keras.ops.convert_to_tensor(v) for k, v in inputs.items()}, training=True)
    branches, distillation = model.get_layer("mixture").take_training_terms()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(predictions), data["predictions"], atol=1e-5)
    np.testing.assert_allclose(np.stack([keras.ops.convert_to_numpy(b) for b in branches], 1),
                               data["aux_predictions"], atol=1e-5)
    assert float(distillation) == pytest.approx(float(data["distillation_loss"]), rel=1e-5)
