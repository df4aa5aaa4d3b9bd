"""One marked section of docs/results.md, rewritten by the benchmark that measured it."""
from __future__ import annotations

import os

RESULTS_FILE = os.path.join("docs", "results.md")


def write_section(section: tuple[str, str], text: str, path: str = RESULTS_FILE) -> None:
    """Replaces the text between the `section` markers (begin, end) of `path`, appending the section
    (or creating the file) when missing."""
    begin, end = section
    current = open(path).read() if os.path.exists(path) else "# Results\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as handle:
        handle.write(current)
    print(f"wrote {path}")
