"""What the entry points do before TensorFlow's first import: its start-up log lines silenced.

TensorFlow prints a dozen C++ log lines as it loads (oneDNN, CUDA stubs, cuInit errors on a
CPU-only host), some before its logging reads TF_CPP_MIN_LOG_LEVEL. By default the entry points
set that level to 3 and send file descriptor 2 to /dev/null while TensorFlow and Keras load;
`--tf_verbose` (looked up in sys.argv, as the flags are parsed after the import) or
YT8M_TF_VERBOSE=1 keeps every line. Python exceptions of the import still surface (they are
raised after stderr is back).
"""
from __future__ import annotations

import contextlib
import os
import sys

VERBOSE_ENV = "YT8M_TF_VERBOSE"
VERBOSE_FLAG = "--tf_verbose"


def tf_verbose(argv=None) -> bool:
    """Whether TensorFlow's own log lines are wanted: --tf_verbose on the command line or YT8M_TF_VERBOSE=1."""
    argv = sys.argv if argv is None else argv
    return os.environ.get(VERBOSE_ENV, "") == "1" or any(arg in (VERBOSE_FLAG, VERBOSE_FLAG + "=true")
                                                         for arg in argv[1:])


def quiet_tensorflow(argv=None) -> None:
    """Imports TensorFlow and Keras quietly unless tf_verbose(); call before anything imports them."""
    if tf_verbose(argv) or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_to_devnull():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    from absl import logging

    logging.set_verbosity(logging.ERROR)   # TensorFlow's Python warnings through absl


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def train() -> None:
    """yt8m-train, python train.py."""
    _run("train")


def evaluate() -> None:
    """yt8m-eval, python eval.py."""
    _run("evaluate")


def inference() -> None:
    """yt8m-inference, python inference.py."""
    _run("inference")


def _run(name: str) -> None:
    quiet_tensorflow()
    from yt8m import cli   # imports TensorFlow: after the quiet import above

    cli.run(getattr(cli, f"{name}_main"))
