"""Keras models for YouTube-8M, built by name through `models.registry`.

Importing this package registers every model family and every layer.
"""
import os

# First, before Keras loads: every layer uses TensorFlow ops (yt8m/__init__.py pins it the same way).
if os.environ.setdefault("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}: this project runs on Keras's TensorFlow "
                      f"backend; unset KERAS_BACKEND or set it to tensorflow")

from models import dbof, logistic, registry  # noqa: F401  (registers the families)
from models import dbof_gcn, nextvlad  # noqa: F401,E402
from models import cma  # noqa: F401,E402  (CMA / self-attention x SNet / FC)
from models import srdl  # noqa: F401,E402  (SRDLModel: CAR + interval erasing)
from models import kssnet  # noqa: F401,E402  (KSSNetI3D, I3DModel, KSSNetTemporal)
from models import ensemble  # noqa: F401,E402  (MemberCombination: --model=Ensemble, built from trained runs in yt8m/ensemble.py)
from models import context  # noqa: F401,E402  (context-aware segment models: layers for deserialisation)
from models.layers import noise  # noqa: F401,E402  (MaskedGaussianNoise: a finetune with --noise_std saves it in its model)
