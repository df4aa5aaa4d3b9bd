"""benchmarks/cli_defaults.py's paired table: each model's test MAP against the frame logistic's, seed by seed."""
from benchmarks import cli_defaults


def _probe(pretrain: float, finetune: float) -> dict:
    stage = {"steps": 1, "random_map": 0.3, "std": 0.1, "logit_std": 1.0}
    return {"pretrain": {**stage, "test_map": pretrain}, "finetune": {**stage, "test_map": finetune}}


def test_paired_rows_pair_each_model_with_the_baseline_of_its_seed_and_set():
    results = {("FrameLevelLogisticModel demo", 0): _probe(0.30, 0.32),
               ("FrameLevelLogisticModel demo", 1): _probe(0.31, 0.34),
               ("CmaSNetModel demo", 0): _probe(0.33, 0.35),     # pretrain +0.03, finetune +0.03
               ("CmaSNetModel demo", 1): _probe(0.29, 0.33),     # pretrain -0.02, finetune -0.01
               ("CmaSNetModel demo", 2): _probe(0.40, 0.40),     # no baseline on seed 2: left out
               ("CmaFCModel easy", 0): _probe(0.40, 0.40)}       # no baseline on the easy set: no line
    lines = cli_defaults.paired_rows(results)
    assert lines == ["| CmaSNetModel demo | 0,1 | +0.0050 [-0.0200, +0.0300] 1/2 | +0.0100 [-0.0100, +0.0300] 1/2 | "
                     "0.3400 [0.3300, 0.3500] | 0.3300 [0.3200, 0.3400] |"]
    assert "paired by seed" in cli_defaults.markdown(results)


def test_the_held_out_runs_kept_best_gets_its_own_paired_column():
    results = {key: {**probe, "best": {**probe["pretrain"], "test_map": best}}
               for key, probe, best in ((("FrameLevelLogisticModel demo", 0), _probe(0.30, 0.32), 0.31),
                                        (("SRDLModel demo", 0), _probe(0.33, 0.31), 0.33))}
    assert cli_defaults.paired_stages(results) == ["pretrain", "finetune", "best"]
    assert cli_defaults.paired_rows(results) == ["| SRDLModel demo | 0 | +0.0300 [+0.0300, +0.0300] 1/1 | "
                                                 "-0.0100 [-0.0100, -0.0100] 0/1 | +0.0200 [+0.0200, +0.0200] 1/1 | "
                                                 "0.3300 [0.3300, 0.3300] | 0.3100 [0.3100, 0.3100] |"]
    assert "| model, set | seeds | pretrain | finetune | best | best, the model | best, the baseline |" in (
        cli_defaults.markdown(results))
