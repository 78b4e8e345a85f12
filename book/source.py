"""Read a chapter and split it into prose and code blocks (d2lbook conventions).

    read_chapter(path) -> text          bytes -> str, a Problem on non-UTF-8 bytes
    parse(text, path)  -> Section       blocks in order; BuildError lists every problem

A code block is a ```{.python .input ...} fence whose first line is `%%tab NAMES`; the cell with
`%load_ext d2lbook.tab` is dropped. Other fences stay prose, verbatim. Prose between
:begin_tab:`NAMES` and :end_tab: is kept for those frameworks only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from book import FRAMEWORKS, BuildError, Problem

FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(.*?)\s*$")
PY_INFO = re.compile(r"^\{\s*\.python\s+\.input\b([^}]*)\}$")
ATTR = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
TAB_LINE = re.compile(r"^%%tab\b(.*)$")
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
    code: str  # cell code without the %%tab line
    code_line: int  # chapter line of the code's first line
    frameworks: tuple[str, ...]
    output: str | None = None  # "check", "ignore" or None
    save: bool = False  # first comment is #@save


@dataclass
class Section:
    path: str  # as shown in messages and metadata
    file: Path  # where it is on disk
    blocks: list[Prose | Code] = field(default_factory=list)

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


def parse_names(spec: str, path: str, line: int, problems: list[Problem]) -> tuple[str, ...]:
    """'mxnet, pytorch' or 'all' -> frameworks in canonical order; unknown names are problems."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return FRAMEWORKS
    if not names:
        problems.append(Problem(path, line, f"no framework named (use one of {_choices()})"))
    for name in names:
        if name not in FRAMEWORKS:
            problems.append(Problem(path, line, f"unknown framework '{name}' ({_choices()})"))
    return tuple(f for f in FRAMEWORKS if f in names)


def _choices() -> str:
    return ", ".join(FRAMEWORKS) + " or all"


def _code_block(
    body: list[str], fence_line: int, attrs: str, path: str, problems: list[Problem]
) -> Code | None:
    """A ```{.python .input} fence -> Code, or None for the dropped d2lbook.tab cell."""
    text = "\n".join(body)
    if "%load_ext d2lbook.tab" in text or "tab.interact_select(" in text:
        return None
    options = dict(ATTR.findall(attrs))
    output = options.get("output")
    if output is not None and output not in OUTPUT_MODES:
        msg = f'output="{output}" is not one of {", ".join(OUTPUT_MODES)}'
        problems.append(Problem(path, fence_line, msg))
        output = None
    match = TAB_LINE.match(body[0]) if body else None
    if match is None:
        msg = "code cell without `%%tab NAMES` first line (e.g. `%%tab pytorch` or `%%tab all`)"
        problems.append(Problem(path, fence_line + 1 if body else fence_line, msg))
        return None
    frameworks = parse_names(match.group(1), path, fence_line + 1, problems)
    rest = body[1:]
    skipped = next((k for k, text in enumerate(rest) if text.strip()), len(rest))
    code = "\n".join(rest[skipped:]).rstrip()
    first = code.lstrip().split("\n", 1)[0] if code else ""
    save = first.startswith("#@save")
    return Code(fence_line, code, fence_line + 2 + skipped, frameworks, output, save)


def parse(text: str, path: str, file: Path | None = None) -> Section:
    """Split a chapter into blocks; raise BuildError with every problem found."""
    section = Section(path, file or Path(path))
    problems: list[Problem] = []
    lines = text.split("\n")
    if not text.strip():
        raise BuildError([Problem(path, 1, "empty chapter")])
    prose: list[Line] = []
    tab: tuple[tuple[str, ...], int] | None = None  # (frameworks, line of :begin_tab:)

    def flush() -> None:
        if prose:
            section.blocks.append(Prose(list(prose), tab[0] if tab else FRAMEWORKS))
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
                block = _code_block(lines[i + 1 : end], number, info.group(1), path, problems)
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
            tab = (parse_names(begin.group(1), path, number, problems), number)
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
    return section


def _closes(line: str, marker: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(marker) and set(stripped) == {marker[0]}


def load(file: Path, shown: str) -> Section:
    """read_chapter + parse."""
    return parse(read_chapter(file, shown), shown, file)
