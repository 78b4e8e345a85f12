"""The benchmark harness: its workloads are valid code and its table reads its results."""

import ast
import builtins

import pytest

from benchmarks import train_speed
from benchmarks.workloads import workload_cells


@pytest.mark.parametrize("lib", train_speed.LIBS)
@pytest.mark.parametrize("framework", train_speed.FRAMEWORKS)
@pytest.mark.parametrize("model", train_speed.MODELS)
def test_every_workload_is_valid_python_and_reports_a_result(lib, framework, model):
    cells = workload_cells(lib, framework, model, epochs=3)
    for cell in cells:
        ast.parse(cell)
    assert "max_epochs=3" in cells[1]
    assert "RESULT" in cells[-1]
    imported = "d2l_shim" if lib == "shim" else "from d2l import"
    assert imported in cells[0]
    assert not undefined_names("\n".join(cells))


def undefined_names(code: str) -> set[str]:
    """Module-level names read but never bound (imports, assignments, defs) nor builtins."""
    tree = ast.parse(code)
    bound, read = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
    return read - bound


def test_table_computes_speedups_and_marks_failures():
    results = {
        "epochs": 10,
        "d2l/pytorch/gru": dict(seconds=20.0, epochs=10, val_ppl=5.0, max_rss_mb=600, tokens=1e6),
        "shim/pytorch/gru": dict(seconds=5.0, epochs=10, val_ppl=4.9, max_rss_mb=500, tokens=1e6),
        "d2l/mxnet/scratch": {"error": "MemoryError"},
        "shim/mxnet/scratch": dict(seconds=3.0, epochs=10, val_ppl=6.0, max_rss_mb=400, tokens=1e6),
    }
    text = train_speed.table(results, 10)
    assert "| pytorch | gru | 2.00 | 0.50 | 4.0x | 200,000 | 5.00 | 4.90 | 600 | 500 |" in text
    assert "| mxnet | scratch | failed | 0.30 | – |" in text
    assert "tensorflow" not in text.split("\n", 1)[1]


def test_unknown_framework_is_refused(capsys):
    with pytest.raises(SystemExit):
        train_speed.main(["--frameworks", "jax"])
    assert "unknown ['jax']" in capsys.readouterr().err
