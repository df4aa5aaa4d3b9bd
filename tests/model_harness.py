"""The one harness every registered model passes through (keras-hub style).

`check_model(name, params, tmp_path)` builds the model with tiny params on a small
label space and checks the contract of docs/ARCHITECTURE.md ("Models"): inputs,
output shape/range, predicting from a reader-like `tf.data.Dataset`, config and
`.keras` round trips, a few optimizer steps lowering the loss and, for
frame-level models, that padding beyond `num_frames` changes nothing. Clip models
(`registry.input_kind(name) == "clip"`) get tiny uint8 RGB clips instead.
"""
import pathlib

import keras
import numpy as np
import tensorflow as tf

from models import registry
from yt8m.data import schema

NUM_CLASSES = 20
FEATURE_SIZE = 12
BATCH_SIZE = 4
# Three batches: segments (T=5, with an empty video), full-length videos (T=300), short ones.
FRAME_COUNTS = (5, 1, 5, 0, 17, 300, 9, 40, 3, 60, 5, 2)
# Clip models: 12 clips of (frames, height, width), the size the clip reader gives in the tests
# (one size: every further shape would retrace the model's large train step).
CLIP_SHAPE, NUM_CLIPS = (8, 32, 32), 12


def learnable_clips(seed: int = 0):
    """`(examples, labels)` for clip models: each clip is a flat random colour plus pixel noise;
    labels are a fixed function of that colour."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(-1.0, 1.0, size=(NUM_CLIPS, 3))
    labels = (colours @ rng.normal(size=(3, NUM_CLASSES)) > 0).astype(np.float32)
    examples = []
    for colour in colours:
        pixels = 128 + 90 * colour + 10 * rng.normal(size=(*CLIP_SHAPE, 3))
        examples.append({schema.CLIP_INPUT: np.clip(np.round(pixels), 0, 255).astype(np.uint8)})
    return examples, labels


def learnable_examples(frame_level: bool, frame_counts=FRAME_COUNTS, seed: int = 0):
    """`(examples, labels)`: one dict of model inputs per example (frames unpadded, as a
    reader sees them) and multi-hot labels that are a fixed function of each example's
    prototype, so a model can fit them."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(len(frame_counts), FEATURE_SIZE)).astype(np.float32)
    projection = rng.normal(size=(FEATURE_SIZE, NUM_CLASSES))
    labels = (prototypes @ projection > 0).astype(np.float32)
    if not frame_level:
        return [{schema.VIDEO_INPUT: p} for p in prototypes], labels
    examples = []
    for prototype, count in zip(prototypes, frame_counts):
        frames = prototype + 0.2 * rng.normal(size=(count, FEATURE_SIZE))
        examples.append({schema.FRAMES_INPUT: schema.quantize(frames),
                         schema.NUM_FRAMES_INPUT: np.int32(count)})
    return examples, labels


def reader_like_dataset(examples: list, labels: np.ndarray) -> tf.data.Dataset:
    """`(inputs, labels, weights)` batches, frames padded to each batch's longest video."""
    shapes = {schema.FRAMES_INPUT: (None, FEATURE_SIZE), schema.CLIP_INPUT: (None, None, None, 3)}
    spec = {key: tf.TensorSpec(shapes.get(key, np.shape(value)), tf.as_dtype(np.asarray(value).dtype))
            for key, value in examples[0].items()}
    label_spec = tf.TensorSpec((NUM_CLASSES,), tf.float32)

    def generate():
        for example, label in zip(examples, labels):
            yield example, label, np.ones_like(label)

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(spec, label_spec, label_spec))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(examples))).padded_batch(BATCH_SIZE)


def batch_inputs(dataset: tf.data.Dataset) -> list:
    """The input dicts of every batch, as numpy."""
    return [{k: v.numpy() for k, v in inputs.items()} for inputs, _, _ in dataset]


def predict_batches(model: keras.Model, batches: list) -> np.ndarray:
    """Inference-mode probabilities of every batch, concatenated."""
    return np.concatenate([keras.ops.convert_to_numpy(model(b, training=False)) for b in batches])


