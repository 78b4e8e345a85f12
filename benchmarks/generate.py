"""How long notebook generation takes: the book's chapters, and a larger book made of copies.

    python -m benchmarks.generate [--copies 8] [--repeat 5]

Generation (`build.py notebooks`: read, check, split, write) runs in this process, so Python's
start-up and imports are not counted. Target: under a second for the book. The larger book repeats
the test fixture `demo.md` ``--copies`` times (three frameworks each), to see how time grows with
the number of sections. The median of ``--repeat`` runs is printed (a shared virtual machine moves
single runs by tens of per cent).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import build

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TARGET_S = 1.0


def copies_book(folder: Path, copies: int) -> Path:
    """A chapters folder holding ``copies`` renamed copies of the fixture demo.md."""
    chapters = folder / "chapters"
    chapters.mkdir()
    shutil.copytree(FIXTURES / "chapters" / "img", chapters / "img")
    demo = (FIXTURES / "chapters" / "demo.md").read_text(encoding="utf-8")
    for k in range(copies):
        text = demo.replace("_demo", f"_demo{k}").replace(":numref:`sec_intro`", "")
        (chapters / f"s{k}.md").write_text(text, encoding="utf-8")
    return chapters


def time_generation(argv: list[str], out: Path, repeat: int) -> tuple[float, int]:
    """Median seconds of ``build.main(["notebooks", *argv])`` into a fresh folder, and notebooks."""
    seconds = []
    for i in range(repeat):
        target = out / f"run{i}"
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            status = build.main(["notebooks", *argv, "--out", str(target)])
        seconds.append(time.perf_counter() - start)
        if status:
            raise SystemExit(f"error: build.py notebooks {' '.join(argv)} failed")
    return statistics.median(seconds), len(list((out / "run0").rglob("*.ipynb")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=8, help="sections of the larger book")
    p.add_argument("--repeat", type=int, default=5, help="runs per row (median kept)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chapters = copies_book(folder, args.copies)
        rows = [
            ("the book (chapters/)", time_generation([], folder / "book", args.repeat)),
            (
                f"{args.copies} copies of demo.md",
                time_generation(
                    ["--chapters", str(chapters), "--shim", str(FIXTURES / "shim")],
                    folder / "copies",
                    args.repeat,
                ),
            ),
        ]
    print("| book | notebooks | seconds (median) |\n| --- | ---: | ---: |")
    for name, (seconds, count) in rows:
        print(f"| {name} | {count} | {seconds:.2f} |")
    book_s = rows[0][1][0]
    verdict = "met" if book_s < TARGET_S else "NOT met"
    print(f"target: the book generates in under {TARGET_S:.0f} s: {verdict} ({book_s:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
