"""benchmarks/gpu.sh --cpu_smoke: the prepared GPU script runs on CPU and writes its results file.

The whole smoke (every step, two XLA compiles) takes ~4 minutes on the shared 2 cores and was run by
hand; the suite runs the steps that cover the script's machinery: a timed fit, the input-bound share
(benchmarks/reader.py's rounds), and the mirrored strategy over
two logical devices carved before TensorFlow starts (a fit, and a yt8m.training.train run: the suite's one
test of --strategy=mirrored, its model saved, its replicas and steps counted)."""
import json
import os
import subprocess

from tests.helpers import ROOT


def test_gpu_script_cpu_smoke_writes_one_result_per_step(tmp_path):
    results = tmp_path / "gpu_results.jsonl"
    env = {**os.environ, "RESULTS": str(results), "GPU_STEPS": "env dbof input_share mirrored mirrored_train", "TF_CPP_MIN_LOG_LEVEL": "3",
           "DATA_DIR": str(tmp_path / "data")}   # the generated videos stay out of the repository
    done = subprocess.run([str(ROOT / "benchmarks" / "gpu.sh"), "--cpu_smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = {row["step"]: row for row in map(json.loads, results.read_text().splitlines())}
    assert set(rows) == {"env", "dbof", "input_share", "mirrored", "mirrored_train"}
    assert not any("failed" in row for row in rows.values())
    assert rows["env"]["gpus"] == [] and rows["env"]["mixed_precision_policy"] == "mixed_bfloat16"
    assert rows["dbof"]["examples_per_second"] > 0
    share = rows["input_share"]   # benchmarks/reader.py's per-round results, as gpu_bench reads them
    assert share["rounds"] == 1 and share["real_s_per_step"] > 0 and 0 <= share["input_bound_share"] < 1
    assert rows["mirrored"]["replicas"] == 2 and rows["mirrored"]["examples_per_second"] > 0
    assert rows["mirrored_train"]["replicas"] == 2 and rows["mirrored_train"]["steps"] == 4
