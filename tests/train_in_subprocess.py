"""Runs training.train on a saved Config in a fresh process (for the kill and multi-worker tests).

python -m tests.train_in_subprocess CONFIG_JSON
Prints one JSON line with the steps taken and the replicas.
"""
import json
import sys


def main(config_path: str) -> None:
    from yt8m import training
    from yt8m.config import Config

    result = training.train(Config.load(config_path))
    print(json.dumps({"steps": result.steps, "replicas": result.replicas}))


if __name__ == "__main__":
    main(sys.argv[1])
