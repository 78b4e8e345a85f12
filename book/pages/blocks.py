"""Executed notebooks of one section -> the blocks of its page, from the cells' metadata only.

Each cell the build generates from the chapter carries `metadata.d2l = {block, line,
frameworks, ...}` (see book/notebook.py): `(block, line)` names the same cell in every
framework's notebook, and `frameworks` says whom its chapter block is for. So:

- a Markdown cell whose block is for every framework of the book is shared prose, shown once;
- everything else (code, prose between :begin_tab: and :end_tab:) goes into tab groups, one
  tab per framework; consecutive such cells form one group.

A framework without a notebook for the section is simply absent from the groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from book import FRAMEWORKS

REMOVE_TAGS = {"remove-cell", "remove_cell", "d2l-remove"}


class MetadataError(ValueError):
    """A notebook cell lacks the build's metadata (a notebook from an older build)."""


@dataclass(frozen=True)
class Cell:
    """One notebook cell of one framework, with where it comes from in the chapter."""

    framework: str
    kind: str  # "markdown" or "code"
    source: str
    block: int  # index of the chapter block
    line: int  # chapter line
    frameworks: tuple[str, ...]  # the frameworks of its chapter block
    outputs: tuple[dict[str, Any], ...] = ()
    target: dict[str, str] | None = None  # numbered figure, table or equation
    glue: dict[str, Any] | None = None  # Markdown with its :glue: roles (book/glue.py)

    @property
    def key(self) -> tuple[int, int]:
        return (self.block, self.line)


@dataclass
class Shared:
    """Prose for every framework: one cell, shown once."""

    cell: Cell


@dataclass
class Tabs:
    """Consecutive framework-specific cells: framework -> its cells, in chapter order."""

    panels: dict[str, list[Cell]] = field(default_factory=dict)


Block = Shared | Tabs


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def notebook_cells(nb: dict[str, Any], framework: str, where: str = "") -> list[Cell]:
    """The cells of a notebook that come from its chapter (not the generated header/set-up).

    Dropped too: cells tagged `remove-cell` and empty cells. A cell without the build's
    metadata raises MetadataError naming the notebook (`where`) and the cell.
    """
    cells = []
    for number, c in enumerate(nb["cells"], start=1):
        meta = c.get("metadata", {})
        d2l = meta.get("d2l", {})
        if d2l.get("generated") or c["cell_type"] not in ("markdown", "code"):
            continue
        if "block" not in d2l or "frameworks" not in d2l:
            msg = f"{where}: cell {number} has no metadata.d2l.block (rebuild with build.py)"
            raise MetadataError(msg)
        source = _text(c["source"])
        if REMOVE_TAGS & set(meta.get("tags", [])) or not source.strip():
            continue
        cells.append(
            Cell(
                framework,
                c["cell_type"],
                source,
                d2l["block"],
                d2l["line"],
                tuple(d2l["frameworks"]),
                tuple(c.get("outputs", ())),
                d2l.get("target"),
                d2l.get("glue"),
            )
        )
    return cells


def page_blocks(cells_by_fw: dict[str, list[Cell]], frameworks: Sequence[str]) -> list[Block]:
    """Merge the notebooks of one section: shared prose once, the rest in tab groups.

    `frameworks` are the book's (what the reader may pick); `cells_by_fw` may lack some.
    """
    by_key: dict[tuple[int, int], dict[str, Cell]] = {}
    for fw, cells in cells_by_fw.items():
        for cell in cells:
            by_key.setdefault(cell.key, {})[fw] = cell
    blocks: list[Block] = []
    for key in sorted(by_key):
        versions = by_key[key]
        first = next(iter(versions.values()))
        if first.kind == "markdown" and set(frameworks) <= set(first.frameworks):
            blocks.append(Shared(first))
            continue
        if not blocks or not isinstance(blocks[-1], Tabs):
            blocks.append(Tabs())
        group = blocks[-1]
        for fw, cell in versions.items():
            group.panels.setdefault(fw, []).append(cell)
    for block in blocks:
        if isinstance(block, Tabs):
            block.panels = {fw: block.panels[fw] for fw in FRAMEWORKS if fw in block.panels}
    return blocks
