"""The after-fit guard (yt8m/health.py): it names a dead model's symptom, and stays silent on a live one."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from yt8m import health

RNG = np.random.default_rng(0)
LABELS = (RNG.random((8, 5)) < 0.3).astype("float32")
LABELS[0, 0] = LABELS[1, 1] = LABELS[2, 2] = LABELS[3, 3] = LABELS[4, 4] = 1.0   # every class present


def _live():
    return np.clip(0.2 + 0.5 * LABELS + 0.1 * RNG.random((8, 5)), 0, 1)


def _kinds(found):
    return [kind for kind, _ in found]


def test_a_live_model_has_no_symptom():
    assert health.symptoms(_live(), LABELS, health.Windows(0.9, (1, 10), 0.4, (41, 50))) == []
    # Confidently right is no symptom: the absent classes at p ~ 1e-9 (a 3862-class model's unseen ones).
    confident = np.where(LABELS > 0, 0.7 + 0.1 * RNG.random((8, 5)), 1e-9)
    assert health.symptoms(confident, LABELS, None) == []


def test_constant_is_judged_on_the_classes_the_batch_has():
    # 3 of the 5 classes present; the 2 absent ones vary (the old guard, max std over every class, passed this).
    labels = np.zeros((8, 5), "float32")
    labels[:4, 0] = labels[2:6, 1] = labels[5:, 2] = 1.0
    probabilities = np.concatenate([np.tile([[0.3, 0.1, 0.2]], (8, 1)), RNG.random((8, 2))], axis=1)
    found = health.symptoms(probabilities, labels, None)
    assert _kinds(found) == ["constant"] and "3 of the 3 classes" in found[0][1]
    # Two of the three present classes constant (2/3 >= one half): still dead; one of three: alive.
    probabilities[:, 0] = RNG.random(8)
    found = health.symptoms(probabilities, labels, None)
    assert _kinds(found) == ["constant"] and "2 of the 3 classes" in found[0][1]
    probabilities[:, 1] = RNG.random(8)
    assert health.symptoms(probabilities, labels, None) == []
    # Near-constant by the logit: p = 1e-4 * (1 + 1e-5 u) moves the logit by ~1e-5, p = 0.3 + 1e-3 u by ~5e-3.
    tiny = np.tile(1e-4, (8, 5)) * (1.0 + 1e-5 * RNG.random((8, 5)))
    assert _kinds(health.symptoms(tiny, labels, None)) == ["constant"]
    assert health.symptoms(0.3 + 1e-3 * RNG.random((8, 5)), labels, None) == []


def test_saturation_at_zero_and_at_one():
    at_zero = np.where(LABELS > 0, 1e-9, 0.1 + 0.3 * RNG.random((8, 5)))   # no gradient left to the positives
    found = health.symptoms(at_zero, LABELS, None)
    assert _kinds(found) == ["saturated"] and "p < 1e-07" in found[0][1] and "100%" in found[0][1]
    at_one = np.where(LABELS > 0, 0.5 + 0.3 * RNG.random((8, 5)), 1.0)     # the negatives pinned at 1
    found = health.symptoms(at_one, LABELS, None)
    assert _kinds(found) == ["saturated"] and "p > 1 - 1e-07" in found[0][1] and "100%" in found[0][1]
    ones = np.ones((8, 5))                                 # the KSSNetTemporal: every output 1.0
    assert _kinds(health.symptoms(ones, LABELS, None)) == ["constant", "saturated"]
    # Below the share: a third of the negatives pinned at 1 is no symptom.
    some = _live()
    negatives = np.argwhere(LABELS == 0)
    some[tuple(negatives[: len(negatives) // 3].T)] = 1.0
    assert health.symptoms(some, LABELS, None) == []


def test_a_loss_whose_last_window_is_far_above_its_first():
    # The issue-14 KSSNet pretrain's 15,779 -> 61,539, as the two windows' means.
    found = health.symptoms(_live(), LABELS, health.Windows(15779.0, (1, 10), 61539.0, (48, 57)))
    assert _kinds(found) == ["loss"]
    assert found[0][1] == ("its loss ended at 61539 (the mean of steps 48-57), above 2x its start 15779 "
                           "(the mean of steps 1-10)")
    assert health.symptoms(_live(), LABELS, health.Windows(10.0, (1, 1), 19.0, (2, 2))) == []       # below 2x
    assert health.symptoms(_live(), LABELS, health.Windows(10.0, (1, 1), float("nan"), (2, 2))) == []
    assert health.symptoms(_live(), LABELS, None) == []                                          # not judged


def _windows_of_fit(per_step, *, steps_per_epoch, steps_per_execution=1, model=None, running_mean=True):
    """LossWindows over a real fit whose step i has loss per_step[i] exactly (a zero Dense at learning rate 0,
    batches of one, mse against sqrt(loss)); returns the windows and the model (to fit again)."""
    if model is None:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", steps_per_execution=steps_per_execution)
    y = np.sqrt(np.asarray(per_step, np.float32))[:, None]
    data = tf.data.Dataset.from_tensor_slices((np.ones_like(y), y)).batch(1)
    recorder = health.LossWindows(running_mean=running_mean)
    model.fit(data, epochs=len(per_step) // steps_per_epoch, steps_per_epoch=steps_per_epoch, callbacks=[recorder],
              verbose=0)
    return recorder.windows(), model


def _mean(series, span, offset=0):
    return float(np.mean(series[span[0] - 1 - offset:span[1] - offset]))


def test_a_low_first_batch_before_a_flat_loss_is_no_divergence():
    # issue 17's false alarm: an easy first batch (0.1), then a flat 0.7: the old rule (the first batch against
    # the epoch's mean) fired; the windows compare 10 steps with 10 steps.
    series = np.array([0.1] + [0.7] * 49)
    assert series.mean() > health.LOSS_GROWTH * series[0]
    windows, _ = _windows_of_fit(series, steps_per_epoch=50)
    assert windows.first_steps == (1, 10) and windows.last_steps == (41, 50)
    assert windows.first == pytest.approx(0.64, rel=1e-5) and windows.last == pytest.approx(0.7, rel=1e-5)
    assert health.symptoms(_live(), LABELS, windows) == []


@pytest.mark.parametrize("steps_per_epoch, steps_per_execution", [(48, 1), (8, 1), (12, 3)])
def test_a_loss_that_truly_rises_is_flagged_with_the_windows_it_compared(steps_per_epoch, steps_per_execution):
    rng = np.random.default_rng(1)
    series = np.concatenate([np.full(10, 1.0), np.linspace(1.0, 2.5, 28), np.full(10, 2.5)]) * (1 + 0.1 * rng.random(48))
    windows, model = _windows_of_fit(series, steps_per_epoch=steps_per_epoch, steps_per_execution=steps_per_execution)
    total = len(series)
    # Across epochs (Keras's mean starts again at each): K = 10 steps, or whole executions of 3 (12 steps).
    k = 10 if steps_per_execution == 1 else 12
    assert windows.first_steps == (1, k) and windows.last_steps[1] == total
    assert 10 <= total - windows.last_steps[0] + 1 <= k
    assert windows.first == pytest.approx(_mean(series, windows.first_steps), rel=1e-5)
    assert windows.last == pytest.approx(_mean(series, windows.last_steps), rel=1e-5)
    found = health.symptoms(_live(), LABELS, windows)
    assert _kinds(found) == ["loss"]
    assert f"steps {windows.last_steps[0]}-{total})" in found[0][1] and f"steps 1-{k})" in found[0][1]
    assert f"{windows.last:.6g}" in found[0][1] and f"{windows.first:.6g}" in found[0][1]
    if steps_per_execution == 1 and steps_per_epoch == 8:
        # A resumed fit is judged on its own steps, numbered as the optimizer's: 8 steps, K = 2.
        again, _ = _windows_of_fit(series[:8], steps_per_epoch=8, model=model)
        assert again.first_steps == (total + 1, total + 2) and again.last_steps == (total + 7, total + 8)
        assert again.first == pytest.approx(np.mean(series[:2]), rel=1e-5)
        assert again.last == pytest.approx(np.mean(series[6:8]), rel=1e-5)


def test_loss_windows_of_per_step_logs_and_of_a_one_step_fit():
    # multi_worker.fit's logs: each step's loss (not a running mean).
    series = [0.5, 0.9, 1.2, 1.6, 2.0, 2.2, 2.4, 2.8]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    recorder = health.LossWindows(running_mean=False)
    recorder.set_model(model)
    recorder.on_train_begin()
    for epoch in range(2):
        recorder.on_epoch_begin(epoch)
        for batch in range(4):
            recorder.on_train_batch_end(batch, {"loss": series[4 * epoch + batch]})
        recorder.on_epoch_end(epoch, {"loss": series[4 * epoch + 3]})
    model.optimizer.iterations.assign(8)
    recorder.on_train_end()
    windows = recorder.windows()   # K = 8 // 4
    assert windows.first_steps == (1, 2) and windows.last_steps == (7, 8)
    assert windows.first == pytest.approx(0.7) and windows.last == pytest.approx(2.6)
    one, _ = _windows_of_fit([3.0], steps_per_epoch=1)
    assert one is None   # one step: nothing to compare


def test_loss_windows_leave_keras_free_to_dispatch_batch_ends_asynchronously(monkeypatch):
    from keras.src import backend

    monkeypatch.setattr(backend, "IS_THREAD_SAFE", True)   # as on the backends that dispatch asynchronously
    assert keras.callbacks.CallbackList([health.LossWindows()])._async_train


def test_check_runs_the_model_on_the_batch_and_warns_with_the_flags(capsys):
    features = keras.Input((3,), name="features")
    dead = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid", kernel_initializer="zeros",
                                                    bias_initializer=keras.initializers.Constant(-30.0))(features))
    batch = ({"features": RNG.random((8, 3)).astype("float32"), "id": np.arange(8)}, LABELS, np.ones_like(LABELS))
    found = health.check(dead, batch, None)
    assert len(found) == 2   # constant and pinned at 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and all(line.startswith("WARNING: the trained model looks dead") for line in printed)
    assert "--base_learning_rate" in printed[0] and "--model_params" in printed[0]
    assert "--clip_gradient_norm" in printed[1]
    live = keras.Model({"features": features}, keras.layers.Dense(5, activation="sigmoid")(features))
    assert health.check(live, batch, None) == ()
    assert capsys.readouterr().out == ""
