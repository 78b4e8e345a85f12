"""Executed notebooks -> a small static site: one page per section, framework tabs, offline math.

    python -m book.pages EXECUTED_DIR SITE_DIR [--chapters chapters]

Reads `EXECUTED_DIR/<framework>/<section>.ipynb` (a framework may be missing), shows the prose
once and each run of code cells as one tab group (one tab per framework that has code there),
converts TeX to MathML at build time (no script, no network) and highlights code with Pygments
CSS classes. The pages need only `book.css`, `pygments.css` and `book.js`, copied beside them:
they work from `file://` and from any static server, and no request leaves the machine.

Not for: executing notebooks or resolving d2l roles (`build.py` does both, before this).

Pairing cells across frameworks: the build gives each cell `metadata.d2l = {source, line}`.
A Markdown cell with the same source text (and chapter line, when known) in every notebook is
shared prose; everything between two shared prose cells (code, and prose kept for some
frameworks only by `:begin_tab:`) forms one tab group.

Rendering is deterministic: no timestamps, content-addressed output images, every file written
atomically (temporary file + `os.replace`), so two renders give byte-identical sites.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from book import DISPLAY_NAME, FRAMEWORKS, toc_stems
from book.execute import ANSI
from book.pages_math import equation_html, tex_to_mathml

BOOK_TITLE = "Plongée dans l'apprentissage profond"
SITE_ASSETS = Path(__file__).with_name("site")  # book.css, book.js
PYGMENTS_STYLE = "friendly"
# French interface labels (tab names are the frameworks' own names).
LABELS = {
    "contents": "Sommaire",
    "previous": "Précédent",
    "next": "Suivant",
    "picker": "Framework du code",
    "picker_short": "Code :",
    "missing": "Ce passage n'existe pas en {wanted} : version {shown} affichée.",
    "error": "Erreur",
    "figure_output": "Figure produite par le code",
    "sections": "Sections",
    "not_found": "introuvable",
}
REMOVE_TAGS = {"remove-cell", "remove_cell", "d2l-remove"}
_TAB_MAGIC = re.compile(r"\A%%tab[^\n]*\n?")
_TITLE = re.compile(r"^# +(.+?)\s*#*\s*$", re.MULTILINE)
_ANCHORS = re.compile(r'(?:<a (?:id|name)="[^"]*">\s*</a>\s*)+')
_ANCHOR_ID = re.compile(r'<a (?:id|name)="([^"]*)">\s*</a>')
_CAPTION = re.compile(r"(Figure|Tableau)\s+\S+$")
_GUILLEMET_OPEN = re.compile(r"«[ \u00a0\u202f]+")
_GUILLEMET_CLOSE = re.compile(r"[ \u00a0\u202f]+»")
_NBSP = {":": "\u00a0", ";": "\u202f", "?": "\u202f", "!": "\u202f"}
_HIGH_PUNCT = re.compile(r" ([:;?!])(?=\s|$)")
_SRC_ATTR = re.compile(r'(\s(?:src|href)=")([^"]*)(")')


# ---------------------------------------------------------------------------- pairing cells
@dataclass(frozen=True)
class Cell:
    """One notebook cell of one framework."""

    framework: str
    kind: str  # "markdown" or "code"
    source: str
    outputs: tuple = ()
    line: int | None = None  # chapter line, from metadata.d2l.line

    @property
    def key(self) -> tuple[int | None, str]:
        """Identity of a prose cell across frameworks: chapter line (when known) and text."""
        return (self.line, self.source.strip())


@dataclass
class TabGroup:
    """Consecutive framework-specific cells: framework -> its cells, in notebook order."""

    panels: dict[str, list[Cell]] = field(default_factory=dict)


Block = Cell | TabGroup  # a shared prose Cell, or a TabGroup


def notebook_cells(nb: nbformat.NotebookNode, framework: str) -> list[Cell]:
    """The cells a reader sees, from the section title (`# ...`) on.

    Dropped: cells before the first `# ` heading (the build's "generated from" note and set-up
    cell), cells tagged `remove-cell`, empty cells, and the `%%tab` line of code cells.
    """
    cells = []
    for c in nb.cells:
        if c.cell_type not in ("markdown", "code"):
            continue
        if REMOVE_TAGS & set(c.get("metadata", {}).get("tags", [])):
            continue
        source = c.source if isinstance(c.source, str) else "".join(c.source)
        if c.cell_type == "code":
            source = _TAB_MAGIC.sub("", source)
        if not source.strip():
            continue
        d2l = c.get("metadata", {}).get("d2l", {})
        line = d2l.get("line") if isinstance(d2l, dict) else None
        outputs = tuple(c.get("outputs", ())) if c.cell_type == "code" else ()
        cells.append(Cell(framework, c.cell_type, source, outputs, line))
    first_title = next(
        (i for i, c in enumerate(cells) if c.kind == "markdown" and _TITLE.search(c.source)), 0
    )
    return cells[first_title:]


def _shared_keys(cells_by_fw: dict[str, list[Cell]]) -> list[tuple[int | None, str]]:
    """Keys of prose cells found exactly once in every notebook, in an order all agree on."""
    counts: list[dict] = []
    for cells in cells_by_fw.values():
        count: dict = {}
        for c in cells:
            if c.kind == "markdown":
                count[c.key] = count.get(c.key, 0) + 1
        counts.append(count)
    first = next(iter(cells_by_fw.values()))
    candidates = [
        c.key
        for c in first
        if c.kind == "markdown" and all(count.get(c.key) == 1 for count in counts)
    ]
    # Keep a key only if it comes after the previously kept one in every notebook.
    positions = [
        {c.key: i for i, c in enumerate(cells) if c.kind == "markdown"}
        for cells in cells_by_fw.values()
    ]
    kept, last = [], [-1] * len(positions)
    for key in candidates:
        here = [pos[key] for pos in positions]
        if all(h > lst for h, lst in zip(here, last, strict=True)):
            kept.append(key)
            last = here
    return kept


def group_cells(cells_by_fw: dict[str, list[Cell]]) -> list[Block]:
    """Merge the notebooks of one section: shared prose once, the rest in tab groups.

    `cells_by_fw` maps framework -> cells (frameworks in tab order). Cells without chapter lines
    (notebooks lacking `metadata.d2l`) are paired by their text alone.
    """
    cells_by_fw = {fw: cells for fw, cells in cells_by_fw.items() if cells}
    if not cells_by_fw:
        return []
    if any(c.line is None for cells in cells_by_fw.values() for c in cells):
        # Without metadata in one notebook, compare text only, everywhere.
        cells_by_fw = {
            fw: [Cell(c.framework, c.kind, c.source, c.outputs, None) for c in cells]
            for fw, cells in cells_by_fw.items()
        }
    anchors = _shared_keys(cells_by_fw)
    # segments[fw][i]: the cells of fw before anchor i (the last one: after the last anchor)
    segments: dict[str, list[list[Cell]]] = {}
    for fw, cells in cells_by_fw.items():
        segs: list[list[Cell]] = [[]]
        remaining = iter(anchors)
        nxt = next(remaining, None)
        for c in cells:
            if c.kind == "markdown" and c.key == nxt:
                segs.append([])
                nxt = next(remaining, None)
            else:
                segs[-1].append(c)
        segments[fw] = segs
    blocks: list[Block] = []
    first_fw = next(iter(cells_by_fw))
    shared = {c.key: c for c in cells_by_fw[first_fw] if c.kind == "markdown"}
    for i in range(len(anchors) + 1):
        panels = {fw: segments[fw][i] for fw in cells_by_fw if segments[fw][i]}
        if panels:
            blocks.append(TabGroup(panels))
        if i < len(anchors):
            blocks.append(shared[anchors[i]])
    return blocks


# ---------------------------------------------------------------------------- Markdown, outputs
@dataclass
class SiteFiles:
    """Files a page needs besides itself: site-relative path -> bytes (or a source file)."""

    notebook_dir: Path = Path(".")
    section: str = ""
    files: dict[str, bytes | Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def local_ref(self, ref: str) -> str:
        """Rewrite a relative link or image from a notebook: copy the file, `.ipynb` -> `.html`."""
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith(("/", "#")) or not parts.path:
            return ref
        path = unquote(parts.path)
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        if path.endswith(".ipynb"):
            return html_name(Path(path).stem) + fragment
        source = (self.notebook_dir / path).resolve()
        if not source.is_file():
            self.warnings.append(f"{self.section}: fichier {LABELS['not_found']} : {path}")
            return ref
        try:
            rel = source.relative_to(self.notebook_dir.resolve()).as_posix()
        except ValueError:
            rel = f"img/{source.name}"
        self.files.setdefault(rel, source)
        return rel + fragment

    def output_file(self, data: bytes, ext: str) -> str:
        """Store a figure produced by a cell under a name derived from its content."""
        rel = f"{self.section}_files/{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        self.files[rel] = data
        return rel


def _math_inline(self, tokens, idx, options, env) -> str:
    return tex_to_mathml(tokens[idx].content, display=False)


def _math_display(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    return equation_html(token.content, anchor=token.info or None) + ("\n" if token.block else "")


def make_markdown() -> MarkdownIt:
    """CommonMark + tables + `$`/`$$` math (kept away from the Markdown parser) + heading ids."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_digits=False, double_inline=True)
    md.use(anchors_plugin, min_level=2, max_level=3)
    md.add_render_rule("math_inline", _math_inline)
    for name in ("math_inline_double", "math_block", "math_block_label"):
        md.add_render_rule(name, _math_display)
    return md


