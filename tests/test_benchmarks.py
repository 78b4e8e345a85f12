"""The benchmark harness: its workloads are valid code and its table reads its results."""

import ast
import builtins
import sys
from pathlib import Path

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


@pytest.mark.parametrize("framework", train_speed.FRAMEWORKS)
def test_seeded_workload_seeds_every_generator_and_can_skip_drawing(framework):
    setup, build, _ = workload_cells("shim", framework, "gru", epochs=3, seed=7, draw=False)
    assert "random.seed(7)" in setup and "numpy.random.seed(7)" in setup
    framework_seed = {"pytorch": "torch.manual_seed(7)", "tensorflow": "tf.random.set_seed(7)"}
    assert framework_seed.get(framework, "mxnet.random.seed(7)") in setup
    assert build.endswith("model.board.display = False")
    assert not undefined_names("\n".join([setup, build]))
    setup, build, _ = workload_cells("d2l", framework, "gru", epochs=3)
    assert "seed" not in setup and "display" not in build


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
    assert (
        "| pytorch | gru | pinned | 2.00 | 0.50 | 4.0x | 200,000 | 5.00 | 4.90 | 600 | 500 |"
        in text
    )
    assert "| mxnet | scratch | pinned | failed | 0.30 | – |" in text
    assert "tensorflow" not in text.split("\n", 1)[1]


def test_unknown_framework_is_refused(capsys):
    with pytest.raises(SystemExit):
        train_speed.main(["--frameworks", "jax"])
    assert "unknown ['jax']" in capsys.readouterr().err


def run(seconds, epochs, val_ppl):
    return dict(seconds=seconds, epochs=epochs, val_ppl=val_ppl, max_rss_mb=1, tokens=1e6)


def test_targets_sum_the_section_and_compare_frameworks_and_perplexity():
    results = {"epochs": 100, "section": {"seconds": 280.0, "jobs": "3 at a time"}}
    for framework, (scratch, gru) in {
        "pytorch": (40, 80),
        "tensorflow": (30, 90),
        "mxnet": (60, 100),
    }.items():
        results[f"shim/{framework}/scratch"] = run(scratch, 100, 6.6)
        results[f"shim/{framework}/gru"] = run(gru, 100, 6.3)
        results[f"d2l/{framework}/scratch"] = run(2 * scratch, 100, 6.5)
        results[f"d2l/{framework}/gru"] = run(3 * gru, 100, 6.3)
    results["d2l/tensorflow/gru"] = run(240, 30, 7.9)  # capped: per epoch 8 s
    lines = train_speed.targets(results, 100)
    assert (
        "- pytorch: the section's training (scratch + GRU, 100 epochs each) takes 120 s "
        "with the shim, 320 s with d2l: 2.7x faster" in lines
    )
    assert (
        "- tensorflow: the section's training (scratch + GRU, 100 epochs each) takes 120 s "
        "with the shim, 860 s with d2l: 7.2x faster" in lines
    )
    assert (
        "- scratch: slowest framework (mxnet, 0.60 s/epoch) is 2.00x the fastest "
        "(tensorflow, 0.30)" in lines
    )
    assert any("compared over seeds by `python -m benchmarks.perplexity`" in x for x in lines)
    assert any("whole section" in line and "280 s" in line for line in lines)


def test_capped_runs_are_marked_in_the_table():
    results = {
        "epochs": 100,
        "d2l/tensorflow/gru": run(240, 30, 7.9),
        "shim/tensorflow/gru": run(80, 100, 6.3),
    }
    text = train_speed.table(results, 100)
    assert "| tensorflow | gru | pinned | 8.00 (30 epochs) | 0.80 | 10.0x |" in text
    assert "Capped: d2l 1.0.3's TensorFlow GRU leaks" in text


def test_notebook_script_keeps_code_cells_and_drops_magics(tmp_path, capsys):
    from benchmarks import notebook_script

    meta = {"d2l": {"source": "chapters/x.md", "line": 7}}
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Titre"], "metadata": {}},
            {"cell_type": "code", "source": ["%matplotlib inline\n", "x = 1"], "metadata": meta},
            {"cell_type": "code", "source": "print(x + 1)", "metadata": {}},
        ]
    }
    text = notebook_script.script(nb)
    assert text == "# ---- chapters/x.md:7\nx = 1\n\n# ---- ?:?\nprint(x + 1)\n"
    path = tmp_path / "bad.ipynb"
    path.write_text("{not json")
    assert notebook_script.main([str(path)]) == 1
    assert f"{path}: error: not a readable notebook" in capsys.readouterr().err


