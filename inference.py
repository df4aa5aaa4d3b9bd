"""Write a Kaggle submission: python inference.py --train_dir=DIR --input_data_pattern=...
--output_file=submission.csv [--segment_labels --top_k=100000].

python inference.py --train_dir=DIR --export_dir=DIR writes a TF SavedModel instead
(a serving signature on serialized records; see yt8m/export.py).
"""
from yt8m import startup

if __name__ == "__main__":
    startup.inference()
