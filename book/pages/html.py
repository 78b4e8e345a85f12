"""Blocks of a page -> HTML, through the Jinja2 templates in templates/.

render_body(blocks, notebook_dirs, files, ids, toc, glued)   a section's content
render_output(output, files)                         one output of a code cell
page(...), index_body(...)                           whole pages (templates/page.html)
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from book import DISPLAY_NAME, glue
from book.execute import ANSI
from book.pages.blocks import Block, Cell, Shared, Tabs
from book.pages.files import SiteFiles
from book.pages.markdown import (
    WORD,
    Heading,
    Ids,
    inline_html,
    markdown_to_html,
    plain_text,
    rewrite_html,
)
from book.pages.mathml import equation_html

BOOK_TITLE = "Plongée dans l'apprentissage profond"
PYGMENTS_STYLE = "friendly"
# French interface labels (tab names are the frameworks' own names).
LABELS = {
    "contents": "Sommaire",
    "previous": "Précédent",
    "next": "Suivant",
    "picker": "Framework du code",
    "picker_short": "Code :",
    "missing": "Ce passage n'existe pas en {wanted} : version {shown} affichée.",
    "section_missing": "Cette section n'existe pas en {name} : pas de notebook à télécharger.",
    "not_in": "absente en",
    "error": "Erreur",
    "figure_output": "Figure produite par le code",
    "sections": "Sections",
    "on_this_page": "Sur cette page",
    "download_notebook": "Télécharger le notebook",
    "download_all": "tous les notebooks (zip)",
    "downloads": "Télécharger les notebooks",
    "downloads_intro": (
        "Une archive par framework : tous ses notebooks, leurs figures et la bibliothèque du "
        "livre (d2l_shim) en roue Python, que la première cellule installe si besoin."
    ),
    "wheel_intro": "La bibliothèque seule :",
}

ENV = Environment(
    loader=PackageLoader("book.pages", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
PARTS = ENV.get_template("parts.html").module
_FORMATTER = HtmlFormatter(cssclass="highlight")
_LEXER = PythonLexer()


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def render_output(out: dict[str, Any], files: SiteFiles) -> str:
    """One output of a code cell: stream, rich display (SVG/PNG/HTML/text) or error."""
    kind = out.get("output_type")
    if kind == "stream":
        return PARTS.pre(ANSI.sub("", _text(out.get("text", ""))), f"stream {out.get('name')}")
    if kind == "error":
        trace = "\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}"
        return PARTS.error(ANSI.sub("", trace), LABELS["error"])
    data = out.get("data", {})
    if "image/svg+xml" in data:
        src = files.output_file(_text(data["image/svg+xml"]).encode(), "svg")
        return PARTS.image_output(src, LABELS["figure_output"])
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg")):
        if mime in data:
            src = files.output_file(base64.b64decode(_text(data[mime])), ext)
            return PARTS.image_output(src, LABELS["figure_output"])
    if "text/html" in data:
        return PARTS.rich_output("html", Markup(rewrite_html(_text(data["text/html"]), files)))
    if "text/markdown" in data:
        body = markdown_to_html(_text(data["text/markdown"]), files, Ids())
        return PARTS.rich_output("markdown", Markup(body))
    if "text/plain" in data:
        return PARTS.pre(ANSI.sub("", _text(data["text/plain"])), "result")
    return ""


Glued = dict[str, dict[str, str]]  # framework -> {name: text} of its run


def _glued(markdown: str, glued: Glued | None) -> str:
    """Markdown with its :glue: roles as the values of the frameworks of `glued`."""
    return glue.inline_html(markdown, glued, list(glued)) if glued else markdown


def render_target(
    target: dict[str, str], files: SiteFiles, ids: Ids, glued: Glued | None = None
) -> str:
    """A numbered figure, table or equation, from the cell's metadata (not its Markdown)."""
    target = {k: _glued(v, glued) if k in ("caption", "markdown") else v for k, v in target.items()}
    ident = ids.unique(target["label"])
    kind, number = target["kind"], target["number"]
    if kind == "equation":
        return equation_html(target["tex"], anchor=ident, number=number)
    caption = Markup(inline_html(target.get("caption", ""), files))
    if kind == "figure":
        src = files.local_ref(target["image"])
        alt = plain_text(target.get("caption", ""))
        return PARTS.figure(ident, src, alt, WORD[kind], number, caption)
    body = Markup(markdown_to_html(target["markdown"], files, Ids()))
    return PARTS.table(ident, body, WORD[kind], number, caption)


