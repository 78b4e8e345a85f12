"""Resolve d2lbook's `if tab.selected('a', 'b'):` branches with `ast`, not regexes.

    select(code, framework) -> code for that framework      (raises BranchError)
    selected_names(code)    -> [(line, name)] of every tab.selected call

A condition is `tab.selected('a', 'b')`, `tab.selected(['a', 'b'])` or an `or` of such calls.
Names of frameworks d2lbook knows but the book does not build (`jax`) are accepted: their branch
is never kept. An unknown name is an error.

The kept branch keeps its comments and formatting: it is cut from the source by the line range
of its ast nodes and dedented to the `if`. Nested and indented forms work; a form that cannot be
resolved (`x = 1 if tab.selected(...) else 2`, `tab.selected(...) and ok`, an `elif` that is not
`tab.selected`) is an error with its line. IPython magics (`%matplotlib inline`) are kept.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from book import KNOWN_FRAMEWORKS, unknown_framework

MAGIC = re.compile(r"^(\s*)[%!]")
ELSE = re.compile(r"^\s*else\s*:")


class BranchError(Exception):
    """`line` counts from 1 in the code given to select()."""

    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message
        super().__init__(f"line {line}: {message}")


def _is_selected(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "selected"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "tab"
    )


def _is_condition(node: ast.AST) -> bool:
    """`tab.selected(...)` or `tab.selected(...) or tab.selected(...) ...`."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        return all(_is_condition(value) for value in node.values)
    return _is_selected(node)


def _calls(node: ast.AST) -> list[ast.Call]:
    if isinstance(node, ast.BoolOp):
        return [call for value in node.values for call in _calls(value)]
    return [node]  # type: ignore[list-item]


def _call_names(call: ast.Call) -> list[ast.expr]:
    """The name arguments: `('a', 'b')` or one list/tuple `(['a', 'b'])`, as d2lbook allows."""
    args = call.args
    if len(args) == 1 and isinstance(args[0], ast.List | ast.Tuple):
        args = args[0].elts
    if not args or call.keywords:
        raise BranchError(call.lineno, "tab.selected() needs framework names as strings")
    return args


def _names(test: ast.expr) -> set[str]:
    names = set()
    for call in _calls(test):
        for arg in _call_names(call):
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise BranchError(arg.lineno, "tab.selected() arguments must be string literals")
            if arg.value not in KNOWN_FRAMEWORKS:
                msg = f"{unknown_framework(arg.value)} in tab.selected"
                raise BranchError(arg.lineno, msg)
            names.add(arg.value)
    return names


def mask_magics(lines: list[str]) -> str:
    """The code with IPython magics (`%...`, `!...`) read as `pass` at the same indentation,
    so that it parses with the same line numbers."""
    return "\n".join(m.group(1) + "pass" if (m := MAGIC.match(line)) else line for line in lines)


def selected_names(code: str) -> list[tuple[int, str]]:
    """(line, name) of each string literal given to a tab.selected call of the code."""
    found = []
    for node in ast.walk(_parse(code.split("\n"))):
        if _is_selected(node):
            for arg in _call_names(node):  # type: ignore[arg-type]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((arg.lineno, arg.value))
    return sorted(found)


def _parse(lines: list[str]) -> ast.Module:
    try:
        return ast.parse(mask_magics(lines))
    except SyntaxError as err:
        raise BranchError(err.lineno or 1, f"syntax error: {err.msg}") from None


def _check_forms(tree: ast.Module) -> ast.If | None:
    """Every tab.selected call must be an `if`/`elif` test; return the first such `if`."""
    allowed: set[int] = set()
    first: ast.If | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_condition(node.test):
            allowed.update(id(call) for call in _calls(node.test))
            if first is None or node.lineno < first.lineno:
                first = node
    for node in ast.walk(tree):
        if _is_selected(node) and id(node) not in allowed:
            msg = "tab.selected() can only be the whole condition of an if/elif"
            raise BranchError(node.lineno, msg)
    return first


