"""The nested Config: flag names routed to their parts, each part checking itself, config.json both ways."""
import dataclasses
import json

import pytest

from yt8m.config import (PART_OF, PARTS, Config, DataConfig, EvaluationConfig, LossConfig, ModelConfig,
                         TrainingConfig)
from yt8m.errors import UserError


def test_flag_names_are_unique_over_the_parts_and_route_to_them():
    names = [f.name for cls in PARTS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names)) == len(Config.flag_names())
    assert not set(names) & set(PARTS)    # no part is named as a field (the codemod's idempotency needs it)
    config = Config.from_flags(num_classes=7, model="MoeModel", loss="reweighted", batch_size=16, top_k=5,
                               stage="finetune", init_from="pre")
    assert (config.data.num_classes, config.model_.model, config.loss_.loss, config.training.batch_size,
            config.evaluation.top_k) == (7, "MoeModel", "reweighted", 16, 5)
    assert config.flag("init_from") == "pre" and config.as_flags()["num_classes"] == 7
    assert PART_OF["seed"] == "training" and PART_OF["time_shift"] == "evaluation"
    with pytest.raises(TypeError, match="bogus"):
        Config.from_flags(bogus=1)


def test_replace_changes_one_part_and_keeps_the_others():
    base = Config.from_flags(num_classes=7, reweight_m=3.0)
    changed = base.replace(reweight_n=0.2, train_dir="run")
    assert changed.data is base.data and changed.model_ is base.model_ and changed.evaluation is base.evaluation
    assert (changed.loss_.reweight_m, changed.loss_.reweight_n, changed.training.train_dir) == (3.0, 0.2, "run")
    assert base.replace(data=DataConfig(num_classes=3)).data.num_classes == 3


def test_properties_live_on_their_part():
    assert TrainingConfig().learning_rate == 0.01
    assert TrainingConfig(stage="finetune", init_from="x").learning_rate == 0.001
    assert TrainingConfig(base_learning_rate=0.0).learning_rate == 0.0
    assert LossConfig(loss="weak_negative").effective_weak_negative_alpha == 1.0
    assert LossConfig().effective_weak_negative_alpha == 0.0
    assert DataConfig(feature_names=("rgb",), feature_sizes=(3,)).feature_spec.total_size == 3
    assert Config().submission_top_k == 20 and Config.from_flags(segment_labels=True).submission_top_k == 100_000
    assert Config.from_flags(top_k=5).submission_top_k == 5


@pytest.mark.parametrize("part, values, message", [
    (DataConfig, {"num_classes": 0}, "--num_classes must be positive"),
    (DataConfig, {"feature_names": ("rgb",)}, "feature_sizes"),
    (ModelConfig, {"ks_eta": 1.5}, "--ks_eta is a mixing weight"),
    (ModelConfig, {"model": "Ensemble"}, "--members"),
    (LossConfig, {"tau": 2.0}, "--tau must be in"),
    (LossConfig, {"weak_negative_alpha": 0.5}, "not bce"),
    (TrainingConfig, {"stage": "finetune"}, "--init_from"),
    (TrainingConfig, {"steps_per_execution": 0}, "--steps_per_execution must be >= 1"),
    (EvaluationConfig, {"candidate_threshold": 2.0}, "--candidate_threshold"),
])
def test_each_part_checks_its_own_fields(part, values, message):
    with pytest.raises(UserError, match=message):
        part(**values)
    with pytest.raises(UserError, match=message):   # the flat entry reaches the same check
        Config.from_flags(**values)


def test_checks_across_parts_are_the_configs():
    LossConfig(finetune_prior=0.1)   # alone it is fine
    with pytest.raises(UserError, match="add --stage=finetune"):
        Config(loss_=LossConfig(finetune_prior=0.1))
    with pytest.raises(UserError, match="--segment_labels --frame_features"):
        Config.from_flags(time_shift=True)
    assert Config.from_flags(time_shift=True, segment_labels=True, frame_features=True, feature_names=("rgb", "audio"),
                             feature_sizes=(1024, 128)).evaluation.time_shift
    with pytest.raises(TypeError, match="from_flags"):
        Config(data={"num_classes": 3})


def test_steps_per_epoch_without_max_steps_is_refused_not_ignored():
    """With --num_epochs an epoch is one pass over the files, so a given --steps_per_epoch would do nothing."""
    from absl import flags as absl_flags

    from yt8m import flags

    flags.define_flags()
    try:
        absl_flags.FLAGS(["train.py", "--steps_per_epoch=50"])
        with pytest.raises(UserError, match="add --max_steps=N or drop --steps_per_epoch"):
            flags.config_from_flags()
        absl_flags.FLAGS.unparse_flags()
        absl_flags.FLAGS(["train.py", "--steps_per_epoch=50", "--max_steps=200"])
        assert flags.config_from_flags().training.steps_per_epoch == 50
    finally:
        absl_flags.FLAGS.unparse_flags()


def test_save_writes_nested_json_and_load_reads_nested_and_flat(tmp_path):
    config = Config.from_flags(num_classes=7, model="MoeModel", model_params={"num_mixtures": 2}, members=["a", "b"],
                               weights=["1", "3"], stage="finetune", init_from="pre", feature_names=["rgb"],
                               feature_sizes=[1024])
    assert config.model_.weights == (1.0, 3.0) and config.data.feature_names == ("rgb",)
    config.save(str(tmp_path / "nested.json"))
    saved = json.loads((tmp_path / "nested.json").read_text())
    assert sorted(saved) == ["data", "evaluation", "loss", "model", "training"]
    assert saved["model"]["model"] == "MoeModel" and saved["data"]["num_classes"] == 7
    assert Config.load(str(tmp_path / "nested.json")) == config
    # A run written before the parts: one flat object, with a flag since removed.
    flat = {**config.as_flags(), "removed_flag": 1}
    (tmp_path / "flat.json").write_text(json.dumps(flat, default=list))
    assert Config.load(str(tmp_path / "flat.json")) == config
    (tmp_path / "old.json").write_text(json.dumps({"num_classes": 9, "stage": "pretrain"}))
    assert Config.load(str(tmp_path / "old.json")) == Config.from_flags(num_classes=9)
