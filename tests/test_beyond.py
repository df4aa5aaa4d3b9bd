"""Issue 9, beyond the seeds: candidate gating, the weak-negative loss, ensembles, SWA."""
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import models  # noqa: F401  (registers the layers)
from helpers import frame_config
from models import registry
from models.ensemble import build_ensemble, per_class_ranks, reference_quantiles
from yt8m import candidates, ensemble, evaluation, losses, metrics, rundir, swa, training
from yt8m.config import Config
from yt8m.data import readers
from yt8m.errors import UserError


@pytest.fixture(scope="module")
def runs(synthetic_data, tmp_path_factory):
    """Two tiny DBoF runs: one trained with SWA over its epoch ends at steps 4, 8, 12, and a copy of
    it with perturbed weights saved as a second run (no second training, to keep the tests short)."""
    root = tmp_path_factory.mktemp("beyond")
    first = frame_config(synthetic_data, root / "a", max_steps=12, steps_per_epoch=4, swa_from_step=4)
    training.train(first)
    second = first.replace(train_dir=str(root / "b"), swa_from_step=0)
    model = rundir.load_trained_model(first.training.train_dir)
    rng = np.random.default_rng(1)
    model.set_weights([w + 0.3 * np.std(w) * rng.normal(size=w.shape) for w in model.get_weights()])
    os.makedirs(second.training.train_dir)
    model.save(os.path.join(second.training.train_dir, rundir.MODEL_FILE))
    second.save(os.path.join(second.training.train_dir, rundir.CONFIG_FILE))
    return first, second


@pytest.fixture(scope="module")
def test_candidates(runs, synthetic_data):
    config = segment_config(runs[0], synthetic_data, candidate_top_k=3)
    model = rundir.load_trained_model(config.training.train_dir)
    return candidates.video_candidates(config, synthetic_data.frame_test, "input_data_pattern", model,
                                       progress=False)


def segment_config(run: Config, data, **changes) -> Config:
    return run.replace(segment_labels=True, eval_data_pattern=data.frame_validate,
                       input_data_pattern=data.frame_test, batch_size=64, **changes)


# ------------------------------------------------------------------ candidate gating


def test_candidate_table_keeps_exactly_the_top_k_classes():
    rng = np.random.default_rng(0)
    probabilities = rng.random((6, 10))
    table = candidates.CandidateTable.from_predictions([f"v{i}" for i in range(6)][::-1], probabilities[::-1], k=3)
    segment_ids = np.array([f"v{i}:{5 * i}" for i in range(6)])
    mask = table.mask(segment_ids, 10)
    expected = np.zeros_like(mask)
    np.put_along_axis(expected, np.argsort(-probabilities, axis=1)[:, :3], True, axis=1)
    np.testing.assert_array_equal(mask, expected)
    gated = table.gate(segment_ids, probabilities)
    np.testing.assert_allclose(gated[mask], probabilities[mask])
    np.testing.assert_allclose(gated[~mask], probabilities[~mask] - 1.0)
    assert gated[mask].min() > gated[~mask].max()        # every candidate outranks every other
    # A threshold keeps fewer; a missing video is an error, not a silent pass.
    thresholded = candidates.CandidateTable.from_predictions(["a"], [[0.9, 0.2, 0.6]], k=2, threshold=0.7)
    assert thresholded.mask(["a:0"], 3).tolist() == [[True, False, False]]
    with pytest.raises(UserError, match="'b' has no candidates"):
        thresholded.mask(["b:5"], 3)


def test_video_candidates_are_the_models_top_k_on_whole_videos(runs, synthetic_data, test_candidates):
    config, table = runs[0], test_candidates
    model = rundir.load_trained_model(config.training.train_dir)
    dataset = readers.frame_dataset(synthetic_data.frame_test, num_classes=config.data.num_classes,
                                    feature_spec=config.data.feature_spec, batch_size=5)
    for features, _, _ in dataset.take(2):
        probabilities = model(readers.model_inputs(features), training=False).numpy()
        expected = np.sort(np.argsort(-probabilities, axis=1)[:, :3], axis=1)
        np.testing.assert_array_equal(np.sort(table.lookup(features["id"].numpy()), axis=1), expected)
    assert len(table.video_ids) == synthetic_data_videos(synthetic_data.frame_test)


def synthetic_data_videos(pattern):
    return sum(1 for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)))


