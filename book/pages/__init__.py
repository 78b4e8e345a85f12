"""Executed notebooks -> a small static site: one page per section, framework tabs, downloads.

    render(executed_dir, site_dir, sections, frameworks, chapters_dir) -> paths written
    python -m book.pages EXECUTED_DIR SITE_DIR [--chapters chapters]

`build.py` passes the book's sections (in order), its frameworks and the chapter folder; a
section may lack the notebook of some framework (it has no code for it): its page says so.
The page structure comes from the notebooks' metadata only (book/notebook.py writes it):

    blocks.py     cells -> shared prose and tab groups, by `metadata.d2l` (block, frameworks)
    markdown.py   Markdown -> HTML (math as MathML at build time, page-unique ids)
    html.py       blocks -> HTML through the Jinja2 templates in templates/
    files.py      images, notebooks, archives and the shim's wheel; atomic writes

Pages need only `book.css`, `pygments.css` and `book.js`: they work from `file://` and from any
static server, and no request leaves the machine. Rendering is deterministic (no dates,
content-addressed figures, fixed zip dates): two renders give byte-identical sites.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from book import (
    DISPLAY_NAME,
    DOWNLOADS,
    FRAMEWORKS,
    PROJECT_ROOT,
    BookIndex,
    chapter_files,
    glue,
    read_index,
)
from book.pages import html
from book.pages.blocks import MetadataError, notebook_cells, page_blocks
from book.pages.files import (
    SiteFiles,
    archive,
    archive_name,
    html_name,
    notebook_href,
    shim_wheel,
    write_site,
)
from book.pages.markdown import Heading, Ids, inline_html, markdown_to_html, plain_text

SITE_ASSETS = Path(__file__).resolve().parent.parent / "site"  # book.css, book.js


class PagesError(Exception):
    """The executed notebooks cannot make the site (nothing has been written)."""


@dataclass
class Section:
    name: str  # file stem: deep-rnn
    title: str  # Markdown, from the notebooks' metadata
    notebooks: dict[str, dict[str, Any]]  # framework -> executed notebook (JSON)
    paths: dict[str, Path]  # framework -> its file


def load_section(executed_dir: Path, name: str, frameworks: Sequence[str]) -> Section:
    """The executed notebooks of one section; a framework without one is left out."""
    paths = {
        fw: executed_dir / fw / f"{name}.ipynb"
        for fw in frameworks
        if (executed_dir / fw / f"{name}.ipynb").is_file()
    }
    if not paths:
        where = ", ".join(f"{executed_dir / fw}/" for fw in frameworks)
        raise PagesError(f"section {name}: no executed notebook in {where}")
    notebooks = {fw: json.loads(p.read_text(encoding="utf-8")) for fw, p in paths.items()}
    first = next(iter(paths))
    titles = [meta(c).get("title") for c in notebooks[first]["cells"] if meta(c).get("title")]
    return Section(name, titles[0] if titles else name, notebooks, paths)


def meta(cell: dict[str, Any]) -> dict[str, Any]:
    """The build's metadata of a cell (`metadata.d2l`)."""
    return cell.get("metadata", {}).get("d2l", {})


def _size(data: bytes) -> str:
    kib = len(data) / 1024
    return f"{kib:.0f} ko" if kib < 1024 else f"{kib / 1024:.1f} Mo".replace(".", ",")


def _downloads(section: Section, frameworks: Sequence[str]) -> list[dict[str, str | None]]:
    return [
        {
            "framework": fw,
            "href": notebook_href(fw, section.name) if fw in section.notebooks else None,
            "archive": archive_name(fw),
        }
        for fw in frameworks
    ]


def render_section(
    section: Section, frameworks: Sequence[str], files: SiteFiles
) -> tuple[str, list[Heading]]:
    """(body HTML, table of contents) of one section's page."""
    cells = {
        fw: notebook_cells(nb, fw, str(section.paths[fw])) for fw, nb in section.notebooks.items()
    }
    toc: list[Heading] = []
    dirs = {fw: path.parent for fw, path in section.paths.items()}
    glued = {fw: glue.recorded(section.notebooks.get(fw, {})) for fw in frameworks}
    body = html.render_body(page_blocks(cells, frameworks), dirs, files, Ids(), toc, glued)
    return body, toc