_MD = make_markdown()


def _rewrite_html(text: str, files: SiteFiles) -> str:
    return _SRC_ATTR.sub(lambda m: m.group(1) + files.local_ref(m.group(2)) + m.group(3), text)


def french_spacing(text: str) -> str:
    """No line break inside « ... » nor before : ; ? ! (French typography, prose text only)."""
    text = _GUILLEMET_OPEN.sub("«\u00a0", text)
    text = _GUILLEMET_CLOSE.sub("\u00a0»", text)
    return _HIGH_PUNCT.sub(
        lambda m: ("\u00a0" if m.group(1) == ":" else "\u202f") + m.group(1), text
    )


def _walk(tokens: Iterable[Token]) -> Iterable[Token]:
    for t in tokens:
        yield t
        if t.children:
            yield from _walk(t.children)


def _numbered_caption(tokens: list[Token], i: int) -> str | None:
    """The build's caption paragraph `*Figure 1.2* : text` starting at tokens[i], rendered."""
    if i + 2 >= len(tokens) or tokens[i].type != "paragraph_open":
        return None
    kids = tokens[i + 1].children or []
    if len(kids) < 3 or kids[0].type != "em_open" or not _CAPTION.match(kids[1].content):
        return None
    return _MD.renderer.renderInline(kids, _MD.options, {})


