"""The book's build pipeline: chapters (Markdown) -> notebooks -> executed notebooks.

`build.py` is the command line; each module here is a small set of pure functions on strings
plus thin file wrappers:

    source.py     read a chapter, validate it, split it into prose and code blocks
    branches.py   resolve `if tab.selected(...)` with `ast`, keep the selected branch
    roles.py      d2l roles (:label:, :numref:, :eqref:, images) -> plain Jupyter Markdown
    notebook.py   build one notebook per framework (ids, metadata, reference outputs), write it
    pages/        executed notebooks -> the reader site (pages, downloads, the shim's wheel)
    savecheck.py  `#@save` code must equal the shim's code (the shim: build.py --shim)
    execute.py    run notebooks with nbclient (progress, cache, errors located in the chapter)
    nbval_report.py  pytest plugin: a failing nbval cell names its chapter line

The frameworks the book builds are declared once, in pyproject.toml (`[tool.book] frameworks`):
FRAMEWORKS below is read from there.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

# The tab names d2lbook books use -> (shim module d2l_shim/<module>.py and pip extra, display
# name). A chapter may name any of them; only the frameworks the book declares are built.
KNOWN_FRAMEWORKS: dict[str, tuple[str, str]] = {
    "pytorch": ("torch", "PyTorch"),
    "tensorflow": ("tensorflow", "TensorFlow"),
    "mxnet": ("mxnet", "MXNet"),
    "jax": ("jax", "JAX"),
    "paddle": ("paddle", "PaddlePaddle"),
}
CONFIG = Path(__file__).resolve().parent.parent / "pyproject.toml"


def declared_frameworks(text: str, where: str = "pyproject.toml") -> tuple[str, ...]:
    """The frameworks the book builds, in tab order: `[tool.book] frameworks` of pyproject.toml."""
    value = tomllib.loads(text).get("tool", {}).get("book", {}).get("frameworks")
    key = f"{where}: [tool.book] frameworks"
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise ValueError(f'{key} must list the frameworks built, e.g. ["pytorch", "mxnet"]')
    for name in value:
        if name not in KNOWN_FRAMEWORKS:
            raise ValueError(f"{key}: unknown framework '{name}' ({', '.join(KNOWN_FRAMEWORKS)})")
    if len(set(value)) != len(value):
        raise ValueError(f"{key}: a framework is listed twice")
    return tuple(value)


FRAMEWORKS: tuple[str, ...] = declared_frameworks(CONFIG.read_text(encoding="utf-8"))
SHIM_MODULE: dict[str, str] = {fw: KNOWN_FRAMEWORKS[fw][0] for fw in FRAMEWORKS}
DISPLAY_NAME: dict[str, str] = {fw: KNOWN_FRAMEWORKS[fw][1] for fw in FRAMEWORKS}


def unknown_framework(name: str) -> str:
    """Message for a tab name that is no framework at all (a typo, most often)."""
    close = difflib.get_close_matches(name, [*KNOWN_FRAMEWORKS, "all"], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown framework '{name}' ({', '.join(FRAMEWORKS)} or all{hint})"


# The site's folder of downloads: the shim's wheel and one archive of notebooks per framework.
DOWNLOADS = "downloads"
PROJECT_ROOT = CONFIG.parent


def project_table(root: Path = PROJECT_ROOT) -> dict:
    """The `[project]` table of root/pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]


def shim_wheel_name(project: dict | None = None) -> str:
    """File name of the shim's wheel (`d2l_shim-VERSION-py3-none-any.whl`), from the
    `[project]` table (default: this project's pyproject.toml)."""
    project = project or project_table()
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a chapter, printed as `FILE:LINE: message`."""

    path: str
    line: int
    message: str
    warning: bool = False  # not an error: the build goes on
    note: bool = False  # a warning that only informs (printed `note:`)

    def __str__(self) -> str:
        kind = "note: " if self.note else "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {kind}{self.message}"


class BuildError(Exception):
    """Raised with every problem found; nothing has been written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class BookIndex:
    """What chapters/index.md says: the book's `# ` title, its introduction, its sections."""

    title: str | None  # the first line's `# ` heading, if it has one
    intro: str  # Markdown: every line outside fenced blocks but the title
    stems: list[str]  # section names in the ```toc``` block, in book order


def parse_index(text: str) -> BookIndex:
    """The parts of an index.md (d2lbook's format: prose, then a ```toc``` block)."""
    title, intro, stems = None, [], []
    fence = in_toc = False
    for line in text.splitlines():
        entry = line.strip()
        if line.startswith("# ") and title is None and not intro:
            title = line[2:].strip()
        elif entry.startswith("```"):
            in_toc = not fence and "toc" in entry
            fence = not fence
        elif in_toc:
            if entry and not entry.startswith(":"):
                stems.append(Path(entry).stem)
        elif not fence:
            intro.append(line)
    return BookIndex(title, "\n".join(intro).strip(), stems)


def read_index(chapters_dir: Path) -> BookIndex:
    """parse_index of chapters_dir/index.md; an empty index when there is none."""
    index = chapters_dir / "index.md"
    if not index.is_file():
        return BookIndex(None, "", [])
    return parse_index(index.read_text(encoding="utf-8"))


def chapter_files(chapters_dir: Path) -> list[Path]:
    """The sections (chapters_dir/*.md but index.md): the toc's order first, then by name."""
    order = {stem: i for i, stem in enumerate(read_index(chapters_dir).stems)}
    files = [p for p in chapters_dir.glob("*.md") if p.name != "index.md"]
    return sorted(files, key=lambda p: (order.get(p.stem, len(order)), p.name))
