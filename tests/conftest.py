"""Test settings shared by every test: the data folder, quiet TensorFlow, no live plots, the
framework fixture, and a safe import order for PyTorch and TensorFlow in one process."""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if "D2L_DATA_DIR" not in os.environ and (SHARED_DATA / "timemachine.txt").is_file():
    os.environ["D2L_DATA_DIR"] = str(SHARED_DATA)
# 3: at 2 the `tensorflow` wheel still writes E0000 lines (cuInit, oneDNN) to stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("D2L_PLOT", "none")


def installed(module):
    return importlib.util.find_spec(module) is not None


# The CUDA build of PyTorch loads triton, whose LLVM registers the options that TensorFlow's
# LLVM registers too: with TensorFlow imported first, the process aborts ("Option
# 'bitcode-mdindex-threshold' registered more than once"). Loaded in this order, both work.
if installed("triton") and installed("tensorflow"):
    import torch  # noqa: F401
    import triton  # noqa: F401

from frameworks import FRAMEWORKS, load  # noqa: E402


@pytest.fixture(
    scope="session",
    params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in FRAMEWORKS],
)
def fw(request):
    """The adapter of each framework in turn (frameworks.py); skipped where not installed."""
    return load(request.param)
