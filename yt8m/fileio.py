"""File helpers shared by every writer: atomic writes and pattern matching."""
from __future__ import annotations

import contextlib
import os
import re

import tensorflow as tf

from yt8m.errors import UserError


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w"):
    """Open `path` for writing through a temporary name; rename only on success.

    A crash or an exception leaves no half-written file behind (the temporary
    one is removed), so a reader never mistakes a partial CSV for a result.
    """
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tf.io.gfile.GFile(tmp, mode) as handle:
            yield handle
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def save_model_atomically(model, path: str) -> None:
    """keras model.save through a temporary `.keras` file renamed into place: never a half-written model.

    Without the optimizer's state (Adam's moments: twice the weights again); the training backup keeps
    it for a resume, and every reader loads model.keras with compile=False. (Keras 3 ignores
    include_optimizer for .keras files, so the optimizer is detached for the save.)
    """
    tmp = f"{path}.tmp-{os.getpid()}.keras"
    optimizer = getattr(model, "optimizer", None)
    try:
        model.optimizer = None
        model.save(tmp)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    finally:
        model.optimizer = optimizer
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)


def probe_writable(path: str, flag: str, is_file: bool = False) -> None:
    """UserError naming --flag when `path` (a directory, or a file's directory) cannot be written.

    Creates the directory when needed and writes, then removes, a small temporary file there, so
    a read-only or full destination fails before any work rather than after it.
    """
    directory = os.path.dirname(path) if is_file else path
    probe = os.path.join(directory or ".", f".write-probe.tmp-{os.getpid()}")
    try:
        if directory:
            tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(probe, "w") as handle:
            handle.write("probe")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as exc:
        reason = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"--{flag}={path} cannot be written ({reason.strip().splitlines()[0]}); "
                        f"give a writable path") from None


_TEMP_PID = re.compile(r"\.tmp-(\d+)(\.[A-Za-z0-9]+)?$")


def remove_stale_temp_files(directory: str) -> list[str]:
    """Removes the `*.tmp-<pid>[.ext]` files (atomic_output's, save_model_atomically's, the write probe's)
    in `directory` whose process is dead: a process killed with SIGKILL cannot remove its own.
    Returns the removed paths."""
    removed = []
    for tmp in tf.io.gfile.glob(os.path.join(directory or ".", "*.tmp-*")):
        found = _TEMP_PID.search(tmp)
        if found and int(found.group(1)) != os.getpid() and not _alive(int(found.group(1))):
            tf.io.gfile.remove(tmp)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def match_files(pattern: str, flag: str = "data pattern") -> list[str]:
    """Sorted files matching a comma-separated list of glob patterns (local, gs://, ...).

    Raises UserError naming the flag when nothing matches.
    """
    if not pattern:
        raise UserError(f"--{flag} is empty; give a file pattern such as 'data/frame/train*.tfrecord'")
    files: list[str] = []
    for part in (p.strip() for p in pattern.split(",")):
        if not part:
            continue
        scheme = part.split("://", 1)[0] if "://" in part else ""
        if scheme in ("s3", "hdfs"):
            _require_tensorflow_io(scheme)
        try:
            files.extend(tf.io.gfile.glob(part))
        except tf.errors.OpError as exc:
            raise UserError(f"--{flag}={part!r} cannot be listed: {exc.message}") from None
    if not files:
        raise UserError(f"no files match --{flag}={pattern!r}; check the path and the glob")
    return sorted(set(files))


def _require_tensorflow_io(scheme: str) -> None:
    """s3:// and hdfs:// need the optional tensorflow-io extra; say so clearly when it is missing."""
    try:
        import tensorflow_io  # noqa: F401  (registers the file systems)
    except Exception as exc:  # ImportError, or its native plugins failing to load
        raise UserError(
            f"{scheme}:// paths need the optional extra: pip install '.[io]' (tensorflow-io 0.37.1 "
            f"with tensorflow<2.18); importing tensorflow_io failed: {exc}") from None
