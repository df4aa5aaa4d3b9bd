"""Write a Kaggle submission: python inference.py --train_dir=DIR --input_data_pattern=...
--output_file=submission.csv [--segment_labels --top_k=100000].

python inference.py --train_dir=DIR --export_dir=DIR writes a TF SavedModel instead
(a serving signature on serialized records; see yt8m/export.py)."""
from absl import app

from yt8m import cli, evaluation, export, flags


def main(argv):
    cli.reject_extra_args(argv)
    config = cli.config_for_trained_run()
    if config.export_dir:
        print(f"SavedModel written to {export.export_run(config)}")
        if not config.output_file:
            return
    path = evaluation.write_submission(config)
    print(f"submission written to {path}")


if __name__ == "__main__":
    flags.define_flags()
    app.run(cli.exits_cleanly(main))
