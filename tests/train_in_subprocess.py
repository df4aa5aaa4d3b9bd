"""Runs training.train on a saved Config in a fresh process (for strategy and kill tests).

python -m tests.train_in_subprocess CONFIG_JSON [LOGICAL_CPUS]
Prints one JSON line with the steps taken.
"""
import json
import sys

import tensorflow as tf


def main(config_path: str, logical_cpus: int = 1) -> None:
    if logical_cpus > 1:  # must happen before TensorFlow initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    from yt8m import training
    from yt8m.config import Config

    result = training.train(Config.load(config_path))
    print(json.dumps({"steps": result.steps, "replicas": result.replicas}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
