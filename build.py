"""Build the book: chapters/*.md -> notebooks per framework -> executed notebooks -> pages.

    python build.py check      [SECTIONS] [--framework F]   validate, write nothing
    python build.py notebooks  [SECTIONS] [--framework F]   _build/notebooks/<framework>/<x>.ipynb
    python build.py list       [SECTIONS] [--framework F]   notebook paths (generated if stale)
    python build.py execute    [SECTIONS] [--framework F]   _build/executed/<framework>/ (cached)
    python build.py outputs    [SECTIONS] [--framework F]   chapters/outputs/<stem>.<framework>.json
    python build.py all        [SECTIONS] [--framework F]   execute, then pages (book/pages/)

SECTIONS are chapter files (default: every chapters/*.md; a draft elsewhere works too).
F is all (default) or frameworks separated by commas (pytorch,tensorflow: the current stack).
Problems are printed as `FILE:LINE: message`; the exit status is 1 when there is any error,
130 when interrupted (Ctrl-C: the kernels are stopped, no notebook is half-written).
Nothing is written outside --out, except by `outputs` (the chapters' reference outputs).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from book import FRAMEWORKS, BuildError, Problem, chapter_files, glue, roles
from book.check import check_section
from book.notebook import (
    build,
    copy_file,
    dumps,
    dumps_references,
    load_glue,
    load_references,
    references_file,
    sweep_temp,
    write_atomic,
)
from book.source import Section, frameworks_of, load

if TYPE_CHECKING:
    from book.execute import CellFailure, Heartbeat, Kernels

ROOT = Path(__file__).resolve().parent
COMMANDS = ("check", "notebooks", "list", "execute", "outputs", "all")
OUT_PARTS = ("notebooks", "executed", "site")  # the folders written under --out


@dataclass
class Book:
    sections: list[Section]  # the selected ones
    index: roles.Index
    frameworks: tuple[str, ...]
    out: Path
    chapters: Path = ROOT / "chapters"
    site_url: str | None = None  # where the site is served (the notebooks install the shim)


def chapter_path(file: Path | str) -> Path:
    """Absolute path of a chapter file, its folder resolved but not the file itself: a symbolic
    link to a chapter is built under the link's name, its images looked up beside the link."""
    file = Path(os.path.abspath(file))
    return file.parent.resolve() / file.name


def shown(file: Path) -> str:
    """Path as written in messages and metadata: relative to the project when inside it."""
    file = chapter_path(file)
    return file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def framework_list(text: str) -> tuple[str, ...]:
    """argparse type: "all" or comma-separated framework names ("pytorch,tensorflow")."""
    if text == "all":
        return FRAMEWORKS
    names = tuple(dict.fromkeys(text.split(",")))
    if unknown := [n for n in names if n not in FRAMEWORKS]:
        raise argparse.ArgumentTypeError(
            f"unknown framework(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(FRAMEWORKS)} (comma-separated) or all"
        )
    return names


