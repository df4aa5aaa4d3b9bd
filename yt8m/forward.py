"""A model's inference pass over a dataset's batches as one traced function (evaluation, segment_context)."""
from __future__ import annotations

import keras
import tensorflow as tf

from yt8m.data import readers


def forward_function(model: keras.Model, dataset: tf.data.Dataset):
    """`model(inputs, training=False)` as a tf.function traced once for every batch of `dataset`: its
    signature is the dataset's model inputs with the batch dimension (and any other the dataset leaves
    open, as the frames of a batch padded to its longest video) unknown. (reduce_retracing traced it twice:
    for the first batch's shapes, then relaxed at the first other, e.g. the last, partial, batch.)"""
    specs = {key: tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)
             for key, spec in readers.model_inputs(dataset.element_spec[0]).items()}
    return tf.function(lambda inputs: model(inputs, training=False), input_signature=[specs])
