"""vocabulary.csv and the segment-rated class list."""
import numpy as np
import pandas as pd
import pytest

from yt8m.data import vocabulary
from yt8m.errors import UserError


def _row(index, vertical1="Games", vertical2=None):
    return {"Index": index, "TrainVideoCount": 5, "KnowledgeGraphId": f"/m/0x{index}", "Name": f"n{index}",
            "WikiUrl": "u", "Vertical1": vertical1, "Vertical2": vertical2, "Vertical3": None,
            "WikiDescription": "d"}


def _write(tmp_path, rows, drop=()):
    path = tmp_path / "vocabulary.csv"
    pd.DataFrame(rows).drop(columns=list(drop)).to_csv(path, index=False)
    return str(path)


def test_reads_the_generated_vocabulary(synthetic_data):
    table = vocabulary.read_vocabulary(synthetic_data.vocabulary)
    assert list(table.columns) == list(vocabulary.VOCABULARY_COLUMNS)
    assert table["Index"].dtype == np.int64
    assert table["Index"].between(0, synthetic_data.num_classes - 1).all()


def test_verticals_keeps_the_filled_vertical_columns(tmp_path):
    table = vocabulary.read_vocabulary(_write(tmp_path, [_row(3), _row(7, "Arts", "Games")]))
    assert vocabulary.verticals(table) == {3: ("Games",), 7: ("Arts", "Games")}


@pytest.mark.parametrize("rows, drop, message", [
    ([_row(1)], ["Vertical1"], "lacks the columns"),
    ([_row(1), _row(1)], [], "repeats"),
    ([_row("x")], [], "non-negative integer"),
    ([_row(-2)], [], "non-negative integer"),
])
def test_bad_vocabulary_is_a_user_error(tmp_path, rows, drop, message):
    with pytest.raises(UserError, match=message):
        vocabulary.read_vocabulary(_write(tmp_path, rows, drop))


def test_missing_or_empty_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        vocabulary.read_vocabulary(str(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(UserError, match="not a readable CSV"):
        vocabulary.read_vocabulary(str(tmp_path / "empty.csv"))


def test_packaged_segment_label_ids_match_the_reference(reference_dir):
    packaged = vocabulary.read_segment_label_ids()
    reference = pd.read_csv(reference_dir / "segment_label_ids.csv")["Index"].to_numpy()
    assert packaged.dtype == np.int64 and len(packaged) == 1000
    np.testing.assert_array_equal(packaged, reference)


def test_segment_label_ids_from_a_path_and_a_bad_header(tmp_path):
    good = tmp_path / "ids.csv"
    good.write_text("Index\n5\n2\n")
    np.testing.assert_array_equal(vocabulary.read_segment_label_ids(str(good)), [5, 2])
    bad = tmp_path / "bad.csv"
    bad.write_text("Class\n5\n")
    with pytest.raises(UserError, match="header 'Index'"):
        vocabulary.read_segment_label_ids(str(bad))
