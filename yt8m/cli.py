"""The three entry points (train, evaluate, inference; yt8m/startup.py starts them) and what they share:
--help listing the project's flags, one-line errors, the run's saved config, result tables."""
from __future__ import annotations

import sys

from absl import app
from absl import flags as absl_flags

from yt8m import ensemble, evaluation, export, flags, rundir, training
from yt8m.config import ENSEMBLE, Config
from yt8m.errors import exits_cleanly, reject_extra_args
from yt8m.progress import print_table


def train_main(argv) -> None:
    """python train.py: one stage of a run, or the demo when no data flag is given."""
    from yt8m import demo   # demo prints with this module's tables

    reject_extra_args(argv)
    if not flags.data_flags_given():
        demo.run_demo(flags.FLAGS)
        return
    config = flags.config_from_flags()
    # --model=Ensemble: trained runs combined into a run (yt8m/ensemble.py), no gradient step.
    result = (ensemble.write_run if config.model_.model == ENSEMBLE else training.train)(config)
    values = {"steps": result.steps, "final_loss": result.final_loss, "model": result.model_path}
    if result.validation:
        values.update({f"validation {k}": v for k, v in result.validation[-1].items() if k != "step"})
    if result.best:
        values[f"best {result.best['metric']}"] = f"{result.best['value']:.4f} at step {result.best['step']}"
    print_table("train", values)


def evaluate_main(argv) -> None:
    """python eval.py: a trained run's metrics on --eval_data_pattern."""
    reject_extra_args(argv)
    print_table("eval", evaluation.evaluate(config_for_trained_run()))


def inference_main(argv) -> None:
    """python inference.py: a submission CSV, or a SavedModel with --export_dir."""
    reject_extra_args(argv)
    config = config_for_trained_run()
    if config.evaluation.export_dir:
        print(f"SavedModel written to {export.export_run(config)}")
        if not config.evaluation.output_file:
            return
    print(f"submission written to {evaluation.write_submission(config)}")


def run(main) -> None:
    """Defines the flags, lists the project's under --help (absl shows only the main module's key flags,
    and the main module is the script), and runs `main` with one-line errors."""
    flags.define_flags()
    if "tf_verbose" not in absl_flags.FLAGS:
        absl_flags.DEFINE_bool("tf_verbose", False, "Keep TensorFlow's start-up log lines (also YT8M_TF_VERBOSE=1); "
                               "read before TensorFlow loads (yt8m/startup.py).")
    for flag in absl_flags.FLAGS.get_key_flags_for_module(flags.__name__) + [absl_flags.FLAGS["tf_verbose"]]:
        absl_flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(exits_cleanly(main))


def config_for_trained_run() -> Config:
    """eval/inference: the run's saved config, overridden by the flags given on this command line.

    So `eval.py --train_dir=DIR --eval_data_pattern=...` needs no repeat of the
    features, label space or model flags the run was trained with.
    """
    from_flags = flags.config_from_flags()
    base = rundir.saved_config(from_flags.training.train_dir)
    if base is None:
        return from_flags
    given = {name for name in Config.flag_names() if name in flags.FLAGS and flags.FLAGS[name].present}
    if flags.FLAGS["feature_names"].present or flags.FLAGS["feature_sizes"].present or "frame_features" in given:
        given |= {"feature_names", "feature_sizes"}
    return base.replace(stage="pretrain", init_from="", train_dir=from_flags.training.train_dir,
                        **{name: from_flags.flag(name) for name in given
                           if name not in ("stage", "init_from", "train_dir")})
