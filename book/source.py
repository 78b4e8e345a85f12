"""Read a chapter and split it into prose and code blocks (d2lbook conventions).

    read_chapter(path) -> text          bytes -> str, a Problem on non-UTF-8 bytes
    parse(text, path)  -> Section       blocks in order; BuildError lists every problem

    frameworks_of(section) -> frameworks that get a notebook

A code block is a ```{.python .input ...} fence whose first non-blank line is `%%tab NAMES` or
`#@tab NAMES`; other `#@tab` lines in it are dropped, and so is the cell with
`%load_ext d2lbook.tab`. Other fences stay prose, verbatim. Prose between :begin_tab:`NAMES` and
:end_tab: is kept for those frameworks only. d2lbook's slide marks are removed from prose
(`(**x**)` and `[**x**]` -> x, `(~~x~~)` and `[~~x~~]` -> nothing) and an image whose caption
spans several lines is joined into one line.

NAMES may include frameworks d2lbook knows but this book does not build (`jax`): their cells,
:begin_tab: blocks and tab.selected branches are dropped, with one note per chapter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from book import FRAMEWORKS, KNOWN_FRAMEWORKS, BuildError, Problem, unknown_framework
from book.branches import BranchError, selected_names
from book.savecheck import SAVE

FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(.*?)\s*$")
PY_INFO = re.compile(r"^\{\s*\.python\s+\.input\b([^}]*)\}$")
ATTR = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
TAB_LINE = re.compile(r"^\s*(?:%%tab|#\s*@tab)\b(.*)$")
INNER_TAB = re.compile(r"^\s*#\s*@tab\b")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)\s]+\)")


def _pair(opening: str, closing: str) -> str:
    """opening TEXT closing, TEXT the shortest within one paragraph, without another opening."""
    o, c = re.escape(opening), re.escape(closing)
    return rf"{o}((?:(?!\n[ \t]*\n|{o}).)*?){c}"


# d2lbook's slide marks: (**x**), [**x**] keep x (not [**x**](link)); (~~x~~), [~~x~~] drop it.
SLIDE_KEEP = re.compile(_pair("(**", "**)") + "|" + _pair("[**", "**]") + r"(?!\()", re.S)
SLIDE_DROP = re.compile(_pair("(~~", "~~)") + "|" + _pair("[~~", "~~]"), re.S)
BEGIN_TAB = re.compile(r"^\s*:begin_tab:`([^`]*)`\s*$")
END_TAB = re.compile(r"^\s*:end_tab:\s*$")
OUTPUT_MODES = ("check", "ignore")


@dataclass
class Line:
    """One prose line; `verbatim` lines (inside a non-Python fence) are never rewritten."""

    number: int
    text: str
    verbatim: bool = False


@dataclass
class Prose:
    lines: list[Line]
    frameworks: tuple[str, ...] = FRAMEWORKS


@dataclass
class Code:
    fence_line: int  # chapter line of the opening fence
    code: str  # cell code without the %%tab line (nor other #@tab lines)
    code_line: int  # chapter line of the code's first line
    frameworks: tuple[str, ...]
    output: str | None = None  # "check", "ignore" or None
    save: bool = False  # has a #@save mark (book/savecheck.py finds what it marks)
    all_tab: bool = False  # tagged `all` (names no framework of its own)
    lines: tuple[int, ...] = ()  # chapter line of each code line, when some were dropped

    def chapter_line(self, k: int) -> int:
        """Chapter line of line k (from 1) of `code`."""
        return self.lines[k - 1] if 0 < k <= len(self.lines) else self.code_line + k - 1


@dataclass
class Section:
    path: str  # as shown in messages and metadata
    file: Path  # where it is on disk
    blocks: list[Prose | Code] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # frameworks dropped (one note)

    @property
    def stem(self) -> str:
        return self.file.stem


def read_chapter(file: Path, shown: str) -> str:
    """Decode a chapter as UTF-8 (CRLF -> LF); raise BuildError naming the first bad byte."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = data[err.start]
        msg = f"not valid UTF-8: byte 0x{bad:02x} at column {column} (save the file as UTF-8)"
        raise BuildError([Problem(shown, line, msg)]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


Dropped = list[tuple[int, str, str]]  # (chapter line, framework not built, what was dropped)


def parse_names(
    spec: str, path: str, line: int, problems: list[Problem], dropped: Dropped | None = None
) -> tuple[str, ...]:
    """'mxnet, pytorch' or 'all' -> built frameworks in tab order; unknown names are problems.

    Names of frameworks the book does not build go to `dropped` as (line, name, "")."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return FRAMEWORKS
    if not names:
        msg = f"no framework named (use one of {', '.join(FRAMEWORKS)} or all)"
        problems.append(Problem(path, line, msg))
    for name in names:
        if name not in KNOWN_FRAMEWORKS:
            problems.append(Problem(path, line, unknown_framework(name)))
        elif name not in FRAMEWORKS and dropped is not None:
            dropped.append((line, name, ""))
    return tuple(f for f in FRAMEWORKS if f in names)


def _code_block(
    body: list[str],
    fence_line: int,
    attrs: str,
    path: str,
    problems: list[Problem],
    dropped: Dropped,
) -> Code | None:
    """A ```{.python .input} fence -> Code; None for the d2lbook.tab cell and cells of
    frameworks not built (those go to `dropped`)."""
    text = "\n".join(body)
    if "%load_ext d2lbook.tab" in text or "tab.interact_select(" in text:
        return None
    options = dict(ATTR.findall(attrs))
    output = options.get("output")
    if output is not None and output not in OUTPUT_MODES:
        msg = f'output="{output}" is not one of {", ".join(OUTPUT_MODES)}'
        problems.append(Problem(path, fence_line, msg))
        output = None
    tag = next((k for k, text in enumerate(body) if text.strip()), len(body))
    match = TAB_LINE.match(body[tag]) if tag < len(body) else None
    if match is None:
        msg = "code cell without `%%tab NAMES` first line (e.g. `%%tab pytorch` or `%%tab all`)"
        line = fence_line + 1 + tag if tag < len(body) else fence_line + bool(body)
        problems.append(Problem(path, line, msg))
        return None
    tag_line = fence_line + 1 + tag
    named: Dropped = []
    frameworks = parse_names(match.group(1), path, tag_line, problems, named)
    if not frameworks:
        dropped += [(line, name, "code cell") for line, name, _ in named]
        return None
    # Code lines with their chapter lines; other `#@tab` lines are dropped, blank ones trimmed.
    rows = [(tag_line + 1 + k, t) for k, t in enumerate(body[tag + 1 :]) if not INNER_TAB.match(t)]
    while rows and not rows[0][1].strip():
        rows.pop(0)
    while rows and not rows[-1][1].strip():
        rows.pop()
    code = "\n".join(t for _, t in rows).rstrip()
    first = rows[0][0] if rows else tag_line + 1
    numbers = tuple(n for n, _ in rows)
    shifted = numbers != tuple(range(first, first + len(numbers)))
    all_tab = match.group(1).strip() == "all"
    save = bool(SAVE.search(code))
    block = Code(fence_line, code, first, frameworks, output, save, all_tab)
    block.lines = numbers if shifted else ()
    _dropped_branches(block, dropped)
    return block


def _dropped_branches(block: Code, dropped: Dropped) -> None:
    """tab.selected(...) names of frameworks not built (the branch is never kept)."""
    if "tab.selected" not in block.code:
        return
    try:
        names = selected_names(block.code)
    except BranchError:
        return  # reported by `check` with its line
    for line, name in names:
        if name in KNOWN_FRAMEWORKS and name not in FRAMEWORKS:
            dropped.append((block.chapter_line(line), name, "tab.selected branch"))


def _note(path: str, dropped: Dropped) -> list[Problem]:
    """One note per chapter for everything dropped."""
    if not dropped:
        return []
    names = sorted({name for _, name, _ in dropped})
    counts = {what: sum(w == what for _, _, w in dropped) for _, _, what in dropped}
    what = ", ".join(f"{n} {_plural(w, n)}" for w, n in counts.items())
    msg = (
        f"{', '.join(names)} not built (this book builds {', '.join(FRAMEWORKS)}, "
        f"pyproject.toml [tool.book]): dropped {what}"
    )
    return [Problem(path, min(line for line, _, _ in dropped), msg, warning=True, note=True)]


def _plural(word: str, n: int) -> str:
    if n == 1:
        return word
    return word + "es" if word.endswith("ch") else word + "s"


def frameworks_of(section: Section) -> tuple[str, ...]:
    """The frameworks that get a notebook: those a code cell's tag names; every built
    framework when no code cell names one (only `all` cells, or no code at all)."""
    named = [b for b in section.blocks if isinstance(b, Code) and not b.all_tab]
    if not named:
        return FRAMEWORKS
    return tuple(fw for fw in FRAMEWORKS if any(fw in b.frameworks for b in named))


def _strip_slide_marks(lines: list[Line]) -> None:
    """Remove d2lbook's slide marks from runs of rewritable lines (line numbers unchanged)."""
    k = 0
    while k < len(lines):
        end = next((j for j in range(k, len(lines)) if lines[j].verbatim), len(lines))
        text = "\n".join(ln.text for ln in lines[k:end])
        if "**" in text or "~~" in text:
            text = SLIDE_KEEP.sub(lambda m: m.group(1) or m.group(2) or "", text)
            text = SLIDE_DROP.sub(lambda m: "\n" * m.group(0).count("\n"), text)
            for ln, new in zip(lines[k:end], text.split("\n"), strict=True):
                ln.text = new
        k = end + 1


def _join_images(lines: list[Line]) -> list[Line]:
    """An image whose caption spans lines (`![two\nlines](x.svg)`) -> one line, as if written so."""
    out: list[Line] = []
    k = 0
    while k < len(lines):
        ln = lines[k]
        k += 1
        if ln.verbatim or "![" not in ln.text or IMAGE.search(ln.text):
            out.append(ln)
            continue
        text, j = ln.text, k
        while j < len(lines) and lines[j].text.strip() and not lines[j].verbatim:
            text += " " + lines[j].text.strip()
            j += 1
            image = IMAGE.search(text)
            if image and image.start() < len(ln.text):  # the image begun on the first line
                out.append(Line(ln.number, text))
                k = j
                break
        else:
            out.append(ln)
    return out


def parse(text: str, path: str, file: Path | None = None) -> Section:
    """Split a chapter into blocks; raise BuildError with every problem found."""
    section = Section(path, file or Path(path))
    problems: list[Problem] = []
    lines = text.split("\n")
    if not text.strip():
        raise BuildError([Problem(path, 1, "empty chapter")])
    prose: list[Line] = []
    dropped: Dropped = []
    tab: tuple[tuple[str, ...], int] | None = None  # (frameworks, line of :begin_tab:)

    def flush() -> None:
        if prose:
            _strip_slide_marks(prose)
            lines = _join_images(prose)
            section.blocks.append(Prose(lines, tab[0] if tab else FRAMEWORKS))
            prose.clear()

    i = 0
    while i < len(lines):
        number, line = i + 1, lines[i]
        fence = FENCE.match(line)
        if fence:
            marker = fence.group(1)
            end = next(
                (j for j in range(i + 1, len(lines)) if _closes(lines[j], marker)),
                None,
            )
            if end is None:
                problems.append(Problem(path, number, f"unclosed code fence {marker}"))
                break
            info = PY_INFO.match(fence.group(2))
            if info:
                flush()
                body = lines[i + 1 : end]
                block = _code_block(body, number, info.group(1), path, problems, dropped)
                if block is not None:
                    section.blocks.append(block)
            else:
                prose.extend(Line(k + 1, lines[k], True) for k in range(i, end + 1))
            i = end + 1
            continue
        begin = BEGIN_TAB.match(line)
        if begin:
            if tab is not None:
                msg = f":begin_tab: inside another one (opened line {tab[1]}, no :end_tab:)"
                problems.append(Problem(path, number, msg))
            flush()
            named: Dropped = []
            tab = (parse_names(begin.group(1), path, number, problems, named), number)
            if not tab[0]:
                dropped += [(line, name, ":begin_tab: block") for line, name, _ in named]
        elif END_TAB.match(line):
            if tab is None:
                problems.append(Problem(path, number, ":end_tab: without :begin_tab:"))
            flush()
            tab = None
        else:
            prose.append(Line(number, line))
        i += 1
    if tab is not None:
        problems.append(Problem(path, tab[1], "unclosed :begin_tab: (no :end_tab:)"))
    flush()
    if problems:
        raise BuildError(problems)
    section.notes = _note(path, dropped)
    return section


def _closes(line: str, marker: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(marker) and set(stripped) == {marker[0]}


def load(file: Path, shown: str) -> Section:
    """read_chapter + parse."""
    return parse(read_chapter(file, shown), shown, file)
