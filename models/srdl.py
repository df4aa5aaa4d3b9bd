"""SRDL on video: category-specific attentional regions over frames and interval erasing (training only)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models import registry
from models.layers.frame_sampling import frame_stem
from models.layers.gcn import GCNStack, LabelNodes
from models.layers.srdl import CategoryAttention
from models import contract


@keras.saving.register_keras_serializable(package="yt8m")
class SRDL(keras.Model):
    """A functional model whose training loss adds the erased branch: L = L_ori + L_era (Eq.11-13).

    Its one output is the original prediction, at training and at inference, so a
    saved model predicts exactly like any other. In a training step the `car` layer
    also computes the erased prediction; `compute_loss` scores it with the compiled
    loss (the same per-element loss, targets and reader weights as the original, so
    any `--loss` composes) and adds it. Evaluation and inference never build it.
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        erased = self.get_layer("car").take_erased_probabilities()
        if training and erased is not None and y is not None and self._compile_loss is not None:
            total = total + self._compile_loss(y, erased, sample_weight)  # L_era, the compiled loss
        return total


@registry.register("SRDLModel", frame_level=True)
def srdl_model(*, num_classes: int, feature_size: int, hidden_size: int = 64, gcn_hidden_size: int = 64,
               embedding_dim: int = 300, srdl_top_k: int = 3, srdl_alpha: float = 0.5, sample_frames: int = 0,
               class_block: int = 256, label_norm: str = "none", adjacency_form: str = "row_softmax",
               label_embeddings: np.ndarray | None = None) -> keras.Model:
    """SRDL (CAR + OE) over frames.

    Frames -> ReLU projection to `hidden_size` channels (F). Label embeddings (the
    run's `label_embeddings`, else seeded random vectors of `embedding_dim`) go
    through the shared GCN (`gcn_hidden_size` hidden units, 0 for one layer) over
    a randomly initialised, learnable adjacency to `hidden_size`-wide label vectors
    (Eq.3); `adjacency_form="row_softmax"` (default) learns it as row-softmax logits
    started at log(I + U(0, 1/C)): each class starts with 2/3 of its row, and Adam
    changes that share at the same pace whatever C ("direct": the entries themselves,
    where Adam's steps of ~lr swamp the 1/C off-diagonal start and every class gets
    the same vector; LabelNodes). The
    label vectors are used as the paper has them (`label_norm="none"`, the default; "l2": each
    L2-normalised before it gates, an option). CAR: per-class channel and temporal attention with their learnable branch
    transforms, fused, max-pooled, per-class classifiers (Eq.4-6). OE (training only,
    `srdl_top_k` > 0): each of the top-`srdl_top_k` classes loses, in its own temporal
    attention, the interval >= `srdl_alpha` of its normalised curve around its own
    global peak; the erased prediction's loss is added (Eq.7-13); `srdl_top_k=0` is
    CAR alone. `sample_frames` > 0 trains on one random run of that many consecutive
    frames (intervals stay intervals); `class_block` bounds the memory of the
    per-class pooling (B x class_block x T x hidden_size floats).
    """
    if label_embeddings is not None:
        label_embeddings = np.asarray(label_embeddings, np.float32)
        embedding_dim = label_embeddings.shape[1]
    inputs, frames, num_frames = frame_stem(feature_size, sample_frames, random_sequence=True)
    features = keras.layers.Dense(hidden_size, activation="relu", name="frame_encoder")(frames)
    nodes, adjacency = LabelNodes(num_classes, embedding_dim, embeddings=label_embeddings, learn_adjacency=True,
                                  adjacency_form=adjacency_form, name="label_nodes")(features)
    units = [gcn_hidden_size, hidden_size] if gcn_hidden_size else [hidden_size]
    label_vectors = GCNStack(units, name="label_gcn")(nodes, adjacency)[-1]
    probabilities = CategoryAttention(num_classes, srdl_top_k, srdl_alpha, class_block, label_norm,
                                      name="car")(
        features, num_frames, label_vectors)
    return SRDL(inputs, probabilities, name="SRDLModel")


def attention_maps(model: keras.Model, inputs: dict) -> dict[str, np.ndarray]:
    """Name -> (B, T, C) per-frame, per-class maps of an SRDLModel on `inputs` (whole videos):
    "temporal attention": SA of Eq.5; "erased in training": 1 on the frames that OE would
    set to 0 in each top-K class's own SA if training saw these frames (0 for the others)."""
    car = model.get_layer("car")
    probe = keras.Model(model.inputs, [model.output, model.get_layer("frame_encoder").output,
                                       model.get_layer("label_gcn").output[-1]])
    probabilities, features, label_vectors = probe(inputs, training=False)
    num_frames = tf.convert_to_tensor(inputs[contract.NUM_FRAMES_INPUT], tf.int32)
    features = features * tf.sequence_mask(num_frames, tf.shape(features)[1], dtype=features.dtype)[..., None]
    _, spatial = car.attention(features, label_vectors)
    erased = np.zeros(spatial.shape, np.float32)
    if car.erase_top_k:
        top, erase = (t.numpy() for t in car.erasing(probabilities, spatial, num_frames))
        rows = np.arange(len(top))[:, None]
        erased[rows, top] = erase
    return {"temporal attention": np.transpose(spatial.numpy(), (0, 2, 1)),
            "erased in training": np.transpose(erased, (0, 2, 1))}
