"""Markdown cells -> HTML: CommonMark, tables, math as MathML, French spacing, page-unique ids.

    markdown_to_html(text, files, ids, toc=None)   one cell; headings listed in `toc`
    inline_html(text, files)                        a caption or a title (no paragraph)
    plain_text(text)                                a title for <title> and alt texts

Math is kept away from the Markdown parser (`$...$`, `$$...$$`) and converted at build time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors.index import slugify
from mdit_py_plugins.dollarmath import dollarmath_plugin

from book.pages.files import SiteFiles
from book.pages.mathml import equation_html, tex_to_mathml

WORD = {"figure": "Figure", "table": "Tableau", "equation": "Équation"}
_GUILLEMET_OPEN = re.compile(r"«[ \u00a0\u202f]+")
_GUILLEMET_CLOSE = re.compile(r"[ \u00a0\u202f]+»")
_HIGH_PUNCT = re.compile(r" ([:;?!])(?=\s|$)")
_SRC_ATTR = re.compile(r'(\s(?:src|href)=")([^"]*)(")')


@dataclass
class Ids:
    """The ids of one page: each new one made unique (`x`, `x-2`, ...)."""

    taken: set[str] = field(default_factory=set)

    def unique(self, base: str) -> str:
        base = base or "section"
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}-{n}"
        self.taken.add(name)
        return name


@dataclass(frozen=True)
class Heading:
    level: int
    id: str
    html: str  # the heading's text, rendered (math included), without anchors


def _math_inline(self, tokens, idx, options, env) -> str:
    return tex_to_mathml(tokens[idx].content, display=False)


def _math_display(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    return equation_html(token.content) + ("\n" if token.block else "")


def make_markdown() -> MarkdownIt:
    """CommonMark + tables + strikethrough + `$`/`$$` math kept away from the Markdown parser."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_digits=False, double_inline=True)
    md.add_render_rule("math_inline", _math_inline)
    for name in ("math_inline_double", "math_block", "math_block_label"):
        md.add_render_rule(name, _math_display)
    return md


MD = make_markdown()


def french_spacing(text: str) -> str:
    """No line break inside « ... » nor before : ; ? ! (French typography, prose text only)."""
    text = _GUILLEMET_OPEN.sub("«\u00a0", text)
    text = _GUILLEMET_CLOSE.sub("\u00a0»", text)
    return _HIGH_PUNCT.sub(
        lambda m: ("\u00a0" if m.group(1) == ":" else "\u202f") + m.group(1), text
    )


def rewrite_html(text: str, files: SiteFiles) -> str:
    """Local `src`/`href` of raw HTML go through `files` (copied, `.ipynb` -> `.html`)."""
    return _SRC_ATTR.sub(lambda m: m.group(1) + files.local_ref(m.group(2)) + m.group(3), text)


def _walk(tokens: Iterable[Token]) -> Iterable[Token]:
    for t in tokens:
        yield t
        if t.children:
            yield from _walk(t.children)


def _prepare(tokens: list[Token], files: SiteFiles) -> None:
    for t in _walk(tokens):
        if t.type == "text":
            t.content = french_spacing(t.content)
        elif t.type == "image":
            t.attrSet("src", files.local_ref(t.attrGet("src") or ""))
        elif t.type == "link_open":
            t.attrSet("href", files.local_ref(t.attrGet("href") or ""))
        elif t.type in ("html_inline", "html_block"):
            t.content = rewrite_html(t.content, files)


def _heading_text(inline: Token) -> str:
    kids = [k for k in inline.children or [] if k.type != "html_inline"]
    return MD.renderer.renderInline(kids, MD.options, {}).strip()


def markdown_to_html(
    text: str, files: SiteFiles, ids: Ids, toc: list[Heading] | None = None
) -> str:
    """Render one Markdown cell. Headings get page-unique ids; h2/h3 are added to `toc`."""
    tokens = MD.parse(text)
    _prepare(tokens, files)
    for i, t in enumerate(tokens):
        if t.type == "heading_open" and t.tag in ("h2", "h3", "h4"):
            plain = "".join(k.content for k in tokens[i + 1].children or [] if k.type == "text")
            ident = ids.unique(slugify(plain))
            t.attrSet("id", ident)
            if toc is not None and t.tag in ("h2", "h3"):
                toc.append(Heading(int(t.tag[1]), ident, _heading_text(tokens[i + 1])))
    return MD.renderer.render(tokens, MD.options, {})


def inline_html(text: str, files: SiteFiles) -> str:
    """Markdown without its paragraph: captions and titles."""
    tokens = MD.parseInline(text)
    _prepare(tokens, files)
    return MD.renderer.render(tokens, MD.options, {}).strip()


def plain_text(text: str) -> str:
    """A title for <title>: Markdown and TeX marks dropped."""
    return re.sub(r"[`*_$\\]|<[^>]+>", "", text).strip()
