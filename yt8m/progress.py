"""How progress is shown (an updating bar on a terminal, plain lines when stdout is a file or a pipe) and
results printed (`print_table`)."""
from __future__ import annotations

import sys
import time


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


class CountLines:
    """Plain progress lines for a count of unknown total where no bar is redrawn (stdout not a terminal):
    one line at the first update, then one every `every_seconds`; silent on a terminal (the bar shows it)
    or when disabled."""

    def __init__(self, what: str, unit: str, enabled: bool = True, every_seconds: float = 30.0):
        self.what, self.unit, self.every = what, unit, every_seconds
        self.enabled = enabled and not interactive()
        self.start = self.last = None

    def update(self, count: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = self.last = now
            print(f"{self.what}: first batch, {count} {self.unit}s", flush=True)
        elif now - self.last >= self.every:
            self.last = now
            print(f"{self.what}: {count} {self.unit}s, {count / (now - self.start):.0f}/s", flush=True)


def print_table(title: str, values: dict) -> None:
    """Prints `name  value` rows under a title."""
    width = max(len(k) for k in values) if values else 0
    print(f"\n== {title} ==")
    for key, value in values.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