def _figure(inline: Token, caption: str | None) -> str | None:
    """A paragraph holding one image (and anchors) becomes a `<figure>` with its caption.

    The caption is the build's numbered caption paragraph when there is one, else the alt text.
    """
    kids = [t for t in inline.children or [] if not (t.type == "text" and not t.content.strip())]
    kids = [t for t in kids if t.type != "softbreak"]
    images = [t for t in kids if t.type == "image"]
    if len(images) != 1 or any(t.type not in ("image", "html_inline") for t in kids):
        return None
    img = images[0]
    anchors = "".join(t.content for t in kids if t.type == "html_inline")
    if caption is None:
        caption = _MD.renderer.renderInline(img.children or [], _MD.options, {})
    alt = html.escape(img.content.replace("$", ""), quote=True)
    src = html.escape(img.attrGet("src") or "", quote=True)
    figcaption = f"<figcaption>{caption}</figcaption>" if caption.strip() else ""
    return f'<figure>{anchors}<img src="{src}" alt="{alt}">{figcaption}</figure>\n'


def _anchors_only(inline: Token) -> str | None:
    """A paragraph of bare anchors (`<a id="..."></a>`, from `:label:`) needs no `<p>` box."""
    kids = [t for t in inline.children or [] if t.type != "softbreak"]
    joined = "".join(t.content for t in kids)
    if kids and all(t.type == "html_inline" for t in kids) and _ANCHORS.fullmatch(joined):
        return joined + "\n"
    return None


