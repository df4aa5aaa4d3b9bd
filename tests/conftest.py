"""One small synthetic dataset in the official format, generated once per test session."""
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Third-party data the tests read (segment class ids, COCO/VOC label graphs); README and licences there.
REFERENCE_DIR = pathlib.Path(__file__).resolve().parent / "fixtures" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"reference data not found at {REFERENCE_DIR}; it ships with the repository")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """`SyntheticPaths` of a small generated dataset shared by every test."""
    from yt8m.data import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    return synthetic.generate(str(root), synthetic.SyntheticConfig.small(), progress=False)
