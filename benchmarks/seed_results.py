"""Per-seed results of an ablation (one JSON file a seed, so seeds may run in parallel and a stopped sweep
resumes) and the paired differences its tables print. A row's key is json.dumps([seed, ...])."""
from __future__ import annotations

import json
import os

import numpy as np


def load_results(run_dir: str, recipe: dict) -> dict:
    """Every seed's finished rows made with this recipe."""
    done = {}
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        if name.startswith("results-seed") and name.endswith(".json"):
            with open(os.path.join(run_dir, name)) as handle:
                saved = json.load(handle)
            if saved.get("recipe") == recipe:
                done.update(saved["results"])
    return done


def save_results(run_dir: str, recipe: dict, done: dict, seed: int) -> None:
    """Writes `seed`'s rows of `done` atomically to its own file."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, f"results-seed{seed}.json")
    mine = {key: value for key, value in done.items() if json.loads(key)[0] == seed}
    with open(path + ".tmp", "w") as handle:
        json.dump({"recipe": recipe, "results": mine}, handle, indent=1)
    os.replace(path + ".tmp", path)


def paired(mine, reference, digits: int = 4) -> str:
    """Seed-by-seed differences (None skipped): mean [min, max] and the seeds where `mine` is higher."""
    diffs = [a - b for a, b in zip(mine, reference) if a is not None and b is not None]
    if not diffs:
        return "-"
    f = f"+.{digits}f"
    return f"{np.mean(diffs):{f}} [{min(diffs):{f}}, {max(diffs):{f}}] {sum(d > 0 for d in diffs)}/{len(diffs)}"