def site_url(text: str) -> str:
    """argparse type: an http(s) URL, without its trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def timeout_seconds(text: str) -> int | None:
    """argparse type: seconds >= 1, or `none` (no limit)."""
    if text.strip().lower() == "none":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        msg = f"expected seconds >= 1, or 'none' for no limit, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def unwritable(out: Path) -> str | None:
    """Why nothing can be written under ``out`` (None when it can); checked before writing."""
    out = out.absolute()
    existing = out
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        return f"--out {out}: {existing} is not a folder"
    try:  # a real write: os.access misses read-only file systems and says yes to root
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"--out {out}: cannot write in {existing} ({err.strerror})"
    for part in OUT_PARTS if existing == out else ():
        for folder, _, _ in os.walk(out / part):
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"--out {out}: cannot write in {folder} (Permission denied)"
    return None


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def prepare(args: argparse.Namespace) -> tuple[Book | None, list[Problem]]:
    """Load and check the selected sections; Book is None when there is any error."""
    chapters = Path(args.chapters)
    book_files = [chapter_path(p) for p in chapter_files(chapters)]
    selected = [chapter_path(s) for s in args.sections] or list(book_files)
    if not selected:
        say(f"no chapter in {chapters}/")
    book_files += [f for f in selected if f not in book_files]
    problems: list[Problem] = []
    loaded: dict[Path, Section] = {}
    for file in book_files:
        if not file.is_file():
            problems.append(Problem(shown(file), 0, "no such chapter file"))
            continue
        try:
            loaded[file] = load(file, shown(file))
        except BuildError as err:
            if file in selected:
                problems += err.problems
    idx = roles.index(list(loaded.values()))
    frameworks = args.framework
    sections = [loaded[f] for f in selected if f in loaded]
    for section in sections:
        problems += check_section(section, idx, frameworks, Path(args.shim))
    problems += roles.clashes(sections)
    problems = sorted(set(problems))
    if any(not p.warning for p in problems):
        return None, problems
    book = Book(sections, idx, frameworks, Path(args.out), chapters.resolve(), args.site_url)
    return book, problems


def notebook_path(book: Book, section: Section, framework: str, kind: str = "notebooks") -> Path:
    return book.out / kind / framework / f"{section.stem}.ipynb"


def remove_stale(book: Book, section: Section, fw: str) -> None:
    """A section without any cell of `fw` has no notebook for it: remove an earlier build's."""
    for kind in ("notebooks", "executed"):
        path = notebook_path(book, section, fw, kind)
        if path.is_file():
            path.unlink()
            say(f"{section.path}: no {fw} cell, {path} removed")


def write_notebooks(book: Book) -> list[Path]:
    """Generate every notebook (unchanged files are not touched); return their paths.

    A section gets no notebook for a framework it has no cell for (source.frameworks_of)."""
    paths, written = [], 0
    for section in book.sections:
        for fw in book.frameworks:
            if fw not in frameworks_of(section):
                remove_stale(book, section, fw)
                continue
            file = references_file(section, fw)
            refs, glued = load_references(file), load_glue(file)
            nb, images = build(section, fw, book.index, refs, book.site_url, glued)
            path = notebook_path(book, section, fw)
            written += write_atomic(path, dumps(nb))
            for src, dest in images:
                copy_file(src, path.parent / dest)
            paths.append(path)
    say(f"notebooks: {written} written, {len(paths) - written} unchanged ({book.out}/notebooks)")
    return paths


def execute(book: Book, args: argparse.Namespace, paths: list[Path]) -> int:
    """Run the notebooks whose code changed since their last run, side by side; 1 if a cell
    failed, 130 on Ctrl-C. A notebook whose code did not change gets its prose and figures
    as they are now, with the outputs of its last run (no kernel)."""
    from concurrent.futures import ThreadPoolExecutor

    from book.execute import (
        Heartbeat,
        Kernels,
        cache_key,
        dependency_files,
        plan_jobs,
        with_outputs,
    )

    deps = dependency_files(ROOT, Path(args.shim))
    todo, unglued = [], 0
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        meta = nb["metadata"]["d2l"]
        key = cache_key(nb, deps, args.max_epochs)
        target = book.out / "executed" / meta["framework"] / path.name
        if target.is_file():
            old = json.loads(target.read_text(encoding="utf-8"))
            if old["metadata"].get("d2l", {}).get("cache_key") == key:
                cached = with_outputs(nb, old)
                ok = glued(cached)
                updated = publish(path, cached, target)
                what = "prose or figures updated, code " if updated else ""
                say(f"{meta['source']} {meta['framework']}: {what}unchanged, cached ({target})")
                unglued += not ok
                continue
        todo.append((path, nb, key, target))
    if not todo:
        return 1 if unglued else 0
    jobs, threads = plan_jobs(len(todo), args.jobs)
    say(f"execute: {len(todo)} notebook(s), {jobs} at a time, {threads} thread(s) each")
    start, kernels = time.monotonic(), Kernels()
    with Heartbeat(say, args.heartbeat) as heartbeat, ThreadPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(execute_one, args, threads, heartbeat, kernels, *item) for item in todo
        ]
        try:
            ok = [future.result() for future in futures]
        except KeyboardInterrupt:
            kernels.stop()
            pool.shutdown(cancel_futures=True)
            say("execute: interrupted; kernels stopped, no unfinished notebook written")
            return 130
    say(f"execute: done in {time.monotonic() - start:.0f} s")
    return 0 if all(ok) and not unglued else 1