def _chain(
    node: ast.If, lines: list[str]
) -> list[tuple[set[str] | None, int, int, list[ast.stmt]]]:
    """if/elif/else -> [(names or None for else, header line, end line, body)], 1-based lines."""
    clauses = []
    current: ast.If = node
    while True:
        names = _names(current.test)  # type: ignore[arg-type]
        orelse = current.orelse
        clauses.append(
            (names, current.lineno, current.test.end_lineno or current.lineno, current.body)
        )
        if not orelse:
            break
        first = orelse[0]
        is_elif = (
            len(orelse) == 1
            and isinstance(first, ast.If)
            and lines[first.lineno - 1].lstrip().startswith("elif")
        )
        if is_elif:
            if not _is_condition(first.test):  # type: ignore[union-attr]
                msg = "elif mixes another condition into a tab.selected chain"
                raise BranchError(first.lineno, msg)
            current = first  # type: ignore[assignment]
            continue
        # The nearest `else:` at or above the first statement (`else: y = 3` is one line).
        else_line = next(k for k in range(first.lineno, 0, -1) if ELSE.match(lines[k - 1]))
        clauses.append((None, else_line, else_line, orelse))
        break
    return clauses


def _in_strings(lines: list[str]) -> set[int]:
    """Lines (1-based) that begin inside a string literal: re-indenting one changes its value."""
    rows: set[int] = set()
    fstrings: list[int] = []  # Python 3.12+: an f-string is several tokens
    for token in tokenize.generate_tokens(io.StringIO(mask_magics(lines)).readline):
        kind = tokenize.tok_name[token.type]
        if kind == "FSTRING_START":
            fstrings.append(token.start[0])
        elif kind == "FSTRING_END":
            rows.update(range(fstrings.pop() + 1, token.end[0] + 1))
        elif token.type == tokenize.STRING:
            rows.update(range(token.start[0] + 1, token.end[0] + 1))
    return rows


def _body_text(lines: list[str], header_end: int, body: list[ast.stmt], indent: str) -> list[str]:
    """The body's source lines (comments kept), re-indented to `indent`; the lines inside a
    string literal are kept as they are."""
    end = body[-1].end_lineno or body[-1].lineno
    strings = _in_strings(lines)
    if body[0].lineno == header_end:  # `if tab.selected('x'): do()` on one line
        first = lines[header_end - 1][body[0].col_offset :]
        first = first if header_end + 1 in strings else first.rstrip()
        return [indent + first] + lines[header_end:end]
    width = body[0].col_offset
    out = []
    for row in range(header_end + 1, end + 1):
        line = lines[row - 1]
        if row in strings:
            out.append(line)
        elif not line.strip():
            out.append("")
        elif line[:width].strip():  # a comment less indented than the body
            out.append(indent + line.lstrip())
        else:
            out.append(indent + line[width:])
    return out


def _resolve_one(lines: list[str], node: ast.If, framework: str, alone: bool) -> list[str]:
    clauses = _chain(node, lines)
    indent = lines[node.lineno - 1][: node.col_offset]
    kept: list[str] = []
    for names, _header, header_end, body in clauses:
        if names is None or framework in names:
            kept = _body_text(lines, header_end, body, indent)
            break
    end = node.end_lineno or node.lineno
    if not kept and alone:
        kept = [indent + "pass"]  # the `if` was alone in its block
    return lines[: node.lineno - 1] + kept + lines[end:]


def _parents(tree: ast.Module) -> dict[int, list[ast.stmt]]:
    """id(statement) -> the statement list holding it."""
    out: dict[int, list[ast.stmt]] = {}
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, name, None)
            if isinstance(block, list):
                for child in block:
                    out[id(child)] = block
    return out


def select(code: str, framework: str) -> str:
    """Keep, for `framework`, the branches of every `if tab.selected(...)`; drop the others."""
    if "tab.selected" not in code:
        return code
    lines = code.split("\n")
    # Resolve the last `if` first (inner before outer), re-parsing after each edit.
    tree = _parse(lines)
    _check_forms(tree)
    for node in ast.walk(tree):  # validate every chain before any line moves
        if isinstance(node, ast.If) and _is_condition(node.test):
            _chain(node, lines)
    while True:
        tree = _parse(lines)
        node = _last(tree, lines)
        if node is None:
            break
        parents = _parents(tree)
        alone = parents.get(id(node)) is not tree.body and len(parents.get(id(node), [])) == 1
        lines = _resolve_one(lines, node, framework, alone)
    return "\n".join(lines).strip("\n")


def _last(tree: ast.Module, lines: list[str]) -> ast.If | None:
    """The last `if tab.selected` (not an `elif`) of the code."""
    elifs = {
        id(node.orelse[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and len(node.orelse) == 1
        and isinstance(node.orelse[0], ast.If)
        and lines[node.orelse[0].lineno - 1].lstrip().startswith("elif")
    }
    found: ast.If | None = None
    for node in ast.walk(tree):
        selected = isinstance(node, ast.If) and _is_condition(node.test) and id(node) not in elifs
        if selected and (found is None or node.lineno > found.lineno):
            found = node  # type: ignore[assignment]
    return found
