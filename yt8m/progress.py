"""How progress is shown: an updating bar on a terminal, plain lines when stdout is a file or a pipe."""
from __future__ import annotations

import sys


def interactive(stream=None) -> bool:
    """Whether `stream` (default stdout) is a terminal, where carriage returns redraw a line."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def keras_verbose(enabled: bool = True) -> int:
    """Keras's `verbose` for fit and Progbar: 1 (a bar redrawn in place) on a terminal, 2 (one line per
    epoch, or once at the end: no ANSI codes or carriage returns in a log file) otherwise, 0 when off."""
    if not enabled:
        return 0
    return 1 if interactive() else 2