def execute_one(
    args: argparse.Namespace,
    threads: int,
    heartbeat: Heartbeat,
    kernels: Kernels,
    path: Path,
    nb: dict,
    key: str,
    target: Path,
) -> bool:
    """Execute one notebook into ``target`` (with its images); False when a cell failed or
    the run was interrupted."""
    from book.execute import CellFailure, Interrupted, kernel_env, run

    meta, start = nb["metadata"]["d2l"], time.monotonic()
    where = f"{meta['source']} {meta['framework']}"

    def report(i: int, n: int, seconds: float) -> None:
        say(f"{where} cell {i}/{n} {seconds:.1f}s (total {time.monotonic() - start:.1f}s)")

    env = kernel_env(ROOT, args.max_epochs, threads=threads)
    try:
        begin = partial(heartbeat.begin, where)
        executed = run(nb, path.parent, env, args.timeout, report, begin, kernels)
    except Interrupted:
        return False
    except CellFailure as err:
        say(failure(err))
        return False
    finally:
        heartbeat.end(where)
    executed.metadata["d2l"]["cache_key"] = key
    ok = glued(executed)
    publish(path, executed, target)
    return ok


def glued(executed: dict) -> bool:
    """Fill the executed notebook's prose with the values its run glued; False (each reference
    to a value the run did not record printed as an error) when some are missing."""
    meta = executed["metadata"]["d2l"]
    missing = glue.apply(executed)
    for line, name in missing:
        say(
            f"{meta['source']}:{line}: error: :glue:`{name}`: the {meta['framework']} run "
            f"recorded no value '{name}' (no d2l.glue('{name}', ...) was executed)"
        )
    return not missing


def publish(path: Path, executed: dict, target: Path) -> bool:
    """Write ``executed`` to ``target`` with the images beside ``path`` (the generated
    notebook); hidden files (temp files of a write) are left out. True when anything changed."""
    written = False
    for file in sorted(path.parent.rglob("*")):
        rel = file.relative_to(path.parent)
        hidden = any(part.startswith(".") for part in rel.parts)
        if file.is_file() and file.suffix != ".ipynb" and not hidden:
            written |= copy_file(file, target.parent / rel)
    return write_atomic(target, dumps(executed)) or written


def failure(err: CellFailure) -> str:
    return f"{err.source}:{err.line}: error: cell failed ({err.framework})\n{err.traceback}"


def outputs(book: Book, args: argparse.Namespace) -> int:
    """Execute seeded, store the outputs of output="check" cells as reference outputs, with the
    glue values of the book's full-length run (reference_glue)."""
    from book.execute import CellFailure, Kernels, check_outputs, kernel_env, run, with_seed

    epochs = 1 if args.max_epochs is None else args.max_epochs
    env = kernel_env(ROOT, epochs)
    failed, kernels = 0, Kernels()
    write_notebooks(book)  # the folder the kernels run in, with the images
    for section in book.sections:
        for fw in book.frameworks:
            if fw not in frameworks_of(section):
                continue
            nb, _ = build(section, fw, book.index, site_url=book.site_url)
            file = references_file(section, fw)
            values = reference_glue(book, args, section, nb)
            checks = any(c["metadata"]["d2l"].get("key") for c in nb["cells"])
            if not (checks or values or file.is_file()):
                continue
            cells = {}
            path = notebook_path(book, section, fw)
            if checks:
                say(f"{section.path} {fw}: executing for reference outputs")
                try:
                    executed = run(
                        with_seed(nb, fw), path.parent, env, args.timeout, kernels=kernels
                    )
                except CellFailure as err:
                    say(failure(err))
                    failed += 1
                    continue
                except KeyboardInterrupt:
                    kernels.stop()
                    raise
                cells = check_outputs(executed)
            write_atomic(file, dumps_references(cells, values))
            say(f"{section.path} {fw}: reference outputs in {shown(file)}")
    write_notebooks(book)
    return 1 if failed else 0


