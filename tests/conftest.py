"""Test settings shared by every test: the data folder, quiet TensorFlow, no live plots."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if "D2L_DATA_DIR" not in os.environ and (SHARED_DATA / "timemachine.txt").is_file():
    os.environ["D2L_DATA_DIR"] = str(SHARED_DATA)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("D2L_PLOT", "none")
