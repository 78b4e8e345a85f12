"""The three framework modules export the same public names.

The parity test reads the modules' ``__all__`` with ``ast`` (no framework import, fast); it
fails while a module is missing. One test per framework then imports its module in a fresh
interpreter and checks that every exported name exists.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "d2l_shim"
MODULES = ("torch", "tensorflow", "mxnet")

# The names SHIM.md asks every framework module to export.
REQUIRED = {
    "HyperParameters",
    "ProgressBoard",
    "Module",
    "DataModule",
    "Classifier",
    "Trainer",
    "TimeMachine",
    "Vocab",
    "RNNScratch",
    "StackedRNNScratch",
    "RNNLMScratch",
    "RNN",
    "GRU",
    "RNNLM",
    "cpu",
    "gpu",
    "num_gpus",
    "try_gpu",
    "set_seed",
    "add_to_class",
    "check_shape",
    "check_len",
    "glue",
    "glue_text",
}


def _literal_names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_names(node.left) + _literal_names(node.right)
    value = ast.literal_eval(node)  # ValueError if __all__ is not written as a literal
    assert isinstance(value, (list, tuple)), "__all__ must be a list or tuple of names"
    return list(value)


def static_all(path: Path) -> list[str]:
    """The ``__all__`` of a module file, read without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        if isinstance(node, ast.AugAssign):
            assert names is not None, f"{path.name}: __all__ += before __all__ ="
            names += _literal_names(node.value)
        else:
            names = _literal_names(node.value)
    assert names is not None, f"{path.name} defines no __all__"
    return names


def defined_names(path: Path) -> set[str]:
    """Names bound anywhere in a module file (lenient: the import test below is exact)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def test_framework_modules_export_the_same_names():
    missing = [f"d2l_shim/{m}.py" for m in MODULES if not (SHIM / f"{m}.py").is_file()]
    assert not missing, f"framework modules not written yet: {missing}"
    exported = {m: static_all(SHIM / f"{m}.py") for m in MODULES}
    for module, names in exported.items():
        duplicates = sorted({n for n in names if names.count(n) > 1})
        assert not duplicates, f"{module}: names listed twice in __all__: {duplicates}"
        absent = sorted(REQUIRED - set(names))
        assert not absent, f"{module}: __all__ lacks {absent}"
    reference = set(exported["torch"])
    for module in ("tensorflow", "mxnet"):
        assert set(exported[module]) == reference, (
            f"{module} vs torch: only in {module}: {sorted(set(exported[module]) - reference)}, "
            f"only in torch: {sorted(reference - set(exported[module]))}"
        )


def test_static_all_reads_literals_and_additions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('__all__ = ["a"] + ("b",)\nx = 1\n__all__ += ["c"]\n', encoding="utf-8")
    assert static_all(path) == ["a", "b", "c"]
    path.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="no __all__"):
        static_all(path)


def test_parity_fails_while_a_module_is_missing(tmp_path, monkeypatch):
    for name in ("torch", "tensorflow"):
        (tmp_path / f"{name}.py").write_text(f"__all__ = {sorted(REQUIRED)!r}\n")
    monkeypatch.setattr(sys.modules[__name__], "SHIM", tmp_path)
    with pytest.raises(AssertionError, match="mxnet.py"):
        test_framework_modules_export_the_same_names()
    (tmp_path / "mxnet.py").write_text(f"__all__ = {sorted(REQUIRED - {'GRU'})!r}\n")
    with pytest.raises(AssertionError, match="GRU"):
        test_framework_modules_export_the_same_names()


@pytest.mark.parametrize("module", MODULES)
def test_exported_names_are_defined(module):
    path = SHIM / f"{module}.py"
    if not path.is_file():
        pytest.skip(f"d2l_shim/{module}.py is not written yet")
    undefined = sorted(set(static_all(path)) - defined_names(path))
    assert not undefined, f"{module}: __all__ names never bound in the module: {undefined}"


IMPORT_CHECK = """
from d2l_shim import {module} as d2l
missing = [name for name in d2l.__all__ if not hasattr(d2l, name)]
assert not missing, f"__all__ names missing at run time: {{missing}}"
print(sorted(d2l.__all__))
"""


@pytest.fixture(scope="module")
def imports(request):
    """Start the import checks of the selected frameworks together; they take seconds each."""
    selected = {
        item.callspec.params["module"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_framework_module_imports"
    }
    processes = {
        m: subprocess.Popen(
            [sys.executable, "-c", IMPORT_CHECK.format(module=m)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in sorted(selected)
        if (SHIM / f"{m}.py").is_file()
    }
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize(
    "module",
    [pytest.param(m, marks=getattr(pytest.mark, m)) for m in MODULES],
)
def test_framework_module_imports(module, imports):
    path = SHIM / f"{module}.py"
    if not path.is_file():
        pytest.skip(f"d2l_shim/{module}.py is not written yet")
    stdout, stderr = imports[module].communicate(timeout=300)
    assert imports[module].returncode == 0, stderr[-3000:]
    assert ast.literal_eval(stdout.strip().splitlines()[-1]) == sorted(static_all(path))
