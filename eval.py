"""Evaluate a trained run: python eval.py --train_dir=DIR --eval_data_pattern=... [--segment_labels].
"""
from yt8m import startup

if __name__ == "__main__":
    startup.evaluate()
