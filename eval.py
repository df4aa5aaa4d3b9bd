"""Evaluate a trained run: python eval.py --train_dir=DIR --eval_data_pattern=... [--segment_labels]."""
from absl import app

from yt8m import cli, evaluation, flags


def main(argv):
    cli.reject_extra_args(argv)
    config = cli.config_for_trained_run()
    result = evaluation.evaluate(config)
    cli.print_table("eval", result)


if __name__ == "__main__":
    flags.define_flags()
    app.run(cli.exits_cleanly(main))