def check_inputs_and_output(model: keras.Model, frame_level: bool, batches: list,
                            input_kind: str | None = None) -> np.ndarray:
    """The contract's inputs and, per batch, a float32 (B, C) output in [0, 1]; returns the outputs concatenated."""
    expected = ({schema.FRAMES_INPUT: "uint8", schema.NUM_FRAMES_INPUT: "int32"} if frame_level
                else {schema.VIDEO_INPUT: "float32"})
    if input_kind == "clip":
        expected = {schema.CLIP_INPUT: "uint8"}
    actual = {name: tensor.dtype for name, tensor in model.input.items()}
    assert actual == expected, f"model inputs {actual}, contract says {expected}"
    if input_kind == "clip":
        assert tuple(model.input[schema.CLIP_INPUT].shape[1:]) == (None, None, None, 3), \
            "time and space axes must be dynamic, 3 RGB channels"
    elif frame_level:
        assert model.input[schema.FRAMES_INPUT].shape[1] is None, "the time axis must be dynamic"
    outputs = []
    for batch in batches:
        probabilities = model(batch, training=False)
        assert probabilities.dtype == "float32"
        assert tuple(probabilities.shape) == (len(next(iter(batch.values()))), NUM_CLASSES)
        values = keras.ops.convert_to_numpy(probabilities)
        assert np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0
        outputs.append(values)
    return np.concatenate(outputs)


def check_predict_on_dataset(model: keras.Model, dataset: tf.data.Dataset, expected: np.ndarray):
    """`model.predict` on `(inputs, labels, weights)` batches equals `expected`, the model called per batch."""
    predicted = model.predict(dataset, verbose=0)
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(dataset, verbose=0), predicted, rtol=1e-6, atol=1e-7,
                               err_msg="inference must be deterministic")


def check_config_round_trip(model: keras.Model, batches: list, expected: np.ndarray):
    clone = keras.models.model_from_json(model.to_json())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(predict_batches(clone, batches), expected, rtol=1e-5, atol=1e-6)


def check_saving(model: keras.Model, batches: list, expected: np.ndarray, tmp_path: pathlib.Path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(predict_batches(reloaded, batches), expected, rtol=1e-5, atol=1e-6)


def check_padding_changes_nothing(model: keras.Model, batches: list, expected: np.ndarray):
    """Garbage in the padding, and extra garbage frames past the batch's longest video."""
    rng = np.random.default_rng(2)
    padded = []
    for batch in batches:
        frames, num_frames = batch[schema.FRAMES_INPUT], batch[schema.NUM_FRAMES_INPUT]
        extra = np.zeros((frames.shape[0], 7, FEATURE_SIZE), np.uint8)
        frames = np.concatenate([frames, extra], axis=1)
        padding = np.arange(frames.shape[1])[None, :] >= num_frames[:, None]
        frames[padding] = rng.integers(0, 256, (padding.sum(), FEATURE_SIZE), dtype=np.uint8)
        padded.append({schema.FRAMES_INPUT: frames, schema.NUM_FRAMES_INPUT: num_frames})
    np.testing.assert_allclose(predict_batches(model, padded), expected, rtol=1e-5, atol=1e-6)


def elementwise_binary_crossentropy(labels, probabilities):
    """(B, C) binary cross-entropy, so the reader's (B, C) weights apply per element."""
    return keras.losses.binary_crossentropy(labels[..., None], probabilities[..., None])


def check_training_lowers_loss(model: keras.Model, dataset: tf.data.Dataset, num_batches: int,
                               steps: int = 20):
    """About `steps` Adam steps on the learnable dataset; the last epoch's loss beats the first's."""
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=elementwise_binary_crossentropy)
    model.optimizer.build(model.trainable_variables)   # as yt8m.training does: the step is traced once, not twice
    history = model.fit(dataset.repeat(), epochs=-(-steps // num_batches),
                        steps_per_epoch=num_batches, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)), f"non-finite training loss {losses}"
    assert losses[-1] < 0.9 * losses[0], f"{steps} Adam steps did not lower the loss: {losses}"


def check_model(name: str, params: dict, tmp_path: pathlib.Path):
    """Builds `name` with `params` and runs every check."""
    frame_level = registry.is_frame_level(name)
    input_kind = registry.input_kind(name)
    keras.utils.set_random_seed(0)
    model = registry.build(name, num_classes=NUM_CLASSES, feature_size=FEATURE_SIZE, **params)
    examples = learnable_clips() if input_kind == "clip" else learnable_examples(frame_level)
    dataset = reader_like_dataset(*examples)
    batches = batch_inputs(dataset)

    expected = check_inputs_and_output(model, frame_level, batches, input_kind)
    check_predict_on_dataset(model, dataset, expected)
    check_config_round_trip(model, batches, expected)
    check_saving(model, batches, expected, tmp_path)
    if input_kind == "frames":
        check_padding_changes_nothing(model, batches, expected)
    check_training_lowers_loss(model, dataset, len(batches))
