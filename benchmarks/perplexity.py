"""Validation perplexity of the section's models over several seeds: our shim against d2l 1.0.3.

    python -m benchmarks.perplexity [--seeds 0,1,2,3] [--jobs 2] [--frameworks pytorch,mxnet]
                                    [--models scratch,gru] [--libs d2l,shim] [--update-readme]

At lr 2 the training is chaotic: two runs of the same code from different seeds end 100 epochs
several per cent apart, so one run per library cannot tell whether the shim trains as well as
d2l. Each (library, framework, model, seed) run executes the benchmark's workload in a fresh
kernel, both libraries seeded alike, the training curve recorded but not drawn; nothing is
timed, so runs go side by side (``--jobs``, one thread each by default). Rows that d2l cannot
train for ``--epochs`` (see ``workloads.EPOCH_CAPS``) are compared, for both libraries, at the
epochs it can. Runs accumulate in benchmarks/results/perplexity.json: a rerun does only the runs
missing, so a study can be stopped and continued. Prints per row the mean and standard
deviation, the change of the mean with a 95 % interval and the target (shim's mean at most
d2l's + 2 %), and writes benchmarks/results/perplexity.{md,svg}.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from book.execute import cpu_count

from .train_speed import (
    FRAMEWORKS,
    LIBS,
    MODELS,
    RESULTS,
    add_selection,
    load_results,
    machine,
    run_one,
    save_results,
    save_svg,
    selection,
    update_readme,
)
from .workloads import EPOCH_CAPS, SECTION

TOLERANCE = 0.02  # the target: shim's perplexity at most d2l's + 2 %
MARKERS = ("<!-- perplexity:start -->", "<!-- perplexity:end -->")
# Two-sided 95 % quantiles of Student's t, by degrees of freedom (above 30: 2.0).
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
T95.update({10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04})


def row_epochs(framework: str, model: str, epochs: int) -> int:
    """The epochs both libraries train in this row: ``epochs``, or fewer where d2l is capped."""
    return min(
        [epochs]
        + [
            EPOCH_CAPS[(lib, framework, model)][0]
            for lib in LIBS
            if (lib, framework, model) in EPOCH_CAPS
        ]
    )


def t95(df: float) -> float:
    """Student's t quantile for a two-sided 95 % interval (rounded down to a tabulated df)."""
    known = [d for d in sorted(T95) if d <= max(1.0, df)]
    return 2.0 if df > 30 else T95[known[-1]]


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def change_interval(
    shim: list[float], d2l: list[float]
) -> tuple[float, float | None, float | None]:
    """Relative change of the mean (shim / d2l - 1) and its 95 % interval (Welch).

    The interval needs two runs or more on each side (else its bounds are None).
    """
    (ms, ss), (md, sd) = summarize(shim), summarize(d2l)
    change = ms / md - 1
    if min(len(shim), len(d2l)) < 2:
        return change, None, None
    vs, vd = ss**2 / len(shim), sd**2 / len(d2l)
    if vs + vd == 0:
        return change, change, change
    df = (vs + vd) ** 2 / (vs**2 / (len(shim) - 1) + vd**2 / (len(d2l) - 1))
    half = t95(df) * math.sqrt(vs + vd) / md
    return change, change - half, change + half


def collect(results: dict) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (framework, model), each library's perplexities in seed order."""
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    for key in sorted(results["runs"], key=lambda k: (k.split("/")[:3], int(k.split("/")[3]))):
        lib, framework, model, _ = key.split("/")
        run = results["runs"][key]
        if "error" not in run:
            rows.setdefault((framework, model), {lib: [] for lib in LIBS})[lib].append(
                run["val_ppl"]
            )
    return {k: rows[k] for f in FRAMEWORKS for m in MODELS if (k := (f, m)) in rows}