def test_plots_are_byte_identical_from_one_run_to_the_next(tmp_path):
    from benchmarks import perplexity

    results = {
        "epochs": 10,
        "shim/pytorch/gru": run(5.0, 10, 4.9),
        "d2l/pytorch/gru": run(9, 10, 5),
    }
    study = {"epochs": 10, "runs": {"d2l/pytorch/gru/0": {"val_ppl": 5.0}}}
    for name, draw in [
        ("speed", lambda p: train_speed.plot(results, p)),
        ("ppl", lambda p: perplexity.plot(study, p)),
    ]:
        first, second = tmp_path / f"{name}1.svg", tmp_path / f"{name}2.svg"
        draw(first)
        draw(second)
        assert first.read_bytes() == second.read_bytes()
        assert b"<svg" in first.read_bytes()


def test_repeated_rows_keep_the_median_run_and_show_the_spread():
    runs = [run(s, 10, ppl) for s, ppl in [(12.0, 6.1), (9.0, 6.2), (10.0, 6.3)]]
    median = train_speed.median_run(runs)
    assert median["seconds"] == 10.0 and median["val_ppl"] == 6.3  # the median run, whole
    assert median["all_seconds"] == [12.0, 9.0, 10.0]
    assert train_speed.median_run([runs[0], {"error": "DeadKernelError"}]) == {
        "error": "DeadKernelError"
    }
    text = train_speed.table({"epochs": 10, "shim/mxnet/gru": median}, 10)
    assert "| mxnet | gru | pinned | not run | 1.00 |" in text
    assert "median shown (s/epoch of each run): shim mxnet gru 0.90 / 1.00 / 1.20." in text


def test_results_are_kept_for_the_same_epochs_and_reset_otherwise(tmp_path):
    path = tmp_path / "results" / "r.json"
    assert train_speed.load_results(path, 100, runs={}) == {"epochs": 100, "runs": {}}
    train_speed.save_results({"epochs": 100, "runs": {"a": 1}}, path)
    assert not path.with_suffix(".tmp").exists()
    assert train_speed.load_results(path, 100, runs={}) == {"epochs": 100, "runs": {"a": 1}}
    assert train_speed.load_results(path, 10) == {"epochs": 10}


