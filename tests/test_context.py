"""Segments in their video's context (issue 16): the whole-video segment reader, the context-aware
wrapper, one-pass eval/inference."""
import numpy as np
import pytest

from yt8m.data import readers, schema, video_segments

SPEC = schema.FeatureSpec(("rgb", "audio"), (1024, 128))


def _rows_by_pair(dataset):
    """{(segment id, class): (target row, weight row)} of every rated (segment, class) pair."""
    rows = {}
    for features, targets, weights in dataset:
        ids, targets, weights = features["segment_ids"].numpy(), targets.numpy(), weights.numpy()
        for b, s, c in zip(*np.nonzero(weights)):
            rows[(ids[b, s].decode(), int(c))] = (targets[b, s], weights[b, s])
    return rows


def test_video_reader_carries_every_rating_as_the_segment_reader_does(synthetic_data):
    """Each rated (segment, class) of the per-segment reader is a mark of the whole-video reader, with the
    same target row (video labels, the rated classes at their scores); segments past a video's end never
    appear (start -1, masked, no id)."""
    pattern, c = synthetic_data.frame_validate, synthetic_data.num_classes
    whole = video_segments.video_segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=20)
    for features, targets, weights in whole.take(2):
        starts, mask = features["segment_starts"].numpy(), features["segment_mask"].numpy()
        num_frames = features["num_frames"].numpy()[:, None]
        assert ((starts >= 0) == mask).all() and (starts[mask] < np.broadcast_to(num_frames, mask.shape)[mask]).all()
        assert (features["segment_ids"].numpy()[~mask] == b"").all()
        assert (weights.numpy()[~mask] == 0).all()
    rows = _rows_by_pair(whole)
    count = 0
    for features, labels, _ in readers.segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=20):
        for segment_id, rated, label in zip(features["id"].numpy(), features["segment_class"].numpy(),
                                            labels.numpy()):
            target, weight = rows[(segment_id.decode(), int(rated))]
            assert weight[rated] == 1
            marked = weight > 0   # the other classes this segment is rated for
            np.testing.assert_array_equal(target[~marked], label[~marked])
            assert target[rated] == label[rated]
            count += 1
    assert count == len(rows) > 0


def test_video_reader_on_test_files_lists_the_segments_inference_cuts(synthetic_data):
    pattern, c = synthetic_data.frame_test, synthetic_data.num_classes
    whole = video_segments.video_segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=120,
                                                 rated=False)
    ids = []
    for features, targets, _ in whole:
        assert targets.shape[-1] == 0
        ids += features["segment_ids"].numpy()[features["segment_mask"].numpy()].tolist()
    cut = []
    for features, _, _ in readers.segment_dataset(pattern, num_classes=c, feature_spec=SPEC, batch_size=120,
                                                  rated=False):
        cut += features["id"].numpy().tolist()
    assert sorted(ids) == sorted(cut) and len(set(ids)) == len(ids)


# ------------------------------------------------------------------ the context-aware model

def _backbone(name):
    from models import registry

    params = {"DbofModel": dict(cluster_size=16, hidden_size=16, sample_frames=10),
              "NeXtVLADModel": dict(cluster_size=8, hidden_size=16, groups=2, dropout=0.0)}[name]
    return registry.build(name, num_classes=64, feature_size=SPEC.total_size, **params)


def _randomised(model, seed=0):
    """Every weight of the combination drawn at random, so the video's part of a score is not 0."""
    rng = np.random.default_rng(seed)
    head = model.get_layer("combine")
    head.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in head.get_weights()])
    return model


@pytest.mark.parametrize("name, encoder, combine", [("DbofModel", "backbone", "concat"),
                                                    ("NeXtVLADModel", "pool", "gate")])
