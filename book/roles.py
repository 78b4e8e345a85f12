"""d2l roles -> plain Jupyter Markdown, numbered across the book.

    index(sections)                     -> Index: every label, numbered; duplicate labels
    check(section, index)               -> problems: dangling :numref:/:eqref:, bad images
    clashes(sections)                   -> problems: two images given one name
    convert(lines, section, index)      -> (markdown, images to copy)
    split_targets(lines, index)         -> chunks: each figure, table, equation on its own
    target_meta(chunk, section, index)  -> {label, kind, number, ...} for the pages, or None

A local image must be a file inside the chapter's folder (e.g. `img/`); it keeps its path in that
folder beside the notebooks, so two images never share a name and nothing lands outside them.

Numbers: section N is the N-th chapter file of the book; its headings are N, N.1, N.1.1;
figures, tables and equations are N.1, N.2, ... in the order of the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from book import Problem
from book.source import Line, Prose, Section

LABEL = re.compile(r"^\s*:label:`([^`]+)`\s*$")
EQLABEL = re.compile(r"^\s*:eqlabel:`([^`]+)`\s*$")
NUMREF = re.compile(r":numref:`([^`]+)`")
EQREF = re.compile(r":eqref:`([^`]+)`")
CITE = re.compile(r":cite:`([^`]+)`")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+\S")
LARGE_IMAGE = 20 << 20  # bytes: no book figure needs more (a warning above)
WORD = {"section": "Section", "figure": "Figure", "table": "Tableau", "equation": "Équation"}


@dataclass(frozen=True)
class Target:
    kind: str  # section, figure, table, equation
    number: str
    stem: str  # notebook name (chapter file stem)
    path: str
    line: int
    caption: str = ""


@dataclass
class Index:
    targets: dict[str, Target] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _prose_lines(section: Section) -> list[Line]:
    return [ln for b in section.blocks if isinstance(b, Prose) for ln in b.lines if not ln.verbatim]


def index(sections: list[Section]) -> Index:
    """Number every :label: and :eqlabel: of the book (sections in book order)."""
    out = Index()
    for n, section in enumerate(sections, start=1):
        counts = {"figure": 0, "table": 0, "equation": 0}
        heads = [0] * 6
        previous = ""
        for ln in _prose_lines(section):
            text = ln.text
            head = HEADING.match(text)
            if head:
                level = len(head.group(1))
                heads[level - 1] += 1
                heads[level:] = [0] * (6 - level)
            label = LABEL.match(text)
            eqlabel = EQLABEL.match(text)
            if label or eqlabel:
                name = (label or eqlabel).group(1)  # type: ignore[union-attr]
                kind, caption = _kind(previous, bool(eqlabel))
                if kind == "section":
                    parts = [str(n)] + [str(h) for h in heads[1:] if h]
                    number = ".".join(parts)
                else:
                    counts[kind] += 1
                    number = f"{n}.{counts[kind]}"
                if name in out.targets:
                    first = out.targets[name]
                    msg = f"duplicate label '{name}' (first at {first.path}:{first.line})"
                    out.problems.append(Problem(section.path, ln.number, msg))
                else:
                    target = Target(kind, number, section.stem, section.path, ln.number, caption)
                    out.targets[name] = target
            if text.strip():
                previous = text
    return out


def _kind(previous: str, equation: bool) -> tuple[str, str]:
    if equation:
        return "equation", ""
    image = IMAGE.search(previous)
    if image and previous.strip().startswith("!["):
        return "figure", image.group(1)
    if previous.lstrip().startswith("|"):
        return "table", ""
    return "section", ""


def check(section: Section, idx: Index) -> list[Problem]:
    """Dangling references, bad images, misplaced :eqlabel: of one section."""
    problems = [p for p in idx.problems if p.path == section.path]
    previous = ""
    for ln in _prose_lines(section):
        for role, regex in (("numref", NUMREF), ("eqref", EQREF)):
            for name in regex.findall(ln.text):
                if name not in idx.targets:
                    msg = f":{role}:`{name}` refers to no :label: or :eqlabel: in the book"
                    problems.append(Problem(section.path, ln.number, msg))
        if EQLABEL.match(ln.text) and not previous.rstrip().endswith("$$"):
            msg = ":eqlabel: must follow a $$...$$ equation"
            problems.append(Problem(section.path, ln.number, msg))
        if ln.text.strip():
            previous = ln.text
    for line, src in _images(section):
        try:
            file, _ = local_image(section, src)
        except ValueError as err:
            problems.append(Problem(section.path, line, str(err)))
            continue
        size = file.stat().st_size
        if size > LARGE_IMAGE:
            msg = (
                f"image {src} is {size / 2**20:.0f} MB; no figure needs over "
                f"{LARGE_IMAGE >> 20} MB (resize or compress it)"
            )
            problems.append(Problem(section.path, line, msg, warning=True))
    return problems


def clashes(sections: list[Section]) -> list[Problem]:
    """Images of sections in different folders that would get the same name (notebooks of
    every section share one folder)."""
    problems, first = [], {}
    for section in sections:
        for line, src in _images(section):
            try:
                file, dest = local_image(section, src)
            except ValueError:
                continue  # reported by check()
            other, where = first.setdefault(dest, (file, f"{section.path}:{line}"))
            if other != file:
                msg = f"image {src} has the name of another image ({where}: {other}); rename one"
                problems.append(Problem(section.path, line, msg))
    return problems


def _images(section: Section) -> list[tuple[int, str]]:
    """(line, path) of every local image of a section."""
    return [
        (ln.number, src)
        for ln in _prose_lines(section)
        for _caption, src in IMAGE.findall(ln.text)
        if not _is_url(src)
    ]


def _is_url(src: str) -> bool:
    return "://" in src or src.startswith("data:")


def local_image(section: Section, src: str) -> tuple[Path, str]:
    """(file, name beside the notebooks) of an image path written in a chapter.

    The name is the file's path in the chapter's folder (POSIX). ValueError (its message says
    why) when the path is absolute, leads out of the folder, or names no file.
    """
    if Path(src).is_absolute():
        raise ValueError(f"image path must be relative to the chapter's folder: {src}")
    folder = section.file.parent.resolve()
    file = (folder / src).resolve()  # symbolic links followed: where the bytes really are
    if not file.is_relative_to(folder):
        raise ValueError(f"image outside the chapter's folder {folder}: {src}")
    if not file.is_file():
        raise ValueError(f"image not found: {src}")
    return file, file.relative_to(folder).as_posix()


def _link(name: str, target: Target, stem: str) -> str:
    where = f"#{name}" if target.stem == stem else f"{target.stem}.ipynb#{name}"
    if target.kind == "equation":
        return f"[({target.number})]({where})"
    return f"[{WORD[target.kind]} {target.number}]({where})"


def convert(lines: list[Line], section: Section, idx: Index) -> tuple[str, list[tuple[Path, str]]]:
    """Rewrite roles of prose lines; return Markdown and the images (source, dest) to copy."""
    out: list[str] = []
    images: list[tuple[Path, str]] = []
    stem = section.stem

    def ref(match: re.Match[str]) -> str:
        name = match.group(1)
        target = idx.targets.get(name)
        return _link(name, target, stem) if target else match.group(0)

    def image(match: re.Match[str]) -> str:
        caption, src = match.groups()
        if _is_url(src):
            return match.group(0)
        try:
            file, dest = local_image(section, src)
        except ValueError:  # check() reports it; never copied
            return match.group(0)
        images.append((file, dest))
        return f"![{caption}]({dest})"

    for ln in lines:
        text = ln.text
        if ln.verbatim:
            out.append(text)
            continue
        label = LABEL.match(text) or EQLABEL.match(text)
        if label:
            name = label.group(1)
            target = idx.targets.get(name)
            anchor = f'<a id="{name}"></a>'
            if target and target.kind == "equation":
                _tag_equation(out, target.number)
            if target and target.kind in ("figure", "table"):
                caption = f" : {target.caption}" if target.caption else ""
                anchor += f"\n\n*{WORD[target.kind]} {target.number}*{caption}"
            heading = _last_text(out)
            if target and target.kind == "section" and heading is not None:
                out[heading] += f" {anchor}"  # the heading carries its label's anchor
                continue
            out.append(anchor)
            continue
        text = NUMREF.sub(ref, text)
        text = EQREF.sub(ref, text)
        text = CITE.sub(lambda m: f"[{m.group(1)}]", text)
        text = IMAGE.sub(image, text)
        out.append(text)
    return "\n".join(out), images


def _tag_equation(out: list[str], number: str) -> None:
    """Insert \\tag{number} before the closing $$ of the last equation."""
    for k in range(len(out) - 1, -1, -1):
        line = out[k].rstrip()
        if line.endswith("$$"):
            body = line[:-2].rstrip()
            out[k] = f"{body} \\tag{{{number}}}$$" if body and body != "$$" else line
            if not body or body == "$$":
                out[k] = f"\\tag{{{number}}}\n{line}"
            return
        if line:
            return


def _last_text(out: list[str]) -> int | None:
    """Index of the last non-blank line of `out` when it is a heading, else None."""
    for k in range(len(out) - 1, -1, -1):
        if out[k].strip():
            return k if HEADING.match(out[k]) else None
    return None


def _own_target(ln: Line, idx: Index) -> Target | None:
    """The figure, table or equation labelled on this line (None for sections and others)."""
    label = None if ln.verbatim else (LABEL.match(ln.text) or EQLABEL.match(ln.text))
    target = idx.targets.get(label.group(1)) if label else None
    if target is None or target.kind == "section" or target.line != ln.number:
        return None
    return target


def _target_start(lines: list[Line], j: int, kind: str, floor: int) -> int:
    """First line of the figure / table / equation labelled at lines[j]."""
    k = j - 1
    while k >= floor and not lines[k].text.strip():
        k -= 1
    if k < floor:
        return j
    if kind == "table":
        while k > floor and lines[k - 1].text.lstrip().startswith("|"):
            k -= 1
    elif kind == "equation":
        text = lines[k].text.strip()
        if text == "$$" or not text.startswith("$$"):
            k -= 1
            while k > floor and not lines[k].text.lstrip().startswith("$$"):
                k -= 1
    return max(k, floor)


def split_targets(lines: list[Line], idx: Index) -> list[list[Line]]:
    """Cut prose lines so that each numbered figure, table or equation (with its label line)
    is a chunk of its own; the text around them keeps its order."""
    chunks: list[list[Line]] = []
    start = 0
    for j, ln in enumerate(lines):
        target = _own_target(ln, idx)
        if target is None:
            continue
        first = _target_start(lines, j, target.kind, start)
        chunks += [lines[start:first], lines[first : j + 1]]
        start = j + 1
    chunks.append(lines[start:])
    return [chunk for chunk in chunks if chunk]


def _image_name(section: Section, src: str) -> str:
    """Where the image is beside the notebooks (as `convert` writes it)."""
    try:
        return local_image(section, src)[1]
    except ValueError:  # check() reports it
        return src


def target_meta(chunk: list[Line], section: Section, idx: Index) -> dict[str, str] | None:
    """What the pages need of a chunk from `split_targets` that is a figure, table or equation.

    {label, kind, number} and: figure -> image (path beside the notebook, or URL) and caption
    (Markdown); table -> markdown (the table) and caption; equation -> tex (between the $$).
    """
    target = _own_target(chunk[-1], idx) if chunk else None
    if target is None:
        return None
    name = (LABEL.match(chunk[-1].text) or EQLABEL.match(chunk[-1].text)).group(1)  # type: ignore[union-attr]
    meta = {"label": name, "kind": target.kind, "number": target.number}
    body = [ln for ln in chunk[:-1] if ln.text.strip()]
    if target.kind == "equation":
        tex = "\n".join(ln.text for ln in body).strip()
        meta["tex"] = tex.removeprefix("$$").removesuffix("$$").strip()
    elif target.kind == "figure":
        src = IMAGE.search(body[-1].text).group(2) if body else ""  # type: ignore[union-attr]
        meta["image"] = src if _is_url(src) else _image_name(section, src)
        meta["caption"] = convert([Line(target.line, target.caption)], section, idx)[0]
    else:
        meta["markdown"] = convert(body, section, idx)[0]
        meta["caption"] = target.caption
    return meta
