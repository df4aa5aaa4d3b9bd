"""Train a model: python train.py --train_data_pattern=... --train_dir=DIR [--model=... --frame_features].

With no data flag it runs the demo: synthetic data -> pretrain -> finetune -> eval -> submission.
"""
from yt8m import startup

if __name__ == "__main__":
    startup.train()
