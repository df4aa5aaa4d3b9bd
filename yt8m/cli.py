"""What the three entry points share: one-line errors, the run's saved config, result tables."""
from __future__ import annotations

import functools
import os
import sys

from yt8m import flags
from yt8m.config import Config
from yt8m.errors import UserError


def exits_cleanly(main):
    """Runs an absl main; a UserError prints one line `error: ...` and exits 1."""

    @functools.wraps(main)
    def wrapper(argv):
        try:
            return main(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)

    return wrapper


def reject_extra_args(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; every setting is a --flag (see --help)")


def config_for_trained_run() -> Config:
    """eval/inference: the run's saved config, overridden by the flags given on this command line.

    So `eval.py --train_dir=DIR --eval_data_pattern=...` needs no repeat of the
    features, label space or model flags the run was trained with.
    """
    from_flags = flags.config_from_flags()
    saved = os.path.join(from_flags.train_dir, "config.json") if from_flags.train_dir else ""
    if not (saved and os.path.exists(saved)) and from_flags.members:
        saved = os.path.join(from_flags.members[0], "config.json")  # an in-memory ensemble: the data settings
    if not saved or not os.path.exists(saved):                     # of its first member, not its train_dir
        return from_flags
    given = {name for name in Config.__dataclass_fields__ if name in flags.FLAGS and flags.FLAGS[name].present}
    if flags.FLAGS["feature_names"].present or flags.FLAGS["feature_sizes"].present or "frame_features" in given:
        given |= {"feature_names", "feature_sizes"}
    base = Config.load(saved)
    return base.replace(stage="pretrain", init_from="", train_dir=from_flags.train_dir,
                        **{name: getattr(from_flags, name) for name in given
                           if name not in ("stage", "init_from", "train_dir")})


def print_table(title: str, values: dict) -> None:
    """Prints `name  value` rows under a title."""
    width = max(len(k) for k in values) if values else 0
    print(f"\n== {title} ==")
    for key, value in values.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