def test_gated_submission_and_eval(runs, synthetic_data, test_candidates, tmp_path):
    config = segment_config(runs[0], synthetic_data, candidate_top_k=3, output_file=str(tmp_path / "s.csv"))
    evaluation.write_submission(config, progress=False)
    table = test_candidates
    submission = metrics.read_segment_submission(config.evaluation.output_file)
    checked = 0
    for class_id, ids in submission.items():
        is_candidate = table.contains(ids, np.full(len(ids), class_id))
        # Within each class, the candidates come first, then the others.
        assert not np.any(np.diff(is_candidate.astype(int)) > 0), class_id
        checked += is_candidate.sum()
    assert checked > 0
    gated = evaluation.evaluate(config.replace(output_file=str(tmp_path / "e.json")), progress=False)
    assert 0.0 < gated["candidate_recall"] <= 1.0
    assert 0.0 < gated["ungated_segment_map_at_k"] <= 1.0 and 0.0 < gated["segment_map_at_k"] <= 1.0


# ------------------------------------------------------------------ weak negatives


def test_weak_negative_loss_by_hand():
    # Row 1: rated class 0 with score 1; classes 1, 2 are not in the video: weak negatives.
    # Row 2: rated class 0 with score 0; class 1 is a video label (not rated): only class 2 is weak.
    labels = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    weights = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.4, 0.1], [0.3, 0.6, 0.2]], np.float32)
    alpha = 0.5
    row1 = -math.log(0.8) + alpha * (-math.log(0.6) - math.log(0.9)) / 2
    row2 = -math.log(0.7) + alpha * -math.log(0.8)
    loss = losses.WeakNegativeCrossentropy(alpha)(labels, p, sample_weight=weights)
    assert float(loss) == pytest.approx((row1 + row2) / 2, rel=1e-5)
    # Composed with seed 003's reweighting: m on the rated class, n on the others, plus the term. The
    # paper's targets (--unrated_targets=zero) aim row 2's unrated video label 1 at 0 with weight n; it
    # is still no weak negative. Under video_labels it aims at 1.
    m, n = 2.5, 0.1
    composed = losses.make_loss(Config.from_flags(loss="reweighted", weak_negative_alpha=alpha, segment_labels=True,
                                       unrated_classes="all"))
    row1 = m * -math.log(0.8) + n * (-math.log(0.6) - math.log(0.9)) + alpha * (-math.log(0.6) - math.log(0.9)) / 2
    row2 = m * -math.log(0.7) + n * (-math.log(0.4) - math.log(0.8)) + alpha * -math.log(0.8)
    assert float(composed(labels, p, sample_weight=weights)) == pytest.approx((row1 + row2) / 2, rel=1e-5)
    video_labels = losses.make_loss(Config.from_flags(loss="reweighted", weak_negative_alpha=alpha, segment_labels=True,
                                           unrated_targets="video_labels", unrated_classes="all"))
    row2 = m * -math.log(0.7) + n * (-math.log(0.6) - math.log(0.8)) + alpha * -math.log(0.8)
    assert float(video_labels(labels, p, sample_weight=weights)) == pytest.approx((row1 + row2) / 2, rel=1e-5)
    # --loss=weak_negative defaults to alpha = 1; alpha on a loss it does not compose with is an error.
    assert losses.make_loss(Config.from_flags(loss="weak_negative")).alpha == 1.0
    with pytest.raises(UserError, match="weak_negative_alpha"):
        Config.from_flags(loss="class_balanced", weak_negative_alpha=0.5)


# ------------------------------------------------------------------ ensembles


def test_ensemble_of_two_saved_runs_is_the_average(runs, synthetic_data, tmp_path):
    first, second = runs
    config = segment_config(first, synthetic_data, model="Ensemble", members=(first.training.train_dir, second.training.train_dir),
                            weights=(1.0, 3.0), train_dir=str(tmp_path / "ens"))
    ensemble.write_run(config)                   # writes the ensemble's model.keras, no gradient step
    loaded = rundir.load_trained_model(config.training.train_dir)
    members = [rundir.load_trained_model(run.training.train_dir) for run in runs]
    features, _, _ = next(iter(readers.segment_dataset(synthetic_data.frame_validate, rated=True,
                                                       num_classes=config.data.num_classes,
                                                       feature_spec=config.data.feature_spec, batch_size=32)))
    inputs = readers.model_inputs(features)
    expected = 0.25 * members[0](inputs, training=False) + 0.75 * members[1](inputs, training=False)
    np.testing.assert_allclose(loaded(inputs, training=False), expected, rtol=1e-5, atol=1e-6)
    # Weights fitted on rated segments: never worse than equal weights or any member alone.
    fitted = config.replace(train_dir="", weights=(), fit_weights_on=synthetic_data.frame_validate)
    _, report = ensemble.build(fitted, progress=False)
    assert sum(report["weights"]) == pytest.approx(1.0)
    assert report["fitted_map"] >= max(report["equal_weights_map"], *report["member_maps"]) - 1e-9


