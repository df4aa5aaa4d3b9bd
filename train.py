"""Train a model: python train.py --train_data_pattern=... --train_dir=DIR [--model=... --frame_features].

With no data flag it runs the demo: synthetic data -> pretrain -> finetune -> eval -> submission.
"""
from absl import app

from yt8m import cli, demo, flags, training


def main(argv):
    cli.reject_extra_args(argv)
    if not flags.data_flags_given():
        demo.run_demo(flags.FLAGS)
        return
    result = training.train(flags.config_from_flags())
    cli.print_table("train", {"steps": result.steps, "final_loss": result.final_loss,
                              "model": result.model_path})


if __name__ == "__main__":
    flags.define_flags()
    app.run(cli.exits_cleanly(main))