def test_generation_benchmark_reports_both_books(capsys):
    from benchmarks import generate

    assert generate.main(["--copies", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "| the book (chapters/) | 6 |" in out
    assert "| 2 copies of demo.md | 6 |" in out
    assert "target: the book generates in under 1 s:" in out


def test_stacks_run_side_by_side_rows_and_their_10_percent_target():
    versions = {"python": "3.12.1", "pytorch": "2.15.0", "tensorflow": "2.21.0", "keras": "3.15.1"}
    results = {
        "epochs": 10,
        "stacks": {"pinned": {"python": "3.11.7"}, "current": versions},
        "shim/tensorflow/gru": run(8.0, 10, 6.3),
        "shim/tensorflow/gru@current": run(8.5, 10, 6.4),
        "shim/pytorch/gru": run(9.0, 10, 6.3),
        "shim/pytorch/gru@current": run(10.0, 10, 6.3),
        "d2l/tensorflow/gru@current": {
            "skipped": train_speed.cannot_run("d2l", "tensorflow", versions)
        },
    }
    text = train_speed.table(results, 10)
    assert "| tensorflow | gru | pinned | not run | 0.80 |" in text
    assert "| tensorflow | gru | current | – | 0.85 |" in text
    assert "Not run (d2l tensorflow on current): d2l 1.0.3's TensorFlow code needs Keras 2" in text
    assert (
        "- tensorflow gru, current stack vs pinned: shim 0.85 vs 0.80 s/epoch (fastest of 1; "
        "median 0.85 vs 0.80), +6.2 % (target: at most +10 %: met)" in text
    )
    assert "- pytorch gru, current stack vs pinned: shim 1.00 vs 0.90 s/epoch" in text
    assert "+11.1 % (target: at most +10 %: MISSED)" in text
    assert "Stack current: python 3.12.1, pytorch 2.15.0, tensorflow 2.21.0, keras 3.15.1" in text


def test_stack_target_is_judged_on_the_fastest_run_of_each_stack():
    """A run slowed by other jobs (the median) does not decide; the fastest of each stack does."""
    results = {
        "epochs": 10,
        "stacks": {"pinned": {"python": "3.11.7"}, "current": {"python": "3.12.1"}},
        "shim/pytorch/scratch": {**run(9.0, 10, 6.9), "all_seconds": [4.0, 9.0, 12.0]},
        "shim/pytorch/scratch@current": {
            **run(30.0, 10, 6.9),
            "cpu_seconds": 4.0,
            "all_seconds": [4.2, 30.0, 31.0],
        },
        "shim/pytorch/gru": {**run(9.0, 10, 6.3), "all_seconds": [8.0, 9.0, 9.0]},
        "shim/pytorch/gru@current": {**run(9.0, 10, 6.3), "all_seconds": [9.0, 9.0, 9.0]},
    }
    text = train_speed.table(results, 10)
    assert (
        "- pytorch scratch, current stack vs pinned: shim 0.42 vs 0.40 s/epoch (fastest of 3; "
        "median 3.00 vs 0.90), +5.0 % (target: at most +10 %: met)" in text
    )
    assert "shim 0.90 vs 0.80 s/epoch (fastest of 3; median 0.90 vs 0.90), +12.5 %" in text
    assert "+12.5 % (target: at most +10 %: MISSED)" in text
    runs = [{**run(w, 10, 6.0), "cpu_seconds": c} for w, c in [(30.0, 4.0), (5.0, 5.0), (9, 6.0)]]
    median = train_speed.median_run(runs)
    assert median["seconds"] == 9 and median["all_cpu_seconds"] == [4.0, 5.0, 6.0]


def test_a_stack_without_the_framework_or_with_keras_3_does_not_run_d2l_s_tensorflow():
    current = {"pytorch": "2.15.0", "tensorflow": "2.21.0", "keras": "3.15.1", "mxnet": None}
    pinned = {"pytorch": "2.13.0", "tensorflow": "2.15.1", "keras": "2.15.0", "mxnet": "1.9.1"}
    assert (
        train_speed.cannot_run("shim", "mxnet", current) == "mxnet is not installed in this stack"
    )
    assert "Keras 2" in train_speed.cannot_run("d2l", "tensorflow", current)
    assert train_speed.cannot_run("shim", "tensorflow", current) is None
    assert train_speed.cannot_run("d2l", "pytorch", current) is None
    assert all(
        train_speed.cannot_run(lib, f, pinned) is None
        for lib in train_speed.LIBS
        for f in train_speed.FRAMEWORKS
    )


def test_stacks_option_names_interpreters_and_keys_rows():
    assert train_speed.parse_stacks("pinned=/a/python,current=b/python") == {
        "pinned": "/a/python",
        "current": str(Path.cwd() / "b/python"),  # kernels start elsewhere
    }
    with pytest.raises(ValueError, match="name=python"):
        train_speed.parse_stacks("pinned=a,b")
    assert list(train_speed.parse_stacks(None).values()) == [sys.executable]
    assert train_speed.row_key("shim", "pytorch", "gru") == "shim/pytorch/gru"
    assert train_speed.row_key("shim", "pytorch", "gru", "current") == "shim/pytorch/gru@current"


def test_a_kernel_of_another_python_runs_the_workload_and_is_stopped(monkeypatch):
    """--stacks kernels start from the given interpreter and do not outlive their run."""
    cell = "import json, os, sys\nprint('RESULT ' + json.dumps([os.getpid(), sys.executable]))"
    monkeypatch.setattr(train_speed, "workload_cells", lambda *a, **k: [cell])
    result = train_speed.run_one("shim", "pytorch", "gru", 1, 60, python=sys.executable)
    pid, executable = result
    assert executable == sys.executable
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped
