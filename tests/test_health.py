"""The after-fit guard (yt8m/health.py): it names a dead model's symptom, and stays silent on a live one."""
import keras
import numpy as np

from yt8m import health

RNG = np.random.default_rng(0)
LABELS = (RNG.random((8, 5)) < 0.3).astype("float32")
LABELS[0, 0] = 1.0


def test_a_live_model_has_no_symptom():
    probabilities = np.clip(0.2 + 0.5 * LABELS + 0.1 * RNG.random((8, 5)), 0, 1)
    assert health.symptoms(probabilities, LABELS, [0.9, 0.5, 0.4]) == []
    # Confidently right is no symptom: the absent classes at p ~ 1e-9 (a 3862-class model's unseen ones).
    confident = np.where(LABELS > 0, 0.7 + 0.1 * RNG.random((8, 5)), 1e-9)
    assert health.symptoms(confident, LABELS, [0.9, 0.5]) == []


def test_each_symptom_by_itself():
    constant = np.tile([[0.3, 0.1, 0.2, 0.05, 0.4]], (8, 1))
    found = health.symptoms(constant, LABELS, [1.0])
    assert len(found) == 1 and "same for every example" in found[0]
    labels_at_zero = np.where(LABELS > 0, 1e-9, 0.1 + 0.3 * RNG.random((8, 5)))   # no gradient left to them
    found = health.symptoms(labels_at_zero, LABELS, [1.0])
    assert len(found) == 1 and "p < 1e-07" in found[0] and "100%" in found[0]
    ones = np.ones((8, 5))                                 # the KSSNetTemporal: every output 1.0
    found = health.symptoms(ones, LABELS, [1.0])
    assert len(found) == 2 and "same for every example" in found[0] and "p > 1 - 1e-07" in found[1]
    live = np.clip(0.2 + 0.5 * LABELS + 0.1 * RNG.random((8, 5)), 0, 1)
    found = health.symptoms(live, LABELS, [15779.0, 3251.0, 61539.0])   # the pretrain loss
    assert len(found) == 1 and "61539" in found[0] and "15779" in found[0]
    assert health.symptoms(live, LABELS, [10.0, 19.0]) == []             # below 2x


def test_check_runs_the_model_on_the_batch_and_warns_with_the_flags(capsys):
    features = keras.Input((3,), name="features")
    dead = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid", kernel_initializer="zeros",
                                                    bias_initializer=keras.initializers.Constant(-30.0))(features))
    batch = ({"features": RNG.random((8, 3)).astype("float32"), "id": np.arange(8)}, LABELS, np.ones_like(LABELS))
    found = health.check(dead, batch, [2.0, 1.0])
    assert len(found) == 2   # constant and pinned at 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and all(line.startswith("WARNING: the trained model looks dead") for line in printed)
    assert all(flag in printed[0] for flag in ("--base_learning_rate", "--clip_gradient_norm", "--model_params"))
    live = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid")(features))
    assert health.check(live, batch, [2.0, 1.0]) == ()
    assert capsys.readouterr().out == ""
