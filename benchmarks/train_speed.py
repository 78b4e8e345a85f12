"""Training speed of the section's models: our shim against d2l 1.0.3, in each framework.

    python -m benchmarks.train_speed [--epochs 100] [--frameworks pytorch,mxnet] [--section]
                                     [--repeat 3] [--update-readme]
                                     [--stacks pinned=.venv/bin/python,current=PYTHON]

Each run executes in a fresh Jupyter kernel (nbclient), one at a time, exactly as a reader's
notebook would: same data (batch 1024 x 32 steps), same model (h=32, 2 layers, lr 2, clipping 1),
training curve drawn. Prints a table (s/epoch, tokens/s, speed-up, validation perplexity, peak
memory), the issue's targets computed from it, and writes
benchmarks/results/train_speed.{json,md,svg}. ``--section`` also times ``build.py execute`` of
the whole section (three frameworks, full settings, notebooks side by side), as ``make book``.
``--repeat N`` times each row N times and keeps the median run: on a shared virtual machine one
run can be 15 % off. ``--stacks`` runs each row in the kernels of several Pythons (the two
stacks' venvs, README), one after the other for each row, so that both see the same machine;
the pinned stack is the reference of the table's stack target, judged on the fastest run
of each stack (other jobs only add time; CPU time is recorded too). A row a stack cannot run (a
framework it lacks, d2l 1.0.3's TensorFlow code under Keras 3) is skipped with its reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from book.execute import KERNEL_ARGS, kernel_env

from .workloads import EPOCH_CAPS, SECTION, workload_cells

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FRAMEWORKS = ("pytorch", "tensorflow", "mxnet")
MODELS = ("scratch", "gru")
LIBS = ("d2l", "shim")
REFERENCE_STACK = "pinned"
STACK_OF_PYTHON = {(3, 11): "pinned", (3, 12): "current"}
STACK_TARGET = 0.10  # a stack's shim epoch at most 10 % slower than the pinned stack's
# Versions a stack reports (import names -> distributions; TensorFlow's CPU build has its own).
PROBE = """
import importlib.metadata as m, json, platform
def version(*names):
    for name in names:
        try:
            return m.version(name)
        except m.PackageNotFoundError:
            pass
print(json.dumps({"python": platform.python_version(), "numpy": version("numpy"),
    "pytorch": version("torch"), "tensorflow": version("tensorflow", "tensorflow-cpu"),
    "keras": version("keras"), "mxnet": version("mxnet")}))
