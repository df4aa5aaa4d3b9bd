"""The one error type a user sees as a single line, and how every entry point (train/eval/inference,
plots, i3d_weights) prints it and exits 1."""
from __future__ import annotations

import functools
import re
import sys


class UserError(Exception):
    """Bad input from the user or the data: the message names the thing and what to do."""


def exits_cleanly(main):
    """Runs an absl main; a UserError prints one line `error: ...` and exits 1."""

    @functools.wraps(main)
    def wrapper(argv):
        import tensorflow as tf   # here: importing yt8m.errors (as config does) loads no TensorFlow

        try:
            return main(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        except (OSError, tf.errors.PermissionDeniedError, tf.errors.ResourceExhaustedError) as exc:
            print(f"error: {_io_reason(exc)} (nothing half-written is kept; earlier results are intact)",
                  file=sys.stderr)
            sys.exit(1)

    return wrapper


def _io_reason(exc: BaseException) -> str:
    """One line from a file-system error: 'No space left on device: PATH', TF's own first line."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    h5 = re.search(r"filename = '([^']*)'.*?error message = '([^']*)'", text, re.DOTALL)  # h5py's many lines
    if h5:
        return f"{h5.group(2)}: {h5.group(1)}"
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return text.strip().splitlines()[0]


def reject_extra_args(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; every setting is a --flag (see --help)")