def markdown_to_html(text: str, files: SiteFiles) -> str:
    """Render one Markdown cell; local images are registered in `files`."""
    tokens = _MD.parse(text)
    for t in _walk(tokens):
        if t.type == "text":
            t.content = french_spacing(t.content)
        elif t.type == "image":
            t.attrSet("src", files.local_ref(t.attrGet("src") or ""))
        elif t.type == "link_open":
            t.attrSet("href", files.local_ref(t.attrGet("href") or ""))
        elif t.type in ("html_inline", "html_block"):
            t.content = _rewrite_html(t.content, files)
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "paragraph_open" and i + 2 < len(tokens):
            caption = _numbered_caption(tokens, i + 3)
            fig = _figure(tokens[i + 1], caption)
            anchors = None if fig else _anchors_only(tokens[i + 1])
            if anchors and out and out[-1].type.startswith("math_block") and not out[-1].info:
                # `$$...$$` then its :eqlabel: anchor: the id goes on the equation itself.
                out[-1].info = _ANCHOR_ID.search(anchors).group(1)
                anchors = _ANCHOR_ID.sub("", anchors, count=1).strip() or None
                if anchors is None:
                    i += 3
                    continue
            if fig or anchors:
                block = Token("html_block", "", 0)
                block.content = fig or anchors
                out.append(block)
                i += 6 if fig and caption is not None else 3
                continue
        out.append(t)
        i += 1
    return _MD.renderer.render(out, _MD.options, {})


def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value)


def _pre(text: str, cls: str) -> str:
    return f'<pre class="output {cls}">{html.escape(ANSI.sub("", text))}</pre>'


def render_output(out: dict, files: SiteFiles) -> str:
    """One output of a code cell: stream, rich display (SVG/PNG/HTML/text) or error."""
    kind = out.get("output_type")
    if kind == "stream":
        return _pre(_text(out.get("text", "")), f"stream {out.get('name', 'stdout')}")
    if kind == "error":
        trace = "\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}"
        return (
            f'<div class="output error"><span class="output-label">{LABELS["error"]}</span>'
            f"{_pre(trace, 'traceback')}</div>"
        )
    data = out.get("data", {})
    alt = LABELS["figure_output"]
    if "image/svg+xml" in data:
        src = files.output_file(_text(data["image/svg+xml"]).encode(), "svg")
        return f'<figure class="output image"><img src="{src}" alt="{alt}"></figure>'
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg")):
        if mime in data:
            src = files.output_file(base64.b64decode(_text(data[mime])), ext)
            return f'<figure class="output image"><img src="{src}" alt="{alt}"></figure>'
    if "text/html" in data:
        return f'<div class="output html">{_rewrite_html(_text(data["text/html"]), files)}</div>'
    if "text/markdown" in data:
        body = markdown_to_html(_text(data["text/markdown"]), files)
        return f'<div class="output markdown">{body}</div>'
    if "text/plain" in data:
        return _pre(_text(data["text/plain"]), "result")
    return ""


_FORMATTER = HtmlFormatter(cssclass="highlight")
_LEXER = PythonLexer()


def render_cell(cell: Cell, files: SiteFiles) -> str:
    if cell.kind == "markdown":
        return f'<div class="prose">{markdown_to_html(cell.source, files)}</div>'
    code = highlight(cell.source.rstrip("\n") + "\n", _LEXER, _FORMATTER)
    outputs = "".join(render_output(o, files) for o in cell.outputs)
    outputs_html = f'<div class="outputs">{outputs}</div>' if outputs else ""
    return f'<div class="cell">{code}{outputs_html}</div>'


def render_group(group: TabGroup, number: int, files: SiteFiles) -> str:
    """A tab group: one button and one panel per framework; PyTorch (or the first) shown."""
    shown = FRAMEWORKS[0] if FRAMEWORKS[0] in group.panels else next(iter(group.panels))
    buttons, panels = [], []
    for fw in FRAMEWORKS:
        if fw not in group.panels:
            continue
        on = fw == shown
        ident = f"g{number}-{fw}"
        buttons.append(
            f'<button type="button" role="tab" id="{ident}" aria-controls="{ident}-panel" '
            f'aria-selected="{str(on).lower()}" tabindex="{0 if on else -1}" '
            f'data-framework="{fw}">{DISPLAY_NAME[fw]}</button>'
        )
        body = "\n".join(render_cell(c, files) for c in group.panels[fw])
        hidden = "" if on else " hidden"
        panels.append(
            f'<div class="tab-panel" role="tabpanel" id="{ident}-panel" '
            f'aria-labelledby="{ident}" data-framework="{fw}"{hidden}>\n{body}\n</div>'
        )
    return (
        f'<div class="tabs" data-tabs>\n<div class="tab-list" role="tablist" '
        f'aria-label="{LABELS["picker"]}">{"".join(buttons)}</div>\n'
        f'<p class="tab-missing" hidden></p>\n' + "\n".join(panels) + "\n</div>"
    )


