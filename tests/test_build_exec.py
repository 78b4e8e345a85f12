"""build.py execute / outputs and the nbval report plugin, with real (plain Python) kernels.

Each test starts a few kernels; the chapters here import no framework except one seeded
`outputs` run (PyTorch), so the file takes about 20 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import build
from book.execute import MALLOC_DEFAULTS, cpu_count, plan_jobs

SHIM = Path(__file__).parent / "fixtures" / "shim"

CHAPTER = """\
# Exécution
:label:`sec_exec`

```{.python .input}
%%tab all
import os
n = 3
print(os.environ.get("D2L_MAX_EPOCHS"), os.environ["D2L_PLOT"], os.environ["OMP_NUM_THREADS"],
      os.environ["MALLOC_MMAP_MAX_"])
```

```{.python .input output="check"}
%%tab pytorch
print(n * 2)
```
"""


def chapter(tmp_path: Path, text: str = CHAPTER) -> tuple[Path, Path]:
    chapters = tmp_path / "chapters"
    chapters.mkdir(exist_ok=True)
    file = chapters / "exec.md"
    file.write_text(text)
    return chapters, file


def main(args: list[str], chapters: Path) -> int:
    return build.main([*args, "--chapters", str(chapters), "--shim", str(SHIM)])


def test_execute_progress_env_cache_and_failure(tmp_path, capsys):
    chapters, file = chapter(tmp_path)
    args = [
        "execute",
        "--framework",
        "pytorch",
        "--out",
        str(tmp_path / "out"),
        "--max-epochs",
        "2",
    ]
    assert main(args, chapters) == 0
    err = capsys.readouterr().err
    assert f"{file} pytorch cell 1/3" in err and f"{file} pytorch cell 3/3" in err
    executed = tmp_path / "out/executed/pytorch/exec.ipynb"
    nb = json.loads(executed.read_text())
    assert nb["metadata"]["d2l"]["cache_key"]
    threads = os.environ.get("OMP_NUM_THREADS", str(cpu_count()))  # one notebook: every core
    mmap_max = os.environ.get("MALLOC_MMAP_MAX_", MALLOC_DEFAULTS["MALLOC_MMAP_MAX_"])
    assert nb["cells"][3]["outputs"][0]["text"] == [f"2 final {threads} {mmap_max}\n"]

    assert main(args, chapters) == 0  # unchanged: cached, not re-run
    assert "unchanged, cached" in capsys.readouterr().err

    file.write_text(CHAPTER.replace("# Exécution", "# Exécution revue"))  # prose only
    assert main(args, chapters) == 0
    assert "prose or figures updated, code unchanged, cached" in capsys.readouterr().err
    revised = json.loads(executed.read_text())
    assert "# Exécution revue" in "".join(revised["cells"][2]["source"])
    assert revised["cells"][3]["outputs"] == nb["cells"][3]["outputs"]  # the last run's

    before = executed.read_bytes()
    file.write_text(CHAPTER.replace("print(n * 2)", "print(n / 0)"))
    assert main(args, chapters) == 1
    err = capsys.readouterr().err
    assert f"{file}:14: error: cell failed (pytorch)" in err and "ZeroDivisionError" in err
    assert executed.read_bytes() == before  # no half-written output


GLUED = """\
# Glue

```{.python .input}
%%tab all
from d2l_shim._common.glue import glue
glue("n_steps", 13212, fmt=",d")
if False:
    glue("never", 0)
```

Il y a :glue:`n_steps` pas.

