"""deepmind/kinetics-i3d TF1 checkpoints -> the `--i3d_weights` file (.npz keyed '<layer>/<weight>'), and
`load`, which reads whichever --i3d_weights gives (.npz, .h5 or a checkpoint) for training.

`python -m yt8m.i3d_weights --checkpoint=kinetics-i3d/data/checkpoints/rgb_imagenet/model.ckpt
--output=i3d_rgb_imagenet.npz`, then `--i3d_weights=i3d_rgb_imagenet.npz` (or give the checkpoint
to `--i3d_weights` itself; it is converted on the fly). Nothing is downloaded.

deepmind's i3d.py (Sonnet 1) names a Conv3D + BatchNorm unit `<scope>/conv_3d/w`
(kt, kh, kw, cin, cout: Keras's Conv3D layout, copied as it is) and
`<scope>/batch_norm/{beta, moving_mean, moving_variance}`; snt.BatchNorm has no
scale, so gamma is written as ones (epsilon 1e-3 in both). The scopes sit under
`RGB/inception_i3d/` in rgb_imagenet / rgb_scratch (BN arrays (C,)) and under
nothing in rgb_scratch_kin600 (BN arrays (1, 1, 1, 1, C), plus `/Momentum` slots,
skipped). Mixed_5b's Branch_2 3x3 unit is `Conv3d_0a_3x3` (everywhere else
`Conv3d_0b_3x3`). 57 units, 228 variables; `Logits/Conv3d_0c_1x1/conv_3d/{w, b}`
scores Kinetics classes and is not carried over. Our layer of a scope is the scope
with '/' as '_' plus `_conv` / `_bn` (models/layers/inception_i3d.py).
"""
from __future__ import annotations

import io
from typing import Mapping

import numpy as np
import tensorflow as tf

from models.layers.inception_i3d import ENDPOINTS, MIXED_CHANNELS
from yt8m.errors import UserError, exits_cleanly, reject_extra_args
from yt8m.fileio import atomic_output

BN_WEIGHTS = ("beta", "moving_mean", "moving_variance")
LOGITS = ("Logits/Conv3d_0c_1x1/conv_3d/w", "Logits/Conv3d_0c_1x1/conv_3d/b")
FIRST_KERNEL = "Conv3d_1a_7x7/conv_3d/w"
MIXED_UNITS = ("Branch_0/Conv3d_0a_1x1", "Branch_1/Conv3d_0a_1x1", "Branch_1/Conv3d_0b_3x3",
               "Branch_2/Conv3d_0a_1x1", "Branch_2/Conv3d_0b_3x3", "Branch_3/Conv3d_0b_1x1")


def unit_scopes() -> list[tuple[str, str]]:
    """(deepmind scope, our layer prefix) of the 57 Conv3D + BN units, in network order."""
    units = []
    for endpoint in ENDPOINTS:
        if endpoint.startswith("Conv3d"):
            units.append((endpoint, endpoint))
        elif endpoint in MIXED_CHANNELS:
            for unit in MIXED_UNITS:
                ours = f"{endpoint}/{unit}".replace("/", "_")
                if endpoint == "Mixed_5b" and unit == "Branch_2/Conv3d_0b_3x3":
                    unit = "Branch_2/Conv3d_0a_3x3"   # deepmind's naming quirk
                units.append((f"{endpoint}/{unit}", ours))
    return units


def checkpoint_variables() -> list[str]:
    """The 228 backbone variable names of a checkpoint, without the scope prefix."""
    return [f"{scope}/{name}" for scope, _ in unit_scopes()
            for name in ("conv_3d/w", *(f"batch_norm/{w}" for w in BN_WEIGHTS))]


def _prefix(names) -> str:
    """'RGB/inception_i3d/' or '' (kin600): what precedes the first unit's kernel."""
    prefixes = sorted(n[: -len(FIRST_KERNEL)] for n in names if n.endswith(FIRST_KERNEL))
    if len(prefixes) != 1:
        found = f"{len(prefixes)} ({', '.join(repr(p) for p in prefixes)})" if prefixes else "none"
        raise UserError(f"not one deepmind kinetics-i3d network in the checkpoint: variables ending in "
                        f"{FIRST_KERNEL!r}: {found}")
    return prefixes[0]