def test_fit_weights_finds_the_useful_member():
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 4, 400)
    ratings = rng.integers(0, 2, 400).astype(float)
    good = ratings + 0.3 * rng.random(400)           # ranks every positive first
    noise = rng.random(400)
    weights, best = ensemble.fit_weights(np.stack([noise, good], 1), classes, ratings)
    assert best == pytest.approx(1.0) and weights[1] > weights[0]


def test_rank_combination_by_hand(tmp_path):
    quantiles = np.array([[[0.0, 0.5, 1.0]]], np.float32)        # (M=1, C=1, Q=3)
    ranks = per_class_ranks(tf.constant([[[0.25], [0.5], [0.9], [1.5]]]), tf.constant(quantiles))
    np.testing.assert_allclose(ranks.numpy().ravel(), [0.25, 0.5, 0.9, 1.0], atol=1e-6)
    np.testing.assert_allclose(reference_quantiles(np.arange(11.0)[:, None], 3), [[0.0, 5.0, 10.0]])
    a = registry.build("LogisticModel", num_classes=3, feature_size=4)
    b = registry.build("MoeModel", num_classes=3, feature_size=4)
    q = np.stack([np.tile(np.linspace(0, 1, 5, dtype=np.float32), (3, 1))] * 2)   # ranks = probabilities
    model = build_ensemble([a, b], method="rank", quantiles=q, member_weights=[1.0, 1.0])
    x = {"features": np.random.default_rng(2).normal(size=(5, 4)).astype("float32")}
    mean = (a(x) + b(x)) / 2
    np.testing.assert_allclose(model(x), mean + 1e-4 * mean, rtol=1e-5)
    model.save(tmp_path / "rank.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "rank.keras")(x), model(x), rtol=1e-6)


# ------------------------------------------------------------------ stochastic weight averaging


class _Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        self.saved.append((int(self.model.optimizer.iterations.numpy()),
                           [w.numpy().copy() for w in self.model.trainable_weights],
                           [w.numpy().copy() for w in self.model.non_trainable_weights]))


def test_swa_weights_are_the_mean_of_the_saved_ones(tmp_path):
    keras.utils.set_random_seed(0)
    model = registry.build("MoeModel", num_classes=3, feature_size=4)
    rng = np.random.default_rng(0)
    x = {"features": rng.normal(size=(64, 4)).astype("float32")}
    y = (rng.random((64, 3)) > 0.5).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    snapshots = _Snapshots()
    path = str(tmp_path / "model.keras")
    model.fit(x, y, batch_size=16, epochs=5, verbose=0, shuffle=False,
              callbacks=[snapshots, swa.StochasticWeightAveraging(8, path)])   # epoch ends at 4, 8, ..., 20
    averaged = [s for s in snapshots.saved if s[0] >= 8]
    assert [s[0] for s in averaged] == [8, 12, 16, 20]
    saved = keras.models.load_model(path)
    for index, weight in enumerate(saved.trainable_weights):
        np.testing.assert_allclose(weight.numpy(), np.mean([s[1][index] for s in averaged], axis=0), rtol=1e-5,
                                   atol=1e-7)
    assert not np.allclose(saved.trainable_weights[0].numpy(), snapshots.saved[-1][1][0])


def test_swa_through_training_saves_the_average(runs):
    run = runs[0]
    state = np.load(os.path.join(run.training.train_dir, swa.STATE_FILE))
    assert int(state["count"]) == 3 and int(state["last_step"]) == 12       # steps 4, 8, 12
    model = rundir.load_trained_model(run.training.train_dir)
    for index, weight in enumerate(model.trainable_weights):
        np.testing.assert_allclose(weight.numpy(), state[f"w{index}"], rtol=1e-5, atol=1e-7)