Jamais : :glue:`never`.
"""


def test_execute_shows_the_runs_values_and_fails_on_a_name_it_did_not_record(tmp_path, capsys):
    chapters, file = chapter(tmp_path, GLUED)
    out = tmp_path / "out"
    args = ["execute", "--framework", "pytorch", "--out", str(out), "--max-epochs", "1"]
    assert main(["check", "--framework", "pytorch"], chapters) == 0  # literal names: fine
    missing = f"{file}:13: error: :glue:`never`: the pytorch run recorded no value 'never'"
    assert main(args, chapters) == 1
    assert missing in capsys.readouterr().err
    nb = json.loads((out / "executed/pytorch/exec.ipynb").read_text())
    prose = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert "Il y a 13\u202f212 pas.\n\nJamais : `never`." in prose
    (shown,) = nb["cells"][3]["outputs"]  # one output: the value, not echoed again
    assert shown["data"]["text/plain"] == "n_steps = 13\u202f212"
    assert main(args, chapters) == 1  # cached, no kernel: the same error
    err = capsys.readouterr().err
    assert "unchanged, cached" in err and missing in err

    file.write_text(GLUED.replace("if False:", "if True:"))
    assert main(args, chapters) == 0, capsys.readouterr().err
    nb = json.loads((out / "executed/pytorch/exec.ipynb").read_text())
    assert "Il y a 13\u202f212 pas.\n\nJamais : 0." in ["".join(c["source"]) for c in nb["cells"]]


def test_notebooks_run_side_by_side_sharing_the_cores(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # A cell of each framework (a chapter without one gets no notebook for it).
    chapters, file = chapter(tmp_path, CHAPTER.replace("%%tab pytorch", "%%tab all"))
    out = tmp_path / "out"
    assert main(["execute", "--jobs", "2", "--out", str(out)], chapters) == 0
    err = capsys.readouterr().err
    jobs, threads = plan_jobs(3, 2)
    assert f"execute: 3 notebook(s), {jobs} at a time, {threads} thread(s) each" in err
    for framework in ("pytorch", "tensorflow", "mxnet"):
        nb = json.loads((out / "executed" / framework / "exec.ipynb").read_text())
        printed = [o["text"] for c in nb["cells"] for o in c.get("outputs", []) if "text" in o]
        mmap_max = os.environ.get("MALLOC_MMAP_MAX_", MALLOC_DEFAULTS["MALLOC_MMAP_MAX_"])
        assert [f"None final {threads} {mmap_max}\n"] in printed, framework


REUSE = """
import ctypes, resource, threading
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 80 << 20  # as MXNet's GRU workspace: allocated in a worker thread, freed, again


def steps():
    for _ in range(10):
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)


warm_up = threading.Thread(target=steps)  # the heap or arena exists after it
warm_up.start()
warm_up.join()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
worker = threading.Thread(target=steps)
worker.start()
worker.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's malloc variables",
)
def test_kernel_malloc_settings_reuse_freed_blocks():
    """Without MALLOC_DEFAULTS, every large block freed and allocated again is faulted in anew
    (10 x 80 MB: at least 200,000 page faults of 4 kB); with them, the memory is reused."""

    def faults(extra: dict[str, str]) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | extra
        run = subprocess.run([sys.executable, "-c", REUSE], env=env, capture_output=True)
        return int(run.stdout)

    pages = 10 * (80 << 20) // os.sysconf("SC_PAGE_SIZE")
    default = faults({})
    assert default > 0.8 * pages
    assert faults(MALLOC_DEFAULTS) < default / 4


def test_jobs_must_be_a_positive_integer(tmp_path, capsys):
    chapters, _ = chapter(tmp_path)
    with pytest.raises(SystemExit):
        main(["execute", "--jobs", "0", "--out", str(tmp_path / "out")], chapters)
    assert "--jobs: expected an integer >= 1, got '0'" in capsys.readouterr().err


