"""Run generated notebooks with nbclient: progress per cell, cache by content, located errors.

kernel_env(root, max_epochs, threads) environment of the kernel (quiet TF, threads, plots)
plan_jobs(notebooks, jobs)           how many kernels at once, and threads for each
cache_key(nb, files, max_epochs)     hash of the code + shim + pins + epoch cap
with_outputs(nb, executed)           nb with the outputs of a run of the same code (no kernel)
run(nb, cwd, env, timeout, report)   executed copy; raises CellFailure on the first error
Kernels()                            the kernels running now: stop() ends them all (Ctrl-C)
Heartbeat(say, every)                a line every `every` s for each cell still running
python -m book.execute COMMAND...    COMMAND with the kernels' defaults (make jupyter)

nbformat and nbclient are imported by run() only: their import takes seconds (jsonschema), and
a cached build needs neither.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from book.notebook import code_cell

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colours in tracebacks and outputs
THREAD_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)  # fmt: skip
# Environment of every kernel that executes the book (build.py execute, nbval): forced values,
# then defaults a user's environment may override. (OMP_WAIT_POLICY=PASSIVE is not set: it
# helps only beside another busy process and made PyTorch training 2x slower on an idle machine.)
# The thread counts (THREAD_VARS) come from plan_jobs: kernels running side by side share the
# cores instead of each spinning a pool as large as the machine. TensorFlow's inter-op pool
# counts too: alone on 2 cores, its GRU takes 1.4 s per epoch with 1 inter-op thread, 0.8 s
# with 2.
# TF_CPP_MIN_LOG_LEVEL=3: at 2, the `tensorflow` wheel (not tensorflow-cpu) still writes E0000
# lines (cuInit, on a machine without a GPU), which land in whichever cell runs at that moment.
KERNEL_FORCED = {"D2L_PLOT": "final", "TF_CPP_MIN_LOG_LEVEL": "3"}
# glibc's malloc with one arena, no mmap and no trimming: freed memory is reused instead of being
# handed back to the system. MXNet 1.9's oneDNN GRU allocates its training workspace (~140 MB
# here) anew at every step; glibc serves blocks that large with mmap and unmaps them when they
# are freed, so every step faulted in ~35,000 zeroed pages: on one thread its epoch takes 0.85 s
# instead of 1.45 s. PyTorch and TensorFlow: within 5 %, faster if anything. Other C libraries
# ignore these variables.
MALLOC_DEFAULTS = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "2147483647",
}
KERNEL_DEFAULTS = {
    "PYTHONHASHSEED": "0",
    **MALLOC_DEFAULTS,
    # Not MXNET_CPU_WORKER_NTHREADS: with 2 workers and OMP_NUM_THREADS=2, MXNet 1.9.1 hangs in
    # the backward pass of np.dot.
}
# Arguments of every kernel: its own log (not the cells' outputs) shows errors only, so that
# a build does not print "Kernel is running over TCP without encryption" once per notebook
# (the kernel listens on localhost only). What C++ libraries write to file descriptor 2 goes
# to that log too, not into the cells: TensorFlow 2.16+ logs "I0000 ... oneDNN custom
# operations are on" at import whatever TF_CPP_MIN_LOG_LEVEL says. Python's own output
# (print, warnings, tracebacks) still lands in the cells.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR", "--IPKernelApp.capture_fd_output=False"]
SEED = {
    "pytorch": "import torch\ntorch.manual_seed({seed})",
    "tensorflow": "import tensorflow as tf\ntf.random.set_seed({seed})",
    "mxnet": "import mxnet\nmxnet.random.seed({seed})",
}


def seed_code(framework: str, seed: int) -> str:
    """Code seeding Python's, NumPy's and ``framework``'s generators with ``seed``."""
    python_and_numpy = (
        f"import random\nimport numpy\nrandom.seed({seed})\nnumpy.random.seed({seed})"
    )
    return python_and_numpy + "\n" + SEED[framework].format(seed=seed)


class Interrupted(Exception):
    """The kernel was stopped by Kernels.stop() (Ctrl-C): the run is to be thrown away."""


