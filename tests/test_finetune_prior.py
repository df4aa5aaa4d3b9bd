"""--finetune_prior: strength/2 * ||w - w0||^2 toward the weights loaded from --init_from."""
import keras
import numpy as np
import pytest

from yt8m import finetune_prior, training
from yt8m.config import Config
from yt8m.errors import UserError
from yt8m.rundir import load_trained_model


def test_one_sgd_step_on_two_weights_moves_as_the_formula_says():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    w0 = np.array([[0.5], [-1.0]], np.float32)
    model.layers[1].kernel.assign(w0)
    assert finetune_prior.attach(model, strength=0.5) == 2
    w = np.array([[1.5], [-0.5]], np.float32)      # moved away from w0 since loading
    model.layers[1].kernel.assign(w)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.array([[1.0, 2.0]], np.float32), np.array([[3.0]], np.float32)
    # loss (x.w - y)^2 + 0.5/2 ||w - w0||^2: x.w = 0.5, so the data gradient 2 (0.5 - 3) x = [-5, -10]
    # and the prior's 0.5 (w - w0) = [0.5, 0.25]; one step of lr 0.1.
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(6.25 + 0.25 * (1.0 + 0.25))
    np.testing.assert_allclose(model.layers[1].kernel.numpy(),
                               w - 0.1 * (np.array([[-5.0], [-10.0]]) + 0.5 * (w - w0)), rtol=1e-6)


def test_a_regularizer_the_layer_had_is_kept_and_added_to():
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(1, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.3))
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign([[1.0], [2.0]])
    finetune_prior.attach(model, strength=2.0)
    dense.kernel.assign([[2.0], [2.0]])
    assert float(sum(model.losses)) == pytest.approx(0.3 * 8.0 + 2.0 / 2 * 1.0)
    with pytest.raises(ValueError, match="already has a finetune prior"):
        finetune_prior.attach(model, strength=1.0)


def _finetune(data, pretrain: Config, train_dir, max_steps: int, strength: float) -> np.ndarray:
    config = pretrain.replace(stage="finetune", init_from=pretrain.training.train_dir, train_dir=str(train_dir),
                              optimizer="sgd", base_learning_rate=0.05, max_steps=max_steps, steps_per_epoch=2,
                              finetune_prior=strength)
    training.train(config)
    return np.concatenate([w.ravel() for w in load_trained_model(str(train_dir)).get_weights()])


def test_a_resumed_finetune_pulls_toward_the_init_from_weights_not_the_backups(synthetic_data, tmp_path, capsys):
    pretrain = Config.from_flags(train_data_pattern=synthetic_data.video_train, num_classes=synthetic_data.num_classes,
                      model="LogisticModel", batch_size=32, max_steps=4, steps_per_epoch=4,
                      base_learning_rate=0.05, train_dir=str(tmp_path / "pre"))
    training.train(pretrain)
    w0 = np.concatenate([w.ravel() for w in load_trained_model(pretrain.training.train_dir).get_weights()])
    free = _finetune(synthetic_data, pretrain, tmp_path / "free", 4, 0.0)
    straight = _finetune(synthetic_data, pretrain, tmp_path / "straight", 4, 10.0)
    assert "finetune prior: 10.0/2 * ||w - w0||^2 on the" in capsys.readouterr().out
    _finetune(synthetic_data, pretrain, tmp_path / "resumed", 2, 10.0)
    capsys.readouterr()
    resumed = _finetune(synthetic_data, pretrain, tmp_path / "resumed", 4, 10.0)   # epoch 2 from the backup
    assert "resuming from step 2" in capsys.readouterr().out
    np.testing.assert_allclose(resumed, straight, atol=1e-6)
    # the prior holds the finetune nearer to w0 than no prior does, by more than the tolerance above
    assert np.linalg.norm(straight - w0) < 0.9 * np.linalg.norm(free - w0)


def test_the_prior_is_for_finetunes():
    with pytest.raises(UserError, match="--finetune_prior .* add --stage=finetune"):
        Config.from_flags(finetune_prior=0.005)
    with pytest.raises(UserError, match="--finetune_prior must be >= 0"):
        Config.from_flags(stage="finetune", init_from="/x", finetune_prior=-1.0)