def convert(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """deepmind variable name -> array, to our '<layer>/<weight>' -> array (285 keys: 228 + 57 gammas).

    Missing backbone variables or names it does not know raise UserError listing them.
    """
    prefix = _prefix(arrays)
    expected = [prefix + name for name in checkpoint_variables()]
    known = set(expected) | {prefix + name for name in LOGITS}
    missing = [name for name in expected if name not in arrays]
    unknown = [name for name in arrays if name not in known and name != "global_step"
               and not any(name.startswith(k + "/") for k in known)]          # k/Momentum: optimizer slots
    if missing or unknown:
        raise UserError("not a deepmind kinetics-i3d RGB checkpoint: "
                        + (f"{len(missing)} missing ({', '.join(missing)}) " if missing else "")
                        + (f"{len(unknown)} unknown ({', '.join(unknown)})" if unknown else ""))
    first = arrays[prefix + FIRST_KERNEL]
    if np.ndim(first) != 5 or np.shape(first)[3] != 3:
        raise UserError(f"{prefix + FIRST_KERNEL} has shape {np.shape(first)}; the I3D here reads RGB "
                        f"(7, 7, 7, 3, 64): a flow checkpoint (2 input channels) does not fit")
    weights = {}
    for scope, ours in unit_scopes():
        kernel = np.asarray(arrays[f"{prefix}{scope}/conv_3d/w"], np.float32)
        if kernel.ndim != 5:
            raise UserError(f"{prefix}{scope}/conv_3d/w has shape {kernel.shape}, not a 3-D kernel")
        weights[f"{ours}_conv/kernel"] = kernel
        for name in BN_WEIGHTS:
            weights[f"{ours}_bn/{name}"] = np.asarray(arrays[f"{prefix}{scope}/batch_norm/{name}"],
                                                      np.float32).reshape(-1)
        weights[f"{ours}_bn/gamma"] = np.ones(kernel.shape[-1], np.float32)   # snt.BatchNorm: no scale
    return weights


def is_checkpoint(path: str) -> bool:
    """A TF checkpoint prefix (`model.ckpt`, beside its .index) or a directory with a `checkpoint` file."""
    return tf.io.gfile.exists(path + ".index") or (
        tf.io.gfile.isdir(path) and tf.io.gfile.exists(f"{path.rstrip('/')}/checkpoint"))


def read_checkpoint(path: str) -> dict[str, np.ndarray]:
    """Every variable of a TF1 checkpoint (a prefix or its directory) as name -> array."""
    if not is_checkpoint(path):
        raise UserError(f"--checkpoint={path}: no TF checkpoint there (give the prefix, e.g. "
                        f".../rgb_imagenet/model.ckpt, or its directory)")
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def load(path: str) -> dict[str, np.ndarray]:
    """The --i3d_weights arrays keyed '<layer>/<weight>': an .npz or .h5 of them, or a deepmind kinetics-i3d
    checkpoint converted on the fly; every path through tf.io.gfile, nothing downloaded."""
    if is_checkpoint(path):
        return convert(read_checkpoint(path))
    if not tf.io.gfile.exists(path):
        raise UserError(f"--i3d_weights={path} does not exist")
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    if path.endswith(".npz"):
        with np.load(io.BytesIO(data)) as arrays:
            return {key: arrays[key] for key in arrays.files}
    if path.endswith((".h5", ".hdf5")):
        import h5py   # only for .h5 weights

        arrays = {}
        with h5py.File(io.BytesIO(data), "r") as h5:
            h5.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
        return arrays
    raise UserError(f"--i3d_weights={path}: give an .npz or .h5 file (python -m yt8m.i3d_weights "
                    f"converts a kinetics-i3d checkpoint)")


def write_weights(weights: Mapping[str, np.ndarray], output: str) -> None:
    """An .npz of `weights` written atomically (what --i3d_weights reads)."""
    if not output.endswith(".npz"):
        raise UserError(f"--output={output}: the weights file is an .npz")
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    with atomic_output(output, "wb") as handle:
        handle.write(buffer.getvalue())


def main(argv) -> None:
    from absl import flags

    reject_extra_args(argv)
    arrays = read_checkpoint(flags.FLAGS.checkpoint)
    weights = convert(arrays)
    write_weights(weights, flags.FLAGS.output)
    print(f"wrote {len(weights)} weights of {len(checkpoint_variables())} backbone variables "
          f"({len(arrays)} in the checkpoint; Logits and optimizer slots left out) to {flags.FLAGS.output}: "
          f"--i3d_weights={flags.FLAGS.output}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("checkpoint", "", "deepmind kinetics-i3d checkpoint prefix (.../rgb_imagenet/model.ckpt) "
                        "or its directory.")
    flags.DEFINE_string("output", "i3d_weights.npz", "The .npz to write (what --i3d_weights reads).")
    app.run(exits_cleanly(main))