def notebook_files(sections: list[Section], shim: tuple[str, bytes]) -> dict[str, bytes | Path]:
    """Per-page notebook downloads (with their images), one archive per framework, the wheel."""
    wheel_name, wheel = shim
    files: dict[str, bytes | Path] = {f"{DOWNLOADS}/{wheel_name}": wheel}
    archives: dict[str, dict[str, bytes]] = {}
    for section in sections:
        for fw, path in section.paths.items():
            folder = f"notebooks-{fw}"
            bundle = archives.setdefault(fw, {f"{folder}/{wheel_name}": wheel})
            cells = section.notebooks[fw]["cells"]
            images = sorted({rel for c in cells for rel in meta(c).get("images", [])})
            for rel in [f"{section.name}.ipynb", *images]:
                data = (path.parent / rel).read_bytes()
                files[f"notebooks/{fw}/{rel}"] = data
                bundle[f"{folder}/{rel}"] = data
    for fw, bundle in archives.items():
        files[archive_name(fw)] = archive(bundle)
    return files


def render(
    executed_dir: Path,
    site_dir: Path,
    sections: Sequence[str],
    frameworks: Sequence[str] = FRAMEWORKS,
    chapters_dir: Path | None = None,
) -> list[Path]:
    """Write one page per section, `index.html`, assets and downloads; return the paths.

    `sections` are chapter stems in book order; `frameworks` the book's. Every notebook is
    read and every page made before anything is written.
    """
    executed_dir, site_dir = Path(executed_dir), Path(site_dir)
    frameworks = tuple(frameworks)
    loaded = [load_section(executed_dir, name, frameworks) for name in sections]
    shim = shim_wheel()
    site: dict[str, bytes | Path] = notebook_files(loaded, shim)
    warnings: list[str] = []
    links = [
        {"href": html_name(s.name), "title": Markup(inline_html(s.title, SiteFiles()))}
        for s in loaded
    ]
    for i, section in enumerate(loaded):
        files = SiteFiles(section=section.name)
        try:
            body, toc = render_section(section, frameworks, files)
        except MetadataError as err:
            raise PagesError(str(err)) from None
        text = html.page(
            f"{plain_text(section.title)} — {html.BOOK_TITLE}",
            body,
            frameworks,
            toc=toc,
            downloads=_downloads(section, frameworks),
            prev=links[i - 1] if i > 0 else None,
            next=links[i + 1] if i + 1 < len(links) else None,
        )
        site[html_name(section.name)] = text.encode()
        site.update(files.files)
        warnings += files.warnings
    site["index.html"] = index_page(loaded, frameworks, chapters_dir, site, shim[0]).encode()
    site.update(static_files())
    for warning in sorted(set(warnings)):
        print(f"avertissement : {warning}", file=sys.stderr)
    return write_site(site_dir, site)


def index_page(
    sections: list[Section],
    frameworks: tuple[str, ...],
    chapters_dir: Path | None,
    site: dict[str, bytes | Path],
    wheel_name: str,
) -> str:
    """The book's title and introduction (chapters/index.md), its sections, its downloads."""
    index = read_index(chapters_dir) if chapters_dir else BookIndex(None, "", [])
    title, intro = index.title or html.BOOK_TITLE, index.intro
    files = SiteFiles(notebook_dir=chapters_dir or Path("."), section="index")
    entries = [
        {
            "href": html_name(s.name),
            "title": Markup(inline_html(s.title, files)),
            "missing": ", ".join(DISPLAY_NAME[fw] for fw in frameworks if fw not in s.notebooks),
        }
        for s in sections
    ]
    archives = [
        {"framework": fw, "href": archive_name(fw), "size": _size(site[archive_name(fw)])}
        for fw in frameworks
        if archive_name(fw) in site
    ]
    body = html.index_body(
        inline_html(title, files),
        markdown_to_html(intro, files, Ids({"sommaire", "telechargements"})),
        entries,
        archives=archives,
        wheel=f"{DOWNLOADS}/{wheel_name}",
        wheel_name=wheel_name,
    )
    site.update(files.files)
    return html.page(plain_text(title), body, frameworks)


def static_files() -> dict[str, bytes | Path]:
    files: dict[str, bytes | Path] = {"pygments.css": html.pygments_css().encode()}
    for name in ("book.css", "book.js"):
        files[name] = SITE_ASSETS / name
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m book.pages", description=__doc__.split("\n")[0]
    )
    parser.add_argument("executed_dir", type=Path, help="folder of <framework>/<section>.ipynb")
    parser.add_argument("site_dir", type=Path, help="where to write the pages")
    chapters = PROJECT_ROOT / "chapters"
    parser.add_argument("--chapters", type=Path, default=chapters, help="chapter sources")
    args = parser.parse_args(argv)
    if not args.executed_dir.is_dir():
        print(f"error: {args.executed_dir} is not a folder", file=sys.stderr)
        return 2
    sections = [p.stem for p in chapter_files(args.chapters)]
    try:
        written = render(args.executed_dir, args.site_dir, sections, FRAMEWORKS, args.chapters)
    except PagesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    pages = [p for p in written if p.suffix == ".html"]
    print(f"{len(pages)} pages written to {args.site_dir}/ (open {args.site_dir / 'index.html'})")
    return 0