def table(results: dict) -> str:
    epochs = results["epochs"]
    lines = [
        f"Validation perplexity after {epochs} epochs (section workload: batch "
        f"{SECTION['batch_size']} x {SECTION['num_steps']} steps, h={SECTION['num_hiddens']}, "
        f"{SECTION['num_layers']} layers, lr {SECTION['lr']}, clipping {SECTION['clip']}), "
        "one run per seed and library, both libraries seeded alike.",
        "",
        "| framework | model | epochs | d2l mean ± sd | shim mean ± sd | runs | change "
        "| 95 % interval | target (≤ +2 %) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = collect(results)
    for (framework, model), ppl in rows.items():
        cells = []
        for lib in LIBS:
            mean, sd = summarize(ppl[lib]) if ppl[lib] else (None, None)
            cells.append(f"{mean:.2f} ± {sd:.2f}" if ppl[lib] else "–")
        runs = f"{len(ppl['d2l'])} + {len(ppl['shim'])}"
        change, interval, verdict = "–", "–", "not measured"
        if ppl["d2l"] and ppl["shim"]:
            mean_change, low, high = change_interval(ppl["shim"], ppl["d2l"])
            change = f"{100 * mean_change:+.1f} %"
            if low is not None:
                interval = f"{100 * low:+.1f} … {100 * high:+.1f} %"
            verdict = "met" if mean_change <= TOLERANCE else "**not met**"
        n = row_epochs(framework, model, epochs)
        lines.append(
            f"| {framework} | {model} | {n} | {cells[0]} | {cells[1]} | {runs} | {change} "
            f"| {interval} | {verdict} |"
        )
    failed = sorted(k for k, r in results["runs"].items() if "error" in r)
    if failed:
        lines += [""] + [f"Failed: {k}: {results['runs'][k]['error']}" for k in failed]
    caps = [
        f"{f} {m}: {EPOCH_CAPS[(lib, f, m)][1]}; both libraries compared at "
        f"{row_epochs(f, m, epochs)} epochs"
        for (f, m) in rows
        for lib in LIBS
        if (lib, f, m) in EPOCH_CAPS and row_epochs(f, m, epochs) < epochs
    ]
    if caps:
        lines += [""] + [f"Capped: {c}." for c in caps]
    lines += ["", f"Machine: {machine()}."]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Each run's perplexity (dots) and the mean (bar) per library, framework and model."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = collect(results)
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    for i, lib in enumerate(LIBS):
        color = f"C{i}"
        for j, ppl in enumerate(rows.values()):
            if not ppl[lib]:
                continue
            x = j + (i - 0.5) * 0.36
            ax.plot([x] * len(ppl[lib]), ppl[lib], "o", color=color, alpha=0.6, ms=4)
            mean = summarize(ppl[lib])[0]
            label = ("d2l 1.0.3" if lib == "d2l" else "d2l_shim") if j == 0 else None
            ax.plot([x - 0.14, x + 0.14], [mean, mean], "-", color=color, lw=2, label=label)
    ax.set_xticks(range(len(rows)), [f"{f}\n{m}" for f, m in rows])
    ax.set_ylabel("validation perplexity")
    ax.legend()
    fig.tight_layout()
    save_svg(fig, path)


def pending(results: dict, seeds, frameworks, models, libs) -> list[tuple]:
    """The runs still to do, seed by seed, the longest (d2l, scratch) first within a seed."""
    order = [
        (seed, lib, f, m) for seed in seeds for lib in libs for m in models for f in frameworks
    ]
    return [
        (lib, f, m, seed)
        for seed, lib, f, m in order
        if f"{lib}/{f}/{m}/{seed}" not in results["runs"]
        or "error" in results["runs"][f"{lib}/{f}/{m}/{seed}"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated integers")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=cpu_count(), help="runs side by side")
    add_selection(parser)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per training cell")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: comma-separated integers expected, got {args.seeds!r}")
    if args.jobs < 1:
        parser.error(f"--jobs: at least 1, got {args.jobs}")
    frameworks, models, libs = selection(parser, args)
    results_file = RESULTS / "perplexity.json"
    results = load_results(results_file, args.epochs, runs={})
    todo = pending(results, seeds, frameworks, models, libs)
    threads = max(1, cpu_count() // args.jobs)
    print(f"{len(todo)} run(s) to do, {args.jobs} at a time, {threads} thread(s) each", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(
                run_one,
                lib,
                f,
                m,
                row_epochs(f, m, args.epochs),
                args.timeout,
                seed=seed,
                draw=False,
                threads=threads,
            ): f"{lib}/{f}/{m}/{seed}"
            for lib, f, m, seed in todo
        }
        for done, future in enumerate(as_completed(futures), 1):
            key = futures[future]
            result = future.result()
            results["runs"][key] = result
            save_results(results, results_file)
            status = result.get("error") or f"val ppl {result['val_ppl']:.3f}"
            elapsed = time.perf_counter() - start
            print(f"[{done}/{len(todo)}] {key}: {status} ({elapsed / 60:.0f} min)", flush=True)
    text = table(results)
    print("\n" + text)
    (RESULTS / "perplexity.md").write_text(text + "\n")
    plot(results, RESULTS / "perplexity.svg")
    print(f"\nwrote {RESULTS / 'perplexity.md'} and {RESULTS / 'perplexity.svg'}")
    if args.update_readme:
        update_readme(text, MARKERS)
    return 1 if any("error" in r for r in results["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
