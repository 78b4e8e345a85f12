"""Everything `build.py check` verifies in a parsed section, as a list of Problems.

Errors: tab.selected forms and names, roles (dangling refs, duplicate labels, missing images),
`#@save` drift from the shim, :glue: references no cell records (book/glue.py). Warnings: an
output="check" cell without stored reference outputs, a :glue: name without a reference value.
Notes: frameworks named in the chapter that the book does not build (their cells are dropped).
Only the frameworks that get a notebook (source.frameworks_of) are checked.
"""

from __future__ import annotations

from pathlib import Path

from book import SHIM_MODULE, Problem, glue, roles, savecheck
from book.branches import BranchError, select
from book.notebook import cell_key, load_glue, load_references, references_file
from book.source import Code, Prose, Section, frameworks_of


def check_section(
    section: Section, idx: roles.Index, frameworks: tuple[str, ...], shim_dir: Path
) -> list[Problem]:
    problems = roles.check(section, idx) + section.notes
    codes = [b for b in section.blocks if isinstance(b, Code)]
    resolved: dict[tuple[int, str], str] = {}
    for block in codes:
        for fw in block.frameworks:
            try:
                resolved[(block.fence_line, fw)] = select(block.code, fw)
            except BranchError as err:
                problems.append(Problem(section.path, block.chapter_line(err.line), err.message))
                break
    problems += glue.check(section, frameworks)
    for fw in (f for f in frameworks if f in frameworks_of(section)):
        problems += _save_problems(section, codes, resolved, fw, shim_dir)
        problems += _reference_warnings(section, codes, resolved, fw)
        problems += _glue_warnings(section, fw)
    return sorted(set(problems))


def _save_problems(
    section: Section, codes: list[Code], resolved: dict, fw: str, shim_dir: Path
) -> list[Problem]:
    # Exact chapter lines when no branch moved a line; else counted from the code's first line.
    cells = [
        (b.chapter_line if code == b.code else b.code_line, code)
        for b in codes
        if b.save and (code := resolved.get((b.fence_line, fw))) is not None
    ]
    if not cells:
        return []
    module = SHIM_MODULE[fw]
    if not (shim_dir / f"{module}.py").is_file():
        msg = f"#@save cell but the shim has no {module}.py (in {shim_dir})"
        return [Problem(section.path, cells[0][0], msg)]
    shim, where = savecheck.shim_definitions(shim_dir, module)
    found = savecheck.compare(cells, shim, where, module)
    return [Problem(section.path, line, f"[{fw}] {msg}") for line, msg in found]


def _reference_warnings(
    section: Section, codes: list[Code], resolved: dict, fw: str
) -> list[Problem]:
    file = references_file(section, fw)
    refs = load_references(file)
    out, seen = [], {}
    for b in codes:
        code = resolved.get((b.fence_line, fw))
        if not (b.output == "check" and code and code.strip()):
            continue
        if cell_key(code, seen) not in refs:
            msg = (
                f'[{fw}] output="check" cell has no reference output in {file.name}; '
                f"run `python build.py outputs {section.path} --framework {fw}`"
            )
            out.append(Problem(section.path, b.fence_line, msg, warning=True))
    return out


def _glue_warnings(section: Section, fw: str) -> list[Problem]:
    """:glue: names without a value of the reference run (the generated notebook shows their
    names instead): one warning per framework, at the first such reference."""
    file = references_file(section, fw)
    values = load_glue(file)
    missing = [
        (line, name)
        for block in section.blocks
        if isinstance(block, Prose) and fw in block.frameworks
        for line, name in glue.roles(block.lines)
        if name not in values and glue.NAME.fullmatch(name)
    ]
    if not missing:
        return []
    names = ", ".join(dict.fromkeys(name for _, name in missing))
    msg = (
        f"[{fw}] no value of the reference run in {file.name} for :glue: {names}; run "
        f"`python build.py execute {section.path} --framework {fw}` (full length), then "
        f"`python build.py outputs {section.path} --framework {fw}`"
    )
    return [Problem(section.path, missing[0][0], msg, warning=True)]
