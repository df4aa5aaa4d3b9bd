"""YouTube-8M video classification on TensorFlow 2 / Keras 3.

Importing the package pins Keras to its TensorFlow backend (the layers, losses and input pipeline use
TensorFlow ops): KERAS_BACKEND is set before Keras first loads (models/__init__.py does the same for
the models alone), and another backend, chosen by the environment or by a Keras imported earlier, is
one clear error.
"""
import os
import sys

KERAS_BACKEND = "tensorflow"


def _pin_keras_backend() -> None:
    chosen = os.environ.setdefault("KERAS_BACKEND", KERAS_BACKEND)
    if chosen != KERAS_BACKEND:
        raise ImportError(f"KERAS_BACKEND={chosen}: this project runs on Keras's TensorFlow backend; "
                          f"unset KERAS_BACKEND or set it to {KERAS_BACKEND}")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != KERAS_BACKEND:
        raise ImportError(f"Keras was imported with the {keras.backend.backend()} backend before this project; "
                          f"import yt8m (or models) first, or set KERAS_BACKEND={KERAS_BACKEND}")


_pin_keras_backend()
