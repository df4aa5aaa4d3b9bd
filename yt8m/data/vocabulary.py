"""The class vocabulary (`vocabulary.csv`) and the list of segment-rated class ids."""
from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import tensorflow as tf

from yt8m.errors import UserError

# The official vocabulary.csv columns, in order.
VOCABULARY_COLUMNS = ("Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                      "Vertical1", "Vertical2", "Vertical3", "WikiDescription")
VERTICAL_COLUMNS = ("Vertical1", "Vertical2", "Vertical3")
SEGMENT_LABEL_IDS_FILE = "segment_label_ids.csv"


def read_vocabulary(path: str) -> pd.DataFrame:
    """The vocabulary as a DataFrame with the official columns; UserError on a bad file."""
    table = _read_csv(path, "vocabulary")
    missing = [c for c in VOCABULARY_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"vocabulary {path} lacks the columns {missing}; expected the official "
                        f"header {','.join(VOCABULARY_COLUMNS)}")
    table["Index"] = _class_ids(table["Index"], path)
    if table["Index"].duplicated().any():
        repeated = sorted(set(table["Index"][table["Index"].duplicated()]))[:5]
        raise UserError(f"vocabulary {path} repeats the class Index {repeated}; each class once")
    return table


def read_segment_label_ids(path: str | None = None) -> np.ndarray:
    """The class ids rated at segment level (int64, file order); default: the packaged 2019 list."""
    if path is None:
        resource = importlib.resources.files("yt8m.data") / SEGMENT_LABEL_IDS_FILE
        with importlib.resources.as_file(resource) as packaged:
            return read_segment_label_ids(str(packaged))
    table = _read_csv(path, "segment label ids")
    if "Index" not in table.columns:
        raise UserError(f"segment label ids file {path} needs a header 'Index' then one class id a line")
    return _class_ids(table["Index"], path).to_numpy(np.int64)


def verticals(table: pd.DataFrame) -> dict[int, tuple[str, ...]]:
    """Class Index -> its verticals (the non-empty Vertical1..3 of its row)."""
    result = {}
    for row in table.itertuples(index=False):
        values = (getattr(row, column) for column in VERTICAL_COLUMNS)
        result[int(row.Index)] = tuple(str(v) for v in values if isinstance(v, str) and v.strip())
    return result


def _read_csv(path: str, what: str) -> pd.DataFrame:
    """A CSV through tf.io.gfile (local or remote); UserError when it is missing or unreadable."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"{what} file {path} does not exist; check the path")
    try:
        with tf.io.gfile.GFile(path, "r") as handle:
            return pd.read_csv(handle)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} file {path} is not a readable CSV: {exc}") from None


def _class_ids(column: pd.Series, path: str) -> pd.Series:
    """The column as non-negative int64 class ids; UserError naming the file otherwise."""
    ids = pd.to_numeric(column, errors="coerce")
    if ids.isna().any() or (ids < 0).any() or (ids != ids.round()).any():
        raise UserError(f"{path}: column Index must hold non-negative integer class ids")
    return ids.astype(np.int64)