def reference_glue(
    book: Book, args: argparse.Namespace, section: Section, nb: dict
) -> dict[str, str]:
    """The glue values of the book's reference run: those of the executed notebook under
    --out when it ran the current code at full length (no --max-epochs); else {} (said)."""
    from book.execute import cache_key, dependency_files

    if not any("glue" in c["metadata"]["d2l"] for c in nb["cells"]):
        return {}
    meta = nb["metadata"]["d2l"]
    target = notebook_path(book, section, meta["framework"], "executed")
    on_disk = json.loads(dumps(nb))  # as `execute` reads it (key order matters to the key)
    key = cache_key(on_disk, dependency_files(ROOT, Path(args.shim)), None)
    if target.is_file():
        executed = json.loads(target.read_text(encoding="utf-8"))
        if executed["metadata"].get("d2l", {}).get("cache_key") == key:
            return glue.recorded(executed)
    say(
        f"{meta['source']} {meta['framework']}: glue values not recorded: no full-length run "
        f"of the current code in {target.parent} (`python build.py execute` without "
        "--max-epochs first)"
    )
    return {}


def pages(book: Book) -> int:
    if importlib.util.find_spec("book.pages") is None:
        say("pages: not built (book/pages/ missing)")
        return 0
    module = importlib.import_module("book.pages")
    stems = [section.stem for section in book.sections]
    try:
        written = module.render(
            book.out / "executed", book.out / "site", stems, book.frameworks, book.chapters
        )
    except module.PagesError as err:
        say(f"pages: error: {err}")
        return 1
    say(f"pages: {len(written)} files in {book.out}/site")
    say(
        f"book ready:\n  notebooks  {book.out}/notebooks/<framework>/\n"
        f"  executed   {book.out}/executed/<framework>/\n"
        f"  pages      {(book.out / 'site' / 'index.html').resolve().as_uri()}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("sections", nargs="*", help="chapter files (default: chapters/*.md)")
    p.add_argument(
        "--framework",
        type=framework_list,
        default=FRAMEWORKS,
        metavar="F",
        help="all (default), or frameworks separated by commas: pytorch,tensorflow",
    )
    p.add_argument("--out", default="_build", help="output folder (default: _build)")
    p.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=1800,
        help="seconds per cell, or 'none' for no limit (default 1800)",
    )
    p.add_argument(
        "--max-epochs", type=int, default=None, help="sets D2L_MAX_EPOCHS for the kernel"
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        help="notebooks executed at once (default: two per core); the cores are shared out",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=30.0,
        help="seconds between 'still running' lines for long cells (default 30)",
    )
    p.add_argument(
        "--site-url",
        type=site_url,
        default=None,
        help="URL the site will be served from: a notebook opened elsewhere installs the "
        "shim's wheel from SITE_URL/downloads/ (default: only from beside the notebook)",
    )
    p.add_argument("--chapters", default=str(ROOT / "chapters"), help=argparse.SUPPRESS)
    p.add_argument("--shim", default=str(ROOT / "d2l_shim"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)
    try:
        return run_command(args)
    except KeyboardInterrupt:
        say("interrupted (Ctrl-C); files already written are whole, the others untouched")
        return 130


def run_command(args: argparse.Namespace) -> int:
    book, problems = prepare(args)
    for problem in problems:
        say(problem)
    if book is None:
        errors = sum(not p.warning for p in problems)
        say(f"check: {errors} error(s); nothing written")
        return 1
    if args.command == "check":
        say(f"check: {len(book.sections)} section(s) OK")
        return 0
    why = unwritable(book.out)
    if why:
        say(f"error: {why}; nothing written (choose another --out)")
        return 1
    left = [file for part in OUT_PARTS for file in sweep_temp(book.out / part)]
    if left:
        say(f"removed {len(left)} temp file(s) left by an interrupted build in {book.out}")
    if args.command == "outputs":
        return outputs(book, args)
    paths = write_notebooks(book)
    if args.command == "list":
        print("\n".join(str(p) for p in paths))
        return 0
    if args.command in ("execute", "all"):
        status = execute(book, args, paths)
        if status or args.command == "execute":
            return status
        return pages(book)
    return 0


if __name__ == "__main__":
    sys.exit(main())
