"""TeX -> MathML at build time, so that pages typeset formulas with no script and no network.

Chromium renders MathML Core natively. latex2mathml does the conversion; this module adds what
MathML Core needs on top of it:

- `\\tag{N}` is taken out of the formula and returned as the equation number (shown beside it);
- `aligned`, `gathered` and a bare `\\\\` become `align*`/`array` tables (MathML Core has no
  line breaking);
- `mathvariant="bold"` and friends, which MathML Core ignores, become the Unicode mathematical
  alphanumeric characters (bold W is U+1D416).
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_TAG = re.compile(r"\\tag\*?\s*\{([^{}]*)\}")
_LABEL = re.compile(r"\\label\s*\{[^{}]*\}")
_ENV_RENAMES = {
    ("begin", "aligned"): r"\begin{align*}",
    ("end", "aligned"): r"\end{align*}",
    ("begin", "gathered"): r"\begin{array}{c}",
    ("end", "gathered"): r"\end{array}",
}
_ENV = re.compile(r"\\(begin|end)\{(aligned|gathered)\}")
_MATHVARIANT = re.compile(r'<(mi|mn) mathvariant="([a-z-]+)">([^<]*)</(?:mi|mn)>')

# Start of each alphabet in the Mathematical Alphanumeric Symbols block (U+1D400...), and the
# letters that live elsewhere (Letterlike Symbols) for historical reasons.
_ALPHABETS = {
    "bold": (0x1D400, 0x1D41A, 0x1D7CE),
    "italic": (0x1D434, 0x1D44E, None),
    "bold-italic": (0x1D468, 0x1D482, None),
    "script": (0x1D49C, 0x1D4B6, None),
    "bold-script": (0x1D4D0, 0x1D4EA, None),
    "fraktur": (0x1D504, 0x1D51E, None),
    "double-struck": (0x1D538, 0x1D552, 0x1D7D8),
    "bold-fraktur": (0x1D56C, 0x1D586, None),
    "sans-serif": (0x1D5A0, 0x1D5BA, 0x1D7E2),
    "bold-sans-serif": (0x1D5D4, 0x1D5EE, 0x1D7EC),
    "monospace": (0x1D670, 0x1D68A, 0x1D7F6),
}
_EXCEPTIONS = {
    "italic": {"h": "\u210e"},
    "script": dict(
        zip(
            "BEFHILMRego",
            "\u212c\u2130\u2131\u210b\u2110\u2112\u2133\u211b\u212f\u210a\u2134",
            strict=True,
        )
    ),
    "fraktur": dict(zip("CHIRZ", "\u212d\u210c\u2111\u211c\u2128", strict=True)),
    "double-struck": dict(
        zip("CHNPQRZ", "\u2102\u210d\u2115\u2119\u211a\u211d\u2124", strict=True)
    ),
}
_GREEK_BOLD = {"bold": 0x1D6A8, "bold-italic": 0x1D71C}  # capital Alpha; small alpha is +26


def _map_char(ch: str, variant: str) -> str:
    special = _EXCEPTIONS.get(variant, {})
    if ch in special:
        return special[ch]
    upper, lower, digits = _ALPHABETS[variant]
    if "A" <= ch <= "Z":
        return chr(upper + ord(ch) - ord("A"))
    if "a" <= ch <= "z":
        return chr(lower + ord(ch) - ord("a"))
    if digits is not None and "0" <= ch <= "9":
        return chr(digits + ord(ch) - ord("0"))
    if variant in _GREEK_BOLD and ("\u0391" <= ch <= "\u03a9" or "\u03b1" <= ch <= "\u03c9"):
        base = _GREEK_BOLD[variant]
        return chr(base + ord(ch) - 0x391 if ch <= "\u03a9" else base + 26 + ord(ch) - 0x3B1)
    return ch


def _unicode_variants(mathml: str) -> str:
    """Replace `<mi mathvariant="bold">W</mi>` (ignored by MathML Core) by `<mi>𝐖</mi>`."""

    def repl(m: re.Match[str]) -> str:
        tag, variant, text = m.groups()
        if variant not in _ALPHABETS:
            return m.group(0)
        mapped = "".join(_map_char(ch, variant) for ch in html.unescape(text))
        return f"<{tag}>{html.escape(mapped, quote=False)}</{tag}>"

    return _MATHVARIANT.sub(repl, mathml)


def split_tag(tex: str) -> tuple[str, str | None]:
    """Remove `\\tag{N}` (and `\\label{...}`) from a formula; return (tex, N or None)."""
    tags = _TAG.findall(tex)
    tex = _LABEL.sub("", _TAG.sub("", tex))
    return tex.strip(), (tags[-1].strip() if tags else None)


def _prepare(tex: str, display: bool) -> str:
    tex = _ENV.sub(lambda m: _ENV_RENAMES[m.group(1), m.group(2)], tex)
    if display and "\\\\" in tex and "\\begin" not in tex:
        tex = f"\\begin{{array}}{{c}}{tex}\\end{{array}}"
    return tex


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """One formula (without `$`) as a `<math>` element; the TeX source is kept as annotation.

    A formula latex2mathml cannot read is shown as TeX in a `<code class="tex-error">`, so that
    one typo does not stop the whole book.
    """
    try:
        mathml = convert(_prepare(tex, display), display="block" if display else "inline")
    except Exception:  # latex2mathml raises many types (its own, IndexError, KeyError, ...)
        return f'<code class="tex-error" title="TeX non reconnu">{html.escape(tex)}</code>'
    mathml = _unicode_variants(mathml)
    # Keep the source for copy/paste and screen readers; drop the redundant xmlns (HTML5).
    annotation = f'<annotation encoding="application/x-tex">{html.escape(tex.strip())}</annotation>'
    mathml = mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1)
    head, _, _ = mathml.partition(">")
    inner = mathml[len(head) + 1 : -len("</math>")]
    return f"{head}><semantics><mrow>{inner}</mrow>{annotation}</semantics></math>"


def equation_html(tex: str, anchor: str | None = None, number: str | None = None) -> str:
    """Display math: the formula centred, its number on the right.

    `number` comes from the notebook's metadata (a labelled equation); without it, a `\\tag{N}`
    written in the formula is the number.
    """
    body, tagged = split_tag(tex)
    number = number or tagged
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    number_html = f'<span class="eqno">({html.escape(number)})</span>' if number else ""
    return f'<span class="equation"{ident}>{tex_to_mathml(body, display=True)}{number_html}</span>'
