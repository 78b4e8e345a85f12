"""The framework-free core imports no framework (checked in a fresh interpreter)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
import d2l_shim
import d2l_shim._common
from d2l_shim._common import TimeMachine, TrainerBase, ProgressBoard, fetch
frameworks = ("torch", "tensorflow", "mxnet", "jax", "keras")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in frameworks)
print(loaded)
sys.exit(1 if loaded else 0)
"""


def test_common_imports_no_framework():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"frameworks imported by d2l_shim._common: {result.stdout}"
    assert result.stdout.strip() == "[]"
