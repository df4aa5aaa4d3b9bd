"""README's flag tables against the flags the entry points define: each listed, none stale."""
import re

from absl import flags as absl_flags

from tests.helpers import ROOT
from yt8m import flags

# Flags README's rows name that belong to other commands: `python -m yt8m.i3d_weights --checkpoint=
# --output=`, and the starter's own `--dbof_activation` (which our DbofModel spells as a model param).
OTHER_COMMANDS = {"checkpoint", "output", "dbof_activation"}


def _rows() -> list[str]:
    return [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `--")]


def _names(text: str) -> set[str]:
    return set(re.findall(r"--([a-z][a-z0-9_]*)", text))


def _our_flags() -> set[str]:
    flags.define_flags()
    # tf_verbose: defined by yt8m/cli.py for every entry point (read before TensorFlow loads).
    return {flag.name for flag in absl_flags.FLAGS.get_flags_for_module(flags.__name__)} | {"tf_verbose"}


def test_every_flag_of_the_entry_points_is_in_a_readme_row():
    named = set().union(*(_names(row) for row in _rows()))
    assert sorted(_our_flags() - named) == []


def test_no_readme_row_names_a_flag_that_does_not_exist():
    ours = _our_flags()
    assert sorted(set().union(*(_names(row.split(" | ")[0]) for row in _rows())) - ours) == []   # the flag column
    assert sorted(set().union(*(_names(row) for row in _rows())) - ours - OTHER_COMMANDS) == []