def test_whole_video_scores_equal_each_segment_fed_by_hand(synthetic_data, name, encoder, combine):
    """One forward pass over a batch of padded videos gives each segment the score the sub-models give
    when that segment's 5 frames (cut by hand, zeros past the end) and its video alone are fed to them;
    no score where no segment is; another video's context changes the score."""
    from models import context

    model = _randomised(context.context_model(_backbone(name), segment_encoder=encoder, combine=combine))
    dataset = video_segments.video_segment_dataset(synthetic_data.frame_test, num_classes=64, feature_spec=SPEC,
                                                   batch_size=240, rated=False)
    features = next(iter(dataset))[0]
    scores = model(readers.model_inputs(features), training=False).numpy()
    frames, num_frames = features["frames"].numpy(), features["num_frames"].numpy()
    starts, mask = features["segment_starts"].numpy(), features["segment_mask"].numpy()
    assert len(num_frames) >= 3 and len(set(num_frames)) > 1          # videos of different lengths, padded
    assert (scores[~mask] == 0).all()
    video_encoder, segment_encoder = model.get_layer("video_encoder"), model.get_layer("segment_encoder")
    head = model.get_layer("combine")
    for b in range(len(num_frames)):
        n = num_frames[b]
        assert mask[b].sum() == -(-n // 5)                           # ceil(n / 5) segments, no more
        video = video_encoder({"frames": frames[b:b + 1, :n], "num_frames": num_frames[b:b + 1]}, training=False)
        for s in np.flatnonzero(mask[b]):
            cut = np.zeros((1, 5, SPEC.total_size), np.uint8)
            real = frames[b, starts[b, s]:min(starts[b, s] + 5, n)]
            cut[0, :len(real)] = real
            segment = segment_encoder({"frames": cut, "num_frames": np.array([len(real)], np.int32)},
                                      training=False)
            by_hand = head([segment[0], segment[1], video[0], video[1]], training=False).numpy()[0]
            np.testing.assert_allclose(scores[b, s], by_hand, atol=1e-5)
    other = video_encoder({"frames": frames[1:2, :num_frames[1]], "num_frames": num_frames[1:2]}, training=False)
    elsewhere = head([segment[0], segment[1], other[0], other[1]], training=False).numpy()[0]
    assert np.abs(elsewhere - scores[b, s]).max() > 1e-4


def test_concat_context_starts_at_the_segment_only_scores(synthetic_data):
    """The zero-initialised context classifier: before finetuning, the context model gives every test
    segment the score its backbone gives that segment alone on the per-segment reader."""
    from models import context

    backbone = _backbone("DbofModel")
    model = context.context_model(backbone)
    alone = {}
    for features, _, _ in readers.segment_dataset(synthetic_data.frame_test, num_classes=64, feature_spec=SPEC,
                                                  batch_size=120, rated=False):
        alone.update(zip(features["id"].numpy(), backbone(readers.model_inputs(features), training=False).numpy()))
    scored = 0
    for features, _, _ in video_segments.video_segment_dataset(synthetic_data.frame_test, num_classes=64,
                                                               feature_spec=SPEC, batch_size=120, rated=False):
        mask = features["segment_mask"].numpy()
        scores = model(readers.model_inputs(features), training=False).numpy()[mask]
        for segment_id, score in zip(features["segment_ids"].numpy()[mask], scores):
            np.testing.assert_allclose(score, alone[segment_id], atol=1e-5)
            scored += 1
    assert scored == len(alone) > 0


def test_per_segment_loss_is_the_loss_on_the_rated_segments_rows():
    """PerSegmentLoss over (B, S, C) = the wrapped loss on the rows of the rated segments only."""
    from yt8m.losses import ReweightedCrossentropy
    from yt8m.segment_context import PerSegmentLoss

    rng = np.random.default_rng(0)
    y_pred = rng.uniform(0.05, 0.95, (2, 3, 4)).astype("float32")
    y_true = np.zeros((2, 3, 4), "float32")
    weights = np.zeros((2, 3, 4), "float32")
    y_true[0, 1, [0, 2]] = [1, 1]     # video label 0, rated class 2 positive
    weights[0, 1, 2] = 1
    y_true[1, 2, 3], weights[1, 2, 3] = 0, 1   # rated class 3 negative
    inner = ReweightedCrossentropy(2.5, 0.1)
    got = float(PerSegmentLoss(inner)(y_true, y_pred, weights))
    rows = [(0, 1), (1, 2)]
    expected = float(inner(np.stack([y_true[r] for r in rows]), np.stack([y_pred[r] for r in rows]),
                           np.stack([weights[r] for r in rows])))
    # by hand: per element w * BCE * C, mean over the 2 x 4 elements (the zero-target rows' classes at n)
    p, t, w = (np.stack([a[r] for r in rows]) for a in (y_pred, y_true, weights))
    t_zero = t * w   # unrated targets 0 (seed 003 §3.2)
    bce = -(t_zero * np.log(p) + (1 - t_zero) * np.log(1 - p)) * 4
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(float(((0.1 + 2.4 * w) * bce).mean()), rel=1e-5)


# ------------------------------------------------------------------ finetune, eval, inference

@pytest.fixture(scope="module")
def pretrained(synthetic_data, tmp_path_factory):
    from tests.helpers import frame_config
    from yt8m import training

    config = frame_config(synthetic_data, tmp_path_factory.mktemp("runs") / "pretrain", max_steps=30,
                          steps_per_epoch=15)
    training.train(config)
    return config


def test_context_finetune_with_every_loss_then_one_pass_eval_and_submission(pretrained, synthetic_data, tmp_path):
    """--segment_context=video: finetune on whole rated videos with the reweighted loss, correlation-smoothed
    targets and weak negatives together; the run reloads as a context model; eval scores every rated pair
    and the submission is the official format, scored by yt8m.metrics, every listed segment inside its video."""
    from models import context
    from yt8m import evaluation, metrics, rundir, training

    config = pretrained.replace(stage="finetune", init_from=pretrained.training.train_dir, segment_labels=True,
                                segment_context="video", context_combine="gate",
                                train_data_pattern=synthetic_data.frame_validate, train_dir=str(tmp_path / "fine"),
                                max_steps=8, steps_per_epoch=4, loss="reweighted", label_smoothing="correlation",
                                weak_negative_alpha=0.5, batch_size=20)
    result = training.train(config)
    assert result.steps == 8 and np.isfinite(result.final_loss) and result.health == ()
    model = rundir.load_trained_model(config.training.train_dir)
    assert context.is_context_model(model)
    run = config.replace(stage="pretrain", init_from="", eval_data_pattern=synthetic_data.frame_validate,
                         output_file=str(tmp_path / "eval.json"))
    scored = evaluation.evaluate(run, progress=False)
    per_segment = evaluation.evaluate(pretrained.replace(segment_labels=True, output_file=str(tmp_path / "e.json"),
                                                         eval_data_pattern=synthetic_data.frame_validate),
                                      progress=False)
    assert scored["num_rated_segments"] == per_segment["num_rated_segments"] > 0
    assert 0 < scored["segment_map_at_k"] <= 1
    csv = str(tmp_path / "submission.csv")
    evaluation.write_submission(run.replace(input_data_pattern=synthetic_data.frame_test, output_file=csv),
                                progress=False)
    with open(csv) as handle:
        assert handle.readline().strip() == "Class,Segments"
    truth = metrics.read_segment_truth(synthetic_data.test_truth)
    assert 0 < metrics.submission_map_at_k(csv, truth) <= 1
    lengths = {}
    for features, _, _ in video_segments.video_segment_dataset(synthetic_data.frame_test, num_classes=64,
                                                               feature_spec=SPEC, batch_size=600, rated=False):
        lengths.update(zip(features["id"].numpy().astype(str), features["num_frames"].numpy()))
    listed = {i for ids in metrics.read_segment_submission(csv).values() for i in ids}
    assert listed and all(int(i.split(":")[1]) < lengths[i.split(":")[0]] for i in listed)
    with pytest.raises(Exception, match="segment_context"):
        evaluation.evaluate(run.replace(segment_context="none"), progress=False)


def test_segment_context_flags_are_checked(pretrained, synthetic_data, tmp_path):
    from yt8m import training
    from yt8m.config import Config
    from yt8m.errors import UserError

    for changes in ({"segment_context": "video"}, {"segment_context": "attention"}, {"time_shift": True}):
        with pytest.raises(UserError, match="--segment_labels --frame_features"):
            Config.from_flags(**changes)
    with pytest.raises(UserError, match="context_combine"):
        Config.from_flags(context_combine="sum")
    with pytest.raises(UserError, match="pretrain without it"):
        training.train(pretrained.replace(segment_labels=True, segment_context="video",
                                          train_dir=str(tmp_path / "pre")))


def test_candidate_gating_segment_context_and_time_shift_are_off_by_default():
    """Measured on the proving ground (docs/results.md, issue 16): none raised MAP@K in every seed and backbone, so
    candidate gating, the segment context and the time shift stay off."""
    from absl import flags as absl_flags

    from yt8m import flags
    from yt8m.config import Config

    flags.define_flags()
    assert Config().evaluation.candidate_top_k == 0 and absl_flags.FLAGS["candidate_top_k"].default == 0
    assert Config().model_.segment_context == "none" and absl_flags.FLAGS["segment_context"].default == "none"
    assert Config().evaluation.time_shift is False and absl_flags.FLAGS["time_shift"].default is False


# ------------------------------------------------------------------ whole-video attention (--segment_context=attention)

ATTENTION_PARAMS = {"AttentionGRUModel": dict(gru_units=8, attention_units=8),
                    "CmaSNetModel": dict(filters=8, num_blocks=3, transformer_units=8, embedding_dim=8, scales=2),
                    "SRDLModel": dict(hidden_size=8, gcn_hidden_size=8, embedding_dim=8)}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _by_hand(model, name, frames, n, starts):
    """The model's scores (S, C) of the segments [start, start + 5) of one video (frames (1, n, D)),
    computed from its whole-video attention with numpy."""
    from models import cma

    inputs = {"frames": frames, "num_frames": np.array([n], np.int32)}
    segments = [np.arange(start, min(start + 5, n)) for start in starts]
    if name == "AttentionGRUModel":
        layer = model.get_layer("attention_gru")
        states, scores = (t.numpy()[0] for t in layer.frame_attention(model.get_layer("dequantize")(frames),
                                                                      inputs["num_frames"]))
        bn = model.get_layer("attention_gru_bn")
        gamma, beta, mean, var = (v.numpy() for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
        kernel, bias = (v.numpy() for v in model.get_layer("predictions").weights)
        out = []
        for seg in segments:
            w = np.exp(scores[seg] - scores[seg].max())
            pooled = (w[:, None] * states[seg]).sum(0) / w.sum()      # sum_{t in s} a_t h_t / sum_{t in s} a_t
            out.append(_sigmoid((gamma * (pooled - mean) / np.sqrt(var + bn.epsilon) + beta) @ kernel + bias))
        return np.array(out)
    if name == "CmaSNetModel":
        maps, strides = cma.attention_maps(model, inputs), cma.head_strides(model)
        heads = [layer for layer in model.layers if layer.name in maps]
        features = keras_model(model.input, [head.input[0] for head in heads])(inputs, training=False)
        per_head = []
        for head, feature in zip(heads, features):
            per_frame = np.repeat(feature.numpy()[0], strides[head.name], axis=0)            # (T, F)
            evidence = per_frame @ head.class_kernel.numpy().T                              # w_k . I^i
            rows = []
            for seg in segments:
                a = maps[head.name][0, seg]                                                 # (|s|, C)
                total = a.sum(0)
                a = np.where(total > 0, a / np.where(total > 0, total, 1), 1 / len(seg))    # Eq.8 on the segment
                rows.append(_sigmoid((a * evidence[seg]).sum(0) + head.class_bias.numpy()))
            per_head.append(rows)
        return np.mean(per_head, axis=0)                                                    # Eq.11
    car = model.get_layer("car")
    probe = keras_model(model.input, [model.get_layer("frame_encoder").output, model.get_layer("label_gcn").output[-1]])
    features, label_vectors = probe(inputs, training=False)
    channel, spatial = (t.numpy()[0] for t in car.attention(features, label_vectors))           # (C, d), (C, T)
    f = features.numpy()[0]
    out = []
    for seg in segments:
        fused = 0.5 * f[seg][None, :, :] * (spatial[:, seg][:, :, None] + channel[:, None, :])  # (C, |s|, d)
        out.append(_sigmoid((fused.max(1) * car.kernel.numpy()).sum(-1) + car.bias.numpy()))
    return np.array(out)


def keras_model(inputs, outputs):
    import keras

    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name", sorted(ATTENTION_PARAMS))
def test_whole_video_attention_scores_equal_each_segment_pooled_by_hand(synthetic_data, name):
    """--segment_context=attention: one pass over padded videos gives each segment the score computed by
    hand from the model's attention over that video alone, pooled over the segment's frames; no score
    where no segment is; the segment's score depends on frames outside it (the video is its context);
    the unwrapped heads give back the model's video-level predictions."""
    from models import registry, segment_attention

    model = registry.build(name, num_classes=64, feature_size=SPEC.total_size, **ATTENTION_PARAMS[name])
    wrapped = segment_attention.segment_attention_model(model)
    dataset = video_segments.video_segment_dataset(synthetic_data.frame_test, num_classes=64, feature_spec=SPEC,
                                                   batch_size=240, rated=False)
    features = next(iter(dataset))[0]
    inputs = readers.model_inputs(features)
    scores = wrapped(inputs, training=False).numpy()
    frames, num_frames = features["frames"].numpy(), features["num_frames"].numpy()
    starts, mask = features["segment_starts"].numpy(), features["segment_mask"].numpy()
    assert len(set(num_frames)) > 1 and (scores[~mask] == 0).all()
    for b in range(2):
        n = num_frames[b]
        assert mask[b].sum() == -(-n // 5)
        np.testing.assert_allclose(scores[b, mask[b]], _by_hand(model, name, frames[b:b + 1, :n], n, starts[b, mask[b]]),
                                   rtol=1e-4, atol=1e-6)
    changed = frames[:1, :num_frames[0]].copy()
    changed[0, :5] = 255 - changed[0, :5]            # only the first segment's frames
    other = wrapped({"frames": changed, "num_frames": num_frames[:1], "segment_starts": starts[:1, :mask[0].sum()]},
                    training=False).numpy()
    assert np.abs(other[0, 1:] - scores[0, 1:mask[0].sum()]).max() > 1e-6
    video = segment_attention.video_model(wrapped)({"frames": frames, "num_frames": num_frames}, training=False)
    np.testing.assert_allclose(video, model({"frames": frames, "num_frames": num_frames}, training=False), atol=1e-6)


def test_segment_attention_refuses_models_without_whole_video_attention():
    from models import segment_attention

    with pytest.raises(ValueError, match="AttentionGRUModel"):
        segment_attention.segment_attention_model(_backbone("DbofModel"))


def test_one_pass_prediction_traces_the_model_once_per_pass(synthetic_data):
    """segment_context.predict_batches over whole test videos: one trace of the forward pass for batches
    padded to different lengths and a partial last batch; its rows are the eager model's segments."""
    import glob

    import tensorflow as tf

    from models import context
    from tests.test_evaluation import CountingTraces
    from yt8m import segment_context

    pattern = synthetic_data.frame_test
    videos = sum(1 for path in glob.glob(pattern) for _ in tf.data.TFRecordDataset(path))
    per_batch = 5
    assert videos % per_batch and videos > 2 * per_batch, "full batches and a partial last one"
    dataset = video_segments.video_segment_dataset(pattern, num_classes=64, feature_spec=SPEC, rated=False,
                                                   batch_size=per_batch * readers.TEST_SEGMENTS_PER_VIDEO)
    assert len({int(features["frames"].shape[1]) for features, _, _ in dataset}) > 1, "padded to different lengths"
    model = CountingTraces(context.one_pass_model(_backbone("DbofModel")))
    model(readers.model_inputs(next(iter(dataset))[0]))   # built eagerly: the count below is the traces alone
    model.traces = 0
    rows = list(segment_context.predict_batches(model, dataset, pattern, "input_data_pattern", progress=False))
    assert model.traces == 1   # reduce_retracing alone: one per new shape until relaxed
    expected = [model.inner(readers.model_inputs(features), training=False).numpy()[features["segment_mask"].numpy()]
                for features, _, _ in dataset]
    assert [len(p) for _, _, p in rows] == [len(e) for e in expected]
    np.testing.assert_allclose(np.concatenate([p for _, _, p in rows]), np.concatenate(expected), rtol=1e-5, atol=1e-6)


def test_time_shift_averages_the_scores_of_the_frames_shifted_by_hand(synthetic_data):
    """--time_shift: the one-pass segment-only scores averaged over the whole video's frames moved one
    step left, not at all and one step right (edge frame repeated), shifted here by hand."""
    from models import context

    one_pass = context.one_pass_model(_backbone("DbofModel"))
    features = next(iter(video_segments.video_segment_dataset(synthetic_data.frame_test, num_classes=64,
                                                              feature_spec=SPEC, batch_size=240, rated=False)))[0]
    inputs = {k: v.numpy() for k, v in readers.model_inputs(features).items()}
    frames, num_frames = inputs["frames"], inputs["num_frames"]
    passes = []
    for delta in (-1, 0, 1):
        shifted = frames.copy()
        for b, n in enumerate(num_frames):
            shifted[b, :n] = frames[b, np.clip(np.arange(n) + delta, 0, n - 1)]
        passes.append(one_pass(dict(inputs, frames=shifted), training=False).numpy())
    got = context.time_shifted_model(one_pass)(inputs, training=False).numpy()
    np.testing.assert_allclose(got, np.mean(passes, axis=0), atol=1e-6)
    assert np.abs(got - passes[1]).max() > 1e-4


def test_attention_finetune_eval_time_shift_and_submission(synthetic_data, tmp_path):
    """--segment_context=attention end to end on a tiny Attention-GRU: pretrain, finetune on whole rated
    videos (loss falls, scores vary), the run reloads as a segment-attention model, eval scores every
    rated pair, --time_shift changes the scores, candidate gating reads the heads' video predictions,
    the submission lists only segments inside their videos, and a wrong --segment_context is named."""
    from models import context
    from tests.helpers import frame_config
    from yt8m import evaluation, metrics, rundir, training

    pretrain = frame_config(synthetic_data, tmp_path / "pre", model="AttentionGRUModel",
                            model_params={"gru_units": 16, "attention_units": 8}, max_steps=2)
    training.train(pretrain)
    config = pretrain.replace(stage="finetune", init_from=pretrain.training.train_dir, segment_labels=True,
                              segment_context="attention", train_data_pattern=synthetic_data.frame_validate,
                              train_dir=str(tmp_path / "fine"), max_steps=4, steps_per_epoch=2, loss="reweighted",
                              batch_size=20)
    result = training.train(config)
    assert result.steps == 4 and np.isfinite(result.final_loss) and result.health == ()
    model = rundir.load_trained_model(config.training.train_dir)
    assert context.context_kind(model) == "attention"
    run = config.replace(stage="pretrain", init_from="", eval_data_pattern=synthetic_data.frame_validate,
                         output_file=str(tmp_path / "eval.json"))
    plain = evaluation.evaluate(run, progress=False)
    shifted = evaluation.evaluate(run.replace(time_shift=True, candidate_top_k=3), progress=False)
    assert plain["num_rated_segments"] == shifted["num_rated_segments"] > 0
    assert 0 < plain["segment_map_at_k"] <= 1 and shifted["ungated_segment_map_at_k"] != plain["segment_map_at_k"]
    assert 0 < shifted["candidate_recall"] <= 1
    csv = str(tmp_path / "submission.csv")
    evaluation.write_submission(run.replace(input_data_pattern=synthetic_data.frame_test, output_file=csv),
                                progress=False)
    truth = metrics.read_segment_truth(synthetic_data.test_truth)
    assert 0 < metrics.submission_map_at_k(csv, truth) <= 1
    with pytest.raises(Exception, match="--segment_context=attention"):
        evaluation.evaluate(run.replace(segment_context="video"), progress=False)
    _check_export(run.replace(export_dir=str(tmp_path / "exported")), model, synthetic_data.frame_test)


def _check_export(config, model, pattern):
    """--export_dir of a model of whole-video batches serves each record's segments as the model scores them."""
    import glob

    import tensorflow as tf

    from yt8m import export

    export.export_run(config)
    records = [r.numpy() for r in tf.data.TFRecordDataset(sorted(glob.glob(pattern))).take(4)]
    served = tf.saved_model.load(config.evaluation.export_dir).signatures[export.SIGNATURE](serialized=tf.constant(records))
    features = next(iter(video_segments.video_segment_dataset(sorted(glob.glob(pattern))[0], num_classes=64,
                                                              feature_spec=SPEC, batch_size=240, rated=False)))[0]
    expected = model(readers.model_inputs(features), training=False).numpy()
    np.testing.assert_array_equal(served["segment_starts"].numpy(), features["segment_starts"].numpy())
    np.testing.assert_array_equal(served["segment_ids"].numpy(), features["segment_ids"].numpy())
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert served["top_classes"].numpy().shape == (*expected.shape[:2], 20)
