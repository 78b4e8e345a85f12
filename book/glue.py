"""Glue: values recorded by code cells (`d2l.glue(name, value)`), shown where prose names them.

    roles(lines)                  -> [(line, name)] of :glue:`name` in prose lines
    calls(code)                   -> [Call]: the d2l.glue(...) calls of a code cell, by line
    check(section, frameworks)    -> problems: a name no cell records, a name not literal...
    recorded(nb)                  -> {name: text} from an executed notebook's outputs
    fill(markdown, values)        -> the Markdown with the values (a placeholder where none)
    apply(nb)                     -> [(line, name)] not recorded; prose filled with nb's values
    inline_html(markdown, values) -> the Markdown with one HTML span per framework (pages)

A prose cell that names a glued value keeps its Markdown with the roles in
`metadata.d2l.glue = {"markdown": ..., "roles": [[line, name], ...]}` (book/notebook.py): the
generated notebook shows the values of the book's reference run (chapters/outputs/, written by
`build.py outputs`), the executed notebook its own values, and the pages each framework's value.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass
from typing import Any

from book import DISPLAY_NAME, Problem
from book.branches import BranchError, mask_magics, select
from book.source import Code, Line, Prose, Section, frameworks_of

ROLE = re.compile(r":glue:`([^`]*)`")
NAME = re.compile(r"[a-z][a-z0-9_]*")
MIME = "application/vnd.d2l.glue+json"  # d2l_shim._common.glue.GLUE_MIME (a test compares)
NAME_RULE = "[a-z][a-z0-9_]*"
# The header of a generated notebook says where the values in its prose come from.
REFERENCE_NOTE = (
    "*Les valeurs citées dans le texte viennent de l'exécution de référence du livre ; en "
    "exécutant le notebook, chaque cellule qui les calcule affiche la vôtre (`nom = valeur`).*"
)
RUN_NOTE = "*Les valeurs citées dans le texte sont celles de cette exécution du notebook.*"


def roles(lines: list[Line]) -> list[tuple[int, str]]:
    """(chapter line, name) of every :glue:`name` of these prose lines (verbatim ones skipped)."""
    return [(ln.number, m) for ln in lines if not ln.verbatim for m in ROLE.findall(ln.text)]


def in_math(text: str, start: int) -> bool:
    """Whether position `start` of a line lies between `$` signs (inline or display math on
    that line): a value there could not switch with the framework tabs of the pages."""
    before = text[:start].replace("\\$", "")
    return before.count("$$") % 2 == 1 or before.replace("$$", "").count("$") % 2 == 1


@dataclass(frozen=True)
class Call:
    line: int  # line in the cell's code, from 1
    name: str | None  # the literal name; None when it is not a literal string
    problem: str = ""  # why the call is wrong, for `build.py check`


def _is_glue(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "glue") or (
        isinstance(func, ast.Name) and func.id == "glue"
    )


def calls(code: str) -> list[Call]:
    """The glue(...) / d2l.glue(...) calls of a code cell, in line order; [] if it does not
    parse (other checks and the run report that)."""
    try:
        tree = ast.parse(mask_magics(code.split("\n")))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_glue(node)):
            continue
        arg = (
            node.args[0]
            if node.args
            else next((k.value for k in node.keywords if k.arg == "name"), None)
        )
        if arg is None:
            found.append(Call(node.lineno, None, "glue(...) without a name"))
        elif not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            why = (
                f"glue's name must be a literal string, e.g. d2l.glue('val_ppl', ppl), not "
                f"`{ast.unparse(arg)}`: the build reads the names in the code to check the "
                "prose's :glue: references"
            )
            found.append(Call(node.lineno, None, why))
        elif not NAME.fullmatch(arg.value):
            why = f"glue name {arg.value!r} must match {NAME_RULE}"
            found.append(Call(node.lineno, arg.value, why))
        else:
            found.append(Call(node.lineno, arg.value))
    return sorted(found, key=lambda c: c.line)


def _line(block: Code, code: str, k: int) -> int:
    """Chapter line of line k of the framework's code (exact when no branch moved a line)."""
    return block.chapter_line(k) if code == block.code else block.code_line + k - 1


def _names_list(frameworks: list[str]) -> str:
    return ", ".join(DISPLAY_NAME.get(fw, fw) for fw in frameworks)


