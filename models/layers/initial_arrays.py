"""Weights initialised from arrays computed offline (label graphs, ensemble weights), never kept in a config."""
import keras
import numpy as np


def check_initial_arrays(*entries) -> None:
    """Each `(name, array or None, expected shape)`: ValueError for an array of another shape."""
    for name, array, shape in entries:
        if array is not None and tuple(np.shape(array)) != tuple(shape):
            raise ValueError(f"{name} has shape {np.shape(array)}, expected {tuple(shape)}")


def constant_or(array, default):
    """A Constant initializer holding `array` (float32), or `default` when there is none."""
    return keras.initializers.Constant(np.asarray(array, "float32")) if array is not None else default