# ---------------------------------------------------------------------------- pages
@dataclass
class Section:
    name: str  # file stem: deep-rnn
    title_html: str
    title_text: str
    notebooks: dict[str, nbformat.NotebookNode]  # framework -> executed notebook
    notebook_dirs: dict[str, Path]


def html_name(section: str) -> str:
    return f"{section}.html"


def _strip_tags(text: str) -> str:
    text = re.sub(r"<annotation[^>]*>.*?</annotation>", "", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def section_title(nb: nbformat.NotebookNode, fallback: str) -> tuple[str, str]:
    """(HTML, plain text) of the notebook's first `# ` heading, or of `fallback`."""
    for c in nb.cells:
        if c.cell_type == "markdown" and (m := _TITLE.search(_text(c.source))):
            rendered = _MD.renderInline(m.group(1))
            rendered = re.sub(r'<a id="[^"]*"></a>', "", rendered).strip()
            return rendered, _strip_tags(rendered)
    return html.escape(fallback), fallback


def _page(title: str, body: str, frameworks: Sequence[str], nav: str = "") -> str:
    picker = "".join(
        f'<button type="button" data-framework="{fw}" aria-pressed="{str(i == 0).lower()}">'
        f"{DISPLAY_NAME[fw]}</button>"
        for i, fw in enumerate(frameworks)
    )
    missing = html.escape(LABELS["missing"], quote=True)
    return f"""<!DOCTYPE html>
<html lang="fr" data-framework="{FRAMEWORKS[0]}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="pygments.css">
<link rel="stylesheet" href="book.css">
<script src="book.js" defer></script>
</head>
<body data-missing="{missing}">
<header class="topbar">
<a class="home" href="index.html">{html.escape(BOOK_TITLE)}</a>
<div class="picker" role="group" aria-label="{LABELS["picker"]}">\
<span class="picker-label">{LABELS["picker_short"]}</span>{picker}</div>
</header>
<main class="page">
{body}
</main>
{nav}
</body>
</html>
"""


def _nav(prev: Section | None, nxt: Section | None) -> str:
    links = []
    if prev is not None:
        links.append(
            f'<a class="prev" rel="prev" href="{html_name(prev.name)}">'
            f'<span class="nav-label">← {LABELS["previous"]}</span>{prev.title_html}</a>'
        )
    links.append(f'<a class="up" href="index.html">{LABELS["contents"]}</a>')
    if nxt is not None:
        links.append(
            f'<a class="next" rel="next" href="{html_name(nxt.name)}">'
            f'<span class="nav-label">{LABELS["next"]} →</span>{nxt.title_html}</a>'
        )
    return f'<nav class="pager" aria-label="{LABELS["sections"]}">{"".join(links)}</nav>'


def render_section(section: Section, files: SiteFiles) -> str:
    """The body of one section's page (shared prose and tab groups)."""
    cells_by_fw = {
        fw: notebook_cells(nb, fw) for fw, nb in section.notebooks.items() if fw in FRAMEWORKS
    }
    parts, groups = [], 0
    for block in group_cells(cells_by_fw):
        if isinstance(block, TabGroup):
            groups += 1
            fw = next(iter(block.panels))
            files.notebook_dir = section.notebook_dirs[fw]
            parts.append(render_group(block, groups, files))
        else:
            files.notebook_dir = section.notebook_dirs[block.framework]
            parts.append(render_cell(block, files))
    return "\n".join(parts)


def render_index_body(sections: Sequence[Section]) -> str:
    items = "\n".join(
        f'<li><a href="{html_name(s.name)}">{s.title_html}</a></li>' for s in sections
    )
    return (
        f'<h1>{html.escape(BOOK_TITLE)}</h1>\n<h2 id="sommaire">{LABELS["contents"]}</h2>\n'
        f'<ol class="toc">\n{items}\n</ol>'
    )


# ---------------------------------------------------------------------------- files
def write_atomic(path: Path, data: bytes) -> bool:
    """Write through a temporary file and `os.replace`; skip when the content is unchanged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def chapter_order(names: Iterable[str], chapters_dir: Path) -> list[str]:
    """Sections in book order: the ```toc``` of `chapters_dir/index.md` if any, then by name."""
    names = sorted(set(names), key=lambda n: f"{n}.md")  # as build.py sorts chapter files
    listed = [stem for stem in toc_stems(chapters_dir) if stem in names]
    return listed + [n for n in names if n not in listed]


def load_sections(executed_dir: Path, chapters_dir: Path) -> list[Section]:
    found: dict[str, dict[str, Path]] = {}
    for fw in FRAMEWORKS:
        for path in sorted((executed_dir / fw).glob("*.ipynb")):
            found.setdefault(path.stem, {})[fw] = path
    sections = []
    for name in chapter_order(found, chapters_dir):
        notebooks = {fw: nbformat.read(p, as_version=4) for fw, p in found[name].items()}
        title_html, title_text = section_title(next(iter(notebooks.values())), name)
        dirs = {fw: p.parent for fw, p in found[name].items()}
        sections.append(Section(name, title_html, title_text, notebooks, dirs))
    return sections


def _static_files() -> dict[str, bytes]:
    css = HtmlFormatter(style=PYGMENTS_STYLE, cssclass="highlight").get_style_defs(".highlight")
    files = {"pygments.css": (css.strip() + "\n").encode()}
    for name in ("book.css", "book.js"):
        files[name] = (SITE_ASSETS / name).read_bytes()
    return files


def render(executed_dir: Path, site_dir: Path, chapters_dir: Path = Path("chapters")) -> list[Path]:
    """Write one page per section, `index.html` and their assets; return the paths written.

    "Written" means part of the site: a file whose content did not change is not rewritten
    (its timestamp stays) but is listed all the same.
    """
    executed_dir, site_dir = Path(executed_dir), Path(site_dir)
    sections = load_sections(executed_dir, Path(chapters_dir))
    frameworks = [fw for fw in FRAMEWORKS if (executed_dir / fw).is_dir()] or list(FRAMEWORKS)
    pages: dict[str, bytes] = {}
    assets: dict[str, bytes | Path] = {}
    warnings: list[str] = []
    for i, section in enumerate(sections):
        files = SiteFiles(section=section.name)
        body = render_section(section, files)
        if section.name == "index":  # a section named index: the TOC goes below it
            body += "\n" + render_index_body([s for s in sections if s.name != "index"])
        prev = sections[i - 1] if i > 0 else None
        nxt = sections[i + 1] if i + 1 < len(sections) else None
        title = f"{section.title_text} — {BOOK_TITLE}"
        page_fws = [fw for fw in FRAMEWORKS if fw in section.notebooks]
        pages[html_name(section.name)] = _page(title, body, page_fws, _nav(prev, nxt)).encode()
        assets.update(files.files)
        warnings += files.warnings
    if "index.html" not in pages:
        pages["index.html"] = _page(BOOK_TITLE, render_index_body(sections), frameworks).encode()
    for warning in sorted(set(warnings)):
        print(f"avertissement : {warning}", file=sys.stderr)
    written = []
    everything = {**_static_files(), **assets, **pages}
    for rel in sorted(everything):
        content = everything[rel]
        data = content.read_bytes() if isinstance(content, Path) else content
        write_atomic(site_dir / rel, data)
        written.append(site_dir / rel)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m book.pages", description=__doc__.split("\n")[0]
    )
    parser.add_argument("executed_dir", type=Path, help="folder of <framework>/<section>.ipynb")
    parser.add_argument("site_dir", type=Path, help="where to write the pages")
    parser.add_argument("--chapters", type=Path, default=Path("chapters"), help="chapter sources")
    args = parser.parse_args(argv)
    if not args.executed_dir.is_dir():
        print(f"error: {args.executed_dir} is not a folder", file=sys.stderr)
        return 2
    written = render(args.executed_dir, args.site_dir, args.chapters)
    pages = [p for p in written if p.suffix == ".html"]
    print(f"{len(pages)} pages written to {args.site_dir}/ (open {args.site_dir / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