def check(section: Section, frameworks: tuple[str, ...]) -> list[Problem]:
    """Every :glue:`name` of the prose is recorded by a code cell of the section, for each
    framework that the prose is shown to; glue calls name their value with a literal string
    that matches the rule; one cell per name and framework (so the prose shows one value)."""
    checked = [fw for fw in frameworks if fw in frameworks_of(section)]
    found: dict[tuple[int, str], list[str]] = {}  # (line, message) -> frameworks

    def report(line: int, message: str, fw: str) -> None:
        found.setdefault((line, message), []).append(fw)

    recorded: dict[str, dict[str, int]] = {fw: {} for fw in checked}  # fw -> name -> line
    for block in section.blocks:
        if not isinstance(block, Code) or "glue" not in block.code:
            continue
        for fw in (f for f in checked if f in block.frameworks):
            try:
                code = select(block.code, fw)
            except BranchError:  # reported by check_section
                continue
            names_here: set[str] = set()
            for call in calls(code):
                line = _line(block, code, call.line)
                if call.problem:
                    report(line, call.problem, fw)
                if call.name is None or call.name in names_here:
                    continue  # several calls in one cell (an if/else) record one value
                names_here.add(call.name)
                first = recorded[fw].setdefault(call.name, line)
                if first != line:
                    msg = (
                        f"glue name '{call.name}' is already recorded by the cell at line "
                        f"{first}: one cell per name, so that the prose shows one value"
                    )
                    report(line, msg, fw)
    for block in section.blocks:
        if not isinstance(block, Prose):
            continue
        for ln in block.lines:
            for m in [] if ln.verbatim else ROLE.finditer(ln.text):
                if in_math(ln.text, m.start()):
                    msg = f":glue:`{m.group(1)}` inside $...$: put the value outside the formula"
                    report(ln.number, msg, "")
        for line, name in roles(block.lines):
            if not NAME.fullmatch(name):
                report(line, f":glue:`{name}`: a glue name must match {NAME_RULE}", "")
                continue
            for fw in (f for f in checked if f in block.frameworks):
                if name not in recorded[fw]:
                    msg = (
                        f":glue:`{name}`: no code cell of this section records '{name}' "
                        f"(d2l.glue('{name}', value))"
                    )
                    report(line, msg, fw)
    problems = []
    for (line, message), fws in found.items():
        some = [fw for fw in fws if fw]
        if some and len(some) < len(checked):
            message += f" [{_names_list(some)}]"
        problems.append(Problem(section.path, line, message))
    return problems


def recorded(nb: dict[str, Any]) -> dict[str, str]:
    """{name: text} glued by the run of an executed notebook (the last value of a name wins)."""
    values = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {}).get(MIME)
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                values[data["name"]] = str(data.get("text", ""))
    return values


def placeholder(name: str) -> str:
    """What the prose shows where a value is unknown (never computed, or not recorded)."""
    return f"`{name}`"


def fill(markdown: str, values: dict[str, str]) -> str:
    """The Markdown with each :glue:`name` replaced by its value (`name` where it has none)."""
    return ROLE.sub(lambda m: values.get(m.group(1), placeholder(m.group(1))), markdown)


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


def apply(nb: dict[str, Any], values: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """Fill the prose of a notebook, in place, with `values` (default: those its own run
    recorded); the header then says the values are this run's. Returns the (chapter line,
    name) of the references to names the run did not record."""
    values = recorded(nb) if values is None else values
    missing, glued = [], False
    for cell in nb["cells"]:
        glue = cell.get("metadata", {}).get("d2l", {}).get("glue")
        if cell.get("cell_type") != "markdown" or not glue:
            continue
        glued = True
        cell["source"] = fill(glue["markdown"], values)
        missing += [(line, name) for line, name in glue["roles"] if name not in values]
    for cell in nb["cells"] if glued else ():
        if cell.get("metadata", {}).get("d2l", {}).get("generated") == "header":
            cell["source"] = _text(cell["source"]).replace(REFERENCE_NOTE, RUN_NOTE)
    return missing


def inline_html(
    markdown: str, values: dict[str, dict[str, str]], frameworks: list[str] | tuple[str, ...]
) -> str:
    """The Markdown with each :glue:`name` as inline HTML for the pages: the value of each of
    `frameworks` (values: framework -> {name: text}) in a span shown with that framework's tab
    (book.js: data-show-for), the first one visible without JavaScript; one span when they
    all agree."""

    def span(name: str) -> str:
        texts = {fw: values.get(fw, {}).get(name, placeholder(name)) for fw in frameworks}
        if len(set(texts.values())) == 1:
            where = _names_list(list(frameworks))
            return _span(next(iter(texts.values())), f"valeur calculée par le code ({where})")
        return "".join(
            _span(text, f"valeur calculée par le code {DISPLAY_NAME.get(fw, fw)}", fw, k > 0)
            for k, (fw, text) in enumerate(texts.items())
        )

    return ROLE.sub(lambda m: span(m.group(1)), markdown)


def _span(text: str, title: str, framework: str | None = None, hidden: bool = False) -> str:
    show = f' data-show-for="{framework}"' if framework else ""
    return (
        f'<span class="glue"{show} title="{html.escape(title)}"{" hidden" if hidden else ""}>'
        f"{text}</span>"
    )
