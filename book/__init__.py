"""The book's build pipeline: chapters (Markdown) -> notebooks -> executed notebooks.

`build.py` is the command line; each module here is a small set of pure functions on strings
plus thin file wrappers:

    source.py     read a chapter, validate it, split it into prose and code blocks
    branches.py   resolve `if tab.selected(...)` with `ast`, keep the selected branch
    roles.py      d2l roles (:label:, :numref:, :eqref:, images) -> plain Jupyter Markdown
    notebook.py   build one notebook per framework (ids, metadata, reference outputs), write it
    pages/        executed notebooks -> the reader site (pages, downloads, the shim's wheel)
    savecheck.py  `#@save` code must equal the shim's code
    execute.py    run notebooks with nbclient (progress, cache, errors located in the chapter)
    nbval_report.py  pytest plugin: a failing nbval cell names its chapter line
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

FRAMEWORKS: tuple[str, ...] = ("pytorch", "tensorflow", "mxnet")
# Framework (tab name) -> shim module (d2l_shim/<module>.py) and pip extra (pyproject.toml).
SHIM_MODULE: dict[str, str] = {"pytorch": "torch", "tensorflow": "tensorflow", "mxnet": "mxnet"}
DISPLAY_NAME: dict[str, str] = {"pytorch": "PyTorch", "tensorflow": "TensorFlow", "mxnet": "MXNet"}
# The site's folder of downloads: the shim's wheel and one archive of notebooks per framework.
DOWNLOADS = "downloads"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shim_wheel_name(root: Path = PROJECT_ROOT) -> str:
    """File name of the shim's wheel (`d2l_shim-VERSION-py3-none-any.whl`), from pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a chapter, printed as `FILE:LINE: message`."""

    path: str
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {kind}{self.message}"


class BuildError(Exception):
    """Raised with every problem found; nothing has been written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def toc_stems(chapters_dir: Path) -> list[str]:
    """Section names listed, in book order, in the ```toc``` block of chapters_dir/index.md."""
    index = chapters_dir / "index.md"
    if not index.is_file():
        return []
    stems, in_toc = [], False
    for line in index.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if entry.startswith("```"):
            in_toc = not in_toc and "toc" in entry
        elif in_toc and entry and not entry.startswith(":"):
            stems.append(Path(entry).stem)
    return stems


def chapter_files(chapters_dir: Path) -> list[Path]:
    """The sections (chapters_dir/*.md but index.md): the toc's order first, then by name."""
    order = {stem: i for i, stem in enumerate(toc_stems(chapters_dir))}
    files = [p for p in chapters_dir.glob("*.md") if p.name != "index.md"]
    return sorted(files, key=lambda p: (order.get(p.stem, len(order)), p.name))