def render_cell(
    cell: Cell, files: SiteFiles, ids: Ids, toc: list[Heading] | None, glued: Glued | None = None
) -> str:
    """One cell; a prose cell with :glue: roles shows the values of the frameworks in `glued`
    (each with its framework's tab) instead of the values written in its notebook."""
    glued = glued if cell.glue else None
    if cell.kind == "markdown":
        if cell.target:
            return PARTS.prose(Markup(render_target(cell.target, files, ids, glued)))
        source = _glued(cell.glue["markdown"], glued) if glued else cell.source
        return PARTS.prose(Markup(markdown_to_html(source, files, ids, toc)))
    code = Markup(highlight(cell.source.rstrip("\n") + "\n", _LEXER, _FORMATTER))
    outputs = Markup("".join(render_output(o, files) for o in cell.outputs))
    return PARTS.code_cell(code, outputs)


def render_body(
    blocks: list[Block],
    notebook_dirs: dict[str, Path],
    files: SiteFiles,
    ids: Ids,
    toc: list[Heading],
    glued: Glued | None = None,
) -> str:
    """Shared prose once (its headings go to `toc`), tab groups for the rest. `glued`: the
    glue values of each framework's run (every framework of the book, {} without a run):
    shared prose shows each framework's, a tab its own."""
    glued = glued or {}
    parts, groups = [], 0
    for block in blocks:
        if isinstance(block, Shared):
            files.notebook_dir = notebook_dirs[block.cell.framework]
            parts.append(render_cell(block.cell, files, ids, toc, glued))
            continue
        assert isinstance(block, Tabs)
        groups += 1
        panels = []
        for fw, cells in block.panels.items():
            files.notebook_dir = notebook_dirs[fw]
            own = {fw: glued.get(fw, {})}
            body = "\n".join(render_cell(c, files, ids, None, own) for c in cells)
            panels.append((fw, DISPLAY_NAME[fw], Markup(body)))
        for fw, _, _ in panels:
            ids.taken |= {f"g{groups}-{fw}", f"g{groups}-{fw}-panel"}
        parts.append(PARTS.tabs(groups, panels, LABELS))
    return "\n".join(str(p) for p in parts)


def page(
    title: str,
    body: str,
    frameworks: tuple[str, ...],
    toc: list[Heading] = (),  # type: ignore[assignment]
    downloads: list[dict[str, str]] = (),  # type: ignore[assignment]
    prev: dict[str, str] | None = None,
    next: dict[str, str] | None = None,  # noqa: A002 - the template's name
) -> str:
    return ENV.get_template("page.html").render(
        title=title,
        body=Markup(body),
        frameworks=frameworks,
        names=DISPLAY_NAME,
        labels=LABELS,
        book_title=BOOK_TITLE,
        toc=[Heading(h.level, h.id, Markup(h.html)) for h in toc],
        downloads=downloads,
        prev=prev,
        next=next,
    )


def index_body(title: str, intro: str, sections: list[dict[str, Any]], **downloads: Any) -> str:
    return ENV.get_template("index.html").render(
        title=Markup(title),
        intro=Markup(intro),
        sections=sections,
        labels=LABELS,
        names=DISPLAY_NAME,
        **downloads,
    )


def pygments_css() -> str:
    css = HtmlFormatter(style=PYGMENTS_STYLE, cssclass="highlight").get_style_defs(".highlight")
    return css.strip() + "\n"