class CellFailure(Exception):
    """A cell raised (or timed out): where it comes from in the chapter, and the traceback."""

    def __init__(self, source: str, line: int, framework: str, traceback: str) -> None:
        self.source, self.line, self.framework, self.traceback = source, line, framework, traceback
        super().__init__(f"{source}:{line}: cell failed ({framework})\n{traceback}")


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_jobs(notebooks: int, jobs: int | None = None, cpus: int | None = None) -> tuple[int, int]:
    """(kernels at once, threads per kernel) for ``notebooks`` notebooks to execute.

    By default up to two single-threaded kernels per core, so that notebooks of unequal length
    keep every core busy to the end; with more cores than kernels, the cores are shared out.
    Small recurrent models gain more from side-by-side notebooks than from threads: on 2 cores,
    a PyTorch GRU epoch takes 1.1 s with 1 thread and 0.9 s with 2. More threads than cores
    make the thread pools spin against each other: beside two single-threaded kernels, a
    two-threaded MXNet kernel had not finished a training cell after 220 s that took 130 s
    with one thread.
    """
    cpus = cpu_count() if cpus is None else cpus
    if jobs is None:
        jobs = 2 * cpus
    jobs = max(1, min(jobs, notebooks))
    return jobs, max(1, cpus // jobs)


def kernel_defaults(threads: int | None = None) -> dict[str, str]:
    """KERNEL_DEFAULTS with thread pools of ``threads`` threads (default: one per core)."""
    threads = cpu_count() if threads is None else threads
    return {**KERNEL_DEFAULTS, **dict.fromkeys(THREAD_VARS, str(threads))}


def kernel_env(
    root: Path,
    max_epochs: int | None,
    base: dict[str, str] | None = None,
    threads: int | None = None,
) -> dict[str, str]:
    """The kernel's environment: the shim importable, quiet TensorFlow, final plots only.

    ``threads`` (default: one per core) sizes the kernel's thread pools, unless the user's
    environment sets them.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env.update(KERNEL_FORCED)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name, value in kernel_defaults(threads).items():
        env.setdefault(name, value)
    if max_epochs is not None:
        env["D2L_MAX_EPOCHS"] = str(max_epochs)
    else:
        env.pop("D2L_MAX_EPOCHS", None)
    return env


def cache_key(nb: dict[str, Any], files: Iterable[Path], max_epochs: int | None) -> str:
    """Same code, same shim and pins, same epoch cap -> same key (outputs are not hashed)."""
    digest = hashlib.sha256()
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    digest.update(json.dumps([nb["metadata"].get("d2l", {}), code, max_epochs]).encode())
    for file in sorted(files):
        if file.is_file():
            digest.update(str(file.name).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def with_outputs(nb: dict[str, Any], executed: dict[str, Any]) -> dict[str, Any]:
    """``nb`` (its prose, figures and cell metadata as they are now) with the outputs of
    ``executed``, a run of the same code cells: a prose-only edit needs no kernel."""
    runs = iter([c for c in executed["cells"] if c["cell_type"] == "code"])
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            ran = next(runs)
            cell = {**cell, "outputs": ran["outputs"], "execution_count": ran["execution_count"]}
        cells.append(cell)
    d2l = {**nb["metadata"]["d2l"], "cache_key": executed["metadata"]["d2l"]["cache_key"]}
    return {**nb, "cells": cells, "metadata": {**executed["metadata"], "d2l": d2l}}


def dependency_files(root: Path, shim_dir: Path) -> list[Path]:
    """What an executed notebook depends on besides its code: the shim and both stacks' pins."""
    locks = [root / "requirements" / "lock.txt", root / "requirements" / "current" / "lock.txt"]
    return sorted(shim_dir.rglob("*.py")) + locks


def with_seed(nb: dict[str, Any], framework: str) -> dict[str, Any]:
    """A copy with a seeding cell first (for reference outputs)."""
    seeded = copy.deepcopy(nb)
    seeded["cells"].insert(0, {**code_cell(seed_code(framework, 0), {}), "id": "d2l-seed"})
    return seeded


def run(
    nb: dict[str, Any],
    cwd: Path,
    env: dict[str, str],
    timeout: int | None,
    report: Callable[[int, int, float], None] | None = None,
    begin: Callable[[int, int], None] | None = None,
    kernels: Kernels | None = None,
) -> Any:
    """Execute a copy of `nb`; begin(i, n) before and report(i, n, seconds) after code cell i.

    ``timeout``: seconds per cell (None: no limit). With ``kernels``, the kernel is registered
    there while it runs; once they are stopped, raises Interrupted.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    executed = nbformat.reads(json.dumps(nb), as_version=4)  # joins lines of sources
    code_cells = [i for i, c in enumerate(executed.cells) if c.cell_type == "code"]
    current: dict[str, Any] = {"index": 0, "start": time.monotonic(), "group": None}

    def started(cell: Any, cell_index: int) -> None:
        current.update(index=cell_index, start=time.monotonic())
        if begin and cell.cell_type == "code":
            begin(code_cells.index(cell_index) + 1, len(code_cells))

    def completed(cell: Any, cell_index: int, execute_reply: Any = None) -> None:
        if report and cell.cell_type == "code":
            report(
                code_cells.index(cell_index) + 1,
                len(code_cells),
                time.monotonic() - current["start"],
            )

    def kernel_ready(notebook: Any) -> None:
        # The kernel runs in a session of its own: the terminal's Ctrl-C does not reach it.
        current["group"] = getattr(client.km.provisioner, "pgid", None)
        if kernels is not None and current["group"] is not None:
            kernels.started(current["group"])

    client = NotebookClient(
        executed,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=KERNEL_ARGS,
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        on_notebook_start=kernel_ready,
        on_cell_execute=started,
        on_cell_executed=completed,  # on_cell_complete fires when the request is sent
    )
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        if kernels is not None and kernels.stopped.is_set():
            raise Interrupted from None
        cell = executed.cells[current["index"]]
        where = cell.metadata.get("d2l", {})
        framework = executed.metadata.get("d2l", {}).get("framework", "?")
        text = ANSI.sub("", str(err))
        if isinstance(err, CellTimeoutError):
            text = f"timed out after {timeout} s\n{text}"
        if isinstance(err, DeadKernelError):
            text = "the kernel died (out of memory, or killed)"
        raise CellFailure(where.get("source", "?"), where.get("line", 0), framework, text) from None
    finally:
        if kernels is not None and current["group"] is not None:
            kernels.ended(current["group"])
    return executed


class Kernels:
    """The kernels running now, each as its process group, so that Ctrl-C can end them all:
    a kernel runs in a session of its own, which the terminal's Ctrl-C does not reach."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.groups: set[int] = set()

    def started(self, group: int) -> None:
        with self.lock:
            self.groups.add(group)
            if self.stopped.is_set():  # started while stopping: ended at once
                _kill(group)

    def ended(self, group: int) -> None:
        with self.lock:
            self.groups.discard(group)

    def stop(self) -> None:
        """Kill every kernel (and what it started); the runs raise Interrupted."""
        with self.lock:
            self.stopped.set()
            for group in self.groups:
                _kill(group)


def _kill(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


class Heartbeat:
    """Says, every ``every`` seconds, which cells have been running that long (a training cell
    can take minutes; notebooks running side by side would otherwise stay silent)."""

    def __init__(self, say: Callable[[str], None], every: float = 30.0) -> None:
        self.say, self.every = say, every
        self.running: dict[str, tuple[int, int, float]] = {}  # notebook -> (cell, cells, start)
        self.lock, self.stopped = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def begin(self, notebook: str, cell: int, cells: int) -> None:
        with self.lock:
            self.running[notebook] = (cell, cells, time.monotonic())

    def end(self, notebook: str) -> None:
        with self.lock:
            self.running.pop(notebook, None)

    def _loop(self) -> None:
        while not self.stopped.wait(self.every):
            now = time.monotonic()
            with self.lock:
                late = [(k, *v) for k, v in self.running.items() if now - v[2] >= self.every]
            for notebook, cell, cells, start in late:
                self.say(f"{notebook} cell {cell}/{cells} running for {now - start:.0f}s")


def check_outputs(executed: Any) -> dict[str, dict[str, Any]]:
    """{key: {"code": first line, "outputs": [...]}} of the output="check" cells, normalized."""
    out: dict[str, dict[str, Any]] = {}
    for cell in executed.cells:
        key = cell.get("metadata", {}).get("d2l", {}).get("key")
        if cell.cell_type != "code" or not key:
            continue
        outputs = []
        for o in cell.outputs:
            o = {k: v for k, v in o.items() if k != "metadata"}
            if o["output_type"] == "execute_result":
                o["execution_count"] = None
                o["metadata"] = {}
            if o["output_type"] == "display_data":
                o["metadata"] = {}
            outputs.append(o)
        out[key] = {"code": cell.source.split("\n", 1)[0], "outputs": outputs}
    return out


def main(argv: list[str]) -> None:
    """Run ``argv`` with the kernels' defaults (threads, malloc) where the environment has
    none: ``make jupyter`` starts Jupyter so, and its kernels inherit them."""
    if not argv:
        sys.exit("usage: python -m book.execute COMMAND [ARGS...]")
    os.execvpe(argv[0], argv, {**kernel_defaults(), **os.environ})


if __name__ == "__main__":
    main(sys.argv[1:])
