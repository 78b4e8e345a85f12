"""`#@save` code in a chapter must be the shim's code (like transformers' check_copies).

    saved(code)                             -> the definitions a cell's #@save marks save
    compare(cells, shim, where, module)     -> list of (chapter line, message with a diff)

What is saved, as in d2lbook: a cell whose first line is `#@save` saves every top-level
`def`/`class` of the cell; a `#@save` after a `def`/`class` line or one of its decorators
(`class Trainer(d2l.HyperParameters):  #@save`, `@d2l.add_to_class(Cls)  #@save`) saves that
definition; a `#@save` line alone saves the definition after it. A marked method of a class is
compared with that method of the shim's class. Marked statements that define nothing (imports,
assignments) are not compared.

The shim is located by `build.py --shim` (default: `d2l_shim/` next to build.py): the
definitions of `<shim>/_common/*.py` then of `<shim>/<module>.py` (torch.py, tensorflow.py,
mxnet.py: book.SHIM_MODULE), the framework's module winning.

Compared on the parsed code (`ast.dump`): comments and formatting do not count, docstrings do
(they are code the reader sees). `d2l.Name` and `Name` are the same (the shim module is `d2l`).
A function decorated `@d2l.add_to_class(Cls)` is compared with method `Cls.name` of the shim,
decorator removed; a class may have more methods in the shim when the chapter adds them with
add_to_class in other `#@save` cells of the same section.
"""

from __future__ import annotations

import ast
import difflib
import functools
import io
import re
import tokenize
from collections.abc import Callable
from pathlib import Path

from book.branches import mask_magics

Defn = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
SAVE = re.compile(r"#\s*@save\b")  # not #@save_cell / #@save_all (whole-file marks)
Saved = tuple[int, Defn, str | None]  # (line in the code, definition, class of a method)