def nbval(*paths: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "book.nbval_report"]
    command += ["-p", "no:cacheprovider", "-q", *map(str, paths)]
    env = {**os.environ, "COLUMNS": "400"}  # the summary line keeps the whole location
    return subprocess.run(
        command, cwd=build.ROOT, capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow
def test_outputs_are_stored_and_nbval_catches_a_changed_output(tmp_path, capsys):
    chapters, file = chapter(tmp_path)
    out = tmp_path / "out"
    assert main(["outputs", "--framework", "pytorch", "--out", str(out)], chapters) == 0
    refs = json.loads((chapters / "outputs/exec.pytorch.json").read_text())
    ((key, cell),) = refs["cells"].items()
    assert cell["outputs"] == [{"name": "stdout", "output_type": "stream", "text": "6\n"}]
    capsys.readouterr()
    assert main(["check", "--framework", "pytorch"], chapters) == 0
    assert "warning" not in capsys.readouterr().err

    notebook = out / "notebooks/pytorch/exec.ipynb"
    stored = json.loads(notebook.read_text())["cells"][4]
    assert stored["metadata"]["d2l"]["key"] == key and stored["outputs"][0]["text"] == ["6\n"]
    good = tmp_path / "good.ipynb"
    good.write_bytes(notebook.read_bytes())

    file.write_text(CHAPTER.replace("n = 3", "n = 4"))  # same check cell, other output
    assert main(["notebooks", "--framework", "pytorch", "--out", str(out)], chapters) == 0
    result = nbval(good, notebook)
    assert "1 failed, 5 passed" in result.stdout, result.stdout + result.stderr
    assert f"exec.ipynb::Cell 2 - {file}:14 (pytorch)" in result.stdout, result.stdout
    assert f"{file}:14 (pytorch): notebook cell failed" in result.stdout


SLEEPY = """\
# Attente

```{.python .input}
%%tab pytorch
import os, pathlib
pathlib.Path(".kernel.pid").write_text(str(os.getpid()))
```

```{.python .input}
%%tab pytorch
import time
time.sleep(600)
```
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, process groups")
def test_ctrl_c_stops_the_kernels_and_writes_nothing(tmp_path):
    """Ctrl-C in a terminal signals the build's process group (the kernels have their own)."""
    chapters, _ = chapter(tmp_path, SLEEPY)
    out = tmp_path / "out"
    command = [sys.executable, "build.py", "execute", "--framework", "pytorch"]
    command += ["--out", str(out), "--chapters", str(chapters), "--shim", str(SHIM)]
    build_run = subprocess.Popen(
        command, cwd=build.ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    pid_file = out / "notebooks/pytorch/.kernel.pid"
    try:
        deadline = time.monotonic() + 60
        while not pid_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the sleeping cell has started
        os.killpg(build_run.pid, signal.SIGINT)
        status = build_run.wait(timeout=30)  # not 600 s
    finally:
        if build_run.poll() is None:
            os.killpg(build_run.pid, signal.SIGKILL)
    err = build_run.stderr.read()
    assert status == 130, err
    assert "execute: interrupted; kernels stopped" in err and "Traceback" not in err
    kernel = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while running(kernel) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(kernel)
    assert not (out / "executed").exists()
    assert not [p for p in out.rglob("*.tmp")]


def running(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.tensorflow
def test_kernel_outputs_hold_no_framework_log_lines():
    """TensorFlow's C++ log lines (I0000 at import, E0000 cuInit with the `tensorflow` wheel
    at TF_CPP_MIN_LOG_LEVEL=2) stay out of the cells of `build.py execute`: the book's pages
    show stderr."""
    pytest.importorskip("tensorflow")
    from book.execute import kernel_env, run

    cells = ["import tensorflow as tf", "print(float(tf.reduce_sum(tf.ones(3))))", "print(2)"]
    nb = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": c} for c in cells],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for cell in nb["cells"]:
        cell.update(outputs=[], execution_count=None)
    root = Path(__file__).resolve().parents[1]
    env = kernel_env(root, None, threads=1)
    del env["PYTEST_CURRENT_TEST"]  # ipykernel captures no file descriptor under pytest
    executed = run(nb, root, env, timeout=300)
    texts = ["".join(out.get("text", "")) for cell in executed.cells for out in cell.outputs]
    assert texts == ["3.0\n", "2\n"]