"""
README_START, README_END = "<!-- train_speed:start -->", "<!-- train_speed:end -->"


def data_dir() -> Path:
    folder = Path(os.environ.get("D2L_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (folder / "timemachine.txt").is_file():
        sys.exit(f"error: no timemachine.txt in {folder}; set D2L_DATA_DIR")
    return folder


def row_key(lib: str, framework: str, model: str, stack: str = REFERENCE_STACK) -> str:
    """Key of a row in the results: ``lib/framework/model``, ``@stack`` for another stack."""
    key = f"{lib}/{framework}/{model}"
    return key if stack == REFERENCE_STACK else f"{key}@{stack}"


def parse_stacks(text: str | None) -> dict[str, str]:
    """``name=python,...`` -> {name: python}; None: this Python, named after its version."""
    if not text:
        this = STACK_OF_PYTHON.get(sys.version_info[:2], f"python{sys.version_info[0]}")
        return {this: sys.executable}
    # absolute (the kernels start in a temporary folder), symlinks kept (a venv's python is one)
    stacks = {
        name: os.path.abspath(python)
        for name, python in (item.split("=", 1) for item in text.split(",") if "=" in item)
    }
    if len(stacks) != len(text.split(",")):
        raise ValueError(f"--stacks {text!r}: expected name=python,name=python")
    return stacks


def probe(python: str) -> dict:
    """Python and framework versions of the stack whose interpreter is ``python``."""
    done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=120)
    if done.returncode:
        sys.exit(f"error: {python} cannot run: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def cannot_run(lib: str, framework: str, versions: dict) -> str | None:
    """Why ``lib`` cannot run ``framework`` on a stack with ``versions``; None when it can."""
    if versions.get(framework) is None:
        return f"{framework} is not installed in this stack"
    if lib == "d2l" and framework == "tensorflow" and int(versions["keras"].split(".")[0]) >= 3:
        return "d2l 1.0.3's TensorFlow code needs Keras 2 (time_major, integer learning rate)"
    return None


def kernel_manager(python: str, folder: Path):
    """A kernel manager starting ``python``'s ipykernel (a kernel spec written in ``folder``)."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "kernels" / "d2l-bench"
    spec.mkdir(parents=True)
    argv = [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": python, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name="d2l-bench", kernel_spec_manager=specs)


def run_one(
    lib: str,
    framework: str,
    model: str,
    epochs: int,
    timeout: int,
    seed: int | None = None,
    draw: bool = True,
    threads: int | None = None,
    python: str | None = None,
) -> dict:
    """Execute one workload in a new kernel; return its measurements or its failure.

    ``seed`` and ``draw`` as in ``workload_cells``; ``threads`` per kernel (default: every core);
    ``python``: the interpreter of the kernel (default: this one).
    """
    nb = nbformat.v4.new_notebook()
    cells = workload_cells(lib, framework, model, epochs, seed=seed, draw=draw)
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        (Path(tmp) / "data").mkdir()
        work.mkdir()
        # d2l reads ../data/timemachine.txt (checksum verified) instead of downloading.
        shutil.copy(data_dir() / "timemachine.txt", Path(tmp) / "data" / "timemachine.txt")
        # The book's kernel environment (a kernel alone: every core), for both libraries, with
        # the training curve drawn live as a reader sees it, and no epoch cap.
        env = kernel_env(ROOT, max_epochs=None, threads=threads)
        env.update(
            D2L_DATA_DIR=str(data_dir()),
            D2L_PLOT="live" if draw else "none",
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        km = kernel_manager(python, Path(tmp)) if python else None
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name="python3",
            extra_arguments=KERNEL_ARGS,
            resources={"metadata": {"path": work}},
        )
        try:
            client.execute(env=env)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
            reason = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
            return {"error": reason}
        finally:
            if km is not None and km.has_kernel:  # nbclient stops only the kernels it made
                km.shutdown_kernel(now=True)
    for output in nb.cells[-1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
    return {"error": "no result printed"}


def time_section(
    section: str = "chapters/deep-rnn.md", python: str = sys.executable, frameworks: str = "all"
) -> dict:
    """Wall time of ``build.py execute`` of ``section`` in ``frameworks``, no cache."""
    with tempfile.TemporaryDirectory() as out:
        command = [python, "build.py", "execute", section, "--out", out, "--framework", frameworks]
        env = {**os.environ, "D2L_DATA_DIR": str(data_dir())}
        env.pop("D2L_MAX_EPOCHS", None)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    plan = re.search(r"(\d+) at a time, (\d+) thread", done.stderr)
    jobs = f"{plan[1]} notebooks at a time, {plan[2]} thread(s) each" if plan else "?"
    return {"seconds": seconds, "jobs": jobs}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def rows(results: dict) -> list[tuple[str, str, str]]:
    """(framework, model, stack) of every row in ``results``, in table order (pinned first)."""
    stacks = [REFERENCE_STACK, *sorted(set(results.get("stacks", {})) - {REFERENCE_STACK})]
    return [
        (framework, model, stack)
        for framework in FRAMEWORKS
        for model in MODELS
        for stack in stacks
        if any(row_key(lib, framework, model, stack) in results for lib in LIBS)
    ]


def row_cells(r: dict | None, epochs: int) -> tuple[str, ...]:
    """s/epoch, tokens/s, validation perplexity and peak MB of one run, as table cells."""
    if not r:
        return ("not run",) * 4
    if "skipped" in r:
        return ("–",) * 4
    if "error" in r:
        return ("failed",) * 4
    short = f" ({r['epochs']} epochs)" if r["epochs"] != epochs else ""
    return (
        f"{per_epoch(r):.2f}{short}",
        f"{r['tokens'] / r['seconds']:,.0f}",
        f"{r['val_ppl']:.2f}{short}",
        f"{r['max_rss_mb']:.0f}{short}",
    )


def table(results: dict, epochs: int) -> str:
    lines = [
        f"Section workload, {epochs} epochs: batch {SECTION['batch_size']} x "
        f"{SECTION['num_steps']} steps, h={SECTION['num_hiddens']}, "
        f"{SECTION['num_layers']} layers, lr {SECTION['lr']}, clipping {SECTION['clip']}, "
        "training curve drawn.",
        "",
        "| framework | model | stack | d2l s/epoch | shim s/epoch | speed-up | shim tokens/s "
        "| d2l val ppl | shim val ppl | d2l peak MB | shim peak MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    skipped: dict[str, list[str]] = {}
    for framework, model, stack in rows(results):
        runs = {lib: results.get(row_key(lib, framework, model, stack)) for lib in LIBS}
        for lib, r in runs.items():
            if r and "skipped" in r:
                skipped.setdefault(r["skipped"], []).append(f"{lib} {framework} on {stack}")
        speedup = "–"
        d, s = (per_epoch(runs[lib]) for lib in LIBS)
        if d is not None and s is not None:
            speedup = f"{d / s:.1f}x"
        d, s = (row_cells(runs[lib], epochs) for lib in LIBS)
        lines.append(
            f"| {framework} | {model} | {stack} | {d[0]} | {s[0]} | {speedup} | {s[1]} "
            f"| {d[2]} | {s[2]} | {d[3]} | {s[3]} |"
        )
    notes = [why for (lib, f, m), (_, why) in EPOCH_CAPS.items() if f"{lib}/{f}/{m}" in results]
    lines += [""] + [f"Capped: {why}." for why in notes]
    lines += [f"Not run ({', '.join(sorted(set(w)))}): {why}." for why, w in skipped.items()]
    repeated = [
        f"{key.replace('/', ' ')} "
        + " / ".join(f"{s / r['epochs']:.2f}" for s in sorted(r["all_seconds"]))
        for key, r in results.items()
        if isinstance(r, dict) and len(r.get("all_seconds", [])) > 1
    ]
    if repeated:
        spread = "; ".join(repeated)
        lines += ["", f"Timed several times, median shown (s/epoch of each run): {spread}."]
    lines += [""] + targets(results, epochs) + ["", f"Machine: {machine()}."]
    lines += [
        f"Stack {name}: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        for name, versions in results.get("stacks", {}).items()
    ]
    return "\n".join(lines)


def median_run(runs: list[dict]) -> dict:
    """The run of median time among ``runs`` (the slower middle one for an even count), with
    every run's seconds in ``all_seconds`` (and CPU seconds in ``all_cpu_seconds``); the first
    failure if any run failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    median = {**ordered[len(ordered) // 2], "all_seconds": [r["seconds"] for r in runs]}
    if all("cpu_seconds" in r for r in runs):
        median["all_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
    return median


def per_epoch(r: dict | None) -> float | None:
    """Seconds per epoch of a run; None when it did not run or failed."""
    return r["seconds"] / r["epochs"] if r and "seconds" in r else None


def fastest_per_epoch(r: dict | None) -> float | None:
    """Seconds per epoch of the fastest of a row's repeated runs; None when it did not run."""
    if not r or "seconds" not in r:
        return None
    return min(r.get("all_seconds", [r["seconds"]])) / r["epochs"]


def cpu_per_epoch(r: dict | None) -> float | None:
    """CPU seconds per epoch of a run (the kernel process); None when not recorded."""
    return r["cpu_seconds"] / r["epochs"] if r and "cpu_seconds" in r else None


def targets(results: dict, epochs: int) -> list[str]:
    """The issue's targets, as measured in ``results`` (a line each)."""
    lines = ["Targets:"]
    for framework in FRAMEWORKS:
        times = {
            lib: [per_epoch(results.get(f"{lib}/{framework}/{m}")) for m in MODELS] for lib in LIBS
        }
        if all(t is not None for ts in times.values() for t in ts):
            d2l, shim = (sum(times[lib]) * epochs for lib in LIBS)
            lines.append(
                f"- {framework}: the section's training (scratch + GRU, {epochs} epochs each) "
                f"takes {shim:.0f} s with the shim, {d2l:.0f} s with d2l: {d2l / shim:.1f}x faster"
            )
    for model in MODELS:
        shim = {f: per_epoch(results.get(f"shim/{f}/{model}")) for f in FRAMEWORKS}
        if all(v is not None for v in shim.values()):
            slow, fast = max(shim, key=shim.get), min(shim, key=shim.get)
            lines.append(
                f"- {model}: slowest framework ({slow}, {shim[slow]:.2f} s/epoch) is "
                f"{shim[slow] / shim[fast]:.2f}x the fastest ({fast}, {shim[fast]:.2f})"
            )
    if any(k.startswith(("d2l/", "shim/")) for k in results):
        lines.append(
            "- validation perplexity: one run per library here, which the seed moves by several "
            "per cent; compared over seeds by `python -m benchmarks.perplexity`"
        )
    for stack in results.get("stacks", {}):
        lines += stack_targets(results, stack)
    for key, section in results.items():
        if key != "section" and not key.startswith("section@"):
            continue
        stack = key.partition("@")[2] or REFERENCE_STACK
        where = f"{section.get('frameworks', 'all')} frameworks, {stack} stack"
        if "error" in section:
            lines.append(f"- whole section ({where}): failed ({section['error']})")
        else:
            lines.append(
                f"- whole section executed ({where}; build.py execute, {section['jobs']}): "
                f"{section['seconds']:.0f} s"
            )
    return lines


def stack_targets(results: dict, stack: str) -> list[str]:
    """The shim's epoch on ``stack`` against the pinned stack's, per row: at most +10 %.

    Judged on the fastest of the repeated runs of each stack (wall time), as ``timeit`` advises:
    other jobs on a shared machine only ever add time, so the fastest run is the one they
    disturbed least. The median and the CPU time are shown beside it.
    """
    lines = []
    if stack == REFERENCE_STACK:
        return lines
    for framework in FRAMEWORKS:
        for model in MODELS:
            ref_run = results.get(row_key("shim", framework, model))
            new_run = results.get(row_key("shim", framework, model, stack))
            ref, new = fastest_per_epoch(ref_run), fastest_per_epoch(new_run)
            if ref is None or new is None:
                continue
            change = new / ref - 1
            verdict = "met" if change <= STACK_TARGET else "MISSED"
            runs = len(new_run.get("all_seconds", [0]))
            detail = f"median {per_epoch(new_run):.2f} vs {per_epoch(ref_run):.2f}"
            ref_cpu, new_cpu = cpu_per_epoch(ref_run), cpu_per_epoch(new_run)
            if ref_cpu is not None and new_cpu is not None:
                detail += f", CPU {new_cpu:.2f} vs {ref_cpu:.2f}"
            lines.append(
                f"- {framework} {model}, {stack} stack vs {REFERENCE_STACK}: shim "
                f"{new:.2f} vs {ref:.2f} s/epoch (fastest of {runs}; {detail}), "
                f"{change * 100:+.1f} % (target: at most +{STACK_TARGET * 100:.0f} %: {verdict})"
            )
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels, values = [], {lib: [] for lib in LIBS}
    for framework in FRAMEWORKS:
        for model in MODELS:
            runs = [results.get(f"{lib}/{framework}/{model}") for lib in LIBS]
            if not any(runs):
                continue
            labels.append(f"{framework}\n{model}")
            for lib, r in zip(LIBS, runs, strict=True):
                values[lib].append(per_epoch(r) or 0)
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    width = 0.38
    for i, lib in enumerate(LIBS):
        xs = [j + (i - 0.5) * width for j in range(len(labels))]
        ax.bar(xs, values[lib], width, label="d2l 1.0.3" if lib == "d2l" else "d2l_shim")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("seconds per epoch")
    ax.legend()
    fig.tight_layout()
    save_svg(fig, path)


def save_svg(fig, path: Path) -> None:
    """Save ``fig`` as SVG without a date and with fixed ids: same data, same bytes."""
    from matplotlib import rc_context

    with rc_context({"svg.hashsalt": "d2l-benchmarks"}):
        fig.savefig(path, metadata={"Date": None})


def update_readme(text: str, markers: tuple[str, str] = (README_START, README_END)) -> None:
    """Replace README's text between the two ``markers`` with ``text``."""
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = content.index(markers[0]), content.index(markers[1])
    content = content[: start + len(markers[0])] + "\n" + text + "\n" + content[end:]
    readme.write_text(content)


def load_results(path: Path, epochs: int, **empty: object) -> dict:
    """The stored results of ``path`` when measured over ``epochs`` epochs, else new ones:
    ``{"epochs": epochs, **empty}`` (also creates the results folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(path.read_text()) if path.exists() else {}
    return results if results.get("epochs") == epochs else {"epochs": epochs, **empty}


def save_results(results: dict, path: Path) -> None:
    """Write ``results`` as JSON through a temporary file: never half-written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(path)


def add_selection(parser: argparse.ArgumentParser) -> None:
    """--frameworks, --models and --libs (comma-separated; default: all)."""
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--libs", default=",".join(LIBS))


def selection(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[list[str]]:
    """The chosen frameworks, models and libraries; an unknown name is a usage error."""
    chosen = [args.frameworks.split(","), args.models.split(","), args.libs.split(",")]
    for name, names, allowed in zip(
        ("--frameworks", "--models", "--libs"), chosen, (FRAMEWORKS, MODELS, LIBS), strict=True
    ):
        if unknown := set(names) - set(allowed):
            parser.error(f"{name}: unknown {sorted(unknown)}; choose from {allowed}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    add_selection(parser)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per training cell")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per row; the median run is kept"
    )
    parser.add_argument(
        "--section", action="store_true", help="also time the whole section (build.py execute)"
    )
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--stacks",
        help="name=python,... : run each row in these Pythons' kernels (default: this Python)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat: at least 1, got {args.repeat}")
    frameworks, models, libs = selection(parser, args)
    try:
        stacks = parse_stacks(args.stacks)
    except ValueError as err:
        parser.error(str(err))
    results_file = RESULTS / "train_speed.json"
    results = load_results(results_file, args.epochs)
    results["stacks"] = {name: probe(python) for name, python in stacks.items()}
    runs = [(lib, f, m) for f in frameworks for m in models for lib in libs]
    for i, (lib, framework, model) in enumerate(runs, 1):
        epochs = min(args.epochs, EPOCH_CAPS.get((lib, framework, model), (args.epochs,))[0])
        print(f"[{i}/{len(runs)}] {lib} {framework} {model}, {epochs} epochs ...", flush=True)
        start = time.perf_counter()
        able = {}
        for name, python in stacks.items():
            if why := cannot_run(lib, framework, results["stacks"][name]):
                results[row_key(lib, framework, model, name)] = {"skipped": why}
                print(f"    {name}: not run ({why})", flush=True)
            else:
                able[name] = python
        timed: dict[str, list[dict]] = {name: [] for name in able}
        for _ in range(args.repeat):  # the stacks in turn: both see the same machine
            for name, python in able.items():
                timed[name].append(
                    run_one(lib, framework, model, epochs, args.timeout, python=python)
                )
        for name, runs_of_stack in timed.items():
            result = median_run(runs_of_stack)
            results[row_key(lib, framework, model, name)] = result
            status = result.get("error") or f"{per_epoch(result):.2f} s/epoch"
            if len(result.get("all_seconds", [])) > 1:
                status += (
                    " (median of " + ", ".join(f"{s:.0f}" for s in result["all_seconds"]) + " s)"
                )
            if cpu := cpu_per_epoch(result):
                status += f", CPU {cpu:.2f} s/epoch"
            print(f"    {name}: {status} ({time.perf_counter() - start:.0f} s)", flush=True)
        save_results(results, results_file)
    if args.section:
        for name, python in stacks.items():
            have = [f for f in FRAMEWORKS if results["stacks"][name].get(f)]
            print(f"whole section, {name} stack, {', '.join(have)} (build.py execute) ...")
            section = time_section(python=python, frameworks=",".join(have))
            results["section" if name == REFERENCE_STACK else f"section@{name}"] = {
                **section,
                "frameworks": ", ".join(have),
            }
            save_results(results, results_file)
    text = table(results, args.epochs)
    print("\n" + text)
    (RESULTS / "train_speed.md").write_text(text + "\n")
    plot(results, RESULTS / "train_speed.svg")
    print(f"\nwrote {RESULTS / 'train_speed.md'} and {RESULTS / 'train_speed.svg'}")
    if args.update_readme:
        update_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
