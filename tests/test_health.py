"""The after-fit guard (yt8m/health.py): it names a dead model's symptom, and stays silent on a live one."""
import keras
import numpy as np

from yt8m import health

RNG = np.random.default_rng(0)
LABELS = (RNG.random((8, 5)) < 0.3).astype("float32")
LABELS[0, 0] = LABELS[1, 1] = LABELS[2, 2] = LABELS[3, 3] = LABELS[4, 4] = 1.0   # every class present


def _live():
    return np.clip(0.2 + 0.5 * LABELS + 0.1 * RNG.random((8, 5)), 0, 1)


def _kinds(found):
    return [kind for kind, _ in found]


def test_a_live_model_has_no_symptom():
    assert health.symptoms(_live(), LABELS, [0.9, 0.5, 0.4]) == []
    # Confidently right is no symptom: the absent classes at p ~ 1e-9 (a 3862-class model's unseen ones).
    confident = np.where(LABELS > 0, 0.7 + 0.1 * RNG.random((8, 5)), 1e-9)
    assert health.symptoms(confident, LABELS, [0.9, 0.5]) == []


def test_constant_is_judged_on_the_classes_the_batch_has():
    # 3 of the 5 classes present; the 2 absent ones vary (the old guard, max std over every class, passed this).
    labels = np.zeros((8, 5), "float32")
    labels[:4, 0] = labels[2:6, 1] = labels[5:, 2] = 1.0
    probabilities = np.concatenate([np.tile([[0.3, 0.1, 0.2]], (8, 1)), RNG.random((8, 2))], axis=1)
    found = health.symptoms(probabilities, labels, [1.0])
    assert _kinds(found) == ["constant"] and "3 of the 3 classes" in found[0][1]
    # Two of the three present classes constant (2/3 >= one half): still dead; one of three: alive.
    probabilities[:, 0] = RNG.random(8)
    found = health.symptoms(probabilities, labels, [1.0])
    assert _kinds(found) == ["constant"] and "2 of the 3 classes" in found[0][1]
    probabilities[:, 1] = RNG.random(8)
    assert health.symptoms(probabilities, labels, [1.0]) == []
    # Near-constant by the logit: p = 1e-4 * (1 + 1e-5 u) moves the logit by ~1e-5, p = 0.3 + 1e-3 u by ~5e-3.
    tiny = np.tile(1e-4, (8, 5)) * (1.0 + 1e-5 * RNG.random((8, 5)))
    assert _kinds(health.symptoms(tiny, labels, [1.0])) == ["constant"]
    assert health.symptoms(0.3 + 1e-3 * RNG.random((8, 5)), labels, [1.0]) == []


def test_saturation_at_zero_and_at_one():
    at_zero = np.where(LABELS > 0, 1e-9, 0.1 + 0.3 * RNG.random((8, 5)))   # no gradient left to the positives
    found = health.symptoms(at_zero, LABELS, [1.0])
    assert _kinds(found) == ["saturated"] and "p < 1e-07" in found[0][1] and "100%" in found[0][1]
    at_one = np.where(LABELS > 0, 0.5 + 0.3 * RNG.random((8, 5)), 1.0)     # the negatives pinned at 1
    found = health.symptoms(at_one, LABELS, [1.0])
    assert _kinds(found) == ["saturated"] and "p > 1 - 1e-07" in found[0][1] and "100%" in found[0][1]
    ones = np.ones((8, 5))                                 # the KSSNetTemporal: every output 1.0
    assert _kinds(health.symptoms(ones, LABELS, [1.0])) == ["constant", "saturated"]
    # Below the share: a third of the negatives pinned at 1 is no symptom.
    some = _live()
    negatives = np.argwhere(LABELS == 0)
    some[tuple(negatives[: len(negatives) // 3].T)] = 1.0
    assert health.symptoms(some, LABELS, [1.0]) == []


def test_a_loss_that_ends_far_above_the_first():
    found = health.symptoms(_live(), LABELS, [15779.0, 3251.0, 61539.0])   # the pretrain loss
    assert _kinds(found) == ["loss"] and "61539" in found[0][1] and "15779" in found[0][1]
    assert health.symptoms(_live(), LABELS, [10.0, 19.0]) == []             # below 2x
    assert health.symptoms(_live(), LABELS, [10.0, float("nan"), 9.0]) == []


def test_check_runs_the_model_on_the_batch_and_warns_with_the_flags(capsys):
    features = keras.Input((3,), name="features")
    dead = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid", kernel_initializer="zeros",
                                                    bias_initializer=keras.initializers.Constant(-30.0))(features))
    batch = ({"features": RNG.random((8, 3)).astype("float32"), "id": np.arange(8)}, LABELS, np.ones_like(LABELS))
    found = health.check(dead, batch, [2.0, 1.0])
    assert len(found) == 2   # constant and pinned at 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and all(line.startswith("WARNING: the trained model looks dead") for line in printed)
    assert "--base_learning_rate" in printed[0] and "--model_params" in printed[0]
    assert "--clip_gradient_norm" in printed[1]
    live = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid")(features))
    assert health.check(live, batch, [2.0, 1.0]) == ()
    assert capsys.readouterr().out == ""