class _Normalize(ast.NodeTransformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == "d2l":
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return self.generic_visit(node)


def _norm(node: ast.AST) -> ast.AST:
    return _Normalize().visit(ast.parse(ast.unparse(node)).body[0])


def _dump(node: ast.AST) -> str:
    return ast.dump(_norm(node))


def _added_to(node: ast.AST) -> str | None:
    """`@d2l.add_to_class(Cls)` / `@add_to_class(Cls)` -> 'Cls'."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    for deco in node.decorator_list:
        if (
            isinstance(deco, ast.Call)
            and (getattr(deco.func, "attr", None) or getattr(deco.func, "id", None))
            == "add_to_class"
            and deco.args
            and isinstance(deco.args[0], ast.Name | ast.Attribute)
        ):
            arg = deco.args[0]
            return arg.attr if isinstance(arg, ast.Attribute) else arg.id  # type: ignore[union-attr]
    return None


def _strip_decorator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
    copy = ast.parse(ast.unparse(node)).body[0]
    copy.decorator_list = [d for d in copy.decorator_list if _added_to_deco(d) is None]  # type: ignore[attr-defined]
    return copy


def _added_to_deco(deco: ast.expr) -> str | None:
    fake = ast.FunctionDef(name="f", args=None, body=[], decorator_list=[deco])  # type: ignore[call-arg]
    return _added_to(fake)


@functools.lru_cache(maxsize=64)
def _parse_file(path: str, mtime_ns: int, size: int) -> ast.Module:
    """A shim file's tree, parsed once per version of the file (trees are never modified)."""
    return ast.parse(Path(path).read_text(encoding="utf-8"), path)


def shim_definitions(shim_dir: Path, module: str) -> tuple[dict[str, Defn], dict[str, str]]:
    """Top-level classes/functions of d2l_shim/<module>.py and d2l_shim/_common/*.py."""
    # The framework module wins over _common; in a file the last definition wins (as in Python).
    files = [*sorted((shim_dir / "_common").glob("*.py")), shim_dir / f"{module}.py"]
    found: dict[str, Defn] = {}
    where: dict[str, str] = {}
    for file in files:
        if not file.is_file():
            continue
        stat = file.stat()
        tree = _parse_file(str(file), stat.st_mtime_ns, stat.st_size)
        for node in tree.body:
            if isinstance(node, Defn):
                found[node.name] = node
                where[node.name] = file.name if file.parent == shim_dir else f"_common/{file.name}"
    return found, where


def _diff(chapter: ast.AST, shim: ast.AST, label: str) -> str:
    a = ast.unparse(_norm(shim)).splitlines()
    b = ast.unparse(_norm(chapter)).splitlines()
    lines = difflib.unified_diff(a, b, f"shim {label}", "chapter", lineterm="", n=2)
    return "\n".join(lines)


def _methods(cls: ast.ClassDef) -> dict[str, ast.stmt]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _marks(code: str) -> list[tuple[int, bool]]:
    """(line, alone on its line) of every #@save comment (comments only, not strings)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(mask_magics(code.split("\n"))).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [
        (tok.start[0], tok.line.lstrip().startswith("#"))
        for tok in tokens
        if tok.type == tokenize.COMMENT and SAVE.match(tok.string)
    ]


def _start(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _marked(body: list[ast.stmt], line: int, alone: bool, cls: str | None) -> Saved | None:
    """The definition a #@save at `line` marks in `body` (None: it marks no definition)."""
    for node in body:
        start, end = _start(node), node.end_lineno or node.lineno
        if alone and start > line:  # a `#@save` line: the statement after it
            return (node.lineno, node, cls) if isinstance(node, Defn) else None
        if not start <= line <= end:
            continue
        if isinstance(node, Defn) and not alone:
            header_end = max(node.lineno, node.body[0].lineno - 1)
            if line <= header_end:  # on the def/class line, its signature or a decorator
                return node.lineno, node, cls
        if isinstance(node, ast.ClassDef) and cls is None:
            return _marked(node.body, line, alone, node.name)
        return None
    return None


def saved(code: str) -> list[Saved]:
    """The definitions the #@save marks of a cell save (raises SyntaxError)."""
    tree = ast.parse(mask_magics(code.split("\n")))
    first = next((t.strip() for t in code.split("\n") if t.strip()), "")
    found: list[Saved] = []
    if SAVE.match(first):  # the whole cell
        found = [(n.lineno, n, None) for n in tree.body if isinstance(n, Defn)]
    for line, alone in _marks(code):
        mark = _marked(tree.body, line, alone, None)
        if mark and all(mark[1] is not node for _, node, _ in found):
            found.append(mark)
    whole = {node.name for _, node, cls in found if cls is None}
    return [item for item in found if item[2] not in whole]  # a saved class has its methods


def compare(
    cells: list[tuple[int | Callable[[int], int], str]],
    shim: dict[str, Defn],
    where: dict[str, str],
    module: str,
) -> list[tuple[int, str]]:
    """cells: (chapter line of the code's first line, or line k -> chapter line; code) of the
    #@save cells of one section/framework."""
    problems: list[tuple[int, str]] = []
    defs: list[tuple[int, Defn]] = []
    methods: list[tuple[int, Defn, str]] = []  # marked methods and add_to_class functions
    for first, code in cells:
        line_of = first if callable(first) else lambda k, first=first: first + k - 1
        try:
            marked = saved(code)
        except SyntaxError as err:
            problems.append((line_of(err.lineno or 1), f"syntax error: {err.msg}"))
            continue
        for line, node, cls in marked:
            cls = cls or _added_to(node)
            if cls:
                methods.append((line_of(line), node, cls))
            else:
                defs.append((line_of(line), node))
    added: dict[str, set[str]] = {}
    for _line, node, cls in methods:
        added.setdefault(cls, set()).add(node.name)
    for line, node, cls in methods:
        target = shim.get(cls)
        method = _methods(target).get(node.name) if isinstance(target, ast.ClassDef) else None
        if method is None:
            problems.append((line, f"#@save {cls}.{node.name} is not in d2l_shim/{module}.py"))
        elif _dump(_strip_decorator(node)) != _dump(method):  # type: ignore[arg-type]
            diff = _diff(_strip_decorator(node), method, f"{where[cls]}:{cls}.{node.name}")  # type: ignore[arg-type]
            problems.append((line, f"#@save {cls}.{node.name} differs from the shim:\n{diff}"))
    for line, node in defs:
        target = shim.get(node.name)
        if target is None:
            problems.append(
                (line, f"#@save {node.name} is not in d2l_shim/{module}.py (nor _common/)")
            )
            continue
        label = f"{where[node.name]}:{node.name}"
        if isinstance(node, ast.ClassDef) and isinstance(target, ast.ClassDef):
            # Methods added later with add_to_class may already be in the shim's class.
            extra = added.get(node.name, set())
            trimmed = ast.parse(ast.unparse(target)).body[0]
            trimmed.body = [  # type: ignore[attr-defined]
                s
                for s in trimmed.body  # type: ignore[attr-defined]
                if not (isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef) and s.name in extra)
            ] or [ast.Pass()]
            target = trimmed  # type: ignore[assignment]
        if _dump(node) != _dump(target):
            problems.append(
                (line, f"#@save {node.name} differs from the shim:\n{_diff(node, target, label)}")
            )
    return problems
