"""Training speed of the section's models: our shim against d2l 1.0.3, in each framework.

    python -m benchmarks.train_speed [--epochs 100] [--frameworks pytorch,mxnet] [--section]
                                     [--repeat 3] [--update-readme]

Each run executes in a fresh Jupyter kernel (nbclient), one at a time, exactly as a reader's
notebook would: same data (batch 1024 x 32 steps), same model (h=32, 2 layers, lr 2, clipping 1),
training curve drawn. Prints a table (s/epoch, tokens/s, speed-up, validation perplexity, peak
memory), the issue's targets computed from it, and writes
benchmarks/results/train_speed.{json,md,svg}. ``--section`` also times ``build.py execute`` of
the whole section (three frameworks, full settings, notebooks side by side), as ``make book``.
``--repeat N`` times each row N times and keeps the median run: on a shared virtual machine one
run can be 15 % off.
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
README_START, README_END = "<!-- train_speed:start -->", "<!-- train_speed:end -->"


def data_dir() -> Path:
    folder = Path(os.environ.get("D2L_DATA_DIR", ROOT.parent / "shared" / "data"))
    if not (folder / "timemachine.txt").is_file():
        sys.exit(f"error: no timemachine.txt in {folder}; set D2L_DATA_DIR")
    return folder


def run_one(
    lib: str,
    framework: str,
    model: str,
    epochs: int,
    timeout: int,
    seed: int | None = None,
    draw: bool = True,
    threads: int | None = None,
) -> dict:
    """Execute one workload in a new kernel; return its measurements or its failure.

    ``seed`` and ``draw`` as in ``workload_cells``; ``threads`` per kernel (default: every core).
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
        client = NotebookClient(
            nb,
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
    for output in nb.cells[-1].outputs:
        for line in output.get("text", "").splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT ") :])
    return {"error": "no result printed"}


def time_section(section: str = "chapters/deep-rnn.md") -> dict:
    """Wall time of ``build.py execute`` of ``section`` in the three frameworks, no cache."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "build.py", "execute", section, "--out", out]
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


def table(results: dict, epochs: int) -> str:
    rows = [
        f"Section workload, {epochs} epochs: batch {SECTION['batch_size']} x "
        f"{SECTION['num_steps']} steps, h={SECTION['num_hiddens']}, "
        f"{SECTION['num_layers']} layers, lr {SECTION['lr']}, clipping {SECTION['clip']}, "
        "training curve drawn.",
        "",
        "| framework | model | d2l s/epoch | shim s/epoch | speed-up | shim tokens/s "
        "| d2l val ppl | shim val ppl | d2l peak MB | shim peak MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for framework in FRAMEWORKS:
        for model in MODELS:
            runs = {lib: results.get(f"{lib}/{framework}/{model}") for lib in LIBS}
            if not any(runs.values()):
                continue
            cells = {}
            for lib, r in runs.items():
                if not r:
                    cells[lib] = ("not run",) * 4
                elif "error" in r:
                    cells[lib] = ("failed",) * 4
                else:
                    short = f" ({r['epochs']} epochs)" if r["epochs"] != epochs else ""
                    cells[lib] = (
                        f"{per_epoch(r):.2f}{short}",
                        f"{r['tokens'] / r['seconds']:,.0f}",
                        f"{r['val_ppl']:.2f}{short}",
                        f"{r['max_rss_mb']:.0f}{short}",
                    )
            speedup = "–"
            d, s = (per_epoch(runs[lib]) for lib in LIBS)
            if d is not None and s is not None:
                speedup = f"{d / s:.1f}x"
            d, s = cells["d2l"], cells["shim"]
            rows.append(
                f"| {framework} | {model} | {d[0]} | {s[0]} | {speedup} | {s[1]} "
                f"| {d[2]} | {s[2]} | {d[3]} | {s[3]} |"
            )
    notes = [why for (lib, f, m), (_, why) in EPOCH_CAPS.items() if f"{lib}/{f}/{m}" in results]
    rows += [""] + [f"Capped: {why}." for why in notes]
    repeated = [
        f"{key.replace('/', ' ')} "
        + " / ".join(f"{s / r['epochs']:.2f}" for s in sorted(r["all_seconds"]))
        for key, r in results.items()
        if isinstance(r, dict) and len(r.get("all_seconds", [])) > 1
    ]
    if repeated:
        spread = "; ".join(repeated)
        rows += ["", f"Timed several times, median shown (s/epoch of each run): {spread}."]
    rows += [""] + targets(results, epochs) + ["", f"Machine: {machine()}."]
    return "\n".join(rows)


def median_run(runs: list[dict]) -> dict:
    """The run of median time among ``runs`` (the slower middle one for an even count), with
    every run's seconds in ``all_seconds``; the first failure if any run failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "all_seconds": [r["seconds"] for r in runs]}


def per_epoch(r: dict | None) -> float | None:
    """Seconds per epoch of a run; None when it did not run or failed."""
    return r["seconds"] / r["epochs"] if r and "error" not in r else None


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
    if section := results.get("section"):
        if "error" in section:
            lines.append(f"- whole section, three frameworks: failed ({section['error']})")
        else:
            lines.append(
                f"- whole section executed in the three frameworks (build.py execute, "
                f"{section['jobs']}): {section['seconds']:.0f} s"
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
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat: at least 1, got {args.repeat}")
    frameworks, models, libs = selection(parser, args)
    results_file = RESULTS / "train_speed.json"
    results = load_results(results_file, args.epochs)
    runs = [(lib, f, m) for f in frameworks for m in models for lib in libs]
    for i, (lib, framework, model) in enumerate(runs, 1):
        epochs = min(args.epochs, EPOCH_CAPS.get((lib, framework, model), (args.epochs,))[0])
        print(f"[{i}/{len(runs)}] {lib} {framework} {model}, {epochs} epochs ...", flush=True)
        start = time.perf_counter()
        result = median_run(
            [run_one(lib, framework, model, epochs, args.timeout) for _ in range(args.repeat)]
        )
        results[f"{lib}/{framework}/{model}"] = result
        status = result.get("error") or f"{per_epoch(result):.2f} s/epoch"
        if len(result.get("all_seconds", [])) > 1:
            status += " (median of " + ", ".join(f"{s:.0f}" for s in result["all_seconds"]) + " s)"
        print(f"    {status} ({time.perf_counter() - start:.0f} s)", flush=True)
        save_results(results, results_file)
    if args.section:
        print("whole section, three frameworks (build.py execute) ...", flush=True)
        results["section"] = time_section()
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
